#include "moss/net/comparing_backend.h"

#include <algorithm>

namespace moss::net {

ComparingBackend::ComparingBackend(std::unique_ptr<NetworkBackend> primary, std::unique_ptr<NetworkBackend> reference)
    : primary_(std::move(primary)), reference_(std::move(reference)) {}

PhaseResult ComparingBackend::run_phase(const Phase& flows) {
  PhaseResult result = primary_->run_phase(flows);
  const PhaseResult ref = reference_->run_phase(flows);
  auto& c = comparison_;
  for (std::size_t i = 0; i < flows.size(); ++i) {
    const double got = result.finish_s[i] - flows[i].start_s;
    const double want = ref.finish_s[i] - flows[i].start_s;
    if (flows[i].bytes <= 0 || want <= 0) continue;
    ++c.flows;
    finish_sum_ += got;
    reference_sum_ += want;
    ratio_sum_ += got / want;
    c.worst_finish_s = std::max(c.worst_finish_s, got);
    c.worst_reference_finish_s = std::max(c.worst_reference_finish_s, want);
    c.worst_ratio = std::max(c.worst_ratio, got / want);
  }
  if (c.flows > 0) {
    const double n = static_cast<double>(c.flows);
    c.mean_finish_s = finish_sum_ / n;
    c.mean_reference_finish_s = reference_sum_ / n;
    c.mean_ratio = ratio_sum_ / n;
  }
  return result;
}

}  // namespace moss::net
