#include "validate_command.h"

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "moss/core/error.h"
#include "moss/scenario/loader.h"
#include "moss/step/compression_measure.h"
#include "moss/sweep/point_check.h"

namespace moss::app {

void add_validate_options(CLI::App& sub, ValidateOptions& o) {
  sub.add_option("scenario", o.scenario, "scenario JSON file")->required();
}

namespace {

std::string string_at(const nlohmann::json& doc, const char* pointer) {
  const nlohmann::json::json_pointer at(pointer);
  return doc.is_object() && doc.contains(at) && doc.at(at).is_string() ? doc.at(at).get<std::string>() : "";
}

// The activation file a scenario names, resolved, when the scenario reports no problem about it.
std::optional<std::string> named_activation_file(const nlohmann::json& doc, const std::string& file,
                                                 const std::vector<Problem>& problems) {
  const std::string value = string_at(doc, "/compression/activations");
  if (value.empty() || value.rfind("synthetic:", 0) == 0) return std::nullopt;
  for (const Problem& p : problems)
    if (p.pointer == "/compression/activations" || p.pointer.rfind("/compression/datasets", 0) == 0) return std::nullopt;
  return scenario::resolve_scenario_path(file, value);
}

// Whether the sweep sets `dotted` or an object above it.
bool swept(const nlohmann::json& doc, const std::string& dotted) {
  if (!doc.is_object() || !doc.contains("sweep") || !doc["sweep"].is_object()) return false;
  const auto covers = [&](const std::string& field) { return dotted == field || dotted.rfind(field + ".", 0) == 0; };
  for (const auto& [key, value] : doc["sweep"].items()) {
    if (key != "zip" && covers(key)) return true;
    if (key != "zip") continue;
    for (const auto& group : value.is_array() ? value : nlohmann::json::array({value}))
      if (group.is_object())
        for (const auto& [field, values] : group.items())
          if (covers(field)) return true;
  }
  return false;
}

// The problems of the base's activation file on its own, when every point uses that file (no swept
// activations or datasets) and measures it: listed beside the others so that one validation shows
// every problem (check_activations needs a valid scenario).
std::vector<Problem> base_file_problems(const nlohmann::json& doc, const std::string& file, const std::vector<Problem>& problems) {
  const nlohmann::json::json_pointer measure("/simulation/measure_compression");
  if (doc.is_object() && doc.contains(measure) && doc.at(measure) == false) return {};
  for (const char* field : {"compression.activations", "compression.datasets.k", "compression.datasets.v"})
    if (swept(doc, field)) return {};
  const std::optional<std::string> path = named_activation_file(doc, file, problems);
  if (!path) return {};
  return step::activation_file_problems(*path, file, string_at(doc, "/compression/datasets/k"), string_at(doc, "/compression/datasets/v"));
}

// A scenario with a sweep is valid when every point is (moss sweep runs the points, never the base):
// a problem of the base that every point overrides is none (sweep::reported_problems).
std::vector<Problem> sweep_problems(const nlohmann::json& doc, const std::vector<Problem>& base, const std::string& file,
                                    std::ostream& err) {
  for (const Problem& p : base)
    if (p.pointer == "/sweep" || p.pointer.rfind("/sweep/", 0) == 0) return base;  // no plan to check
  sweep::SweepPlan plan;
  try {
    plan = sweep::SweepPlan::from_json(doc["sweep"], file);
  } catch (const InputError& e) {
    std::vector<Problem> problems = base;
    for (const Problem& p : e.problems()) problems.push_back(p);
    return problems;
  }
  const sweep::PointCheck check = sweep::check_sweep_points(doc, plan, file);
  if (!check.every_point)
    err << file << ": note: the sweep's " << plan.size() << " points were checked value by value (" << check.points_checked
        << " points: each value of each field with the others at their first); a combination of valid values can "
           "still be invalid, and the sweep records such points as invalid\n";
  std::vector<Problem> problems = sweep::reported_problems(check);
  if (problems.empty()) return problems;
  // Points invalid for other reasons were not run past their scenario: the file's own problems too,
  // unless a point already reported them.
  for (Problem& p : base_file_problems(doc, file, problems)) {
    bool known = false;
    for (const Problem& own : check.own) known = known || (own.pointer == p.pointer && own.message == p.message);
    if (!known) problems.push_back(std::move(p));
  }
  return problems;
}

}  // namespace

int run_validate(const ValidateOptions& o, std::ostream& out, std::ostream& err) {
  const nlohmann::json doc = scenario::read_json_file(o.scenario);
  std::vector<Problem> problems = scenario::validate_scenario(doc, o.scenario);
  if (doc.is_object() && doc.contains("sweep")) {
    problems = sweep_problems(doc, problems, o.scenario, err);
  } else if (problems.empty()) {
    // The activation file as the run will load it: what validates must run.
    try {
      step::check_activations(scenario::parse_scenario(doc, o.scenario));
    } catch (const InputError& e) {
      problems = e.problems();
    }
  } else {
    for (Problem& p : base_file_problems(doc, o.scenario, problems)) problems.push_back(std::move(p));
  }
  if (problems.empty()) {
    out << o.scenario << ": valid\n";
    return 0;
  }
  for (const Problem& p : problems) err << p.to_string() << '\n';
  err << o.scenario << ": " << problems.size() << (problems.size() == 1 ? " problem\n" : " problems\n");
  return 2;
}

}  // namespace moss::app
