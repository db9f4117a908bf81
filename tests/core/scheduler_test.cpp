#include "moss/core/scheduler.h"

#include <gtest/gtest.h>

#include "moss/core/error.h"

namespace moss::core {

TEST(Scheduler, ChainOnOneResourceAddsUp) {
  TaskGraph g;
  const auto r = g.add_resource("compute", 0);
  const auto a = g.add_task("a", TaskKind::kCompute, r, 1.0, {});
  const auto b = g.add_task("b", TaskKind::kCompute, r, 2.0, {a});
  g.add_task("c", TaskKind::kCompute, r, 3.0, {b});
  const Schedule s = g.run();
  EXPECT_DOUBLE_EQ(s.makespan_s, 6.0);
  EXPECT_DOUBLE_EQ(s.start_s[2], 3.0);
}

TEST(Scheduler, IndependentResourcesRunInParallel) {
  TaskGraph g;
  const auto r0 = g.add_resource("gpu0", 0);
  const auto r1 = g.add_resource("gpu1", 1);
  g.add_task("a", TaskKind::kCompute, r0, 4.0, {});
  g.add_task("b", TaskKind::kCompute, r1, 3.0, {});
  EXPECT_DOUBLE_EQ(g.run().makespan_s, 4.0);
}

TEST(Scheduler, SerialResourceQueuesReadyTasks) {
  TaskGraph g;
  const auto r = g.add_resource("nic", 0);
  g.add_task("a", TaskKind::kCommunication, r, 2.0, {});
  g.add_task("b", TaskKind::kCommunication, r, 2.0, {});
  const Schedule s = g.run();
  EXPECT_DOUBLE_EQ(s.makespan_s, 4.0);
  EXPECT_DOUBLE_EQ(s.start_s[1], 2.0);
}

// Two devices: each computes 3 s, sends 2 s (after compute), then a dependent compute of 1 s
// overlaps with the other's transfer. Hand-computed: compute a0 [0,3], comm [3,5], b0 [5,6];
// the independent c0 [3,4] overlaps the transfer. Makespan 6 = between max(5, 2) and 5 + 2.
TEST(Scheduler, OverlapMatchesHandComputedTwoDeviceCase) {
  TaskGraph g;
  const auto gpu0 = g.add_resource("gpu0", 0);
  const auto gpu1 = g.add_resource("gpu1", 1);
  const auto net = g.add_resource("network", -1);
  const auto a0 = g.add_task("a0", TaskKind::kCompute, gpu0, 3.0, {});
  const auto a1 = g.add_task("a1", TaskKind::kCompute, gpu1, 3.0, {});
  const auto x = g.add_task("exchange", TaskKind::kCommunication, net, 2.0, {a0, a1});
  g.add_task("c0", TaskKind::kCompute, gpu0, 1.0, {a0});
  g.add_task("c1", TaskKind::kCompute, gpu1, 1.0, {a1});
  g.add_task("b0", TaskKind::kCompute, gpu0, 1.0, {x});
  g.add_task("b1", TaskKind::kCompute, gpu1, 1.0, {x});
  const Schedule s = g.run();
  EXPECT_DOUBLE_EQ(s.makespan_s, 6.0);
  const double compute = 5.0;  // per device
  const double comm = 2.0;
  EXPECT_GE(s.makespan_s, std::max(compute, comm));
  EXPECT_LE(s.makespan_s, compute + comm);
  const Schedule free = g.run(true);
  EXPECT_DOUBLE_EQ(free.makespan_s, 5.0);
}

TEST(Scheduler, RejectsForwardDependencies) {
  TaskGraph g;
  const auto r = g.add_resource("gpu", 0);
  g.add_task("a", TaskKind::kCompute, r, 1.0, {});
  EXPECT_THROW(g.add_dependency(1, 0), InternalError);
}

}  // namespace moss::core
