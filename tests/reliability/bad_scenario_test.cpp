// Table-driven bad scenarios (tests/data/bad_scenarios/manifest.json): `moss validate` and `moss run`
// must exit 2 with a message naming the file, the JSON pointer and the expectation, must not crash,
// must not leave a summary.json behind, and must refuse hostile sizes inside a bounded address space.
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "moss_process.h"

namespace {

namespace fs = std::filesystem;
using moss::reliability::fresh_dir;
using moss::reliability::Limits;
using moss::reliability::ProcessResult;
using moss::reliability::run_moss;

struct BadCase {
  std::string file;     // name in tests/data/bad_scenarios
  std::string pointer;  // JSON pointer the problem must name ("" = the whole file)
  std::string message;  // regex the problem's message must match
  std::string why;
  bool run_only = false;     // found when the run loads data, not by `moss validate`
  std::string known_bug;     // why `moss validate` wrongly accepts it (its check is skipped)
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.file; }

const fs::path kDir = fs::path(MOSS_TEST_DATA_DIR) / "bad_scenarios";

std::vector<BadCase> load_cases() {
  std::ifstream in(kDir / "manifest.json");
  if (!in) return {};
  const auto manifest = nlohmann::json::parse(in);
  std::vector<BadCase> out;
  for (const auto& c : manifest.at("cases")) {
    out.push_back({c.at("file"), c.at("pointer"), c.at("message"), c.value("why", ""), c.value("run_only", false),
                   c.value("known_bug", "")});
  }
  return out;
}

const std::vector<BadCase>& cases() {
  static const std::vector<BadCase> all = load_cases();
  return all;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream is(text);
  for (std::string line; std::getline(is, line);) out.push_back(line);
  return out;
}

Limits hostile_limits() {
  Limits l;
  l.address_space_bytes = moss::reliability::hostile_input_address_space();
  l.cpu_seconds = 60;
  return l;
}

// The problem line for `c`: "<prefix><file>: <pointer>: <message matching c.message>".
::testing::AssertionResult names_problem(const std::string& err, const std::string& prefix, const std::string& path,
                                         const BadCase& c) {
  const std::string head = path + ": " + (c.pointer.empty() ? "" : c.pointer + ": ");
  const std::regex expectation(c.message);
  for (std::string line : lines_of(err)) {
    // `validate` prints its problems bare, but a file that is not JSON at all reaches main's handler.
    if (line.rfind("error: ", 0) == 0) line = line.substr(7);
    else if (!prefix.empty()) continue;
    if (line.rfind(head, 0) != 0) continue;
    if (std::regex_search(line.substr(head.size()), expectation)) return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "no line starting with \"" << prefix << head << "\" and matching /" << c.message
                                       << "/ in:\n" << err;
}

::testing::AssertionResult no_crash(const ProcessResult& r) {
  if (r.signal != 0) return ::testing::AssertionFailure() << "killed by signal " << r.signal << "\n" << r.err;
  for (const char* bad : {"internal error", "AddressSanitizer", "runtime error:", "LeakSanitizer", "terminate called"}) {
    if (r.err.find(bad) != std::string::npos) return ::testing::AssertionFailure() << "stderr has \"" << bad << "\":\n" << r.err;
  }
  return ::testing::AssertionSuccess();
}

class BadScenario : public ::testing::TestWithParam<BadCase> {};

TEST(BadScenarioTable, HasAtLeastSixtyCasesEachWithItsFile) {
  ASSERT_GE(cases().size(), 60u);
  for (const auto& c : cases()) EXPECT_TRUE(fs::is_regular_file(kDir / c.file)) << c.file;
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(kDir)) files += e.path().filename() != "manifest.json";
  EXPECT_EQ(files, cases().size()) << "a file in bad_scenarios/ is not in the manifest";
}

TEST_P(BadScenario, ValidateExitsTwoNamingFilePointerAndExpectation) {
  const BadCase& c = GetParam();
  if (c.run_only) GTEST_SKIP() << "found when the run loads its data";
  if (!c.known_bug.empty()) GTEST_SKIP() << "known bug: " << c.known_bug;
  const std::string path = (kDir / c.file).string();
  const fs::path scratch = fresh_dir("validate_" + c.file);
  const ProcessResult r = run_moss({"validate", path}, hostile_limits(), scratch);
  ASSERT_TRUE(no_crash(r)) << c.why;
  EXPECT_EQ(r.exit_code, 2) << c.why << "\n" << r.out << r.err;
  EXPECT_TRUE(names_problem(r.err, "", (kDir / c.file).string(), c)) << c.why;
  EXPECT_EQ(r.out.find(": valid"), std::string::npos) << r.out;
}

TEST_P(BadScenario, RunExitsTwoAndWritesNoResult) {
  const BadCase& c = GetParam();
  const std::string path = (kDir / c.file).string();
  const fs::path scratch = fresh_dir("run_" + c.file);
  const fs::path out = scratch / "out";
  const ProcessResult r = run_moss({"run", path, "--out", out.string()}, hostile_limits(), scratch);
  ASSERT_TRUE(no_crash(r)) << c.why;
  EXPECT_EQ(r.exit_code, 2) << c.why << "\n" << r.out << r.err;
  EXPECT_TRUE(names_problem(r.err, "error: ", (kDir / c.file).string(), c)) << c.why;
  // Invalid input is refused before any output exists: no summary, no trace, nothing at all.
  EXPECT_TRUE(moss::reliability::files_under(out).empty()) << "moss wrote into --out for invalid input";
  EXPECT_EQ(r.out.find("tokens/s"), std::string::npos) << "a result table was printed:\n" << r.out;
}

std::string case_name(const ::testing::TestParamInfo<BadCase>& info) {
  std::string name = info.param.file.substr(0, info.param.file.find(".json"));
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Manifest, BadScenario, ::testing::ValuesIn(cases()), case_name);

// Positive control: the same limits let a valid scenario through, so the refusals above come from
// validation, not from the address-space bound.
TEST(BadScenarioControl, ValidScenarioPassesUnderTheSameLimits) {
  const fs::path scratch = fresh_dir("control");
  const std::string path = (scratch / "valid.json").string();
  std::ofstream(path) << R"({
    "name": "bad", "model": {"preset": "mos-800m"},
    "training": {"seq_len": 131072, "tokens": 1e9},
    "cluster": {"gpu": "A100-80GB", "nodes": 8, "network": {"bandwidth": "300Mbps", "latency": "5ms"}},
    "parallelism": {"context": 8},
    "compression": {"method": "mos", "rank_k": 40, "rank_v": 100}})";
  const ProcessResult v = run_moss({"validate", path}, hostile_limits(), scratch);
  EXPECT_EQ(v.exit_code, 0) << v.err;
  const ProcessResult r = run_moss({"run", path, "--out", (scratch / "out").string()}, hostile_limits(), scratch);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(scratch / "out" / "summary.json"));
}

}  // namespace

namespace {

// The step graph grows with the square of the context degree (ring CP: 64 ranks 31 MB, 256 ranks
// 340 MB, 1024 ranks over 3.4 GB), so validation caps the context degree at 256: a larger one is
// refused with exit 2 before anything is built.
TEST(BadScenario, ThousandNodeRingIsRefusedWithinTheMemoryBound) {
  const fs::path scratch = fresh_dir("known_bug_big_ring");
  const std::string path = (scratch / "big.json").string();
  std::ofstream(path) << R"({"name": "big", "model": {"preset": "mos-800m"},
    "training": {"seq_len": 65536, "tokens": 1e9},
    "cluster": {"gpu": "H200", "nodes": 1024, "network": {"topology": "star", "bandwidth": "100Gbps", "latency": "5us"}},
    "parallelism": {"context": 1024, "cp_algorithm": "ring"}, "compression": {"method": "none"}})";
  const ProcessResult r = run_moss({"run", path, "--no-trace", "--out", (scratch / "out").string()}, hostile_limits(), scratch);
  EXPECT_TRUE(no_crash(r));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("/parallelism/context"), std::string::npos) << r.err;
}

// A non-string name must reach validation (exit 2), not throw while naming the output directory.
TEST(BadScenario, SweepWithNumericNameExitsTwo) {
  const fs::path scratch = fresh_dir("known_bug_sweep_name");
  const std::string path = (scratch / "s.json").string();
  std::ofstream(path) << R"({"name": 5, "model": {"preset": "mos-800m"},
    "training": {"seq_len": 131072, "tokens": 1e9},
    "cluster": {"gpu": "A100-80GB", "nodes": 8, "network": {"bandwidth": "300Mbps", "latency": "5ms"}},
    "parallelism": {"context": 8}, "compression": {"method": "none"},
    "sweep": {"cluster.network.bandwidth": ["1Gbps", "10Gbps"]}})";
  const ProcessResult r = run_moss({"sweep", path, "--out", (scratch / "out").string(), "--progress", "none"},
                                   hostile_limits(), scratch);
  EXPECT_TRUE(no_crash(r));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // Every point is recorded as invalid with the problem (a sweep carries on past bad points).
  std::ifstream rows(scratch / "out" / "summary.jsonl");
  const std::string text((std::istreambuf_iterator<char>(rows)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("/name"), std::string::npos) << text;
}

}  // namespace
