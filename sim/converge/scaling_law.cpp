#include "moss/converge/scaling_law.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "moss/converge/calibration.h"
#include "moss/core/error.h"

namespace moss::converge {

double loss(const scenario::LossLaw& law, double params, double tokens) {
  MOSS_CHECK(params > 0 && tokens > 0, "loss law needs positive N and D");
  return law.e + law.a / std::pow(params, law.alpha) + law.b / std::pow(tokens, law.beta);
}

double tokens_for_loss(const scenario::LossLaw& law, double params, double target) {
  const double floor = law.e + law.a / std::pow(params, law.alpha);
  if (target <= floor) return std::numeric_limits<double>::infinity();
  return std::pow(law.b / (target - floor), 1.0 / law.beta);
}

std::string EtaFactor::describe() const {
  std::ostringstream os;
  os << source << ' ' << value;
  if (source == "assumed" && defaulted) os << " (default)";
  if (source == "measured") os << " from " << file << " (" << detail << ")";
  return os.str();
}

namespace {

// The calibration file's problems as the scenario's: under the field that names the file, so that a
// sweep can tell which point and field led to it.
InputError calibration_error(const scenario::Scenario& s, const char* which, const InputError& e) {
  std::vector<Problem> problems;
  for (const Problem& p : e.problems())
    problems.push_back({s.source_file, std::string("/convergence/efficiency/") + which + "/file", "calibration " + p.to_string()});
  return InputError(std::move(problems));
}

EtaFactor factor_from(const scenario::Scenario& s, const scenario::EfficiencySource& src, const char* which,
                      const nlohmann::json& key) {
  EtaFactor f;
  f.source = src.source;
  f.defaulted = src.defaulted;
  if (src.source == "measured") {
    EtaEstimate est;
    try {
      est = measured_efficiency(src.file, key);
    } catch (const InputError& e) {
      throw calibration_error(s, which, e);
    }
    f.value = est.eta;
    f.file = src.file;
    std::ostringstream os;
    os << "run " << est.run_label << ", loss " << est.loss_lo << ".." << est.loss_hi;
    f.detail = os.str();
  } else {
    f.value = src.value;
  }
  return f;
}

EtaFactor not_applicable(const char* why) {
  EtaFactor f;
  f.source = "not-applicable";
  f.defaulted = false;
  f.detail = why;
  return f;
}

}  // namespace

// Uncompressed training and every-step sync are the baselines eta is measured against, so
// their factor is 1 whatever the scenario's efficiency block says (a sweep over methods shares
// one block).
EtaFactor compression_efficiency(const scenario::Scenario& s) {
  if (!s.compression.compressed()) return not_applicable("uncompressed");
  return factor_from(s, s.convergence.compression, "compression", compression_key(s.compression));
}

EtaFactor weight_sync_efficiency(const scenario::Scenario& s) {
  if (s.training.sync_every_steps <= 1) return not_applicable("weights sync every step");
  return factor_from(s, s.convergence.weight_sync, "weight_sync", weight_sync_key(s.training));
}

std::vector<Problem> efficiency_problems(const scenario::Scenario& s) {
  std::vector<Problem> problems;
  for (EtaFactor (*factor)(const scenario::Scenario&) : {&compression_efficiency, &weight_sync_efficiency}) {
    try {
      (void)factor(s);
    } catch (const InputError& e) {
      problems.insert(problems.end(), e.problems().begin(), e.problems().end());
    }
  }
  return problems;
}

Prediction predict(const scenario::Scenario& s, double params, double tokens_per_second,
                   double tokens_per_step, int gpus, const Traffic& traffic) {
  MOSS_CHECK(tokens_per_second > 0 && tokens_per_step > 0, "rates must be positive");
  const auto& law = s.convergence.law;
  Prediction p;
  p.eta_compression = compression_efficiency(s);
  p.eta_weight_sync = weight_sync_efficiency(s);
  p.eta = p.eta_compression.value * p.eta_weight_sync.value;
  p.eta_source = "compression=" + p.eta_compression.describe() +
                 "; weight_sync=" + p.eta_weight_sync.describe();
  if (s.training.target_loss) {
    p.target_loss = *s.training.target_loss;
    const double effective = tokens_for_loss(law, params, p.target_loss);
    p.reachable = std::isfinite(effective) && p.eta > 0;
    p.target_tokens = p.reachable ? effective / p.eta : std::numeric_limits<double>::infinity();
  } else {
    p.target_tokens = s.training.tokens.value_or(20.0 * params);
    p.target_loss = loss(law, params, p.eta * p.target_tokens);
  }
  // Training moves in whole steps: the target is reached at the end of the step that reaches it
  // (at least one step), so a target of a fraction of a step still costs a whole one.
  const double step_s = tokens_per_step / tokens_per_second;
  const auto whole_steps = [tokens_per_step](double tokens) { return std::max(1.0, std::ceil(tokens / tokens_per_step * (1 - 1e-12))); };
  p.steps = whole_steps(p.target_tokens);
  p.time_to_target_s = p.steps * step_s;
  p.gpu_hours = p.time_to_target_s * gpus / 3600.0;
  p.law = law;
  p.loss_floor = law.e + law.a / std::pow(params, law.alpha);
  if (!p.reachable) return p;

  std::optional<double> bytes;
  if (traffic.inter_node_bytes_per_step) bytes = *traffic.inter_node_bytes_per_step * p.steps;
  p.cost = estimate_cost(s, p.time_to_target_s, gpus, bytes);
  constexpr int kPoints = 64;
  const double first = std::min(p.target_tokens, tokens_per_step);
  for (int i = 0; i < kPoints; ++i) {
    const double frac = static_cast<double>(i) / (kPoints - 1);
    const double d = first * std::pow(p.target_tokens / first, frac);
    p.curve.push_back({d, whole_steps(d) * step_s, loss(law, params, p.eta * d)});
  }
  return p;
}

Prediction predict(const scenario::Scenario& s, double params, double tokens_per_second,
                   double tokens_per_step, int gpus) {
  return predict(s, params, tokens_per_second, tokens_per_step, gpus, Traffic{});
}

}  // namespace moss::converge
