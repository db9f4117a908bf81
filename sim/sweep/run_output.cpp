#include "moss/sweep/run_output.h"

#include "moss/scenario/loader.h"
#include "moss/sweep/point_evaluator.h"
#include "moss/sweep/results_h5.h"

namespace moss::sweep {

namespace {

ResultsHeader run_header(const std::string& name) {
  ResultsHeader header;
  header.kind = "run";
  header.moss_version = moss_version();
  header.scenario_name = name;
  header.planned_points = 1;
  return header;
}

void write_one(const std::string& path, const std::string& name, const PointRecord& rec) {
  write_results_h5(path, run_header(name), {rec});
}

}  // namespace

void write_run_h5(const std::string& path, const scenario::Scenario& scenario, const step::RunResult& result,
                  const nlohmann::json& scenario_doc) {
  write_one(path, result.scenario, make_record(scenario, result, scenario_doc));
}

std::string run_h5_image(const scenario::Scenario& scenario, const step::RunResult& result, const nlohmann::json& scenario_doc) {
  return results_h5_image(run_header(result.scenario), {make_record(scenario, result, scenario_doc)});
}

void write_run_h5(const std::string& path, const step::RunResult& result, const nlohmann::json& scenario_doc) {
  PointRecord rec;
  try {
    rec = make_record(scenario::parse_scenario(scenario_doc, ""), result, scenario_doc);
  } catch (const InputError&) {
    rec = make_result_record(result, scenario_doc);
  }
  write_one(path, result.scenario, rec);
}

}  // namespace moss::sweep
