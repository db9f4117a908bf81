#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace moss::sweep {

/// The outcome of one sweep point: a row of results.h5 and a line of the journal.
struct PointRecord {
  std::int64_t index = 0;
  std::string status = "ok";  ///< ok | invalid (scenario rejected) | failed (evaluation threw)
  std::string message;        ///< why, when not ok
  nlohmann::json fields = nlohmann::json::object();  ///< swept dotted path -> value at this point
  std::vector<std::pair<std::string, double>> metrics;      ///< numeric outputs (NaN: not known)
  std::vector<std::pair<std::string, std::string>> labels;  ///< text outputs (method, design, ...)
  std::string scenario_json;  ///< the full scenario document of the point
  std::string summary_json;   ///< summary.json of the point ("{}" when it failed)
  std::vector<double> curve_tokens;  ///< predicted loss curve (may be empty)
  std::vector<double> curve_wall_s;
  std::vector<double> curve_loss;

  /// One journal line. NaN metrics become null.
  [[nodiscard]] nlohmann::json to_json() const;
  /// Inverse of to_json (bit-exact for doubles). Throws moss::RuntimeFailure on a malformed record.
  [[nodiscard]] static PointRecord from_json(const nlohmann::json& j);
};

}  // namespace moss::sweep
