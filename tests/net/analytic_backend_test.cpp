#include "moss/net/analytic_backend.h"

#include <gtest/gtest.h>

#include "test_topologies.h"

namespace moss::net {

using testing::no_overhead;

TEST(AnalyticBackend, SingleFlowIsLatencyPlusBytesOverBandwidth) {
  const Topology topo = testing::ring(2, 1e9, 5e-3);
  AnalyticBackend b(topo, no_overhead());
  const auto r = b.run_phase({{0, 1, 125e6, 0.0}});  // 1 Gbit
  EXPECT_NEAR(r.finish_s[0], 5e-3 + 1.0, 1e-9);
}

TEST(AnalyticBackend, HeaderOverheadFollowsTheMtu) {
  const Topology topo = testing::ring(2, 1e9, 0.0, 1500);
  AnalyticBackend b(topo, TransportConfig{});
  const auto r = b.run_phase({{0, 1, 1e6, 0.0}});
  // 1448 payload bytes per 1502 on the wire.
  EXPECT_NEAR(r.finish_s[0], 1e6 * 8 / 1e9 * 1502.0 / 1448.0, 1e-12);
}

TEST(AnalyticBackend, TwoFlowsOnOneLinkEachGetHalf) {
  const Topology topo = testing::ring(2, 1e9, 0.0);
  AnalyticBackend b(topo, no_overhead());
  const auto r = b.run_phase({{0, 1, 125e6, 0.0}, {0, 1, 125e6, 0.0}});
  EXPECT_NEAR(r.finish_s[0], 2.0, 1e-9);
  EXPECT_NEAR(r.finish_s[1], 2.0, 1e-9);
}

TEST(AnalyticBackend, ShortFlowFinishesAndFreesBandwidth) {
  const Topology topo = testing::ring(2, 1e9, 0.0);
  AnalyticBackend b(topo, no_overhead());
  // Shares until the short one ends at 2 x 0.5 s, then the long one runs alone.
  const auto r = b.run_phase({{0, 1, 62.5e6, 0.0}, {0, 1, 125e6, 0.0}});
  EXPECT_NEAR(r.finish_s[0], 1.0, 1e-9);
  EXPECT_NEAR(r.finish_s[1], 1.5, 1e-9);
}

TEST(AnalyticBackend, MaxMinFairnessAcrossABottleneck) {
  // Star: 0->2 and 1->2 share 2's downlink; 0->1 shares 0's uplink with 0->2.
  const Topology topo = testing::star(3, 1e9, 0.0);
  AnalyticBackend b(topo, no_overhead());
  const auto r = b.run_phase({{0, 2, 125e6, 0.0}, {1, 2, 125e6, 0.0}, {0, 1, 125e6, 0.0}});
  // All three at 0.5 Gbps: 0->2 and 1->2 end at 2 s; 0->1 too.
  EXPECT_NEAR(r.finish_s[0], 2.0, 1e-9);
  EXPECT_NEAR(r.finish_s[1], 2.0, 1e-9);
  EXPECT_NEAR(r.finish_s[2], 2.0, 1e-9);
}

TEST(AnalyticBackend, SocketBufferCapsLongFatPaths) {
  const Topology topo = testing::ring(2, 10e9, 20e-3);  // RTT 40 ms, BDP 50 MB
  TransportConfig t = no_overhead();
  t.socket_buffer_bytes = 4e6;  // window-limited to 4 MB / 40 ms = 800 Mbps
  AnalyticBackend b(topo, t);
  const auto r = b.run_phase({{0, 1, 100e6, 0.0}});
  EXPECT_NEAR(r.finish_s[0], 20e-3 + 100e6 * 8 / 800e6, 1e-9);
}

TEST(AnalyticBackend, DelayedStartIsHonoured) {
  const Topology topo = testing::ring(2, 1e9, 1e-3);
  AnalyticBackend b(topo, no_overhead());
  const auto r = b.run_phase({{0, 1, 125e6, 0.5}});
  EXPECT_NEAR(r.finish_s[0], 0.5 + 1e-3 + 1.0, 1e-9);
}

TEST(AnalyticBackend, IdenticalPhasesAreMemoised) {
  const Topology topo = testing::ring(4, 1e9, 1e-3);
  AnalyticBackend b(topo, no_overhead());
  const Phase p{{0, 1, 1e6, 0.0}, {1, 2, 1e6, 0.0}};
  const auto r1 = b.run_phase(p);
  const auto r2 = b.run_phase(p);
  EXPECT_EQ(r1.finish_s, r2.finish_s);
  EXPECT_EQ(b.stats().phases_simulated, 1u);
  EXPECT_EQ(b.stats().phases_reused, 1u);
}

}  // namespace moss::net
