// End-to-end tests of the moss executable: exit codes, messages, outputs.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <regex>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <sys/wait.h>

namespace {

struct Result {
  int code;
  std::string output;  // stdout + stderr
};

// A shell command's exit code (-1 when a signal ended it) and what it printed on the pipe.
Result shell(const std::string& cmd) {
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  while (pipe && fgets(buf.data(), buf.size(), pipe)) out += buf.data();
  const int status = pipe ? pclose(pipe) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

Result run(const std::string& args) { return shell(std::string(MOSS_BINARY) + " " + args + " 2>&1"); }

std::string temp_dir(const std::string& name) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / ("moss_cli_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string write(const std::string& dir, const std::string& name, const std::string& content) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << content;
  return path;
}

const char* kValid = R"({
  "name": "cli", "model": {"preset": "mos-800m"},
  "training": {"seq_len": 131072, "tokens": 1e9},
  "cluster": {"gpu": "A100-80GB", "nodes": 8, "network": {"bandwidth": "300Mbps", "latency": "5ms"}},
  "parallelism": {"context": 8},
  "compression": {"method": "mos", "rank_k": 40, "rank_v": 100}})";

}  // namespace

TEST(Cli, RunWritesEveryContractKeyAndATrace) {
  const std::string dir = temp_dir("run");
  const std::string file = write(dir, "s.json", kValid);
  const Result r = run("run " + file + " --out " + dir + "/out");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("tokens/s"), std::string::npos);
  EXPECT_NE(r.output.find("MFU"), std::string::npos);
  std::ifstream in(dir + "/out/summary.json");
  const auto s = nlohmann::json::parse(in);
  for (const char* key : {"scenario", "tokens_per_second", "step_time_s", "mfu", "params",
                          "comm_bytes_per_step_per_device", "exposed_comm_s", "compression",
                          "statistical_efficiency", "time_to_target_s", "backend"}) {
    EXPECT_TRUE(s.contains(key)) << key;
  }
  for (const char* key : {"method", "ratio", "relative_error"}) EXPECT_TRUE(s["compression"].contains(key)) << key;
  EXPECT_GT(s["tokens_per_second"].get<double>(), 0);
  EXPECT_NEAR(s["tokens_per_second"].get<double>() * s["step_time_s"].get<double>(), 131072, 1e-6 * 131072);

  std::ifstream tin(dir + "/out/trace.json");
  const auto trace = nlohmann::json::parse(tin);
  std::set<std::string> tracks;
  std::map<std::pair<int, int>, std::string> names;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "thread_name") names[{e["pid"], e["tid"]}] = e["args"]["name"];
  }
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] != "X") continue;
    EXPECT_GE(e["dur"].get<double>(), 0);
    tracks.insert(std::to_string(e["pid"].get<int>()) + ":" + names[{e["pid"], e["tid"]}]);
  }
  for (int gpu = 0; gpu < 8; ++gpu) {
    for (const char* t : {"compute stream", "compression stream", "nic send", "nic recv"}) {
      EXPECT_TRUE(tracks.count(std::to_string(gpu) + ":" + t)) << gpu << ' ' << t;
    }
  }
}

TEST(Cli, EveryShippedScenarioRuns) {
  const std::string dir = temp_dir("shipped");
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(MOSS_SOURCE_DIR) + "/scenarios")) {
    const auto name = e.path().filename().string();
    if (e.path().extension() != ".json" || name == "hardware.json" || name == "models.json") continue;
    const Result r = run("run " + e.path().string() + " --out " + dir + "/" + name + " --no-trace");
    EXPECT_EQ(r.code, 0) << name << ": " << r.output;
    ++n;
  }
  EXPECT_GE(n, 4);
}

TEST(Cli, ValidateAcceptsAGoodScenario) {
  const std::string dir = temp_dir("valid");
  const Result r = run("validate " + write(dir, "s.json", kValid));
  EXPECT_EQ(r.code, 0) << r.output;
}

TEST(Cli, AnUnwritableStandardOutputIsAFailure) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full on this system";
  const std::string dir = temp_dir("dev-full");
  // stderr to the pipe, stdout to a device whose every write fails with ENOSPC.
  const Result r = shell(std::string(MOSS_BINARY) + " validate " + write(dir, "s.json", kValid) + " 2>&1 >/dev/full");
  const std::string& err = r.output;
  EXPECT_EQ(r.code, 1) << err;
  EXPECT_NE(err.find("writing the standard output failed: No space left on device"), std::string::npos) << err;
}

TEST(Cli, ValidateChecksEverySweepPoint) {
  // The fixture's sixth design, int3 quantisation, is invalid in each of its 100 points.
  const std::string file = std::string(MOSS_TEST_DATA_DIR) + "/sweep/cli-sweep.json";
  const Result r = run("validate " + file);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(file + R"(: /sweep/compression: point 5 \(cluster.network.bandwidth = "300Mbps", )"
                                                            R"(compression = \{"bits":3,"method":"quant"\}\): /compression/bits: .*4 or 8.*\(and 99 more points\))")))
      << r.output;
  const std::string dir = temp_dir("valid-sweep");
  nlohmann::json doc = nlohmann::json::parse(kValid);
  doc["sweep"] = {{"cluster.network.bandwidth", {"1Gbps", "10Gbps"}}};
  const Result ok = run("validate " + write(dir, "s.json", doc.dump()));
  EXPECT_EQ(ok.code, 0) << ok.output;
}

// moss sweep runs the points, never the base: a base value every point overrides is no problem, one
// no swept field touches is reported once at its own path, and every swept activation file is loaded.
TEST(Cli, ValidateJudgesASweepByItsPointsAndTheirFiles) {
  const std::string dir = temp_dir("sweep-points");
  nlohmann::json doc = nlohmann::json::parse(kValid);
  doc["cluster"]["network"]["bandwidth"] = "300M";  // not a rate, but every point sets it
  doc["sweep"] = {{"cluster.network.bandwidth", {"1Gbps", "10Gbps"}}};
  const Result overridden = run("validate " + write(dir, "overridden.json", doc.dump()));
  EXPECT_EQ(overridden.code, 0) << overridden.output;

  doc["cluster"]["network"]["latency"] = "5 parsecs";  // no point sets it
  const std::string kept = write(dir, "kept.json", doc.dump());
  const Result r = run("validate " + kept);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(kept + ": /cluster/network/latency: "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("/cluster/network/bandwidth"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(": 1 problem"), std::string::npos) << r.output;

  // K/V of width 8 (a model of 8 heads of 8, one K/V head): point 1's file holds a NaN.
  const std::string data = std::string(MOSS_TEST_DATA_DIR) + "/bad_activations/";
  nlohmann::json files = nlohmann::json::parse(kValid);
  files["model"] = {{"layers", 2}, {"d_model", 64}, {"heads", 8}, {"kv_heads", 1}, {"ffn_hidden", 256}, {"vocab", 1000}};
  files["compression"] = {{"method", "pca"}, {"rank_k", 2}, {"rank_v", 2}, {"activations", data + "narrow-pair.npy"}};
  files["sweep"] = {{"compression.activations", {data + "narrow-pair.npy", data + "nan-pair.npy"}}};
  const std::string swept = write(dir, "files.json", files.dump());
  const Result f = run("validate " + swept);
  EXPECT_EQ(f.code, 2) << f.output;
  EXPECT_NE(f.output.find(swept + ": /sweep/compression.activations: point 1 (compression.activations = "), std::string::npos) << f.output;
  EXPECT_NE(f.output.find("NaN"), std::string::npos) << f.output;
  EXPECT_NE(f.output.find(": 1 problem"), std::string::npos) << f.output;
  const Result note = run("sweep " + swept + " --out " + dir + "/out --no-cache");
  EXPECT_NE(note.output.find("will be recorded as invalid"), std::string::npos) << note.output;
  EXPECT_NE(note.output.find("NaN"), std::string::npos) << note.output;

  // The base's file, used by every point, is reported once, also where other points are invalid.
  files["compression"]["activations"] = data + "nan-pair.npy";
  files["sweep"] = {{"cluster.network.bandwidth", {"1Gbps", "TBD"}}};
  const std::string once_file = write(dir, "once.json", files.dump());
  const Result once = run("validate " + once_file);
  EXPECT_EQ(once.code, 2) << once.output;
  EXPECT_NE(once.output.find(once_file + ": /compression/activations: "), std::string::npos) << once.output;
  EXPECT_EQ(once.output.find("NaN"), once.output.rfind("NaN")) << once.output;
  EXPECT_NE(once.output.find(": 2 problems"), std::string::npos) << once.output;
  // A scenario that does not measure its compression never loads the file.
  files["simulation"] = {{"measure_compression", false}};
  files["sweep"] = {{"cluster.network.bandwidth", {"1Gbps", "2Gbps"}}};
  const std::string unmeasured = write(dir, "unmeasured.json", files.dump());
  const Result valid = run("validate " + unmeasured);
  EXPECT_EQ(valid.code, 0) << valid.output;
  const Result sweep = run("sweep " + unmeasured + " --out " + dir + "/unmeasured --no-cache");
  EXPECT_EQ(sweep.code, 0) << sweep.output;
  EXPECT_EQ(sweep.output.find("invalid"), std::string::npos) << sweep.output;
}

struct BadFile {
  const char* name;
  const char* content;
  const char* expected;  // regex the message must match
};

class CliBadScenario : public ::testing::TestWithParam<BadFile> {};

TEST_P(CliBadScenario, ExitsTwoAndNamesFileAndPath) {
  const std::string dir = temp_dir(GetParam().name);
  const std::string file = write(dir, std::string(GetParam().name) + ".json", GetParam().content);
  for (const std::string& cmd : {"validate " + file, "run " + file + " --out " + dir + "/out"}) {
    const Result r = run(cmd);
    EXPECT_EQ(r.code, 2) << cmd << r.output;
    EXPECT_NE(r.output.find(file), std::string::npos) << r.output;
    EXPECT_TRUE(std::regex_search(r.output, std::regex(GetParam().expected))) << r.output;
    EXPECT_FALSE(std::filesystem::exists(dir + "/out/summary.json")) << "no partial output";
  }
}

#define SCN(training, cluster, extra)                                                               \
  "{\"model\": {\"preset\": \"mos-800m\"}, \"training\": " training ", \"cluster\": " cluster extra "}"
#define GOOD_TRAINING "{\"seq_len\": 131072}"
#define GOOD_CLUSTER "{\"gpu\": \"A100-80GB\", \"nodes\": 8, \"network\": {\"bandwidth\": \"1Gbps\"}}"

INSTANTIATE_TEST_SUITE_P(
    Table, CliBadScenario,
    ::testing::Values(
        BadFile{"syntax", "{\"name\": \"x\",, }", "invalid JSON.*line 1"},
        BadFile{"not_object", "[1, 2, 3]", "expected an object"},
        BadFile{"rate_unit", SCN(GOOD_TRAINING, "{\"gpu\": \"A100-80GB\", \"nodes\": 8, \"network\": {\"bandwidth\": \"300M\"}}", ""),
                "/cluster/network/bandwidth.*300Mbps"},
        BadFile{"latency_unit", SCN(GOOD_TRAINING, "{\"gpu\": \"A100-80GB\", \"nodes\": 8, \"network\": {\"bandwidth\": \"1Gbps\", \"latency\": \"5 parsecs\"}}", ""),
                "/cluster/network/latency"},
        BadFile{"misspelled", SCN("{\"seq_len\": 131072, \"tokenz\": 5}", GOOD_CLUSTER, ""), "/training/tokenz.*did you mean \"tokens\""},
        BadFile{"zero_nodes", SCN(GOOD_TRAINING, "{\"gpu\": \"A100-80GB\", \"nodes\": 0, \"network\": {\"bandwidth\": \"1Gbps\"}}", ""),
                "/cluster/nodes"},
        BadFile{"gpu_typo", SCN(GOOD_TRAINING, "{\"gpu\": \"H100\", \"nodes\": 8, \"network\": {\"bandwidth\": \"1Gbps\"}}", ""),
                "/cluster/gpu"},
        BadFile{"context_mismatch", SCN(GOOD_TRAINING, GOOD_CLUSTER, ", \"parallelism\": {\"context\": 4, \"data\": 1}"),
                "/parallelism/context.*must equal"},
        BadFile{"rank_too_big", SCN(GOOD_TRAINING, GOOD_CLUSTER, ", \"compression\": {\"method\": \"mos\", \"rank_k\": 4096, \"rank_v\": 10}"),
                "/compression/rank_k"},
        BadFile{"quant_bits", SCN(GOOD_TRAINING, GOOD_CLUSTER, ", \"compression\": {\"method\": \"quant\", \"bits\": 3}"),
                "/compression/bits.*4 or 8"},
        BadFile{"missing_training", "{\"model\": {\"preset\": \"mos-800m\"}, \"cluster\": " GOOD_CLUSTER "}", "/training.*required"},
        BadFile{"negative_seq", SCN("{\"seq_len\": -5}", GOOD_CLUSTER, ""), "/training/seq_len"},
        BadFile{"too_big_model", "{\"model\": {\"preset\": \"llama3-70b\"}, \"training\": " GOOD_TRAINING ", \"cluster\": " GOOD_CLUSTER "}",
                "/cluster/gpu.*needs"},
        BadFile{"bad_backend", SCN(GOOD_TRAINING, GOOD_CLUSTER, ", \"simulation\": {\"backend\": \"omnet\"}"), "/simulation/backend"}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(Cli, MissingFileIsInvalidInput) {
  const Result r = run("run /nonexistent/scenario.json");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("no such file"), std::string::npos) << r.output;
}

TEST(Cli, UnknownFlagIsInvalidInput) { EXPECT_EQ(run("run --frobnicate x.json").code, 2); }

TEST(Cli, UnwritableOutputIsReported) {
  const std::string dir = temp_dir("unwritable");
  const std::string file = write(dir, "s.json", kValid);
  write(dir, "blocker", "a file where a directory should be");
  const Result r = run("run " + file + " --out " + dir + "/blocker/out");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("blocker"), std::string::npos) << r.output;
}

TEST(Sources, Ns3HeadersOnlyInTheNs3Folder) {
  const std::filesystem::path root(MOSS_SOURCE_DIR);
  const std::regex include_ns3(R"(#\s*include\s*[<"]ns3/)");
  for (const char* top : {"sim", "kernels", "tests"}) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(root / top)) {
      if (!e.is_regular_file()) continue;
      const auto ext = e.path().extension();
      if (ext != ".h" && ext != ".cpp" && ext != ".cu" && ext != ".cuh") continue;
      const std::string rel = std::filesystem::relative(e.path(), root).string();
      if (rel.rfind("sim/net/ns3/", 0) == 0) continue;
      std::ifstream in(e.path());
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      EXPECT_FALSE(std::regex_search(text, include_ns3)) << rel << " includes an ns-3 header";
    }
  }
}

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A scenario whose measurement is quick: pca on synthetic:llama with a short warm-up.
const char* kQuick = R"({
  "name": "cached", "model": {"preset": "mos-800m"},
  "training": {"seq_len": 131072, "tokens": 1e9},
  "cluster": {"gpu": "A100-80GB", "nodes": 8, "network": {"bandwidth": "300Mbps", "latency": "5ms"}},
  "parallelism": {"context": 8},
  "compression": {"method": "pca", "rank_k": 16, "rank_v": 16, "warmup_tokens": 1024},
  "sweep": {"cluster.network.bandwidth": ["300Mbps", "1Gbps", "10Gbps"]}})";

}  // namespace

// The second run of a scenario reads the compression figures the first one measured, and its
// summary.json is byte for byte the first one's (the cache's state is printed, never written there).
TEST(CliCache, ASecondRunReadsTheMeasurementsOfTheFirst) {
  const std::string dir = temp_dir("cache_run");
  const std::string file = write(dir, "s.json", kQuick);
  const std::string cache = " --cache-dir " + dir + "/cache";
  const Result first = run("run " + file + " --out " + dir + "/a" + cache);
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_NE(first.output.find("measurement cache           miss: measured now, stored in " + dir + "/cache/m-"),
            std::string::npos) << first.output;
  const Result second = run("run " + file + " --out " + dir + "/b" + cache);
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("measurement cache           hit: measured 20"), std::string::npos) << second.output;
  EXPECT_EQ(slurp(dir + "/a/summary.json"), slurp(dir + "/b/summary.json"));

  const Result no_cache = run("run " + file + " --out " + dir + "/c --no-cache --cache-dir " + dir + "/unused");
  ASSERT_EQ(no_cache.code, 0) << no_cache.output;
  EXPECT_EQ(no_cache.output.find("measurement cache"), std::string::npos) << no_cache.output;
  EXPECT_FALSE(std::filesystem::exists(dir + "/unused"));
  EXPECT_EQ(slurp(dir + "/a/summary.json"), slurp(dir + "/c/summary.json"));

  const Result info = run("cache" + cache);
  EXPECT_EQ(info.code, 0) << info.output;
  EXPECT_NE(info.output.find("measurement cache: " + dir + "/cache\n  1 entry, "), std::string::npos) << info.output;
  const Result clear = run("cache clear" + cache);
  EXPECT_EQ(clear.code, 0) << clear.output;
  EXPECT_NE(clear.output.find("removed 1 entry"), std::string::npos) << clear.output;
  EXPECT_NE(run("cache" + cache).output.find("0 entries"), std::string::npos);
}

// A resumed or repeated sweep measures nothing it has measured before, and its rows are the same.
TEST(CliCache, ARepeatedSweepMeasuresNothing) {
  const std::string dir = temp_dir("cache_sweep");
  const std::string file = write(dir, "s.json", kQuick);
  const std::string cache = " --progress none --jobs 1 --cache-dir " + dir + "/cache";
  const Result first = run("sweep " + file + " --out " + dir + "/a" + cache);
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_NE(first.output.find("compression figures of 2 points read from the measurement cache, 1 measured and stored"),
            std::string::npos) << first.output;
  const Result second = run("sweep " + file + " --out " + dir + "/b" + cache);
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("compression figures of 3 points read from the measurement cache, 0 measured and stored"),
            std::string::npos) << second.output;
  EXPECT_EQ(slurp(dir + "/a/summary.jsonl"), slurp(dir + "/b/summary.jsonl"));
  const Result no_cache = run("sweep " + file + " --out " + dir + "/c --no-cache" + cache);
  ASSERT_EQ(no_cache.code, 0) << no_cache.output;
  EXPECT_EQ(no_cache.output.find("measurement cache"), std::string::npos) << no_cache.output;
  EXPECT_EQ(slurp(dir + "/a/summary.jsonl"), slurp(dir + "/c/summary.jsonl"));
  EXPECT_NE(run("cache --cache-dir " + dir + "/cache").output.find("1 entry"), std::string::npos);
}

TEST(CliCache, BadOrDisabledCacheDirectories) {
  const std::string dir = temp_dir("cache_bad");
  const std::string file = write(dir, "s.json", kQuick);
  const Result not_dir = run("run " + file + " --out " + dir + "/o --cache-dir " + file);
  EXPECT_EQ(not_dir.code, 2) << not_dir.output;
  EXPECT_NE(not_dir.output.find("--cache-dir: \"" + file + "\" is not a directory"), std::string::npos) << not_dir.output;
  EXPECT_EQ(run("cache clear --cache-dir " + file).code, 2);
  EXPECT_EQ(run("cache frobnicate").code, 2);
  // Every test runs with MOSS_CACHE_DIR=off (tests/support/hermetic_env.cpp).
  const Result off = run("cache");
  EXPECT_EQ(off.code, 0) << off.output;
  EXPECT_NE(off.output.find("measurement cache: off"), std::string::npos) << off.output;
  // A cache that cannot be written: the run completes, with a note.
  write(dir, "blocker", "x");
  const Result unwritable = run("run " + file + " --out " + dir + "/u --cache-dir " + dir + "/blocker/cache");
  EXPECT_EQ(unwritable.code, 0) << unwritable.output;
  EXPECT_NE(unwritable.output.find("note: the compression measurement was not cached: cannot create"), std::string::npos)
      << unwritable.output;
  EXPECT_TRUE(std::filesystem::exists(dir + "/u/summary.json"));
}

namespace {
const char* kUncompressed = R"({
  "name": "quick", "model": {"preset": "mos-800m"},
  "training": {"seq_len": 131072, "tokens": 1e9},
  "cluster": {"gpu": "A100-80GB", "nodes": 8, "network": {"bandwidth": "300Mbps", "latency": "5ms"}},
  "parallelism": {"context": 8}})";

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
}  // namespace

// A run that cannot write its outputs (here: past a file size limit, as on a full disk) fails and
// leaves the earlier run's results as they were, without temporaries.
TEST(Cli, AFailedRunKeepsTheEarlierResults) {
  const std::string dir = temp_dir("failed_write");
  const std::string first = write(dir, "first.json", kUncompressed);
  std::string second_text = kUncompressed;
  second_text.replace(second_text.find("300Mbps"), 7, "100Gbps");
  const std::string second = write(dir, "second.json", second_text);
  ASSERT_EQ(run("run " + first + " --out " + dir + "/o").code, 0);
  const std::string summary = read_all(dir + "/o/summary.json");
  ASSERT_NE(summary.find("\"tokens_per_second\""), std::string::npos);
  // sh's ulimit -f: at most a few KiB per file (the trace and results.h5 are larger).
  const Result r = shell("sh -c 'ulimit -f 4; exec " + std::string(MOSS_BINARY) + " run " + second + " --out " + dir + "/o' 2>&1");
  const std::string& out = r.output;
  EXPECT_EQ(r.code, 1) << "-1: killed by a signal\n" << out;
  EXPECT_NE(out.find("write failed"), std::string::npos) << out;
  EXPECT_EQ(read_all(dir + "/o/summary.json"), summary) << "the earlier summary must survive";
  for (const auto& entry : std::filesystem::directory_iterator(dir + "/o"))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
}

// moss run never replaces the scenario it reads (unless it is its own scenario.json, unchanged), nor
// a sweep's results; moss sweep never replaces a run's.
TEST(Cli, OutputsNeverReplaceTheInputOrAnotherCommandsResults) {
  const std::string dir = temp_dir("own_output");
  std::filesystem::create_directories(dir + "/o");
  const std::string inside = write(dir + "/o", "scenario.json", kUncompressed);
  Result r = run("run " + inside + " --out " + dir + "/o");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("which moss run would replace"), std::string::npos) << r.output;
  EXPECT_EQ(read_all(inside), kUncompressed);

  const std::string plain = write(dir, "s.json", kUncompressed);
  ASSERT_EQ(run("run " + plain + " --out " + dir + "/p").code, 0);
  const std::string own = read_all(dir + "/p/scenario.json");
  r = run("run " + dir + "/p/scenario.json --out " + dir + "/p");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_all(dir + "/p/scenario.json"), own);

  std::string sweep_text = kUncompressed;
  sweep_text.insert(sweep_text.rfind('}'), R"(, "sweep": {"cluster.network.bandwidth": ["1Gbps"]})");
  const std::string sweep = write(dir, "sweep.json", sweep_text);
  r = run("sweep " + sweep + " --out " + dir + "/p");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("holds a run's results (summary.json)"), std::string::npos) << r.output;
  ASSERT_EQ(run("sweep " + sweep + " --out " + dir + "/s").code, 0);
  r = run("run " + plain + " --out " + dir + "/s");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("holds a sweep's results (sweep.json)"), std::string::npos) << r.output;
}

// A run's scenario.json names the files the run read by their absolute paths, so it runs again from
// the output folder (a copy with the scenario's relative calibration path could not); --no-trace
// lists no trace among the outputs and leaves none of an earlier run beside the new summary.
TEST(Cli, ARunsScenarioCopyRunsAgainFromItsOutputFolder) {
  const std::string dir = temp_dir("copy_reruns");
  std::filesystem::create_directories(dir + "/calibration");
  std::filesystem::copy_file(std::string(MOSS_SOURCE_DIR) + "/scenarios/calibration/kjv-small.json", dir + "/calibration/cal.json");
  std::string text = kValid;
  text.insert(text.rfind('}'), R"(, "convergence": {"efficiency": {"compression": {"source": "measured", "file": "calibration/cal.json"}}})");
  const std::string file = write(dir, "s.json", text);
  Result r = run("run " + file + " --out " + dir + "/out --json");
  ASSERT_EQ(r.code, 0) << r.output;
  const double eta = nlohmann::json::parse(read_all(dir + "/out/summary.json")).at("statistical_efficiency");
  const auto copy = nlohmann::json::parse(read_all(dir + "/out/scenario.json"));
  EXPECT_EQ(copy["convergence"]["efficiency"]["compression"]["file"], std::filesystem::absolute(dir + "/calibration/cal.json").lexically_normal().string());
  EXPECT_FALSE(copy["compression"].contains("activations"));  // a field the scenario leaves out stays out
  r = run("run " + dir + "/out/scenario.json --out " + dir + "/again --no-trace");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(read_all(dir + "/again/summary.json")).at("statistical_efficiency"), eta);
  EXPECT_NE(r.output.find("again/{summary.json,results.h5}"), std::string::npos) << r.output;
  ASSERT_TRUE(std::filesystem::exists(dir + "/out/trace.json"));
  ASSERT_EQ(run("run " + file + " --out " + dir + "/out --no-trace").code, 0);
  EXPECT_FALSE(std::filesystem::exists(dir + "/out/trace.json"));
}

// A scenario's name longer than a folder name may be (255 bytes) still gets its default output
// folder: the first 100 characters and a hash of the whole name.
TEST(Cli, ALongScenarioNameStillGetsItsOutputFolder) {
  const std::string dir = temp_dir("long_name");
  std::string text = kUncompressed;
  const std::string name(300, 'n');
  text.replace(text.find("\"quick\""), 7, "\"" + name + "\"");
  write(dir, "s.json", text);
  const Result r = shell("cd " + dir + " && " + std::string(MOSS_BINARY) + " run s.json --no-trace 2>&1");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string expect = dir + "/results/" + name.substr(0, 100) + "-";
  bool found = false;
  for (const auto& entry : std::filesystem::directory_iterator(dir + "/results"))
    found = found || (entry.path().string().rfind(expect, 0) == 0 && std::filesystem::exists(entry.path() / "summary.json"));
  EXPECT_TRUE(found) << r.output;
}

// Names that differ only in characters a folder name cannot hold ("a/b", "a_b") get folders of
// their own: the second run must not replace the first's results.
TEST(Cli, ScenarioNamesThatDifferOnlyInOddCharactersKeepTheirOwnFolders) {
  const std::string dir = temp_dir("odd_names");
  for (const char* name : {"a/b", "a_b", "a b"}) {
    std::string text = kUncompressed;
    text.replace(text.find("\"quick\""), 7, std::string("\"") + name + "\"");
    write(dir, "s.json", text);
    const Result r = shell("cd " + dir + " && " + std::string(MOSS_BINARY) + " run s.json --no-trace 2>&1");
    ASSERT_EQ(r.code, 0) << r.output;
  }
  std::vector<std::string> folders;
  for (const auto& entry : std::filesystem::directory_iterator(dir + "/results")) {
    ASSERT_TRUE(std::filesystem::exists(entry.path() / "summary.json")) << entry.path();
    folders.push_back(entry.path().filename().string());
  }
  std::sort(folders.begin(), folders.end());
  ASSERT_EQ(folders.size(), 3u);
  EXPECT_EQ(folders[0], "a_b");  // already a folder name: kept as it is
  EXPECT_EQ(folders[1].rfind("a_b-", 0), 0u);
  EXPECT_EQ(folders[2].rfind("a_b-", 0), 0u);
}

// A scenario with a sweep block: moss run runs its base values and says so; when every point is
// valid but the base is not (a field every point sets), validate passes and notes that run would refuse it.
TEST(Cli, ASweepScenarioNamesWhatRunAndValidateJudge) {
  const std::string dir = temp_dir("sweep_base");
  std::string text = kUncompressed;
  text.insert(text.rfind('}'), R"(, "sweep": {"cluster.network.bandwidth": ["1Gbps", "10Gbps"]})");
  const Result ran = run("run " + write(dir, "s.json", text) + " --out " + dir + "/o --no-trace");
  ASSERT_EQ(ran.code, 0) << ran.output;
  EXPECT_NE(ran.output.find("has a sweep block; moss run runs the base values only"), std::string::npos) << ran.output;
  text.replace(text.find("\"300Mbps\""), 9, "\"TBD\"");
  const std::string tbd = write(dir, "tbd.json", text);
  const Result valid = run("validate " + tbd);
  EXPECT_EQ(valid.code, 0) << valid.output;
  EXPECT_NE(valid.output.find("without its sweep block the scenario is not valid on its own"), std::string::npos) << valid.output;
  EXPECT_NE(valid.output.find("/cluster/network/bandwidth"), std::string::npos) << valid.output;
  EXPECT_EQ(run("run " + tbd + " --out " + dir + "/t --no-trace").code, 2);
}

// `moss compress` on the data and parameters of a scenario gives the scenario's figures exactly: the
// same tokens are measured for every method (after the warm-up, topk's too) and K and V are fitted
// with the seeds the scenario uses (V's differed, and topk was measured on the warm-up's tokens).
TEST(Cli, CompressGivesAScenariosFiguresOnTheSameData) {
  const std::string dir = temp_dir("compress_vs_run");
  const std::string base = R"({"name": "small", "model": {"layers": 2, "d_model": 256, "heads": 4, "kv_heads": 4,
    "ffn_hidden": 1024, "vocab": 32000, "tied_embeddings": true},
    "training": {"seq_len": 8192, "tokens": 1e9},
    "cluster": {"gpu": "A100-80GB", "nodes": 4, "network": {"bandwidth": "1Gbps", "latency": "1ms"}},
    "parallelism": {"context": 4}, "simulation": {"seed": 3}, "compression": )";
  // topk fits nothing and takes no warmup_tokens: it skips the default 4096.
  const std::pair<const char*, const char*> cases[] = {
      {R"({"method": "pca", "rank_k": 8, "rank_v": 24, "activations": "synthetic:llama", "warmup_tokens": 2048})",
       "--warmup 2048 --method pca --rank-k 8 --rank-v 24"},
      {R"({"method": "topk", "fraction": 0.1, "activations": "synthetic:llama"})", "--warmup 4096 --method topk --fraction 0.1"}};
  for (const auto& [compression, flags] : cases) {
    const std::string scenario = write(dir, "s.json", base + compression + "}");
    const Result ran = shell("MOSS_CACHE_DIR=off " + std::string(MOSS_BINARY) + " run " + scenario + " --out " + dir +
                             "/o --no-trace --json 2>/dev/null");
    ASSERT_EQ(ran.code, 0) << ran.output;
    const nlohmann::json figures = nlohmann::json::parse(ran.output).at("compression");
    // With a GPU the scenario measures there (cuBLAS, errors within ~5e-3 of the CPU's), compress on the CPU.
    if (figures.at("source").get<std::string>().find("cpu (") == std::string::npos)
      GTEST_SKIP() << "the scenario measured on a GPU: " << figures.at("source");
    // The scenario's sample: a chunk of 8192 / 4 = 2048 tokens, at most 1024 measured, after the warm-up.
    const Result compressed = run("compress --synthetic llama,dim=256,tokens=1024 --seed 3 " + std::string(flags) + " --json");
    ASSERT_EQ(compressed.code, 0) << compressed.output;
    const nlohmann::json tensors = nlohmann::json::parse(compressed.output).at("tensors");
    EXPECT_DOUBLE_EQ(figures.at("relative_error_k").get<double>(), tensors.at(0).at("relative_error").get<double>()) << flags;
    EXPECT_DOUBLE_EQ(figures.at("relative_error_v").get<double>(), tensors.at(1).at("relative_error").get<double>()) << flags;
  }
}

// A resumed sweep whose activation file was rewritten since its points ran would mix figures of two
// versions of the data under one source: it is refused, naming the file.
TEST(Cli, AResumedSweepRefusesAChangedActivationFile) {
  const std::string dir = temp_dir("sweep_changed_file");
  const auto write_pair = [&](float scale) {  // [2, 256, 64] float32: K and V of one layer
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 256, 64), }";
    while ((10 + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::ofstream out(dir + "/kv.npy", std::ios::binary);
    out.write("\x93NUMPY\x01\x00", 8);
    out.put(static_cast<char>(header.size() & 0xff)).put(static_cast<char>(header.size() >> 8));
    out << header;
    for (int i = 0; i < 2 * 256 * 64; ++i) {
      const float v = scale * static_cast<float>(std::sin(0.37 * i) + std::cos(0.011 * i * (i % 7)));
      out.write(reinterpret_cast<const char*>(&v), sizeof v);
    }
  };
  write_pair(1.0f);
  const std::string scenario = write(dir, "s.json", R"({"name": "files", "model": {"layers": 2, "d_model": 64, "heads": 2,
    "kv_heads": 2, "ffn_hidden": 256, "vocab": 1000, "tied_embeddings": true},
    "training": {"seq_len": 512, "tokens": 1e8},
    "cluster": {"gpu": "A100-80GB", "nodes": 4, "network": {"bandwidth": "1Gbps", "latency": "1ms"}},
    "parallelism": {"context": 4},
    "compression": {"method": "pca", "rank_k": 4, "rank_v": 4, "activations": "kv.npy"},
    "sweep": {"compression.rank_k": [2, 4]}})");
  const std::string sweep = "MOSS_CACHE_DIR=off " + std::string(MOSS_BINARY) + " sweep " + scenario + " --out " + dir + "/o";
  const Result first = shell(sweep + " 2>&1");
  ASSERT_EQ(first.code, 0) << first.output;
  const Result same = shell(sweep + " --resume 2>&1");
  EXPECT_EQ(same.code, 0) << same.output;
  write_pair(2.0f);  // the same shape and size, other values
  const Result changed = shell(sweep + " --resume 2>&1");
  EXPECT_EQ(changed.code, 2) << changed.output;
  EXPECT_NE(changed.output.find("activation file kv.npy was rewritten"), std::string::npos) << changed.output;
  // Resumed from another directory (the scenario named relative to it): the same files, no refusal.
  write_pair(1.0f);
  const std::string fresh = "MOSS_CACHE_DIR=off " + std::string(MOSS_BINARY) + " sweep s.json --out o2";
  ASSERT_EQ(shell("cd " + dir + " && " + fresh + " 2>&1").code, 0);
  const Result elsewhere = shell("cd " + dir + "/.. && MOSS_CACHE_DIR=off " + std::string(MOSS_BINARY) + " sweep " + dir +
                                 "/s.json --out " + dir + "/o2 --resume 2>&1");
  EXPECT_EQ(elsewhere.code, 0) << elsewhere.output;
}

// A sweep's manifest or journal that is not a regular file (a FIFO blocked the read for ever, a link
// to /dev/zero grew memory without bound) is refused by name.
TEST(Cli, ASweepRefusesJournalsThatAreNotFiles) {
  const std::string dir = temp_dir("sweep_fifo");
  std::string text = kUncompressed;
  text.insert(text.rfind('}'), R"(, "sweep": {"cluster.network.bandwidth": ["1Gbps", "10Gbps"]})");
  const std::string s = write(dir, "s.json", text);
  ASSERT_EQ(run("sweep " + s + " --out " + dir + "/o").code, 0);
  const std::string journal = dir + "/o/journal/rank-0.jsonl";
  ASSERT_TRUE(std::filesystem::exists(journal));
  std::filesystem::rename(journal, dir + "/saved.jsonl");
  ASSERT_EQ(::mkfifo(journal.c_str(), 0600), 0);
  Result r = shell("timeout 60 " + std::string(MOSS_BINARY) + " sweep " + s + " --out " + dir + "/o --resume 2>&1");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("rank-0.jsonl: is not a regular file"), std::string::npos) << r.output;
  std::filesystem::remove(journal);
  std::filesystem::create_symlink("/dev/zero", dir + "/o/journal/rank-1.jsonl");
  r = shell("timeout 60 " + std::string(MOSS_BINARY) + " sweep " + s + " --out " + dir + "/o --resume 2>&1");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("rank-1.jsonl: is not a regular file"), std::string::npos) << r.output;
  std::filesystem::remove(dir + "/o/journal/rank-1.jsonl");
  std::filesystem::rename(dir + "/o/sweep.json", dir + "/saved.json");
  ASSERT_EQ(::mkfifo((dir + "/o/sweep.json").c_str(), 0600), 0);
  r = shell("timeout 60 " + std::string(MOSS_BINARY) + " sweep " + s + " --out " + dir + "/o --resume 2>&1");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("sweep.json: is not a regular file"), std::string::npos) << r.output;
}
