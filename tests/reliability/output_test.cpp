// What moss leaves on disk: determinism (same scenario + seed -> same bytes; sweep --jobs 1 vs 2),
// durability (temp file + rename, a full disk or unwritable directory is an error and leaves no
// summary), and confinement (a scenario name cannot steer writes outside the output directory).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "moss_process.h"

namespace {

namespace fs = std::filesystem;
using moss::reliability::files_under;
using moss::reliability::fresh_dir;
using moss::reliability::Limits;
using moss::reliability::ProcessResult;
using moss::reliability::run_moss;
using moss::reliability::slurp;

// A short warm-up (1024 tokens): these tests check what reaches the disk, not the fit.
nlohmann::json scenario(const std::string& name) {
  nlohmann::json doc = nlohmann::json::parse(R"({
    "model": {"preset": "mos-800m"},
    "training": {"seq_len": 65536, "tokens": 1e9, "weight_sync": {"every_steps": 4}},
    "cluster": {"gpu": "A100-80GB", "nodes": 4, "network": {"topology": "ring", "bandwidth": "1Gbps", "latency": "2ms"}},
    "parallelism": {"context": 4},
    "compression": {"method": "mos", "rank_k": 32, "rank_v": 64, "warmup_tokens": 1024},
    "simulation": {"backend": "analytic", "seed": 7}})");
  doc["name"] = name;
  return doc;
}

std::string write_scenario(const fs::path& dir, const nlohmann::json& doc, const std::string& file = "s.json") {
  const fs::path p = dir / file;
  std::ofstream(p) << doc.dump(2);
  return p.string();
}

// --- determinism ------------------------------------------------------------------------------------

TEST(Determinism, SameScenarioAndSeedGiveByteIdenticalRunOutputs) {
  const fs::path d = fresh_dir("determinism_run");
  const std::string s = write_scenario(d, scenario("det"));
  for (const char* out : {"a", "b"}) {
    const ProcessResult r = run_moss({"run", s, "--out", (d / out).string()}, {}, d / ("log-" + std::string(out)));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  for (const char* f : {"summary.json", "trace.json", "scenario.json", "results.h5"}) {
    ASSERT_TRUE(fs::exists(d / "a" / f)) << f;
    EXPECT_EQ(slurp(d / "a" / f), slurp(d / "b" / f)) << f << " differs between two identical runs";
  }
}

TEST(Determinism, SweepWithOneAndTwoJobsWritesIdenticalFiles) {
  const fs::path d = fresh_dir("determinism_sweep");
  nlohmann::json doc = scenario("det-sweep");
  doc["sweep"] = {{"cluster.network.bandwidth", {"300Mbps", "1Gbps", "10Gbps", "100Gbps"}},
                  {"compression.rank_k", {8, 16, 64}}};
  const std::string s = write_scenario(d, doc);
  for (const char* jobs : {"1", "2"}) {
    const ProcessResult r = run_moss({"sweep", s, "--out", (d / jobs).string(), "--jobs", jobs, "--progress", "none"}, {},
                                     d / (std::string("log-") + jobs));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  ASSERT_TRUE(fs::exists(d / "1" / "results.h5"));
  EXPECT_EQ(slurp(d / "1" / "results.h5"), slurp(d / "2" / "results.h5"));
  EXPECT_EQ(slurp(d / "1" / "summary.jsonl"), slurp(d / "2" / "summary.jsonl"));
}

// --- durability -------------------------------------------------------------------------------------

// A second hard link to summary.json keeps the old inode: if moss rewrote the file in place the
// link would see the new content; with a temp file + rename it keeps the old bytes.
TEST(Durability, ResultsAreRenamedIntoPlaceNotRewrittenInPlace) {
  const fs::path d = fresh_dir("durability_rename");
  const std::string s = write_scenario(d, scenario("dur"));
  fs::create_directories(d / "out");
  std::ofstream(d / "out" / "summary.json") << "old";
  fs::create_hard_link(d / "out" / "summary.json", d / "old-link");
  const ProcessResult r = run_moss({"run", s, "--out", (d / "out").string()}, {}, d / "log");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(slurp(d / "old-link"), "old");
  EXPECT_NE(slurp(d / "out" / "summary.json"), "old");
  for (const auto& f : files_under(d / "out")) EXPECT_EQ(f.find(".tmp"), std::string::npos) << "left behind: " << f;
}

// RLIMIT_FSIZE makes every write past the limit fail with EFBIG, as a full disk fails with ENOSPC.
TEST(Durability, FullDiskIsReportedAndLeavesNoSummary) {
  const fs::path d = fresh_dir("durability_full");
  const std::string s = write_scenario(d, scenario("full"));
  for (const std::uint64_t limit : {std::uint64_t{1}, std::uint64_t{2048}, std::uint64_t{16384}}) {
    SCOPED_TRACE("file size limit " + std::to_string(limit));
    const fs::path out = d / ("out-" + std::to_string(limit));
    Limits l;
    l.file_size_bytes = limit;
    const ProcessResult r = run_moss({"run", s, "--out", out.string()}, l, d / "log");
    EXPECT_EQ(r.signal, 0);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("moss: "), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out / "summary.json")) << "a summary was left although the run failed";
    for (const auto& f : files_under(out)) EXPECT_EQ(f.find(".tmp"), std::string::npos) << "left behind: " << f;
  }
}

TEST(Durability, UnwritableOutputDirectoryIsReported) {
  const fs::path d = fresh_dir("durability_unwritable");
  const std::string s = write_scenario(d, scenario("unwritable"));
  std::ofstream(d / "a-file") << "x";
  // A path below a regular file cannot be created, even by root.
  const ProcessResult r = run_moss({"run", s, "--out", (d / "a-file" / "out").string()}, {}, d / "log");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find((d / "a-file" / "out").string()), std::string::npos) << r.err;
  if (::geteuid() != 0) {
    fs::create_directories(d / "ro");
    ::chmod((d / "ro").c_str(), 0555);
    const ProcessResult q = run_moss({"run", s, "--out", (d / "ro").string()}, {}, d / "log2");
    EXPECT_EQ(q.exit_code, 1) << q.err;
    EXPECT_FALSE(fs::exists(d / "ro" / "summary.json"));
  }
}

// --- confinement -------------------------------------------------------------------------------------

// Runs `args` with cwd = d/work and returns every file created outside d/work/results.
std::vector<std::string> writes_outside_results(const fs::path& d, const std::vector<std::string>& args) {
  fs::create_directories(d / "work");
  Limits l;
  l.cwd = (d / "work").string();
  const ProcessResult r = run_moss(args, l, d / "log");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> outside;
  for (const auto& f : files_under(d)) {
    if (f.rfind("work/results/", 0) == 0 || f.rfind("log/", 0) == 0 || f == "s.json") continue;
    outside.push_back(f);
  }
  return outside;
}

TEST(Confinement, ScenarioNamesCannotLeaveTheResultsDirectory) {
  for (const std::string name : {"../../escape", "/tmp/moss-abs-escape", "..", ".", "a/../../b", "~/x", "..\\x", "con:"}) {
    SCOPED_TRACE(name);
    const fs::path d = fresh_dir("confine_run");
    const std::string s = write_scenario(d, scenario(name));
    EXPECT_TRUE(writes_outside_results(d, {"run", s}).empty());
    EXPECT_TRUE(fs::exists(d / "work" / "results"));
    for (const auto& e : fs::directory_iterator(d / "work" / "results")) {
      EXPECT_NE(e.path().filename().string().front(), '.') << e.path();
    }
  }
  EXPECT_FALSE(fs::exists("/tmp/moss-abs-escape"));
}

TEST(Confinement, SweepNamesCannotLeaveTheResultsDirectory) {
  for (const std::string name : {"../../escape", "/tmp/moss-abs-sweep"}) {
    SCOPED_TRACE(name);
    const fs::path d = fresh_dir("confine_sweep");
    nlohmann::json doc = scenario(name);
    doc["sweep"] = {{"cluster.network.bandwidth", {"1Gbps", "10Gbps"}}, {"name", {"/tmp/moss-point", "sub/dir/point"}}};
    const std::string s = write_scenario(d, doc);
    EXPECT_TRUE(writes_outside_results(d, {"sweep", s, "--progress", "none"}).empty());
  }
  EXPECT_FALSE(fs::exists("/tmp/moss-abs-sweep"));
  EXPECT_FALSE(fs::exists("/tmp/moss-point"));
}

}  // namespace
