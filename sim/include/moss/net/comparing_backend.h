#pragma once

#include <memory>

#include "moss/net/backend.h"

namespace moss::net {

/// How a backend's flow completion times compare with a reference backend's on the same phases.
struct FlowComparison {
  std::uint64_t flows = 0;
  double mean_finish_s = 0;            ///< primary backend, mean over flows
  double worst_finish_s = 0;           ///< primary backend, largest
  double mean_reference_finish_s = 0;  ///< reference backend, mean over the same flows
  double worst_reference_finish_s = 0;
  double mean_ratio = 0;               ///< mean of primary / reference per flow
  double worst_ratio = 0;              ///< largest primary / reference
};

/// Answers with `primary` (e.g. ns-3) and runs `reference` (the analytic model) on every phase too,
/// so reports can say how far apart they are.
class ComparingBackend final : public NetworkBackend {
 public:
  ComparingBackend(std::unique_ptr<NetworkBackend> primary, std::unique_ptr<NetworkBackend> reference);

  [[nodiscard]] std::string name() const override { return primary_->name(); }
  PhaseResult run_phase(const Phase& flows) override;
  [[nodiscard]] const BackendStats& stats() const override { return primary_->stats(); }
  [[nodiscard]] const FlowComparison& comparison() const { return comparison_; }

 private:
  std::unique_ptr<NetworkBackend> primary_;
  std::unique_ptr<NetworkBackend> reference_;
  FlowComparison comparison_;
  double ratio_sum_ = 0;
  double finish_sum_ = 0;
  double reference_sum_ = 0;
};

}  // namespace moss::net
