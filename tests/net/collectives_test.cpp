#include "moss/net/collectives.h"

#include <gtest/gtest.h>

#include "moss/net/analytic_backend.h"
#include "test_topologies.h"

namespace moss::net {

using testing::no_overhead;

class RingAllGather : public ::testing::TestWithParam<int> {};

// Closed form of a ring all-gather: (P - 1) (alpha + n / beta).
TEST_P(RingAllGather, MatchesClosedForm) {
  const int p = GetParam();
  const double bw = 10e9;
  const double alpha = 50e-6;
  const double block = 8e6;
  const Topology topo = testing::ring(p, bw, alpha);
  AnalyticBackend b(topo, no_overhead());
  Group g;
  for (int i = 0; i < p; ++i) g.push_back(i);
  const CollectivePlan plan = ring_allgather({g}, block);
  EXPECT_NEAR(run_collective(b, plan), (p - 1) * (alpha + block * 8 / bw), 1e-9);
  EXPECT_DOUBLE_EQ(plan.bytes_sent_per_rank, (p - 1) * block);
}

INSTANTIATE_TEST_SUITE_P(P, RingAllGather, ::testing::Values(2, 4, 8));

TEST(RingAllReduce, MatchesClosedForm) {
  const int p = 4;
  const Topology topo = testing::ring(p, 1e9, 1e-3);
  AnalyticBackend b(topo, no_overhead());
  const double n = 400e6;
  const CollectivePlan plan = ring_allreduce({{0, 1, 2, 3}}, n);
  // 2 (P - 1) steps of n / P bytes.
  EXPECT_NEAR(run_collective(b, plan), 2 * (p - 1) * (1e-3 + n / p * 8 / 1e9), 1e-9);
}

TEST(RingAllGather, ReplicasSharingAStarContend) {
  // Two groups of two on one switch: each group's flows use different uplinks, so no slowdown.
  const Topology topo = testing::star(4, 1e9, 0.0);
  AnalyticBackend b(topo, no_overhead());
  const double alone = run_collective(b, ring_allgather({{0, 1}}, 125e6));
  const double both = run_collective(b, ring_allgather({{0, 1}, {2, 3}}, 125e6));
  EXPECT_NEAR(alone, 1.0, 1e-9);
  EXPECT_NEAR(both, 1.0, 1e-9);
  // Groups {0,1} and {0,2} would share 0's uplink: twice the time.
  const double shared = b.run_phase({{0, 1, 125e6, 0.0}, {0, 2, 125e6, 0.0}}).makespan_s;
  EXPECT_NEAR(shared, 2.0, 1e-9);
}

}  // namespace moss::net
