// The sweep's point check (moss/sweep/point_check.h): which swept field a point's problem is laid
// on, one report per distinct problem, and the value-by-value check of large sweeps.
#include <gtest/gtest.h>

#include <string>

#include "moss/sweep/point_check.h"
#include "moss/sweep/sweep_plan.h"

namespace {

using moss::Problem;
using moss::sweep::SweepPlan;
using moss::sweep::check_sweep_points;

nlohmann::json scenario_with(const nlohmann::json& sweep) {
  nlohmann::json doc = nlohmann::json::parse(R"({
    "model": {"preset": "mos-800m"},
    "training": {"seq_len": 131072},
    "cluster": {"gpu": "A100-80GB", "nodes": 8, "network": {"bandwidth": "1Gbps"}},
    "compression": {"method": "quant", "bits": 4}
  })");
  doc["sweep"] = sweep;
  return doc;
}

std::vector<Problem> problems_of(const nlohmann::json& doc, std::size_t max_points = moss::sweep::kMaxCheckedPoints) {
  return check_sweep_points(doc, SweepPlan::from_json(doc["sweep"], "s.json"), "s.json", max_points).problems;
}

TEST(PointCheck, AValidSweepHasNoProblem) {
  EXPECT_TRUE(problems_of(scenario_with({{"compression.bits", {4, 8}}, {"cluster.network.bandwidth", {"1Gbps", "10Gbps"}}})).empty());
}

TEST(PointCheck, ABadValueIsLaidOnItsSweptFieldWithThePoint) {
  const auto problems = problems_of(scenario_with({{"cluster.network.bandwidth", {"1Gbps", "10Gbps"}}, {"compression.bits", {4, 3}}}));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].file, "s.json");
  EXPECT_EQ(problems[0].pointer, "/sweep/compression.bits");
  // Points 1 and 3 (bits varies fastest) have it: the first is named, the other counted.
  EXPECT_EQ(problems[0].message.rfind("point 1 (cluster.network.bandwidth = \"1Gbps\", compression.bits = 3): /compression/bits: ", 0), 0u)
      << problems[0].message;
  EXPECT_NE(problems[0].message.find("4 or 8"), std::string::npos) << problems[0].message;
  EXPECT_NE(problems[0].message.find("(and 1 more point)"), std::string::npos) << problems[0].message;
}

TEST(PointCheck, AnUnknownSweptKeyIsReported) {
  const auto problems = problems_of(scenario_with({{"compression.bitz", {4}}}));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].pointer, "/sweep/compression.bitz");
  EXPECT_NE(problems[0].message.find("/compression/bitz"), std::string::npos) << problems[0].message;
}

TEST(PointCheck, ACrossFieldProblemIsLaidOnTheSweep) {
  // 6 nodes cannot hold a context of 8 (the base's default context is its node count, 8, here kept).
  nlohmann::json doc = scenario_with({{"cluster.nodes", {8, 6}}});
  doc["parallelism"] = {{"context", 8}};
  const auto problems = problems_of(doc);
  ASSERT_FALSE(problems.empty());
  for (const Problem& p : problems) {
    EXPECT_TRUE(p.pointer == "/sweep" || p.pointer == "/sweep/cluster.nodes") << p.pointer;
    EXPECT_EQ(p.message.rfind("point 1 (cluster.nodes = 6): ", 0), 0u) << p.message;
  }
}

TEST(PointCheck, AZipGroupsFieldIsLaidOnTheZip) {
  const auto problems = problems_of(scenario_with({{"zip", {{"compression.bits", {4, 3}}, {"cluster.network.bandwidth", {"1Gbps", "2Gbps"}}}}}));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].pointer, "/sweep/zip");
}

TEST(PointCheck, APathThroughAValueThatIsNotAnObjectIsLaidOnItsField) {
  const auto problems = problems_of(scenario_with({{"cluster.gpu.name", {"H200"}}}));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].pointer, "/sweep/cluster.gpu.name");
  EXPECT_NE(problems[0].message.find("crosses a value that is not an object"), std::string::npos) << problems[0].message;
}

TEST(PointCheck, ALargeSweepIsCheckedValueByValue) {
  // 3 x 3 points, at most 4 checked: each value of each axis with the other at its first (5 points).
  const nlohmann::json doc = scenario_with({{"cluster.network.bandwidth", {"1Gbps", "2Gbps", "3Gbps"}}, {"compression.bits", {4, 8, 3}}});
  const auto check = check_sweep_points(doc, SweepPlan::from_json(doc["sweep"], "s.json"), "s.json", 4);
  EXPECT_FALSE(check.every_point);
  EXPECT_EQ(check.points_checked, 5u);
  const auto& problems = check.problems;
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].message.rfind("point 2 (", 0), 0u) << problems[0].message;
  EXPECT_EQ(problems[0].message.find("more points"), std::string::npos) << "only one checked point has bits = 3";
  const auto all = problems_of(doc);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_NE(all[0].message.find("(and 2 more points)"), std::string::npos) << all[0].message;
}

// The base is never run, only its points: a base value every point overrides is no problem, and
// one every point keeps (no swept field causes it) is reported once, at its own path.
TEST(PointCheck, TheBaseIsJudgedByItsPoints) {
  nlohmann::json overridden = scenario_with({{"compression.bits", {4, 8}}});
  overridden["compression"]["bits"] = 3;
  EXPECT_TRUE(problems_of(overridden).empty());

  nlohmann::json kept = scenario_with({{"cluster.network.bandwidth", {"1Gbps", "10Gbps"}}});
  kept["compression"]["bits"] = 3;
  const auto check = check_sweep_points(kept, SweepPlan::from_json(kept["sweep"], "s.json"), "s.json");
  ASSERT_EQ(check.problems.size(), 1u);
  EXPECT_EQ(check.problems[0].pointer, "/sweep");
  EXPECT_EQ(check.points[0], 2u);
  const auto reported = moss::sweep::reported_problems(check);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0].pointer, "/compression/bits");
  EXPECT_EQ(reported[0].message.find("point"), std::string::npos) << reported[0].message;
}

// An activation file's problem depends on the file and on the datasets chosen in it: it is laid on
// whichever of the two is swept.
TEST(PointCheck, AnActivationFilesProblemIsLaidOnASweptDatasetsOrFile) {
  const nlohmann::json block = {{"compression.datasets.k", {"cache/k", "cache/nope"}}};
  const auto on_datasets = moss::sweep::point_problems({{"s.json", "/compression/activations", "\"kv.h5\": /cache/nope: no such dataset"}}, 1,
                                                       {{"compression.datasets.k", "cache/nope"}}, block, "s.json");
  ASSERT_EQ(on_datasets.size(), 1u);
  EXPECT_EQ(on_datasets[0].pointer, "/sweep/compression.datasets.k");
  const nlohmann::json files = {{"compression.activations", {"kv.h5", "kv.npy"}}};
  const auto on_file = moss::sweep::point_problems({{"s.json", "/compression/datasets", "names HDF5 datasets, but ..."}}, 1,
                                                   {{"compression.activations", "kv.npy"}}, files, "s.json");
  ASSERT_EQ(on_file.size(), 1u);
  EXPECT_EQ(on_file[0].pointer, "/sweep/compression.activations");
  const auto elsewhere = moss::sweep::point_problems({{"s.json", "/compression/bits", "expected 4 or 8"}}, 1,
                                                     {{"compression.activations", "kv.npy"}}, files, "s.json");
  ASSERT_EQ(elsewhere.size(), 1u);
  EXPECT_EQ(elsewhere[0].pointer, "/sweep");
}

}  // namespace
