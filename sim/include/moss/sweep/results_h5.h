#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moss/sweep/point_record.h"

namespace moss::sweep {

/// The file-level attributes of results.h5.
struct ResultsHeader {
  std::string kind = "sweep";          ///< "sweep" or "run"
  std::string moss_version;
  std::string scenario_name;
  std::string scenario_file;
  nlohmann::json sweep = nlohmann::json::object();  ///< the sweep block ({} for a run)
  std::vector<std::string> fields;     ///< swept dotted paths, in axis order
  std::int64_t planned_points = 0;
};

/// Writes results.h5 (layout in sim/sweep/README.md): one row per record, in the given order.
/// Deterministic: the same header and records give a byte-identical file (no timestamps). Written
/// to a temporary file, fsynced and renamed into place. Throws moss::RuntimeFailure on errors.
void write_results_h5(const std::string& path, const ResultsHeader& header, const std::vector<PointRecord>& records);
/// The bytes write_results_h5 writes (built in memory), for a caller that installs several files.
std::string results_h5_image(const ResultsHeader& header, const std::vector<PointRecord>& records);

/// The version string of this build ("0.1.0").
[[nodiscard]] std::string moss_version();

}  // namespace moss::sweep
