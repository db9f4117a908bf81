#include "moss/sweep/runner.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "../support/test_files.h"

#include "moss/core/error.h"
#include "moss/sweep/journal.h"

namespace moss::sweep {
namespace {

namespace fs = std::filesystem;

std::string fresh_dir(const std::string& name) { return moss::testing::fresh_temp_dir("moss-runner", name); }

using moss::testing::slurp;

SweepPlan plan() {
  return SweepPlan::from_json({{"cluster.network.bandwidth", "1Gbps..100Gbps x5 log"}, {"compression.rank_k", {8, 16, 32}}},
                              "s.json");
}

// A deterministic stand-in for the simulator; point 7 throws like a failing evaluation.
PointRecord fake(std::int64_t index, const std::vector<Assignment>& a) {
  if (index == 7) throw RuntimeFailure("boom at 7");
  PointRecord r;
  r.metrics = {{"tokens_per_second", 1000.0 + index}, {"rank", a[1].second.get<double>()}};
  r.labels = {{"design", "d" + std::to_string(index % 3)}};
  r.curve_loss = {4.0, 3.0 + 0.01 * index};
  r.curve_tokens = {1, 2};
  r.curve_wall_s = {10, 20};
  r.scenario_json = "{}";
  return r;
}

SweepOutcome run(const std::string& dir, int jobs, bool resume, Evaluator ev = fake) {
  auto comm = make_serial_communicator();
  ResultsHeader h;
  h.moss_version = "test";
  RunnerOptions o{dir, jobs, resume, false};
  SweepRunner runner(plan(), h, {{"id", 1}}, o, std::move(ev));
  return runner.run(*comm);
}

TEST(SweepRunner, JobsOneAndFourGiveIdenticalFiles) {
  const auto a = fresh_dir("j1"), b = fresh_dir("j4");
  const auto ra = run(a, 1, false);
  run(b, 4, false);
  EXPECT_EQ(ra.points, 15u);
  EXPECT_EQ(ra.ok, 14u);
  EXPECT_EQ(ra.not_ok, 1u);
  EXPECT_EQ(slurp(a + "/results.h5"), slurp(b + "/results.h5"));
  EXPECT_EQ(slurp(a + "/summary.jsonl"), slurp(b + "/summary.jsonl"));
  EXPECT_NE(slurp(a + "/summary.jsonl").find("boom at 7"), std::string::npos);
}

TEST(SweepRunner, ResumeSkipsFinishedPointsAndCutsTornLine) {
  const auto full = fresh_dir("full"), part = fresh_dir("part");
  run(full, 2, false);
  // A first run that dies after 6 points: copy 6 journal lines plus half of the 7th.
  run(part, 1, false);
  const std::string journal = part + "/journal/rank-0.jsonl";
  std::istringstream lines(slurp(journal));
  std::string kept, line;
  for (int i = 0; i < 7 && std::getline(lines, line); ++i) kept += i < 6 ? line + "\n" : line.substr(0, line.size() / 2);
  std::ofstream(journal, std::ios::trunc) << kept;
  fs::remove(part + "/results.h5");
  std::atomic<int> calls{0};
  const auto r = run(part, 2, true, [&](std::int64_t i, const std::vector<Assignment>& a) {
    ++calls;
    return fake(i, a);
  });
  EXPECT_EQ(r.resumed, 6u);
  EXPECT_EQ(calls.load(), 9);
  EXPECT_EQ(slurp(full + "/results.h5"), slurp(part + "/results.h5"));
  EXPECT_EQ(read_journals(part + "/journal").size(), 15u);
}

TEST(SweepRunner, RefusesUsedDirectoryWithoutResumeAndForeignSweepWithResume) {
  const auto dir = fresh_dir("used");
  run(dir, 1, false);
  EXPECT_THROW(run(dir, 1, false), InputError);
  auto comm = make_serial_communicator();
  SweepRunner other(plan(), {}, {{"id", 2}}, RunnerOptions{dir, 1, true, false}, fake);
  EXPECT_THROW(other.run(*comm), InputError);
}

// Two sweeps into one directory would each run every unfinished point and append to the same
// journal: the second is refused while the first holds its rank's lock, and runs once it is gone.
TEST(SweepRunner, ASecondSweepIntoADirectoryInUseIsRefused) {
  const auto dir = fresh_dir("locked");
  run(dir, 1, false);
  {
    const SweepLock first(dir + "/journal/rank-0.lock", dir);
    try {
      run(dir, 1, true);
      FAIL() << "expected an InputError";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("another moss sweep is writing this directory (it holds journal/rank-0.lock)"),
                std::string::npos) << e.what();
    }
    EXPECT_THROW(SweepLock(dir + "/journal/rank-0.lock", dir), InputError);
  }
  EXPECT_EQ(run(dir, 1, true).resumed, 15u);  // released with its holder
  fs::remove(dir + "/journal/rank-0.lock");
  fs::create_directory(dir + "/journal/rank-0.lock");
  EXPECT_THROW(run(dir, 1, true), InputError);  // a directory in its place is no lock: named, exit 2
}

TEST(SweepRunner, ReportsProgressAfterEachPoint) {
  const auto dir = fresh_dir("progress");
  auto comm = make_serial_communicator();
  std::vector<std::size_t> seen;
  SweepRunner runner(plan(), {}, {}, RunnerOptions{dir, 3, false, true}, fake, [&](const Progress& p) {
    seen.push_back(p.done);
    EXPECT_EQ(p.todo, 15u);
    ASSERT_NE(p.last, nullptr);
  });
  runner.run(*comm);
  ASSERT_EQ(seen.size(), 15u);
  EXPECT_EQ(seen.back(), 15u);
}

}  // namespace
}  // namespace moss::sweep
