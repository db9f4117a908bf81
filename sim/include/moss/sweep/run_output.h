#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "moss/scenario/scenario.h"
#include "moss/step/evaluate.h"

namespace moss::sweep {

/// Writes the HDF5 results of one `moss run` (one row, the same layout as a sweep) to `path`,
/// through a temporary file renamed into place. Throws moss::RuntimeFailure on I/O errors.
void write_run_h5(const std::string& path, const scenario::Scenario& scenario, const step::RunResult& result,
                  const nlohmann::json& scenario_doc);

/// The bytes the first write_run_h5 writes, for a caller that installs several files together.
std::string run_h5_image(const scenario::Scenario& scenario, const step::RunResult& result, const nlohmann::json& scenario_doc);

/// As above; the scenario is parsed again from `scenario_doc` for the design columns (left out
/// when that fails, e.g. for paths relative to the scenario file). Prefer the overload above.
void write_run_h5(const std::string& path, const step::RunResult& result, const nlohmann::json& scenario_doc);

}  // namespace moss::sweep
