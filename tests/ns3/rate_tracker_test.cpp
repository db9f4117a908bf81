#include "rate_tracker.h"

#include <gtest/gtest.h>

#include <cmath>

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

// A flow's share of a shared link, as ns-3 gives it for two buffer-limited Cubic flows on
// 300 Mbps / 10 ms: +-5 % around the mean with a period of ~40 samples (RTTs; README). Short
// windows catch it at a crest (the old detector credited +4 % there); windows of 32 samples and
// more, with no trend either way, only agree where they average it out.
TEST(RateTracker, OscillatingShareNeedsWindowsOfAPeriod) {
  const double kPi = 3.141592653589793;
  const auto feed = [&](RateTracker& t) {
    double bytes = 0;
    for (int i = 0; i < 400; ++i) {
      t.record(i, bytes);
      bytes += 1000 * (1 + 0.05 * std::sin(2 * kPi * (i + 0.5) / 40));
      if (t.steady()) return *t.steady();
    }
    return RateTracker::Steady{};
  };
  RateTracker short_windows(0.02, 4);
  RateTracker shared(0.02, 32, false, true);
  const RateTracker::Steady s = feed(short_windows);
  const RateTracker::Steady l = feed(shared);
  EXPECT_GT(std::abs(s.rate_Bps / 1000 - 1), 0.03);  // what the old detector credited
  ASSERT_GT(l.rate_Bps, 0);
  EXPECT_NEAR(l.rate_Bps / 1000, 1.0, 0.01);
}

TEST(RateTracker, FallingRateIsNotSteadyWhenTrendsEitherWayCount) {
  const auto feed = [](RateTracker& t) {
    double bytes = 0;
    for (int i = 0; i <= 12; ++i) {  // -0.1 % per sample: 1.2 % over the three windows
      t.record(i, bytes);
      bytes += 1000 * (1 - 0.001 * i);
    }
  };
  RateTracker one_sided(0.02, 4);
  RateTracker two_sided(0.02, 4, false, true);
  feed(one_sided);
  feed(two_sided);
  EXPECT_TRUE(one_sided.steady().has_value());
  EXPECT_FALSE(two_sided.steady().has_value());
}

}  // namespace
}  // namespace moss::net

namespace moss::net {
namespace {

// A loss sawtooth: every `period` samples a loss episode starts, the rate drops to half of
// `peak` and climbs back linearly. `decay` shrinks each epoch's peak (a drifting mean).
void sawtooth(RateTracker& t, int epochs, int period, double peak, double decay = 1.0) {
  double bytes = 0;
  std::uint64_t episodes = 0;
  int i = 0;
  for (int e = 0; e < epochs; ++e) {
    ++episodes;
    for (int k = 0; k < period; ++k, ++i) {
      t.record(i * 0.02, bytes, episodes, episodes);
      bytes += peak * (0.5 + 0.5 * k / period) * 0.02;
    }
    peak *= decay;
  }
}

TEST(RateTracker, LossySawtoothIsSteadyOverWholeEpochs) {
  const LossyWindows windows{0.15, 16, 16};  // 16 episodes per window, 16 samples at least
  RateTracker t(windows);
  // 49 episode starts: the oldest window would open with the first one, whose start was not
  // seen (it began before the restart).
  sawtooth(t, 3 * 16 + 1, 20, 1e6);
  EXPECT_FALSE(t.steady().has_value());
  RateTracker u(windows);
  sawtooth(u, 3 * 16 + 2, 20, 1e6);
  const auto s = u.steady();
  ASSERT_TRUE(s.has_value());
  // Mean of the sawtooth (0.5 .. 1.0 of the peak, one sample's lag): ~0.74 of the peak,
  // exactly what whole epochs average to.
  EXPECT_NEAR(s->rate_Bps, 0.7375e6, 0.01e6);
  EXPECT_EQ(s->loss_episodes, 48u);
}

TEST(RateTracker, LossyDriftingMeanIsNotSteady) {
  RateTracker t(LossyWindows{0.15, 16, 16});
  sawtooth(t, 200, 20, 1e6, 0.995);  // each window of 16 epochs ~8 % below the one before
  EXPECT_FALSE(t.steady().has_value());
}

TEST(RateTracker, LossyWindowsMustSpanEnoughSamples) {
  RateTracker t(LossyWindows{0.15, 16, 32});
  sawtooth(t, 60, 1, 1e6);  // an episode every sample: 16 of them span 16 samples, not 32
  EXPECT_FALSE(t.steady().has_value());
}

// Epoch sizes that happen to average 20 % below their known mean (as a few dozen geometric draws
// easily do), each epoch lasting 0.5 s + its bytes at 2 MB/s: the rate over the sample is that
// of smaller epochs; regressed to the known mean it is the flow's long-run rate.
TEST(RateTracker, LossyRateUsesTheKnownMeanEpochSize) {
  const double mu = 1e6;
  const double sizes[] = {0.2e6, 0.5e6, 0.8e6, 1.1e6, 1.4e6, 0.6e6, 0.3e6, 1.5e6};  // mean 0.8e6
  const auto run = [&](double bytes_per_episode) {
    RateTracker t(LossyWindows{0.5, 8, 4, bytes_per_episode});
    double now = 0;
    double bytes = 0;
    std::uint64_t episodes = 0;
    for (int e = 0; e < 3 * 8 + 2; ++e) {
      ++episodes;
      const double b = sizes[e % 8];
      const double dt = 0.5 + b / 2e6;
      const int steps = static_cast<int>(dt / 0.01 + 0.5);
      for (int k = 0; k < steps; ++k) {
        t.record(now, bytes, 0, episodes);
        now += dt / steps;
        bytes += b / steps;
      }
    }
    t.record(now, bytes, 0, episodes + 1);
    return t.steady();
  };
  const auto plain = run(0);
  const auto regressed = run(mu);
  ASSERT_TRUE(plain.has_value());
  ASSERT_TRUE(regressed.has_value());
  const double truth = mu / (0.5 + mu / 2e6);  // 1 MB/s
  EXPECT_NEAR(plain->rate_Bps, 0.8e6 / (0.5 + 0.8e6 / 2e6), 0.01e6);  // 0.889 MB/s
  EXPECT_NEAR(regressed->rate_Bps, truth, 0.01e6);
}

}  // namespace
}  // namespace moss::net
