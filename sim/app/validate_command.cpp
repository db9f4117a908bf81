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

// The activation file a scenario names, resolved, when the scenario reports no problem about it.
std::optional<std::string> named_activation_file(const nlohmann::json& doc, const std::string& file,
                                                 const std::vector<Problem>& problems) {
  const nlohmann::json::json_pointer at("/compression/activations");
  if (!doc.is_object() || !doc.contains(at) || !doc.at(at).is_string()) return std::nullopt;
  const std::string value = doc.at(at).get<std::string>();
  if (value.rfind("synthetic:", 0) == 0) return std::nullopt;
  for (const Problem& p : problems)
    if (p.pointer == "/compression/activations") return std::nullopt;
  return scenario::resolve_scenario_path(file, value);
}

}  // namespace

int run_validate(const ValidateOptions& o, std::ostream& out, std::ostream& err) {
  const nlohmann::json doc = scenario::read_json_file(o.scenario);
  std::vector<Problem> problems = scenario::validate_scenario(doc, o.scenario);
  if (problems.empty()) {
    // The activation file as the run will load it: what validates must run.
    try {
      step::check_activations(scenario::parse_scenario(doc, o.scenario));
    } catch (const InputError& e) {
      problems = e.problems();
    }
    // Every point a sweep will run, as `moss sweep` will build it.
    if (problems.empty() && doc.contains("sweep")) {
      const sweep::SweepPlan plan = sweep::SweepPlan::from_json(doc["sweep"], o.scenario);
      sweep::PointCheck check = sweep::check_sweep_points(doc, plan, o.scenario);
      problems = std::move(check.problems);
      if (!check.every_point)
        err << o.scenario << ": note: the sweep's " << plan.size() << " points were checked value by value (" << check.points_checked
            << " points: each value of each field with the others at their first); a combination of valid values can "
               "still be invalid, and the sweep records such points as invalid\n";
    }
  } else if (const std::optional<std::string> file = named_activation_file(doc, o.scenario, problems)) {
    // The file's own problems too, so that one validation lists every problem.
    for (Problem& p : step::activation_file_problems(*file, o.scenario)) problems.push_back(std::move(p));
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
