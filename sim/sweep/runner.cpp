#include "moss/sweep/runner.h"

#include <atomic>
#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "moss/core/error.h"
#include "moss/core/file_io.h"
#include "moss/sweep/journal.h"

namespace moss::sweep {

namespace fs = std::filesystem;

namespace {

constexpr const char* kManifest = "sweep.json";

std::string journal_dir(const std::string& out) { return (fs::path(out) / "journal").string(); }

// What differs between the identity a sweep directory was started with and this run's, in words; ""
// when they agree. An "activations" entry (versions of the activation files) the directory's
// identity lacks was not recorded by the moss that started it, and is not held against it.
std::string identity_change(const nlohmann::json& before, const nlohmann::json& now) {
  if (!before.is_object() || !now.is_object()) return before == now ? "" : "another sweep";
  std::vector<std::string> changed;
  for (const auto& [key, value] : now.items()) {
    if (!before.contains(key)) {
      if (key != "activations") changed.push_back(key);
      continue;
    }
    if (before[key] == value) continue;
    if (key == "activations" && value.is_object() && before[key].is_object()) {
      // A file that could not be read then measured nothing (its points are invalid): it may appear.
      for (const auto& [path, version] : value.items())
        if (before[key].contains(path) && before[key][path] != version && before[key][path] != "unreadable")
          changed.push_back("activation file " + path + " was rewritten or touched since (restore it, or measure again "
                            "into another --out)");
    } else {
      changed.push_back(key == "scenario" ? "scenario or sweep block changed" : key + " changed");
    }
  }
  for (const auto& [key, value] : before.items())
    if (!now.contains(key)) changed.push_back(key + " changed");
  std::string text;
  for (const std::string& c : changed) text += (text.empty() ? "" : ", ") + c;
  return text;
}

nlohmann::json read_manifest(const std::string& out) {
  const fs::path p = fs::path(out) / kManifest;
  check_sweep_file(p.string(), "manifest");
  std::error_code ec;
  if (fs::exists(p, ec) && fs::file_size(p, ec) > (std::uintmax_t{64} << 20))
    throw InputError(p.string(), "", "is larger than 64 MiB: not a moss sweep manifest; remove it or give another --out");
  std::ifstream in(p);
  if (!in) return nullptr;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    throw InputError(p.string(), "", "is not a moss sweep manifest (unreadable JSON)");
  }
}

std::string summary_line(const PointRecord& r) {
  nlohmann::json row = nlohmann::json::object();
  if (!r.summary_json.empty()) {
    const auto s = nlohmann::json::parse(r.summary_json, nullptr, false);
    if (s.is_object()) row = s;
  }
  row["index"] = r.index;
  row["status"] = r.status;
  row["message"] = r.message;
  row["fields"] = r.fields;
  return row.dump() + "\n";
}

}  // namespace

SweepRunner::SweepRunner(SweepPlan plan, ResultsHeader header, nlohmann::json identity, RunnerOptions options,
                         Evaluator evaluator, ProgressCallback progress)
    : plan_(std::move(plan)),
      header_(std::move(header)),
      identity_(std::move(identity)),
      options_(std::move(options)),
      evaluator_(std::move(evaluator)),
      progress_(std::move(progress)) {
  MOSS_CHECK(options_.jobs >= 1, "a sweep needs at least one job");
  MOSS_CHECK(!options_.out_dir.empty(), "a sweep needs an output directory");
  header_.fields = plan_.fields();
  header_.planned_points = static_cast<std::int64_t>(plan_.size());
}

SweepLock SweepRunner::prepare_directory(Communicator& comm) const {
  const std::string out = options_.out_dir;
  std::error_code ec;
  fs::create_directories(journal_dir(out), ec);
  if (ec) throw RuntimeFailure("cannot create " + journal_dir(out) + ": " + ec.message());
  // Before the journals are read: a second sweep into the directory would run the same points.
  SweepLock lock((fs::path(journal_dir(out)) / ("rank-" + std::to_string(comm.rank()) + ".lock")).string(), out);
  // Every rank checks (same files on a shared file system), so a refusal needs no collective.
  const nlohmann::json manifest = read_manifest(out);
  if (!manifest.is_null() && options_.resume) {
    if (const std::string change = identity_change(manifest.value("identity", nlohmann::json()), identity_); !change.empty())
      throw InputError(out, "", "holds a different sweep (" + change + "): its points would mix with these; " +
                                    "choose another --out or remove the directory");
  }
  if (!options_.resume && !read_journals(journal_dir(out)).empty())
    throw InputError(out, "", "already holds sweep results; pass --resume to continue them or choose another --out");
  if (comm.rank() == 0) {
    const nlohmann::json m = {{"format", "moss-sweep/1"}, {"moss_version", header_.moss_version},
                              {"points", plan_.size()}, {"fields", plan_.fields()}, {"identity", identity_}};
    replace_file((fs::path(out) / kManifest).string(), m.dump(2) + "\n", Durability::kFileAndDirectory);
  }
  comm.barrier();
  return lock;
}

PointRecord SweepRunner::evaluate_one(std::int64_t index) const {
  const auto assignments = plan_.point(static_cast<std::size_t>(index));
  PointRecord r;
  try {
    r = evaluator_(index, assignments);
  } catch (const InputError& e) {
    r = PointRecord{};
    r.status = "invalid";
    r.message = e.what();
  } catch (const std::exception& e) {
    r = PointRecord{};
    r.status = "failed";
    r.message = e.what();
  }
  r.index = index;
  r.fields = nlohmann::json::object();
  for (const auto& [path, value] : assignments) r.fields[path] = value;
  if (r.summary_json.empty()) r.summary_json = "{}";
  return r;
}

std::vector<PointRecord> SweepRunner::run_local(const std::vector<std::int64_t>& todo, std::size_t resumed,
                                                Communicator& comm) {
  Journal journal((fs::path(journal_dir(options_.out_dir)) / ("rank-" + std::to_string(comm.rank()) + ".jsonl")).string(),
                  options_.sync);
  std::vector<PointRecord> done(todo.size());
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::exception_ptr fatal;
  std::mutex mutex;  // guards progress, fatal
  Progress progress;
  progress.todo = todo.size();
  progress.resumed = resumed;
  progress.rank = comm.rank();
  progress.ranks = comm.size();
  const auto start = std::chrono::steady_clock::now();
  auto work = [&] {
    while (!stop) {
      const std::size_t i = next++;
      if (i >= todo.size()) return;
      try {
        done[i] = evaluate_one(todo[i]);
        journal.append(done[i]);  // durable before it is reported
      } catch (...) {
        std::lock_guard lock(mutex);
        if (!fatal) fatal = std::current_exception();
        stop = true;
        return;
      }
      std::lock_guard lock(mutex);
      ++progress.done;
      if (done[i].status != "ok") ++progress.failed;
      progress.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      progress.last = &done[i];
      if (progress_) progress_(progress);
    }
  };
  const int threads = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(options_.jobs), todo.size()));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (fatal) std::rethrow_exception(fatal);
  return done;
}

SweepOutcome SweepRunner::run(Communicator& comm) {
  const SweepLock lock = prepare_directory(comm);
  std::map<std::int64_t, PointRecord> known =
      options_.resume ? read_journals(journal_dir(options_.out_dir)) : std::map<std::int64_t, PointRecord>{};
  const auto n = static_cast<std::int64_t>(plan_.size());
  std::vector<std::int64_t> todo;
  std::vector<PointRecord> mine;
  for (std::int64_t i = comm.rank(); i < n; i += comm.size()) {
    auto it = known.find(i);
    if (it == known.end()) todo.push_back(i);
    else mine.push_back(it->second);
  }
  SweepOutcome outcome;
  outcome.resumed = mine.size();
  std::vector<PointRecord> fresh = run_local(todo, mine.size(), comm);
  outcome.computed = fresh.size();

  std::string local;
  for (const auto* set : {&mine, &fresh})
    for (const auto& r : *set) local += r.to_json().dump() + "\n";
  const std::vector<std::string> gathered = comm.gather(local);
  if (comm.rank() != 0) return outcome;

  // Rank 0: what the ranks sent, plus what it sees on disk (other ranks' earlier runs).
  std::map<std::int64_t, PointRecord> all;
  for (const auto& text : gathered) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      PointRecord r = PointRecord::from_json(nlohmann::json::parse(line));
      all.insert_or_assign(r.index, std::move(r));
    }
  }
  for (auto& [i, r] : known) all.try_emplace(i, std::move(r));
  std::vector<PointRecord> records;
  for (auto& [i, r] : all)
    if (i >= 0 && i < n) records.push_back(std::move(r));
  if (static_cast<std::int64_t>(records.size()) != n)
    throw RuntimeFailure("sweep incomplete: " + std::to_string(records.size()) + " of " + std::to_string(n) +
                         " points gathered (ranks without a shared directory?)");
  write_sweep_outputs(options_.out_dir, header_, records);
  outcome.points = records.size();
  for (const auto& r : records) (r.status == "ok" ? outcome.ok : outcome.not_ok)++;
  outcome.results_path = (fs::path(options_.out_dir) / "results.h5").string();
  outcome.summary_path = (fs::path(options_.out_dir) / "summary.jsonl").string();
  return outcome;
}

void write_sweep_outputs(const std::string& dir, const ResultsHeader& header, const std::vector<PointRecord>& records) {
  write_results_h5((fs::path(dir) / "results.h5").string(), header, records);
  std::string lines;
  for (const auto& r : records) lines += summary_line(r);
  replace_file((fs::path(dir) / "summary.jsonl").string(), lines, Durability::kFileAndDirectory);
}

}  // namespace moss::sweep
