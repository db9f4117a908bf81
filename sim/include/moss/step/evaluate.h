#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "moss/converge/scaling_law.h"
#include "moss/model/memory.h"
#include "moss/net/backend.h"
#include "moss/net/comparing_backend.h"
#include "moss/scenario/scenario.h"

namespace moss::step {

/// What the measurement cache did for one scenario's compression figures.
enum class CacheUse {
  kOff,       ///< no cache, or nothing measured
  kHit,       ///< the figures were read from it
  kMiss,      ///< measured, and stored in it
  kUnstored,  ///< measured; storing them failed (CompressionOutcome::cache_note says why)
  kShared,    ///< taken from this process's measurement for another scenario (a sweep's point), and stored
};

/// How compression came out for this scenario.
struct CompressionOutcome {
  std::string method = "none";
  double ratio = 1;                        ///< sent / raw bytes of the K/V exchange
  std::optional<double> relative_error;    ///< ||X - X^||_F / ||X||_F (K and V), when measured
  std::optional<double> relative_error_k;
  std::optional<double> relative_error_v;
  std::optional<std::int64_t> warmup_tokens;  ///< tokens the measured bases were fitted on (pca, mos, mos-k)
  double sent_bytes_per_token = 0;         ///< K + V, per layer, per token
  double raw_bytes_per_token = 0;          ///< bf16 K + V, per layer, per token
  std::string source = "formula";          ///< "formula" (byte accounting) or "kernels" (measured)
  std::string timing_source = "roofline";  ///< how encode/decode were timed
  /// What the on-disk measurement cache (measurement_cache.h) did. Not in summary.json, which must
  /// not change from run to run.
  CacheUse cache = CacheUse::kOff;
  std::string cache_note;  ///< hit: when measured and the entry; miss: the entry; unstored: why
};

/// Traffic of one directed link over an average step.
struct LinkLoad {
  std::string from;
  std::string to;
  double bandwidth_bps = 0;
  double wire_bytes_per_step = 0;  ///< CP exchange + amortised weight sync, headers included
  double utilisation = 0;          ///< wire bytes / (bandwidth x step time)
};

/// Everything one scenario evaluation produces.
struct RunResult {
  std::string scenario;
  std::string backend;
  double params = 0;
  double tokens_per_step = 0;
  double step_time_s = 0;              ///< average over a weight-sync period
  double step_time_no_sync_s = 0;      ///< a step without weight synchronisation
  double compute_only_step_s = 0;      ///< the same step with free communication
  double tokens_per_second = 0;
  double mfu = 0;
  double model_flops_per_step = 0;
  double comm_bytes_per_step_per_device = 0;  ///< CP + amortised weight sync, mean over devices
  double cp_bytes_per_step_per_device = 0;
  double sync_bytes_per_step_per_device = 0;  ///< amortised over sync_every_steps
  double exposed_comm_s = 0;                  ///< step_time_s - compute_only_step_s
  double weight_sync_time_s = 0;              ///< one all-reduce
  double cp_comm_time_s = 0;                  ///< network time of the CP exchange per step
  model::MemoryBreakdown memory;
  double gpu_memory_bytes = 0;
  CompressionOutcome compression;
  converge::Prediction convergence;
  net::BackendStats network;
  std::vector<LinkLoad> links;                      ///< links that carry traffic, busiest first
  std::optional<net::FlowComparison> vs_analytic;   ///< packet backends: flow times vs the analytic model
  nlohmann::json trace;                       ///< Chrome trace events (when asked for)

  /// summary.json: every key of CONTRACT.md plus details.
  [[nodiscard]] nlohmann::json to_summary_json() const;
};

struct EvaluateOptions {
  bool trace = false;                  ///< build the Chrome trace of one step
  std::optional<std::string> backend;  ///< overrides /simulation/backend
  bool measure_compression = true;     ///< run the kernels (false: byte formula only)
  /// On-disk cache of kernel measurements (measurement_cache.h); none by default.
  std::optional<std::filesystem::path> measurement_cache;
};

/// Simulates one optimizer step of the scenario and predicts the time to its target.
/// The scenario must come from parse_scenario (validated). Thread-safe for distinct scenarios.
[[nodiscard]] RunResult evaluate(const scenario::Scenario& scenario, const EvaluateOptions& options = {});

}  // namespace moss::step
