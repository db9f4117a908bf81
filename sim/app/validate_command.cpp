#include "validate_command.h"

#include <ostream>

#include <CLI/CLI.hpp>

#include "moss/core/error.h"
#include "moss/scenario/loader.h"
#include "moss/step/compression_measure.h"

namespace moss::app {

void add_validate_options(CLI::App& sub, ValidateOptions& o) {
  sub.add_option("scenario", o.scenario, "scenario JSON file")->required();
}

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
