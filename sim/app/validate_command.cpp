#include "validate_command.h"

#include <ostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "moss/core/error.h"
#include "moss/scenario/loader.h"
#include "moss/sweep/point_check.h"

namespace moss::app {

void add_validate_options(CLI::App& sub, ValidateOptions& o) {
  sub.add_option("scenario", o.scenario, "scenario JSON file")->required();
}

namespace {

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
  return sweep::reported_problems(check);
}

}  // namespace

int run_validate(const ValidateOptions& o, std::ostream& out, std::ostream& err) {
  const nlohmann::json doc = scenario::read_json_file(o.scenario);
  // A sweep is judged by its points, a plain scenario as `moss run` meets it.
  const std::vector<Problem> problems = doc.is_object() && doc.contains("sweep")
                                            ? sweep_problems(doc, scenario::validate_scenario(doc, o.scenario), o.scenario, err)
                                            : sweep::scenario_problems(doc, o.scenario);
  if (problems.empty()) {
    // The points are what `moss sweep` runs; `moss run` runs the base values, which a sweep may leave
    // invalid on purpose (a field every point sets). Said, so that run's refusal is no surprise.
    if (doc.is_object() && doc.contains("sweep")) {
      nlohmann::json base = doc;
      base.erase("sweep");
      const std::vector<Problem> own = sweep::scenario_problems(base, o.scenario);
      if (!own.empty()) {
        err << o.scenario << ": note: without its sweep block the scenario is not valid on its own (moss run, which runs the "
            << "base values, would refuse it; moss sweep runs the points):\n";
        for (const Problem& p : own) err << "  " << p.to_string() << '\n';
      }
    }
    out << o.scenario << ": valid\n";
    return 0;
  }
  for (const Problem& p : problems) err << p.to_string() << '\n';
  err << o.scenario << ": " << problems.size() << (problems.size() == 1 ? " problem\n" : " problems\n");
  return 2;
}

}  // namespace moss::app
