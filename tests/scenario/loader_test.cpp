#include "moss/scenario/loader.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace moss::scenario {

using nlohmann::json;

json minimal() {
  return json::parse(R"({
    "name": "t",
    "model": {"preset": "mos-800m"},
    "training": {"seq_len": 131072, "tokens": 1e9},
    "cluster": {"gpu": "A100-80GB", "nodes": 8,
                "network": {"bandwidth": "300Mbps", "latency": "5ms"}},
    "parallelism": {"context": 8},
    "compression": {"method": "mos", "rank_k": 40, "rank_v": 100}
  })");
}

std::vector<std::string> pointers(const json& doc) {
  std::vector<std::string> out;
  for (const auto& p : validate_scenario(doc, "x.json")) out.push_back(p.pointer);
  return out;
}

TEST(Loader, MinimalScenarioParsesWithDefaults) {
  const Scenario s = parse_scenario(minimal(), "x.json");
  EXPECT_EQ(s.model.layers, 8);
  EXPECT_DOUBLE_EQ(s.cluster.network.bandwidth_bps, 300e6);
  EXPECT_DOUBLE_EQ(s.cluster.network.latency_s, 5e-3);
  EXPECT_EQ(s.cluster.network.topology, TopologyKind::kRing);
  EXPECT_EQ(s.parallelism.partition, Partition::kZigzag);
  EXPECT_EQ(s.compression.method, "mos");
  EXPECT_EQ(s.convergence.compression.source, "assumed");
  EXPECT_TRUE(s.convergence.compression.defaulted);
}

TEST(Loader, EveryShippedScenarioIsValid) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(MOSS_SOURCE_DIR) + "/scenarios")) {
    const auto path = entry.path();
    if (path.extension() != ".json" || path.filename() == "hardware.json" || path.filename() == "models.json") continue;
    const json doc = read_json_file(path.string());
    const auto problems = validate_scenario(doc, path.string());
    EXPECT_TRUE(problems.empty()) << path << ": " << (problems.empty() ? "" : problems.front().to_string());
    ++count;
  }
  EXPECT_GE(count, 4);
}

struct BadCase {
  const char* name;
  const char* dotted;  // set this path ...
  const char* value;   // ... to this JSON value
  const char* pointer; // expected JSON pointer of a problem
};

class BadScenario : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadScenario, ReportsTheRightPointer) {
  json doc = minimal();
  set_dotted(doc, GetParam().dotted, json::parse(GetParam().value));
  const auto ps = pointers(doc);
  EXPECT_NE(std::find(ps.begin(), ps.end(), GetParam().pointer), ps.end())
      << GetParam().name << ": got " << (ps.empty() ? "no problem" : ps.front());
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadScenario,
    ::testing::Values(
        BadCase{"rate_without_unit", "cluster.network.bandwidth", "\"300M\"", "/cluster/network/bandwidth"},
        BadCase{"rate_as_number", "cluster.network.bandwidth", "300000000", "/cluster/network/bandwidth"},
        BadCase{"parsecs", "cluster.network.latency", "\"5 parsecs\"", "/cluster/network/latency"},
        BadCase{"negative_nodes", "cluster.nodes", "-8", "/cluster/nodes"},
        BadCase{"billion_nodes", "cluster.nodes", "1000000000", "/cluster/nodes"},
        BadCase{"unknown_gpu", "cluster.gpu", "\"A100-80G\"", "/cluster/gpu"},
        BadCase{"misspelled_key", "training.seq_length", "131072", "/training/seq_length"},
        BadCase{"nodes_vs_context", "parallelism.context", "4", "/parallelism/context"},
        BadCase{"rank_too_big", "compression.rank_k", "5000", "/compression/rank_k"},
        BadCase{"bad_method", "compression.method", "\"mosk\"", "/compression/method"},
        BadCase{"huge_sequence", "training.seq_len", "1e15", "/training/seq_len"},
        BadCase{"nan_loss", "cluster.network.loss", "\"NaN\"", "/cluster/network/loss"},
        BadCase{"loss_above_half", "cluster.network.loss", "0.9", "/cluster/network/loss"},
        BadCase{"zero_bandwidth", "cluster.network.bandwidth", "\"0Gbps\"", "/cluster/network/bandwidth"},
        BadCase{"bad_topology", "cluster.network.topology", "\"torus\"", "/cluster/network/topology"},
        BadCase{"link_not_in_ring", "cluster.network.links", "[{\"from\": 0, \"to\": 4, \"bandwidth\": \"1Gbps\"}]",
                "/cluster/network/links/0"},
        BadCase{"fraction_with_mos", "compression.fraction", "0.1", "/compression/fraction"},
        BadCase{"seq_not_divisible", "training.seq_len", "131000", "/training/seq_len"},
        BadCase{"does_not_fit", "model.preset", "\"llama3-70b\"", "/cluster/gpu"},
        BadCase{"mtu_tiny", "cluster.network.mtu", "100", "/cluster/network/mtu"},
        BadCase{"tokens_and_loss", "training.target_loss", "3.0", "/training/target_loss"},
        BadCase{"unreachable_loss", "training", "{\"seq_len\": 131072, \"target_loss\": 1.0}", "/training/target_loss"},
        BadCase{"model_not_object", "model", "\"mos-800m\"", "/model"},
        BadCase{"backend", "simulation.backend", "\"omnet\"", "/simulation/backend"}),
    [](const auto& case_info) { return std::string(case_info.param.name); });

TEST(Loader, ReportsEveryProblemAtOnce) {
  json doc = minimal();
  set_dotted(doc, "cluster.network.bandwidth", "300M");
  set_dotted(doc, "cluster.network.latency", "5");
  set_dotted(doc, "training.tokenz", 5);
  EXPECT_EQ(pointers(doc).size(), 3u);
}

TEST(Loader, SuggestsTheClosestKey) {
  json doc = minimal();
  set_dotted(doc, "cluster.network.bandwith", "1Gbps");
  const auto problems = validate_scenario(doc, "x.json");
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems.front().message.find("did you mean \"bandwidth\""), std::string::npos) << problems.front().message;
  EXPECT_EQ(problems.front().file, "x.json");
}

TEST(Loader, CustomTopologyMustConnectEveryNode) {
  json doc = minimal();
  set_dotted(doc, "cluster.network.topology", "custom");
  set_dotted(doc, "cluster.network.links", json::parse(R"([{"from":0,"to":1},{"from":1,"to":2},{"from":2,"to":3},
      {"from":3,"to":4},{"from":4,"to":5},{"from":5,"to":6}])"));
  const auto ps = pointers(doc);
  EXPECT_NE(std::find(ps.begin(), ps.end(), "/cluster/network/links"), ps.end());
}

TEST(Loader, SyntaxErrorNamesTheFile) {
  const std::string path = ::testing::TempDir() + "/broken.json";
  { std::ofstream(path) << "{\"name\": \"x\",,}"; }
  try {
    (void)read_json_file(path);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.problems().front().file, path);
    EXPECT_NE(std::string(e.what()).find("line 1"), std::string::npos) << e.what();
  }
}

TEST(Loader, RepeatedKeysAreNamedByPointerNotSilentlyDropped) {
  const std::string path = ::testing::TempDir() + "/repeated.json";
  // A repeat inside an object inside an array, one under a key needing escapes, and keys that are
  // equal only in other objects (not repeats).
  { std::ofstream(path) << R"({"a": [1, {"b": 1, "b": 2}, [{"c~/": 1, "c~/": 2}]], "d": {"b": 1}, "e": {"b": 2}})"; }
  try {
    (void)read_json_file(path);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    ASSERT_EQ(e.problems().size(), 2u) << e.what();
    EXPECT_EQ(e.problems()[0].file, path);
    EXPECT_EQ(e.problems()[0].pointer, "/a/1/b");
    EXPECT_EQ(e.problems()[1].pointer, "/a/2/0/c~0~1");
    EXPECT_NE(e.problems()[0].message.find("repeats a key"), std::string::npos) << e.what();
  }
  { std::ofstream(path) << R"({"d": {"b": 1}, "e": {"b": [{"b": 1}, {"b": 2}]}})"; }
  EXPECT_EQ(read_json_file(path).at("e").at("b").size(), 2u);
}

TEST(SetDotted, CreatesObjectsOnTheWay) {
  json doc = json::object();
  set_dotted(doc, "a.b.c", 3);
  EXPECT_EQ(doc["a"]["b"]["c"], 3);
  EXPECT_THROW(set_dotted(doc, "a.b.c.d", 1), InputError);
}

}  // namespace moss::scenario
