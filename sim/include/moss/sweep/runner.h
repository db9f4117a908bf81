#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moss/sweep/communicator.h"
#include "moss/sweep/point_record.h"
#include "moss/sweep/results_h5.h"
#include "moss/sweep/sweep_lock.h"
#include "moss/sweep/sweep_plan.h"

namespace moss::sweep {

/// How a sweep runs.
struct RunnerOptions {
  std::string out_dir;
  int jobs = 1;         ///< worker threads on this rank (>= 1)
  bool resume = false;  ///< skip points already in the journal of out_dir
  bool sync = true;     ///< fdatasync each finished point (off only for tests/benchmarks)
};

/// What the progress callback sees after each point is durable.
struct Progress {
  std::size_t done = 0;     ///< points finished by this rank in this run
  std::size_t todo = 0;     ///< points this rank had to run
  std::size_t resumed = 0;  ///< points of this rank found finished in the journal
  std::size_t failed = 0;   ///< of `done`, not ok
  double elapsed_s = 0;
  int rank = 0;
  int ranks = 1;
  const PointRecord* last = nullptr;
};

/// The outcome of a whole sweep (complete on rank 0 only).
struct SweepOutcome {
  std::size_t points = 0;
  std::size_t ok = 0;
  std::size_t not_ok = 0;
  std::size_t computed = 0;  ///< by this rank in this run
  std::size_t resumed = 0;   ///< by this rank
  std::string results_path;  ///< DIR/results.h5 (rank 0)
  std::string summary_path;  ///< DIR/summary.jsonl (rank 0)
};

/// Evaluates point `index`; may throw (the runner records the point as failed). The runner fills
/// in index and fields afterwards.
using Evaluator = std::function<PointRecord(std::int64_t index, const std::vector<Assignment>& assignments)>;
/// Called after each finished point is on disk, serialised (one call at a time).
using ProgressCallback = std::function<void(const Progress&)>;

/// Runs the points of a plan: rank r of R takes the points with index % R == r, `jobs` threads
/// each; every finished point goes to DIR/journal/rank-<r>.jsonl (durable) before it is reported;
/// rank 0 gathers all records and writes DIR/results.h5 and DIR/summary.jsonl (temp + rename).
/// `identity` (scenario + sweep block + options that change results) is kept in DIR/sweep.json;
/// resuming a directory whose identity differs is a moss::InputError.
class SweepRunner {
 public:
  SweepRunner(SweepPlan plan, ResultsHeader header, nlohmann::json identity, RunnerOptions options,
              Evaluator evaluator, ProgressCallback progress = {});

  /// Collective over `comm`. Throws moss::InputError (directory in use, identity mismatch) or
  /// moss::RuntimeFailure (I/O).
  SweepOutcome run(Communicator& comm);

 private:
  /// Locks this rank's share of the directory (journal/rank-<r>.lock) and checks and prepares it.
  [[nodiscard]] SweepLock prepare_directory(Communicator& comm) const;
  std::vector<PointRecord> run_local(const std::vector<std::int64_t>& todo, std::size_t resumed, Communicator& comm);
  PointRecord evaluate_one(std::int64_t index) const;

  SweepPlan plan_;
  ResultsHeader header_;
  nlohmann::json identity_;
  RunnerOptions options_;
  Evaluator evaluator_;
  ProgressCallback progress_;
};

/// Writes DIR/results.h5 and DIR/summary.jsonl from records sorted by index.
void write_sweep_outputs(const std::string& dir, const ResultsHeader& header, const std::vector<PointRecord>& records);

}  // namespace moss::sweep
