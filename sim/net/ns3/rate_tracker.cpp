#include "rate_tracker.h"

#include <algorithm>
#include <array>

namespace moss::net {

RateTracker::RateTracker(double tolerance, std::size_t min_window_samples, bool lossy)
    : tolerance_(tolerance), min_window_(min_window_samples), lossy_(lossy) {}

void RateTracker::record(double t_s, double delivered_bytes, std::uint64_t retransmissions) {
  t_s_.push_back(t_s);
  bytes_.push_back(delivered_bytes);
  retransmissions_.push_back(retransmissions);
}

void RateTracker::restart() {
  t_s_.clear();
  bytes_.clear();
  retransmissions_.clear();
}

std::optional<double> RateTracker::steady_rate_Bps() const {
  const auto s = steady();
  return s ? std::optional<double>(s->rate_Bps) : std::nullopt;
}

double RateTracker::mean_retransmissions_per_byte() const {
  const std::size_t n = t_s_.size();
  if (n < 2 || bytes_[n - 1] <= bytes_[0]) return 0;
  return double(retransmissions_[n - 1] - retransmissions_[0]) / (bytes_[n - 1] - bytes_[0]);
}

std::optional<RateTracker::Steady> RateTracker::steady() const {
  const std::size_t n = t_s_.size();
  // Shortest window first: a clean flow is declared steady as early as possible; the longer
  // windows average over loss recoveries and Cubic epochs.
  for (std::size_t k : {std::size_t{4}, std::size_t{16}, std::size_t{64}, std::size_t{256}}) {
    if (k < min_window_) continue;
    if (n < 3 * k + 1) break;
    std::array<double, 3> rate{};
    for (std::size_t w = 0; w < 3; ++w) {
      const std::size_t hi = n - 1 - w * k;
      const std::size_t lo = hi - k;
      rate[w] = (bytes_[hi] - bytes_[lo]) / (t_s_[hi] - t_s_[lo]);
    }
    const auto [mn, mx] = std::minmax_element(rate.begin(), rate.end());
    const double mean = (rate[0] + rate[1] + rate[2]) / 3;
    // rate[0] is the newest window. A rate still creeping up (Cubic growing in time) is not
    // steady even when the creep per window is under the tolerance.
    const bool rising = rate[0] > rate[1] && rate[1] > rate[2] &&
                        rate[0] - rate[2] > 0.25 * tolerance_ * mean;
    const std::size_t lo = n - 1 - 3 * k;
    const bool recovering = !lossy_ && k < 64 && retransmissions_[n - 1] != retransmissions_[lo];
    if (mean > 0 && (*mx - *mn) <= tolerance_ * mean && !rising && !recovering) {
      const double bytes = bytes_[n - 1] - bytes_[lo];
      return Steady{bytes / (t_s_[n - 1] - t_s_[lo]),
                    double(retransmissions_[n - 1] - retransmissions_[lo]) / bytes};
    }
  }
  return std::nullopt;
}

double RateTracker::mean_rate_Bps() const {
  const std::size_t n = t_s_.size();
  if (n < 2 || t_s_[n - 1] <= t_s_[0]) return 0;
  return (bytes_[n - 1] - bytes_[0]) / (t_s_[n - 1] - t_s_[0]);
}

}  // namespace moss::net
