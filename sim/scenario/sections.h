#pragma once

#include <nlohmann/json.hpp>

#include "json_reader.h"
#include "moss/scenario/scenario.h"

namespace moss::scenario::detail {

// Each reads one top-level section of a scenario document into `s`, recording problems in `r`.
void read_model(JsonReader& r, const nlohmann::json& doc, Scenario& s);
void read_training(JsonReader& r, const nlohmann::json& doc, Scenario& s);
void read_cluster(JsonReader& r, const nlohmann::json& doc, Scenario& s);
void read_parallelism(JsonReader& r, const nlohmann::json& doc, Scenario& s);
/// `value` (a file named in a scenario) as a path: absolute as given, else under `base_dir`.
std::string resolve_under(const std::string& base_dir, const std::string& value);
void read_compression(JsonReader& r, const nlohmann::json& doc, Scenario& s, const std::string& base_dir);
void read_convergence(JsonReader& r, const nlohmann::json& doc, Scenario& s, const std::string& base_dir);
void read_cost(JsonReader& r, const nlohmann::json& doc, Scenario& s);
void read_simulation(JsonReader& r, const nlohmann::json& doc, Scenario& s);
void read_sweep_shape(JsonReader& r, const nlohmann::json& doc);
/// Checks that need several sections: GPU counts, divisibility, ranks vs widths, memory, routes.
void check_semantics(JsonReader& r, const Scenario& s);

}  // namespace moss::scenario::detail
