#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace moss::net {

/// How a flow on a lossy path is judged steady. Under random loss TCP's rate is a sawtooth
/// (a loss, a window cut, regrowth, the next loss): only its mean over several loss epochs is
/// steady. Windows are therefore bounded by loss episodes (entries into fast recovery or
/// timeout recovery), not by sample counts: each of the last three windows spans `episodes`
/// consecutive epochs and starts and ends at the start of an episode, so all three end at the
/// same point of the sawtooth.
struct LossyWindows {
  double tolerance = 0.15;       ///< allowed (max - min) / mean of the three window rates
  std::size_t episodes = 32;     ///< loss episodes per window (then 2x, 4x, 8x that)
  std::size_t min_samples = 16;  ///< samples (RTTs) a window must span at least
  /// Expected payload bytes between the starts of two loss episodes (segment size / path loss
  /// probability); 0 if unknown. With it the windows' rates are control-variate estimates:
  /// how long an epoch lasts depends mostly on how many bytes it carried, which the loss draws
  /// decide; the rate is the known mean bytes per epoch over the mean epoch time regressed to
  /// that mean, not the sample's bytes over its time (whose luck with the draws it keeps).
  double bytes_per_episode = 0;
};

/// Watches one flow's cumulative delivered bytes, sampled at a fixed interval, and says when its
/// delivery rate has stopped changing.
/// Clean paths: the last three windows of k samples (k = min_window_samples, then 4x that, up
/// to 256; all taken since the last restart) give rates whose spread is within `tolerance` of
/// their mean, the rate is not still creeping up (nor down, with reject_any_trend), and (for
/// k < 64) no segment was retransmitted in them: a loss recovery is a transient, not a steady
/// state.
/// Lossy paths (constructed from LossyWindows): the windows are whole loss epochs, see there;
/// their rates must agree within its tolerance and must not trend up or down (the slow drift
/// of Cubic's window from its slow-start peak towards the loss-limited mean).
class RateTracker {
 public:
  /// tolerance: allowed (max - min) / mean of the three window rates, e.g. 0.02.
  /// min_window_samples: shortest window considered (then 4x, 16x ... up to 256 samples).
  /// ignore_retransmissions: retransmissions inside short windows do not block steadiness.
  /// reject_any_trend: a rate falling monotonically over the three windows is not steady either
  /// (for flows sharing a channel, whose share can drift either way).
  explicit RateTracker(double tolerance = 0.02, std::size_t min_window_samples = 4,
                       bool ignore_retransmissions = false, bool reject_any_trend = false);
  /// A tracker for a flow on a lossy path (windows bounded by loss episodes).
  explicit RateTracker(const LossyWindows& lossy);

  /// Records the cumulative delivered bytes, retransmitted segments and loss episodes at time
  /// t_s (times must increase, counts must not decrease).
  void record(double t_s, double delivered_bytes, std::uint64_t retransmissions = 0,
              std::uint64_t loss_episodes = 0);
  /// Forgets the history: the flow's share of the network changed (a flow started or ended).
  void restart();
  /// A steady state: delivery rate and retransmitted segments per delivered byte, both over
  /// the three agreeing windows.
  struct Steady {
    double rate_Bps = 0;
    double retransmissions_per_byte = 0;
    double window_s = 0;            ///< time the three windows span
    std::uint64_t loss_episodes = 0;  ///< loss episodes in them (lossy trackers)
  };
  /// The steady state over the three agreeing windows, if there are any.
  [[nodiscard]] std::optional<Steady> steady() const;
  /// Steady delivery rate in bytes/s over the three agreeing windows, if there are any.
  [[nodiscard]] std::optional<double> steady_rate_Bps() const;
  /// Retransmitted segments per delivered byte since the last restart.
  [[nodiscard]] double mean_retransmissions_per_byte() const;
  /// Mean delivery rate in bytes/s since the last restart (0 with fewer than two samples);
  /// lossy trackers with 10 or more loss episodes: over whole epochs, the first third left out.
  [[nodiscard]] double mean_rate_Bps() const;
  /// Samples recorded since the last restart.
  [[nodiscard]] std::size_t samples() const { return t_s_.size(); }
  /// Whether this tracker judges by loss epochs.
  [[nodiscard]] bool lossy() const { return lossy_.has_value(); }

 private:
  [[nodiscard]] std::optional<Steady> steady_clean() const;
  [[nodiscard]] std::optional<Steady> steady_lossy() const;
  [[nodiscard]] Steady over(std::size_t lo, std::size_t hi) const;
  [[nodiscard]] std::size_t start_of(std::uint64_t episode) const;
  [[nodiscard]] double epoch_rate_Bps(std::uint64_t first_episode, std::uint64_t end_episode) const;

  double tolerance_;
  std::size_t min_window_;
  bool ignore_retransmissions_;
  bool reject_any_trend_ = false;
  std::optional<LossyWindows> lossy_;
  std::vector<double> t_s_;
  std::vector<double> bytes_;
  std::vector<std::uint64_t> retransmissions_;
  std::vector<std::uint64_t> episodes_;
};

}  // namespace moss::net
