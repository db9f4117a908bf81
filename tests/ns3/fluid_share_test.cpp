#include "fluid_share.h"

#include <gtest/gtest.h>

namespace moss::net {
namespace {

Topology line3() {  // 0 -- 1 -- 2, 8 Gbps both links = 1e9 wire bytes/s
  const Channel c{8e9, 1e-3, 1500, 0};
  return Topology(3, 3, {Link{0, 1, c, c, false}, Link{1, 2, c, c, false}}, {});
}

TEST(FluidShare, FlowsOnOneChannelSplitIt) {
  const Topology t = line3();
  const auto& r = t.route(0, 1);
  const auto rates = max_min_payload_rates_Bps(t, {{&r, 1.0}, {&r, 1.0}});
  EXPECT_NEAR(rates[0], 0.5e9, 1);
  EXPECT_NEAR(rates[1], 0.5e9, 1);
}

TEST(FluidShare, MaxMinGivesLeftoverToUnconstrainedFlow) {
  const Topology t = line3();
  const auto& r02 = t.route(0, 2);
  const auto& r01 = t.route(0, 1);
  const auto& r12 = t.route(1, 2);
  // 0->2 crosses both links; 0->1 and two flows 1->2 share them.
  const auto rates =
      max_min_payload_rates_Bps(t, {{&r02, 1.0}, {&r01, 1.0}, {&r12, 1.0}, {&r12, 1.0}});
  EXPECT_NEAR(rates[0], 1e9 / 3, 1);
  EXPECT_NEAR(rates[1], 2e9 / 3, 1);
  EXPECT_NEAR(rates[2], 1e9 / 3, 1);
}

TEST(FluidShare, WireOverheadLowersPayloadRate) {
  const Topology t = line3();
  const auto& r = t.route(0, 1);
  const auto rates = max_min_payload_rates_Bps(t, {{&r, 1.25}});
  EXPECT_NEAR(rates[0], 0.8e9, 1);
}

}  // namespace
}  // namespace moss::net
