#pragma once

#include <optional>
#include <string>
#include <vector>

#include "moss/converge/cost.h"
#include "moss/core/error.h"
#include "moss/scenario/scenario.h"

namespace moss::converge {

/// L(N, D) = E + A / N^alpha + B / D^beta (N parameters, D tokens).
[[nodiscard]] double loss(const scenario::LossLaw& law, double params, double tokens);

/// Tokens D with L(N, D) = target; +infinity when the target is at or below the N-limited floor.
[[nodiscard]] double tokens_for_loss(const scenario::LossLaw& law, double params, double target);

/// One point of a predicted training curve.
struct CurvePoint {
  double tokens = 0;       ///< tokens processed
  double wall_s = 0;       ///< wall-clock since the start
  double loss = 0;         ///< predicted loss
};

/// One factor of the statistical efficiency and where it came from.
struct EtaFactor {
  double value = 1;
  std::string source = "assumed";  ///< assumed | measured | not-applicable
  bool defaulted = true;           ///< the scenario did not say (assumed 1.0)
  std::string file;                ///< calibration file for `measured`
  std::string detail;              ///< measured: run label and loss range compared
  /// "assumed 0.95", "assumed 1 (default)", "measured 0.97 from FILE (run ..., loss 3.1..3.9)".
  [[nodiscard]] std::string describe() const;
};

/// Traffic the cost model needs beyond the step rate.
struct Traffic {
  std::optional<double> inter_node_bytes_per_step;  ///< all devices together, one step
};

/// The answer to "how long until the model reaches the target?".
struct Prediction {
  double eta = 1;                   ///< statistical efficiency eta_compression x eta_weight_sync
  std::string eta_source;           ///< both factors described, for reports
  EtaFactor eta_compression;        ///< 1 (not-applicable) when the method is "none"
  EtaFactor eta_weight_sync;        ///< 1 (not-applicable) when weights sync every step
  double target_tokens = 0;         ///< tokens to process (token target, or D_target / eta)
  double target_loss = 0;           ///< loss reached at the target
  double time_to_target_s = 0;     ///< whole steps x step time
  double steps = 0;                 ///< whole optimizer steps to the target (at least one)
  scenario::LossLaw law;            ///< the loss law the prediction used
  double loss_floor = 0;            ///< E + A / N^alpha: the loss no token count goes below
  double gpu_hours = 0;
  bool reachable = true;            ///< false when the loss target is below what N can reach
  CostBreakdown cost;               ///< from the scenario's /cost prices
  std::vector<CurvePoint> curve;    ///< loss vs wall-clock, log-spaced in tokens
};

/// The two efficiency factors of a scenario. A `measured` factor reads its calibration file;
/// throws moss::InputError when the file is missing, malformed or has no matching run.
[[nodiscard]] EtaFactor compression_efficiency(const scenario::Scenario& s);
[[nodiscard]] EtaFactor weight_sync_efficiency(const scenario::Scenario& s);

/// The problems the two factors meet (a calibration file that is missing, malformed, or has no
/// run matching the scenario), each at /convergence/efficiency/<factor>/file of the scenario with
/// the calibration file's own path and pointer in the message; empty when both factors resolve.
[[nodiscard]] std::vector<Problem> efficiency_problems(const scenario::Scenario& s);

/// Wall-clock to the scenario's target at `tokens_per_second` on `gpus` GPUs.
/// Token target: time = tokens / rate, loss = L(N, eta x tokens).
/// Loss target: D_target from the law, time = D_target / eta / rate.
/// Cost per the scenario's prices; the transfer part needs `traffic`.
[[nodiscard]] Prediction predict(const scenario::Scenario& s, double params, double tokens_per_second,
                                 double tokens_per_step, int gpus, const Traffic& traffic);

/// As above without traffic (no transfer cost).
[[nodiscard]] Prediction predict(const scenario::Scenario& s, double params, double tokens_per_second,
                                 double tokens_per_step, int gpus);

}  // namespace moss::converge
