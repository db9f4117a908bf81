// The packet simulation itself (below the backend): loss counters and retransmissions.
#include "packet_phase.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "ns3_test_util.h"

namespace moss::net {
namespace {

// 1e-4 random loss: every retransmission answers a packet the error model dropped. Before the
// window was clamped below the send buffer, a loss recovery with the buffer full of the window
// made ns-3 3.37's NextSeg rule 3 resend unSACKed segments that were not lost: 2129
// retransmissions for 9 dropped data packets on this very case (README, "Loss").
TEST(Ns3PacketPhase, LossyRecoveryResendsOnlyWhatWasLost) {
  const Topology topo = test::one_link(300e6, 10e-3, 1500, 1e-4);
  PacketPhasePlan plan;
  plan.stop_when_steady = false;
  const PacketPhaseOutcome out = simulate_packet_phase(topo, TransportConfig{}, {{0, 1, 50e6, 0}}, plan);
  ASSERT_EQ(out.flows.size(), 1u);
  const PacketFlowOutcome& f = out.flows[0];
  std::printf("[ loss ] 50 MB at 1e-4: %.4f s, retransmissions %llu, data packets dropped %llu, "
              "loss episodes %llu, timeouts %llu\n", f.finish_s,
              static_cast<unsigned long long>(f.retransmissions),
              static_cast<unsigned long long>(out.dropped_data_packets),
              static_cast<unsigned long long>(f.loss_episodes),
              static_cast<unsigned long long>(f.timeouts));
  EXPECT_TRUE(f.finished);
  EXPECT_GT(out.dropped_data_packets, 0u);
  EXPECT_GT(f.loss_episodes, 0u);
  EXPECT_LE(f.retransmissions, out.dropped_data_packets + 2);
  EXPECT_GE(f.retransmissions, out.dropped_data_packets);
}

}  // namespace
}  // namespace moss::net
