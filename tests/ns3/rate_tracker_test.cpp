#include "rate_tracker.h"

#include <gtest/gtest.h>

namespace moss::net {
namespace {

TEST(RateTracker, ConstantRateIsSteadyAfterThreeShortWindows) {
  RateTracker t(0.02);
  for (int i = 0; i <= 11; ++i) t.record(i * 0.1, i * 1000.0);
  EXPECT_FALSE(t.steady_rate_Bps().has_value());  // needs 13 samples
  t.record(1.2, 12000);
  ASSERT_TRUE(t.steady_rate_Bps().has_value());
  EXPECT_NEAR(*t.steady_rate_Bps(), 10000, 1e-6);
}

TEST(RateTracker, DoublingRateIsNotSteady) {  // slow start
  RateTracker t(0.02);
  double bytes = 0;
  for (int i = 0; i < 20; ++i) {
    t.record(i, bytes);
    bytes += double(1 << i);
    EXPECT_FALSE(t.steady_rate_Bps().has_value()) << i;
  }
}

TEST(RateTracker, SlowCreepIsNotSteady) {
  RateTracker t(0.02);
  double bytes = 0;
  for (int i = 0; i < 40; ++i) {  // +0.3 % per sample: each window 1.2 % above the last
    t.record(i, bytes);
    bytes += 1000 * (1 + 0.003 * i);
  }
  EXPECT_FALSE(t.steady_rate_Bps().has_value());
}

TEST(RateTracker, RetransmissionsInShortWindowsDelaySteadiness) {
  RateTracker t(0.02);
  for (int i = 0; i <= 12; ++i) t.record(i, i * 1000.0, i == 10 ? 1 : (i > 10 ? 1 : 0));
  EXPECT_FALSE(t.steady_rate_Bps().has_value());
  RateTracker lossy(0.02, 4, true);
  for (int i = 0; i <= 12; ++i) lossy.record(i, i * 1000.0, i);
  EXPECT_TRUE(lossy.steady_rate_Bps().has_value());
}

TEST(RateTracker, RestartForgetsHistory) {
  RateTracker t(0.02);
  for (int i = 0; i <= 20; ++i) t.record(i, i * 1000.0);
  EXPECT_TRUE(t.steady_rate_Bps().has_value());
  t.restart();
  EXPECT_EQ(t.samples(), 0u);
  EXPECT_FALSE(t.steady_rate_Bps().has_value());
  EXPECT_EQ(t.mean_rate_Bps(), 0);
}

TEST(RateTracker, NoisyRateNeedsLongerWindows) {
  RateTracker t(0.02);
  double bytes = 0;
  int first_steady = -1;
  for (int i = 0; i < 300 && first_steady < 0; ++i) {
    t.record(i, bytes);
    bytes += (i % 8 < 4) ? 1500 : 500;  // period 8
    if (t.steady_rate_Bps()) first_steady = i;
  }
  ASSERT_GE(first_steady, 12);
  EXPECT_NEAR(*t.steady_rate_Bps(), 1000, 20);  // only windows that average the noise agree
}

}  // namespace
}  // namespace moss::net
