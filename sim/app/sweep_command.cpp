#include "sweep_command.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <thread>

#include "moss/core/error.h"
#include "moss/core/file_io.h"
#include "moss/scenario/loader.h"
#include "moss/sweep/communicator.h"
#include "moss/sweep/point_check.h"
#include "moss/sweep/point_evaluator.h"
#include "moss/sweep/runner.h"
#include "output.h"

namespace moss::app {

namespace {

// The activation files the sweep's points can name (the base's, and every swept value of
// compression.activations or of a whole compression block), each with its version: a resumed sweep
// whose files changed would mix figures of two versions of the data. Keyed as the scenario writes
// them (a resume from another directory names them alike), the version from the file's size,
// inode and times, not its path or device (which differ between the nodes of an MPI job and after
// an NFS remount); "unreadable" when the file cannot be examined.
nlohmann::json activation_versions(const nlohmann::json& doc, const sweep::SweepPlan& plan, const std::string& file) {
  std::vector<std::string> sources;
  const auto add = [&](const nlohmann::json& v) {
    if (v.is_string() && v.get<std::string>().rfind("synthetic:", 0) != 0 && !v.get<std::string>().empty())
      sources.push_back(v.get<std::string>());
  };
  if (doc.is_object() && doc.contains("compression") && doc["compression"].is_object() && doc["compression"].contains("activations"))
    add(doc["compression"]["activations"]);
  for (const sweep::Axis& axis : plan.axes())
    for (std::size_t f = 0; f < axis.fields.size(); ++f)
      for (const auto& step : axis.values) {
        if (axis.fields[f] == "compression.activations") add(step[f]);
        if (axis.fields[f] == "compression" && step[f].is_object() && step[f].contains("activations")) add(step[f]["activations"]);
      }
  nlohmann::json out = nlohmann::json::object();
  for (const std::string& source : sources) {
    out[source] = file_version(scenario::resolve_scenario_path(file, source)).value_or("unreadable");
  }
  return out;
}

std::string duration_text(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const long t = std::lround(s);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

// A bar redrawn in place on a terminal; one line per point (or per percent on big sweeps)
// otherwise. Failed points always get their own line.
class ProgressPrinter {
 public:
  ProgressPrinter(std::ostream& err, bool bar) : err_(err), bar_(bar) {}

  void operator()(const sweep::Progress& p) {
    const double rate = p.elapsed_s > 0 ? p.done / p.elapsed_s : 0;
    const double eta = rate > 0 ? (p.todo - p.done) / rate : NAN;
    const std::string who = p.ranks > 1 ? "rank " + std::to_string(p.rank) + "/" + std::to_string(p.ranks) + " " : "";
    if (p.last && p.last->status != "ok") {
      if (bar_) err_ << "\r\033[K";
      err_ << who << "point " << p.last->index << " " << p.last->status << ": " << first_line(p.last->message) << '\n';
    }
    char stats[160];
    std::snprintf(stats, sizeof stats, "%zu/%zu points, %.1f points/s, ETA %s%s", p.done, p.todo, rate,
                  duration_text(eta).c_str(),
                  p.failed ? (", " + std::to_string(p.failed) + " not ok").c_str() : "");
    if (bar_) {
      constexpr int kWidth = 30;
      const int filled = p.todo ? static_cast<int>(kWidth * p.done / p.todo) : kWidth;
      err_ << "\r\033[K" << who << '[' << std::string(filled, '#') << std::string(kWidth - filled, '.') << "] " << stats;
      if (p.done == p.todo) err_ << '\n';
      err_.flush();
      return;
    }
    const std::size_t every = std::max<std::size_t>(1, p.todo / 20);
    if (p.done % every == 0 || p.done == p.todo) err_ << who << stats << '\n';
  }

 private:
  static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }
  std::ostream& err_;
  bool bar_;
};

int local_ranks() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"})
    if (const char* v = std::getenv(name); v && std::atoi(v) > 0) return std::atoi(v);
  return 1;
}

bool uses_ns3(const nlohmann::json& doc, const std::string& backend) {
  if (!backend.empty()) return backend == "ns3";
  if (doc.contains("simulation") && doc["simulation"].value("backend", "") == "ns3") return true;
  return doc.contains("sweep") && doc["sweep"].dump().find("\"ns3\"") != std::string::npos;
}

}  // namespace

void add_sweep_options(CLI::App& sub, SweepOptions& o) {
  sub.add_option("scenario", o.scenario, "scenario JSON with a \"sweep\" block")->required();
  sub.add_option("--out", o.out, "output directory (default results/sweeps/<name>)")->check(non_empty("a directory"));
  sub.add_option("--jobs", o.jobs, "parallel points (default: all cores)");
  sub.add_flag("--resume", o.resume, "skip points already finished in --out");
  sub.add_option("--backend", o.backend, "network backend: analytic | ns3")->check(CLI::IsMember({"analytic", "ns3"}));
  sub.add_option("--progress", o.progress, "auto | bar | lines | none")->check(CLI::IsMember({"auto", "bar", "lines", "none"}));
  sub.add_flag("--no-fsync", o.no_fsync, "do not fsync each finished point (faster; a crash may lose points)");
  add_cache_flags(sub, o.cache, true);
}

int run_sweep(const SweepOptions& o, std::ostream& out, std::ostream& err) {
  const nlohmann::json doc = scenario::read_json_file(o.scenario);
  if (!doc.is_object() || !doc.contains("sweep"))
    throw InputError(o.scenario, "/sweep", "no sweep block: expected e.g. \"sweep\": {\"cluster.network.bandwidth\": [\"1Gbps\", \"10Gbps\"]}");
  sweep::SweepPlan plan = sweep::SweepPlan::from_json(doc["sweep"], o.scenario);
  if (o.jobs < 0) throw InputError("", "--jobs", "expected a positive number of jobs");
  const std::optional<std::filesystem::path> cache_dir = cache_dir_of(o.cache);

  const auto comm = sweep::make_world_communicator();
  sweep::RunnerOptions ro;
  const std::string name = doc.contains("name") && doc["name"].is_string() ? doc["name"].get<std::string>() : "";
  ro.out_dir = o.out.empty() ? "results/sweeps/" + safe_name(name.empty() ? "sweep" : name) : o.out;
  ro.resume = o.resume;
  ro.sync = !o.no_fsync;
  // A run's results (summary.json without a sweep's sweep.json) would lose their results.h5.
  std::error_code ec;
  if (std::filesystem::exists(ro.out_dir + "/summary.json", ec) && !std::filesystem::exists(ro.out_dir + "/sweep.json", ec))
    throw InputError(ro.out_dir, "", "holds a run's results (summary.json): moss sweep would replace its results.h5; give another --out");
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ro.jobs = o.jobs > 0 ? o.jobs : std::max(1, cores / local_ranks());
  // ns-3 runs one simulation per process at a time.
  if (uses_ns3(doc, o.backend) && ro.jobs > 1) {
    if (comm->rank() == 0) err << "moss sweep: the ns3 backend runs one point at a time per process (--jobs 1)\n";
    ro.jobs = 1;
  }
  sweep::ResultsHeader header;
  header.moss_version = sweep::moss_version();
  header.scenario_name = name;
  header.scenario_file = o.scenario;
  header.sweep = doc["sweep"];
  const nlohmann::json identity = {{"scenario", doc}, {"backend", o.backend}, {"activations", activation_versions(doc, plan, o.scenario)}};
  std::optional<std::string> backend;
  if (!o.backend.empty()) backend = o.backend;

  const bool tty = ::isatty(STDERR_FILENO) != 0;
  const bool show = o.progress != "none" && comm->rank() == 0;
  ProgressPrinter printer(err, o.progress == "bar" || (o.progress == "auto" && tty));
  sweep::ProgressCallback progress;
  if (show) progress = [&printer](const sweep::Progress& p) { printer(p); };
  if (comm->rank() == 0)
    err << "moss sweep: " << plan.size() << " points over " << plan.fields().size() << " fields, " << comm->size()
        << (comm->size() > 1 ? " MPI ranks x " : " process x ") << ro.jobs << " jobs -> " << ro.out_dir << '\n';

  if (comm->rank() == 0) {
    // Invalid points are recorded as such and the sweep goes on; say so before hours are spent.
    const sweep::PointCheck check = sweep::check_sweep_points(doc, plan, o.scenario);
    const std::vector<Problem> invalid = sweep::reported_problems(check);
    constexpr std::size_t kShown = 10;
    if (!invalid.empty())
      err << "moss sweep: note: points that will be recorded as invalid (moss validate lists them"
          << (check.every_point ? "" : "; checked value by value, so more may be") << "):\n";
    for (std::size_t i = 0; i < std::min(invalid.size(), kShown); ++i) err << "  " << invalid[i].to_string() << '\n';
    if (invalid.size() > kShown) err << "  ... and " << invalid.size() - kShown << " more problems\n";
  }
  const sweep::PointEvaluator evaluator(doc, o.scenario, backend, cache_dir);
  sweep::SweepRunner runner(std::move(plan), header, identity, ro, evaluator, progress);
  sweep::SweepOutcome result;
  try {
    result = runner.run(*comm);
  } catch (const std::exception& e) {
    if (comm->size() > 1) {
      err << "moss sweep (rank " << comm->rank() << "): " << e.what() << '\n';
      comm->abort(dynamic_cast<const InputError*>(&e) ? 2 : 1);
    }
    throw;
  }
  if (comm->rank() != 0) return 0;
  if (result.resumed > 0) err << "moss sweep: " << result.resumed << " points resumed from the journal\n";
  if (const auto c = evaluator.cache_counts(); cache_dir && c.hits + c.stored + c.unstored + c.shared > 0) {
    err << "moss sweep: " << (comm->size() > 1 ? "rank 0's points: " : "") << "compression figures of " << c.hits
        << " points read from the measurement cache, " << c.stored << " measured and stored (" << cache_dir->string() << ")";
    if (c.shared > 0) err << ", " << c.shared << " taken from an identical measurement of another point";
    err << '\n';
    if (c.unstored > 0)
      err << "moss sweep: note: " << c.unstored << " measurements were not cached: " << c.unstored_reason << '\n';
  }
  out << "sweep: " << result.points << " points, " << result.ok << " ok, " << result.not_ok << " not ok\n"
      << "results: " << result.results_path << "\nsummary: " << result.summary_path << "\nreport:  moss report "
      << ro.out_dir << '\n';
  return result.ok == 0 && result.points > 0 ? 2 : 0;
}

}  // namespace moss::app
