#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moss/core/error.h"
#include "moss/scenario/scenario.h"

namespace moss::scenario {

/// Reads a JSON file. Throws moss::InputError (file, line/column of a syntax error) when the file
/// is missing, unreadable or not JSON.
[[nodiscard]] nlohmann::json read_json_file(const std::string& path);

/// read_json_file's first half: the bytes of a JSON file, after the checks that it exists, is a
/// regular file (no FIFO or device is opened) of at most 64 MiB, and can be read. Throws InputError.
[[nodiscard]] std::string read_json_text(const std::string& path);

/// read_json_file's second half: `text` parsed, `path` naming it in messages (syntax errors, repeated
/// keys). Throws InputError.
[[nodiscard]] nlohmann::json parse_json_text(const std::string& text, const std::string& path);

/// Checks a scenario document and returns every problem found (empty when valid). `file` names
/// the source in messages. Includes semantic checks (GPU count, divisibility, memory fit,
/// connectivity). The "sweep" block is checked for shape only.
[[nodiscard]] std::vector<Problem> validate_scenario(const nlohmann::json& doc, const std::string& file);

/// Builds a scenario from a document; throws moss::InputError listing every problem.
[[nodiscard]] Scenario parse_scenario(const nlohmann::json& doc, const std::string& file);

/// A file named in the scenario `file` (an activation or calibration file) as moss opens it:
/// `value` when absolute, else relative to the scenario's directory.
[[nodiscard]] std::string resolve_scenario_path(const std::string& file, const std::string& value);

/// read_json_file + parse_scenario.
[[nodiscard]] Scenario load_scenario(const std::string& path);

/// Sets a dotted path ("cluster.network.bandwidth") in a scenario document, creating objects on
/// the way. Throws moss::InputError when the path crosses a non-object.
void set_dotted(nlohmann::json& doc, const std::string& dotted_path, const nlohmann::json& value);

/// Directory of the shipped data files (hardware catalog, model presets).
[[nodiscard]] std::string data_dir();

}  // namespace moss::scenario
