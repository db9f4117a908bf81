#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace moss::net {

/// Watches one flow's cumulative delivered bytes, sampled at a fixed interval, and says when its
/// delivery rate has stopped changing: the last three windows of 4, 16, 64 or 256 samples (all taken
/// since the last restart) give rates whose spread is within `tolerance` of their mean, the rate
/// is not still creeping up, and (for 4 and 16) no segment was retransmitted in them: a loss
/// recovery is a transient, not a steady state. The 64-sample windows may contain losses: they
/// average a lossy flow over its loss cycles.
class RateTracker {
 public:
  /// tolerance: allowed (max - min) / mean of the three window rates, e.g. 0.02.
  /// min_window_samples: shortest window considered (4, 16, 64 or 256); a lossy path needs
  /// windows long enough to hold several losses, and then losses inside them are expected.
  explicit RateTracker(double tolerance = 0.02, std::size_t min_window_samples = 4,
                       bool lossy = false);

  /// Records the cumulative delivered bytes and retransmitted segments at time t_s (times must
  /// increase).
  void record(double t_s, double delivered_bytes, std::uint64_t retransmissions = 0);
  /// Forgets the history: the flow's share of the network changed (a flow started or ended).
  void restart();
  /// A steady state: delivery rate and retransmitted segments per delivered byte, both over
  /// the three agreeing windows.
  struct Steady {
    double rate_Bps = 0;
    double retransmissions_per_byte = 0;
  };
  /// The steady state over the three agreeing windows, if there are any.
  [[nodiscard]] std::optional<Steady> steady() const;
  /// Steady delivery rate in bytes/s over the three agreeing windows, if there are any.
  [[nodiscard]] std::optional<double> steady_rate_Bps() const;
  /// Retransmitted segments per delivered byte since the last restart.
  [[nodiscard]] double mean_retransmissions_per_byte() const;
  /// Mean delivery rate in bytes/s since the last restart (0 with fewer than two samples).
  [[nodiscard]] double mean_rate_Bps() const;
  /// Samples recorded since the last restart.
  [[nodiscard]] std::size_t samples() const { return t_s_.size(); }

 private:
  double tolerance_;
  std::size_t min_window_;
  bool lossy_;
  std::vector<double> t_s_;
  std::vector<double> bytes_;
  std::vector<std::uint64_t> retransmissions_;
};

}  // namespace moss::net
