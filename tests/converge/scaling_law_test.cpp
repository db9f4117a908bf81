#include "moss/converge/scaling_law.h"

#include <cmath>

#include <gtest/gtest.h>

namespace moss::converge {
namespace {

scenario::Scenario token_target(double tokens) {
  scenario::Scenario s;
  s.training.tokens = tokens;
  return s;
}

TEST(ScalingLaw, LossMatchesHandComputedChinchilla) {
  // 1.69 + 406.4 / 1e9^0.34 + 410.7 / 2e10^0.28, worked by hand:
  // 1e9^0.34 = 10^3.06 = 1148.15; 2e10^0.28 = 10^(0.28 * 10.30103) = 10^2.88429 = 766.14
  const double expected = 1.69 + 406.4 / 1148.154 + 410.7 / 766.136;
  EXPECT_NEAR(loss(scenario::LossLaw{}, 1e9, 2e10), expected, 1e-4);
}

TEST(ScalingLaw, TokensForLossInvertsLoss) {
  const scenario::LossLaw law;
  for (double d : {1e8, 3e9, 2e11}) EXPECT_NEAR(tokens_for_loss(law, 8e8, loss(law, 8e8, d)) / d, 1.0, 1e-9);
}

TEST(ScalingLaw, TargetBelowFloorIsUnreachable) {
  const scenario::LossLaw law;
  EXPECT_TRUE(std::isinf(tokens_for_loss(law, 8e8, law.e)));
  scenario::Scenario s;
  s.training.target_loss = 1.0;
  const Prediction p = predict(s, 8e8, 1e5, 1e5, 8);
  EXPECT_FALSE(p.reachable);
  EXPECT_TRUE(p.curve.empty());
}

// Training moves in whole steps: 1e10 tokens at 131072 per step is 76293.95 steps, so the target is
// reached at the end of step 76294, 76294 x 1.31072 s = 100000.0717 s at 1e5 tokens/s.
TEST(ScalingLaw, TokenTargetTimeIsWholeStepsOverRate) {
  auto s = token_target(1e10);
  s.compression.method = "mos";
  s.convergence.compression = {"assumed", 0.8, "", false};
  const Prediction p = predict(s, 8e8, 1e5, 131072, 8);
  EXPECT_DOUBLE_EQ(p.steps, 76294);
  EXPECT_NEAR(p.time_to_target_s, 76294 * 1.31072, 1e-6);
  EXPECT_DOUBLE_EQ(p.eta, 0.8);
  EXPECT_NEAR(p.target_loss, loss(s.convergence.law, 8e8, 0.8e10), 1e-12);
  EXPECT_NEAR(p.gpu_hours, 76294 * 1.31072 * 8 / 3600, 1e-9);
  ASSERT_EQ(p.curve.size(), 64u);
  EXPECT_NEAR(p.curve.back().tokens, 1e10, 1);
  EXPECT_NEAR(p.curve.back().wall_s, p.time_to_target_s, 1e-6);
  EXPECT_NEAR(p.curve.front().wall_s, 1.31072, 1e-12);  // the first point: after one step
  EXPECT_NEAR(p.loss_floor, s.convergence.law.e + s.convergence.law.a / std::pow(8e8, s.convergence.law.alpha), 1e-12);
}

// A target within the first step costs that step (it was a fraction of it), and an exact number of
// steps costs exactly those steps.
TEST(ScalingLaw, ATargetCostsAtLeastOneWholeStep) {
  const Prediction tiny = predict(token_target(1000), 8e8, 1e5, 131072, 8);
  EXPECT_DOUBLE_EQ(tiny.steps, 1);
  EXPECT_NEAR(tiny.time_to_target_s, 1.31072, 1e-12);
  const Prediction exact = predict(token_target(3 * 131072.0), 8e8, 1e5, 131072, 8);
  EXPECT_DOUBLE_EQ(exact.steps, 3);
  EXPECT_NEAR(exact.time_to_target_s, 3 * 1.31072, 1e-12);
}

TEST(ScalingLaw, LossTargetDividesByEta) {
  scenario::Scenario s;
  s.training.target_loss = 3.0;
  s.compression.method = "mos";
  s.convergence.compression = {"assumed", 0.5, "", false};
  const double d = tokens_for_loss(s.convergence.law, 8e8, 3.0);
  const Prediction p = predict(s, 8e8, 2e5, 1e5, 8);
  EXPECT_NEAR(p.target_tokens, d / 0.5, 1e-3 * d);
  EXPECT_NEAR(p.time_to_target_s, d / 0.5 / 2e5, 1e-6 * d);
  EXPECT_NEAR(p.curve.back().loss, 3.0, 1e-9);
}

TEST(ScalingLaw, UncompressedAndEveryStepSyncIgnoreAssumedEta) {
  auto s = token_target(1e10);
  s.convergence.compression = {"assumed", 0.5, "", false};
  s.convergence.weight_sync = {"assumed", 0.5, "", false};
  const Prediction p = predict(s, 8e8, 1e5, 1e5, 8);
  EXPECT_DOUBLE_EQ(p.eta, 1.0);
  EXPECT_EQ(p.eta_compression.source, "not-applicable");
  s.training.sync_every_steps = 4;
  EXPECT_DOUBLE_EQ(predict(s, 8e8, 1e5, 1e5, 8).eta, 0.5);
}

}  // namespace
}  // namespace moss::converge
