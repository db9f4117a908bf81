#include "moss/net/topology.h"

#include <gtest/gtest.h>

#include "moss/core/error.h"
#include "test_topologies.h"

namespace moss::net {

TEST(Topology, RingRoutesTakeTheShorterWay) {
  const Topology t = testing::ring(8, 1e9, 1e-3);
  EXPECT_EQ(t.route(0, 1).size(), 1u);
  EXPECT_EQ(t.route(0, 7).size(), 1u);
  EXPECT_EQ(t.route(0, 4).size(), 4u);
  EXPECT_NEAR(t.path_latency_s(0, 3), 3e-3, 1e-15);
}

TEST(Topology, StarRoutesThroughTheSwitch) {
  const Topology t = testing::star(4, 1e9, 1e-3);
  EXPECT_EQ(t.route(1, 3).size(), 2u);
  EXPECT_EQ(t.channel_to(t.route(1, 3).front()), 4);
}

TEST(Topology, PrefersLowerLatencyAmongEqualHops) {
  // 0-1 direct is slow (50 ms); 0-2-1 is two hops: the direct link wins on hops.
  std::vector<Link> links{{0, 1, {1e9, 50e-3, 1500, 0}, {1e9, 50e-3, 1500, 0}, false},
                          {0, 2, {1e9, 1e-3, 1500, 0}, {1e9, 1e-3, 1500, 0}, false},
                          {2, 1, {1e9, 1e-3, 1500, 0}, {1e9, 1e-3, 1500, 0}, false}};
  const Topology t(3, 3, links, {});
  EXPECT_EQ(t.route(0, 1).size(), 1u);
}

TEST(Topology, UnreachableGpuIsReported) {
  std::vector<Link> links{{0, 1, {1e9, 0, 1500, 0}, {1e9, 0, 1500, 0}, false}};
  const Topology t(3, 3, links, {});
  EXPECT_FALSE(t.connected());
  EXPECT_THROW((void)t.route(0, 2), InputError);
}

TEST(Topology, AsymmetricLinkHasTwoChannels) {
  std::vector<Link> links{{0, 1, {1e9, 1e-3, 1500, 0}, {100e6, 40e-3, 1500, 0}, false}};
  const Topology t(2, 2, links, {});
  EXPECT_DOUBLE_EQ(t.path_bandwidth_bps(0, 1), 1e9);
  EXPECT_DOUBLE_EQ(t.path_bandwidth_bps(1, 0), 100e6);
  EXPECT_DOUBLE_EQ(t.path_latency_s(1, 0), 40e-3);
}

}  // namespace moss::net
