// Scenarios per second: the shipped 800M scenarios evaluated end to end with the analytic
// backend (parse once, evaluate per iteration; and parse + evaluate per iteration).
#include <benchmark/benchmark.h>

#include "moss/scenario/loader.h"
#include "moss/step/evaluate.h"

namespace {

std::string scenario_path(const char* name) { return std::string(MOSS_SOURCE_DIR) + "/scenarios/" + name + ".json"; }

void evaluate_only(benchmark::State& state, const char* name) {
  const auto s = moss::scenario::load_scenario(scenario_path(name));
  for (auto _ : state) benchmark::DoNotOptimize(moss::step::evaluate(s).step_time_s);
  state.counters["scenarios_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void load_and_evaluate(benchmark::State& state, const char* name) {
  const auto doc = moss::scenario::read_json_file(scenario_path(name));
  for (auto _ : state) {
    const auto s = moss::scenario::parse_scenario(doc, scenario_path(name));  // its relative paths resolve beside it
    benchmark::DoNotOptimize(moss::step::evaluate(s).step_time_s);
  }
  state.counters["scenarios_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK_CAPTURE(evaluate_only, mos_800m_300mbps_mos, "mos-800m-300mbps-mos")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(evaluate_only, mos_800m_100gbps_none, "mos-800m-100gbps-none")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(load_and_evaluate, mos_800m_300mbps_mos, "mos-800m-300mbps-mos")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(evaluate_only, llama3_8b_ring, "llama3-8b-h100-10gbps")->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
