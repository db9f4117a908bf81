#include "rate_tracker.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace moss::net {

RateTracker::RateTracker(double tolerance, std::size_t min_window_samples, bool ignore_retransmissions,
                         bool reject_any_trend)
    : tolerance_(tolerance), min_window_(std::max<std::size_t>(min_window_samples, 1)),
      ignore_retransmissions_(ignore_retransmissions), reject_any_trend_(reject_any_trend) {}

RateTracker::RateTracker(const LossyWindows& lossy)
    : tolerance_(lossy.tolerance), min_window_(lossy.min_samples), ignore_retransmissions_(true),
      lossy_(lossy) {}

void RateTracker::record(double t_s, double delivered_bytes, std::uint64_t retransmissions,
                         std::uint64_t loss_episodes) {
  t_s_.push_back(t_s);
  bytes_.push_back(delivered_bytes);
  retransmissions_.push_back(retransmissions);
  episodes_.push_back(loss_episodes);
}

void RateTracker::restart() {
  t_s_.clear();
  bytes_.clear();
  retransmissions_.clear();
  episodes_.clear();
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
  return lossy_ ? steady_lossy() : steady_clean();
}

RateTracker::Steady RateTracker::over(std::size_t lo, std::size_t hi) const {
  const double bytes = bytes_[hi] - bytes_[lo];
  return Steady{bytes / (t_s_[hi] - t_s_[lo]),
                bytes > 0 ? double(retransmissions_[hi] - retransmissions_[lo]) / bytes : 0.0,
                t_s_[hi] - t_s_[lo], episodes_[hi] - episodes_[lo]};
}

std::optional<RateTracker::Steady> RateTracker::steady_clean() const {
  const std::size_t n = t_s_.size();
  // Shortest window first: a clean flow is declared steady as early as possible; the longer
  // windows average over loss recoveries and Cubic epochs.
  for (std::size_t k = min_window_; k <= 256; k *= 4) {
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
    // A flow that shares a channel: its share may also be sinking (another flow taking over).
    const double drift = 0.25 * tolerance_ * mean;
    const bool rising = (rate[0] > rate[1] && rate[1] > rate[2] && rate[0] - rate[2] > drift) ||
                        (reject_any_trend_ && rate[0] < rate[1] && rate[1] < rate[2] &&
                         rate[2] - rate[0] > drift);
    const std::size_t lo = n - 1 - 3 * k;
    const bool recovering =
        !ignore_retransmissions_ && k < 64 && retransmissions_[n - 1] != retransmissions_[lo];
    if (mean > 0 && (*mx - *mn) <= tolerance_ * mean && !rising && !recovering) return over(lo, n - 1);
  }
  return std::nullopt;
}

// The first sample that has seen `episode` episodes: the start of that episode, to one sample.
std::size_t RateTracker::start_of(std::uint64_t episode) const {
  return static_cast<std::size_t>(std::lower_bound(episodes_.begin(), episodes_.end(), episode) -
                                  episodes_.begin());
}

// Delivery rate over the epochs that start with episodes first .. end - 1. Without an expected
// epoch size: bytes over time. With one (mu): each epoch i carried B_i bytes in T_i seconds;
// regress T on B and evaluate the mean epoch time at B = mu (a control variate), rate =
// mu / that time. Epoch sizes are geometric draws (coefficient of variation ~1), and a sample
// of a few dozen of them is easily 15 % off its mean; this removes that part of the error.
double RateTracker::epoch_rate_Bps(std::uint64_t first, std::uint64_t end) const {
  const std::size_t lo = start_of(first);
  const std::size_t hi = start_of(end);
  const double plain = (bytes_[hi] - bytes_[lo]) / (t_s_[hi] - t_s_[lo]);
  const double mu = lossy_ ? lossy_->bytes_per_episode : 0.0;
  const std::uint64_t n = end - first;
  if (!(mu > 0) || n < 8) return plain;
  std::vector<double> b;
  std::vector<double> t;
  b.reserve(n);
  t.reserve(n);
  for (std::uint64_t e = first; e < end; ++e) {
    const std::size_t a = start_of(e);
    const std::size_t z = start_of(e + 1);
    b.push_back(bytes_[z] - bytes_[a]);
    t.push_back(t_s_[z] - t_s_[a]);
  }
  double b_mean = 0;
  double t_mean = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    b_mean += b[i] / double(n);
    t_mean += t[i] / double(n);
  }
  double sbb = 0;
  double sbt = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    sbb += (b[i] - b_mean) * (b[i] - b_mean);
    sbt += (b[i] - b_mean) * (t[i] - t_mean);
  }
  // Only adjust within the sample's range: a mean far from it means mu does not describe this
  // flow's epochs (several losses per episode, timeouts).
  if (!(sbb > 0) || std::abs(mu - b_mean) > 0.5 * b_mean) return plain;
  const double t_at_mu = t_mean + sbt / sbb * (mu - b_mean);
  return t_at_mu > 0 ? mu / t_at_mu : plain;
}

std::optional<RateTracker::Steady> RateTracker::steady_lossy() const {
  const LossyWindows& cfg = *lossy_;
  const std::size_t n = t_s_.size();
  if (n < 2 || cfg.episodes == 0) return std::nullopt;
  const std::uint64_t first = episodes_.front();
  const std::uint64_t last = episodes_.back();
  for (std::size_t m = cfg.episodes; m <= 8 * cfg.episodes; m *= 2) {
    // The oldest window must open with an episode that began after the restart.
    if (last < first + 3 * m + 1) break;
    std::array<std::size_t, 4> edge{};  // edge[0] newest
    for (std::size_t w = 0; w < 4; ++w) edge[w] = start_of(last - w * m);
    std::array<double, 3> rate{};
    bool long_enough = true;
    for (std::size_t w = 0; w < 3; ++w) {
      long_enough = long_enough && edge[w] - edge[w + 1] >= cfg.min_samples;
      rate[w] = epoch_rate_Bps(last - (w + 1) * m, last - w * m);
    }
    if (!long_enough) continue;
    const auto [mn, mx] = std::minmax_element(rate.begin(), rate.end());
    const double mean = (rate[0] + rate[1] + rate[2]) / 3;
    // A trend either way (Cubic's mean window still sinking from its slow-start peak, or
    // growing back after a burst of losses) is not steady even within the tolerance.
    const double drift = 0.25 * tolerance_ * mean;
    const bool trend = (rate[0] > rate[1] && rate[1] > rate[2] && rate[0] - rate[2] > drift) ||
                       (rate[0] < rate[1] && rate[1] < rate[2] && rate[2] - rate[0] > drift);
    if (mean > 0 && (*mx - *mn) <= tolerance_ * mean && !trend) {
      Steady s = over(edge[3], edge[0]);
      s.rate_Bps = epoch_rate_Bps(last - 3 * m, last);
      return s;
    }
  }
  return std::nullopt;
}

double RateTracker::mean_rate_Bps() const {
  const std::size_t n = t_s_.size();
  if (n < 2 || t_s_[n - 1] <= t_s_[0]) return 0;
  // A lossy flow's mean since the restart includes the slow-start peak and the fast epochs
  // after it: use whole epochs, leaving out the first third of them.
  if (lossy_ && episodes_[n - 1] >= episodes_[0] + 10) {
    const std::uint64_t first = episodes_[0] + 1 + (episodes_[n - 1] - episodes_[0] - 1) / 3;
    return epoch_rate_Bps(first, episodes_[n - 1]);
  }
  return (bytes_[n - 1] - bytes_[0]) / (t_s_[n - 1] - t_s_[0]);
}

}  // namespace moss::net
