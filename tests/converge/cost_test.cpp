#include "moss/converge/cost.h"

#include <gtest/gtest.h>

#include "moss/converge/scaling_law.h"

namespace moss::converge {
namespace {

scenario::Scenario priced(int nodes, scenario::TopologyKind topo) {
  scenario::Scenario s;
  s.cluster.nodes = nodes;
  s.cluster.network.topology = topo;
  s.cluster.network.bandwidth_bps = 10e9;
  s.cost.gpu_hour_usd = 2.0;
  s.cost.gbps_month_usd = 100.0;
  s.cost.transfer_gb_usd = 0.01;
  return s;
}

TEST(Cost, LinkCapacityCountsLinksPerTopology) {
  EXPECT_DOUBLE_EQ(link_capacity_gbps(priced(8, scenario::TopologyKind::kRing).cluster), 80);
  EXPECT_DOUBLE_EQ(link_capacity_gbps(priced(2, scenario::TopologyKind::kRing).cluster), 10);
  EXPECT_DOUBLE_EQ(link_capacity_gbps(priced(8, scenario::TopologyKind::kStar).cluster), 80);
  EXPECT_DOUBLE_EQ(link_capacity_gbps(priced(4, scenario::TopologyKind::kFullMesh).cluster), 60);
  EXPECT_DOUBLE_EQ(link_capacity_gbps(priced(1, scenario::TopologyKind::kRing).cluster), 0);
  auto s = priced(4, scenario::TopologyKind::kRing);
  scenario::LinkOverride slow;
  slow.bandwidth_bps = 1e9;
  s.cluster.network.links.push_back(slow);
  EXPECT_DOUBLE_EQ(link_capacity_gbps(s.cluster), 31);
}

TEST(Cost, HandComputedBreakdown) {
  const auto s = priced(8, scenario::TopologyKind::kRing);
  // 8 GPUs for 10 days: 1920 GPU-hours x $2 = $3840; 80 Gbps x (10 / 30.4375) months x $100 =
  // $2628.34; 5e12 bytes = 5000 GB x $0.01 = $50.
  const CostBreakdown c = estimate_cost(s, 10 * 86400.0, 8, 5e12);
  ASSERT_TRUE(c.gpu_usd && c.network_usd && c.transfer_usd);
  EXPECT_NEAR(*c.gpu_usd, 3840, 1e-9);
  EXPECT_NEAR(*c.network_usd, 80 * 10 / 30.4375 * 100, 1e-6);
  EXPECT_NEAR(*c.transfer_usd, 50, 1e-9);
  EXPECT_NEAR(c.total_usd, 3840 + 80 * 10 / 30.4375 * 100 + 50, 1e-6);
  EXPECT_TRUE(c.priced);
}

TEST(Cost, AbsentPricesGiveNoCost) {
  scenario::Scenario s;
  const CostBreakdown c = estimate_cost(s, 3600, 8, std::nullopt);
  EXPECT_FALSE(c.priced);
  EXPECT_FALSE(c.gpu_usd.has_value());
  EXPECT_DOUBLE_EQ(c.gpu_hours, 8);
}

TEST(Cost, PredictPricesTransferOnlyWithTraffic) {
  auto s = priced(8, scenario::TopologyKind::kRing);
  s.training.tokens = 1e9;
  EXPECT_FALSE(predict(s, 8e8, 1e4, 1e5, 8).cost.transfer_usd.has_value());
  const Prediction p = predict(s, 8e8, 1e4, 1e5, 8, Traffic{1e9});
  ASSERT_TRUE(p.cost.transfer_usd.has_value());
  EXPECT_NEAR(*p.cost.transfer_usd, 1e4 /*steps*/ * 1.0 /*GB*/ * 0.01, 1e-9);
}

}  // namespace
}  // namespace moss::converge
