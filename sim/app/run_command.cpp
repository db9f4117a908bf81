#include "run_command.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "moss/core/error.h"
#include "moss/core/file_io.h"
#include "moss/scenario/loader.h"
#include "moss/scenario/units.h"
#include "moss/step/evaluate.h"
#include "moss/sweep/run_output.h"
#include "output.h"

namespace moss::app {

void add_run_options(CLI::App& sub, RunOptions& o) {
  sub.add_option("scenario", o.scenario, "scenario JSON file")->required();
  sub.add_option("--out", o.out, "output directory (default: results/<scenario name>)")->check(non_empty("a directory"));
  sub.add_option("--backend", o.backend, "network backend: analytic | ns3 (overrides the scenario)");
  sub.add_flag("--no-trace", o.no_trace, "do not write the timeline trace");
  sub.add_flag("--json", o.json, "print summary.json instead of the table");
  sub.add_flag("--no-measure", o.no_measure, "count compressed bytes by formula instead of running the kernels");
  add_cache_flags(sub, o.cache, true);
}

namespace {

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

void print_table(const step::RunResult& r, const std::string& dir, bool trace, std::ostream& out) {
  using scenario::format_bytes;
  using scenario::format_duration;
  const auto row = [&](const std::string& k, const std::string& v) {
    out << "  " << k << std::string(k.size() < 28 ? 28 - k.size() : 1, ' ') << v << '\n';
  };
  out << "scenario " << r.scenario << " (" << r.backend << " network)\n";
  row("tokens/s", fixed(r.tokens_per_second, 0));
  row("step time", format_duration(r.step_time_s));
  row("MFU", fixed(100 * r.mfu, 1) + " %");
  row("exposed communication", format_duration(r.exposed_comm_s) + " (" +
                                   fixed(100 * r.exposed_comm_s / r.step_time_s, 1) + " % of the step)");
  row("bytes sent per GPU per step", format_bytes(r.comm_bytes_per_step_per_device));
  std::string comp = r.compression.method;
  if (r.compression.method != "none") {
    comp += " (ratio " + fixed(r.compression.ratio, 4);
    if (r.compression.relative_error) comp += ", error " + fixed(*r.compression.relative_error, 4);
    comp += "; " + r.compression.source + ")";
  }
  row("compression", comp);
  if (r.compression.method != "none") row("encode/decode times", r.compression.timing_source);
  const step::CacheUse cache = r.compression.cache;
  if (cache == step::CacheUse::kHit) row("measurement cache", "hit: " + r.compression.cache_note + " (--no-cache measures again)");
  if (cache == step::CacheUse::kMiss) row("measurement cache", "miss: measured now, " + r.compression.cache_note);
  row("memory per GPU", format_bytes(r.memory.total_bytes) + " of " + format_bytes(r.gpu_memory_bytes));
  if (r.vs_analytic) {
    row("network (packet level)", std::to_string(r.network.phases_simulated) + " phases simulated, " +
                                      std::to_string(r.network.phases_reused) + " reused, " +
                                      std::to_string(r.network.retransmissions) + " retransmissions");
    // The simulator's own speed (wall clock: printed, never written to summary.json, which must not
    // change from run to run).
    const net::BackendStats& n = r.network;
    const double wall = std::max(n.wall_s, 1e-9);
    row("packet simulation speed",
        std::to_string(n.events) + " events in " + fixed(n.wall_s, 2) + " s wall (" +
            fixed(static_cast<double>(n.events) / wall / 1e3, 0) + " k events/s); the simulated phases moved " +
            format_bytes(n.packet_payload_bytes) + " packet by packet (" +
            format_bytes(n.packet_payload_bytes / wall) + " per wall second) + " +
            format_bytes(n.extrapolated_payload_bytes) + " extrapolated");
    row("flow time vs analytic", "mean x" + fixed(r.vs_analytic->mean_ratio, 3) + ", worst x" +
                                     fixed(r.vs_analytic->worst_ratio, 3));
  }
  if (!r.links.empty()) {
    row("busiest link", r.links.front().from + " -> " + r.links.front().to + " " +
                            fixed(100 * r.links.front().utilisation, 1) + " % busy");
  }
  row("time to target", std::isfinite(r.convergence.time_to_target_s) ? format_duration(r.convergence.time_to_target_s) : "unreachable");
  row("outputs", dir + (trace ? "/{summary.json,trace.json,results.h5}" : "/{summary.json,results.h5}"));
}

/// One file of a run's output and its content.
struct Output {
  std::string path;
  std::string content;
};

// The outputs must not replace what the run reads or another command's results: the scenario file
// itself (unless it is the run's own scenario.json, unchanged), nor the results.h5 of a sweep.
void check_outputs(const std::string& scenario_file, const std::string& dir, std::vector<Output>& outputs) {
  std::error_code ec;
  if (std::filesystem::exists(dir + "/sweep.json", ec))
    throw InputError(dir, "", "holds a sweep's results (sweep.json): moss run would replace its results.h5; give another --out");
  for (auto it = outputs.begin(); it != outputs.end();) {
    if (!std::filesystem::equivalent(scenario_file, it->path, ec)) {
      ++it;
      continue;
    }
    std::ifstream in(scenario_file, std::ios::binary);  // read once already: a regular file of at most 64 MiB
    const std::string current{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (it->path == dir + "/scenario.json" && current == it->content) {
      it = outputs.erase(it);  // re-running a run's own scenario.json: it stays as it is
      continue;
    }
    throw InputError(scenario_file, "", "is the run's output " + it->path + ", which moss run would replace: give another --out");
  }
}

// The scenario as run, the files it names (activations, calibration files) as the absolute paths
// the run read: its copy among the outputs runs again from there, and says which files these were.
nlohmann::json as_run(nlohmann::json doc, const scenario::Scenario& s) {
  const auto absolute = [](const std::string& path) {
    std::error_code ec;
    const std::filesystem::path a = std::filesystem::absolute(path, ec);
    return ec ? path : a.lexically_normal().string();
  };
  const auto replace = [&](const char* pointer, const std::string& resolved) {
    const nlohmann::json::json_pointer at(pointer);
    if (doc.contains(at) && doc[at].is_string()) doc[at] = absolute(resolved);
  };
  if (s.compression.activations.rfind("synthetic:", 0) != 0) replace("/compression/activations", s.compression.activations);
  if (!s.convergence.compression.file.empty()) replace("/convergence/efficiency/compression/file", s.convergence.compression.file);
  if (!s.convergence.weight_sync.file.empty()) replace("/convergence/efficiency/weight_sync/file", s.convergence.weight_sync.file);
  return doc;
}

// Every output is written in full beside its name before any replaces the previous run's, and
// summary.json goes last: a run that fails on the way (a full disk, a file size limit) leaves the
// earlier results whole. The earlier summary is removed just before the renames, so that no summary
// stands beside a mix of old and new files if one of them fails; so are the `stale` outputs of the
// earlier run that this one does not write (its trace under --no-trace).
void install_outputs(const std::vector<Output>& outputs, const std::vector<std::string>& stale) {
  std::vector<std::string> staged;
  std::error_code ignored;  // removing a temporary must not replace the error being reported
  try {
    for (const Output& f : outputs) staged.push_back(stage_file(f.path, f.content, Durability::kFile));
  } catch (...) {
    for (const std::string& t : staged) std::filesystem::remove(t, ignored);
    throw;
  }
  std::filesystem::remove(outputs.back().path, ignored);
  for (const std::string& path : stale) std::filesystem::remove(path, ignored);
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    try {
      install_file(staged[i], outputs[i].path, i + 1 == outputs.size() ? Durability::kFileAndDirectory : Durability::kFile);
    } catch (...) {
      for (std::size_t j = i + 1; j < staged.size(); ++j) std::filesystem::remove(staged[j], ignored);
      throw;
    }
  }
}

}  // namespace

int run_run(const RunOptions& o, std::ostream& out, std::ostream& err) {
  const nlohmann::json doc = scenario::read_json_file(o.scenario);
  if (doc.is_object() && doc.contains("sweep"))
    err << "moss run: note: " << o.scenario << " has a sweep block; moss run runs the base values only (moss sweep "
        << o.scenario << " runs its points)\n";
  const scenario::Scenario s = scenario::parse_scenario(doc, o.scenario);
  const nlohmann::json run_doc = as_run(doc, s);
  step::EvaluateOptions eo;
  eo.trace = !o.no_trace;
  eo.measure_compression = !o.no_measure;
  eo.measurement_cache = cache_dir_of(o.cache);
  if (!o.backend.empty()) eo.backend = o.backend;
  const step::RunResult r = step::evaluate(s, eo);
  if (r.compression.cache == step::CacheUse::kUnstored) err << "moss run: note: the compression measurement was not cached: " << r.compression.cache_note << '\n';
  const std::string dir = o.out.empty() ? "results/" + safe_name(s.name) : o.out;
  nlohmann::json summary = r.to_summary_json();
  summary["scenario_file"] = o.scenario;
  std::vector<Output> outputs;
  if (eo.trace) outputs.push_back({dir + "/trace.json", r.trace.dump() + "\n"});
  outputs.push_back({dir + "/scenario.json", run_doc.dump(2) + "\n"});
  outputs.push_back({dir + "/results.h5", sweep::run_h5_image(s, r, run_doc)});
  outputs.push_back({dir + "/summary.json", summary.dump(2) + "\n"});  // last: the result itself
  check_outputs(o.scenario, dir, outputs);
  ensure_directory(dir);
  std::vector<std::string> stale;
  if (!eo.trace) stale.push_back(dir + "/trace.json");
  install_outputs(outputs, stale);
  if (o.json) {
    out << summary.dump(2) << '\n';
  } else {
    print_table(r, dir, eo.trace, out);
  }
  return 0;
}

}  // namespace moss::app
