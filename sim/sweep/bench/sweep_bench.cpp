// moss_sweep_bench: 1,000 points (20 bandwidths x 50 method/rank designs), analytic backend,
// through the real sweep path: plan, thread pool, durable journal, HDF5 + summary.jsonl. The
// compression figures are the closed-form bytes (simulation.measure_compression false).
// Usage: moss_sweep_bench [JOBS] [--no-fsync]   (JOBS default: all cores). Goal: < 10 s on 2 cores.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "moss/scenario/loader.h"
#include "moss/sweep/point_evaluator.h"
#include "moss/sweep/runner.h"

namespace {

nlohmann::json designs() {
  nlohmann::json list = nlohmann::json::array({{{"method", "none"}}});
  for (int i = 1; i <= 20; ++i) list.push_back({{"method", "mos"}, {"rank_k", 8 * i}, {"rank_v", 16 * i}});
  for (int i = 1; i <= 19; ++i) list.push_back({{"method", "pca"}, {"rank_k", 8 * i}, {"rank_v", 16 * i}});
  for (double f : {0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5}) list.push_back({{"method", "topk"}, {"fraction", f}});
  for (int b : {4, 8}) list.push_back({{"method", "quant"}, {"bits", b}});
  return list;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace moss;
  int jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  bool sync = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-fsync") == 0) sync = false;
    else jobs = std::max(1, std::atoi(argv[i]));
  }
  try {
    const std::string file = std::string(MOSS_SOURCE_DIR) + "/scenarios/sweep-800m-bandwidth.json";
    nlohmann::json doc = scenario::read_json_file(file);
    doc["sweep"] = {{"cluster.network.bandwidth", "300Mbps..100Gbps x20 log"}, {"compression", designs()}};
    // The sweep engine's speed: each design's kernels measure once (about a second per fitted design
    // on 2 cores, then from the on-disk cache), which would make this a kernel benchmark.
    doc["simulation"]["measure_compression"] = false;
    sweep::SweepPlan plan = sweep::SweepPlan::from_json(doc["sweep"], file);
    const auto dir = std::filesystem::temp_directory_path() / ("moss-sweep-bench-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    sweep::ResultsHeader header;
    header.moss_version = sweep::moss_version();
    header.scenario_name = doc.value("name", "");
    header.sweep = doc["sweep"];
    const std::size_t points = plan.size();
    auto comm = sweep::make_serial_communicator();
    const auto start = std::chrono::steady_clock::now();
    sweep::SweepRunner runner(std::move(plan), header, {}, sweep::RunnerOptions{dir.string(), jobs, false, sync},
                              sweep::PointEvaluator(doc, file, std::nullopt));
    const sweep::SweepOutcome out = runner.run(*comm);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("moss_sweep_bench: %zu points (%zu ok), %d jobs, fsync %s: %.2f s, %.0f points/s, results.h5 %.1f MB\n",
                points, out.ok, jobs, sync ? "on" : "off", s, points / s,
                std::filesystem::file_size(out.results_path) / 1e6);
    std::filesystem::remove_all(dir);
    return s < 10.0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moss_sweep_bench: %s\n", e.what());
    return 1;
  }
}
