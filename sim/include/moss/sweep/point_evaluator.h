#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moss/scenario/scenario.h"
#include "moss/step/evaluate.h"
#include "moss/sweep/point_record.h"
#include "moss/sweep/sweep_plan.h"

namespace moss::sweep {

/// Turns a sweep point into a record: the point's scenario document is validated (an invalid one
/// throws moss::InputError, which the runner records as "invalid") and evaluated.
/// Thread-safe: each call works on its own copy of the document.
class PointEvaluator {
 public:
  /// `base`: the scenario document with its sweep block; `file`: where it came from (relative
  /// calibration paths resolve against it); `backend`: --backend override; `measurement_cache`: the
  /// on-disk cache of compression measurements (moss/step/measurement_cache.h), none by default.
  PointEvaluator(nlohmann::json base, std::string file, std::optional<std::string> backend,
                 std::optional<std::filesystem::path> measurement_cache = std::nullopt);

  [[nodiscard]] PointRecord operator()(std::int64_t index, const std::vector<Assignment>& assignments) const;

  /// Points of this evaluator and its copies whose compression figures came from the on-disk cache
  /// (hits), were measured and stored (stored), or measured and could not be stored (unstored, with
  /// the first reason); points that measured nothing count in none.
  struct CacheCounts {
    std::uint64_t hits = 0;
    std::uint64_t stored = 0;
    std::uint64_t unstored = 0;
    std::uint64_t shared = 0;  ///< points that took another point's measurement (CacheUse::kShared)
    std::string unstored_reason;
  };
  [[nodiscard]] CacheCounts cache_counts() const;

 private:
  struct Counters {
    std::mutex mutex;
    CacheCounts counts;
  };
  nlohmann::json base_;
  std::string file_;
  std::optional<std::string> backend_;
  std::optional<std::filesystem::path> measurement_cache_;
  std::shared_ptr<Counters> counters_ = std::make_shared<Counters>();
};

/// The record of one evaluated scenario: metrics (tokens/s, times, bytes, eta, cost, design
/// fields), labels (method, design, eta sources), summary, loss curve and the document itself.
[[nodiscard]] PointRecord make_record(const scenario::Scenario& s, const step::RunResult& r, const nlohmann::json& doc);

/// The part of make_record that needs only the result (no design fields).
[[nodiscard]] PointRecord make_result_record(const step::RunResult& r, const nlohmann::json& doc);

/// A short name of the compression design: "none", "mos k40/v100", "topk 10%", "quant int4".
[[nodiscard]] std::string design_label(const scenario::CompressionSpec& c);

}  // namespace moss::sweep
