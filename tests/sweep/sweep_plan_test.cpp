#include "moss/sweep/sweep_plan.h"

#include <gtest/gtest.h>

#include "moss/core/error.h"
#include "moss/sweep/range.h"

namespace moss::sweep {
namespace {

using nlohmann::json;

std::vector<json> expand(const std::string& text) { return expand_range(text, "s.json", "/sweep/x"); }

TEST(SweepRange, ExpandsTable) {
  struct Case {
    const char* text;
    std::vector<json> values;
  };
  const Case cases[] = {
      {"300Mbps..100Gbps x2 log", {"300Mbps", "100Gbps"}},
      {"1Gbps..100Gbps x3 log", {"1Gbps", "10Gbps", "100Gbps"}},
      {"1ms..100ms x3 log", {"1ms", "10ms", "100ms"}},
      {"100us..1s x5 log", {"100us", "1ms", "10ms", "100ms", "1s"}},
      {"8..64 x4 log", {8, 16, 32, 64}},
      {"1..3 x5", {1, 2, 3}},  // integer ends: rounded, repeats dropped
      {"0.1..0.5 x5 lin", {0.1, 0.2, 0.3, 0.4, 0.5}},
      {"10MB/s..1GB/s x3 log", {"10MB/s", "100MB/s", "1GB/s"}},
      {"5..5 x1", {5}},
      {"1.072Gbps..1072Mbps x1", {"1.072Gbps"}},  // the same rate in other units
  };
  for (const auto& c : cases) EXPECT_EQ(expand(c.text), c.values) << c.text;
  const auto ten = expand("300Mbps..100Gbps x10 log");
  ASSERT_EQ(ten.size(), 10u);
  EXPECT_EQ(ten[1], "572.059Mbps");
  EXPECT_EQ(ten[4], "3.96644Gbps");  // 300e6 * (100e9 / 300e6)^(4/9)
  EXPECT_EQ(ten[9], "100Gbps");
}

TEST(SweepRange, RejectsMalformed) {
  // "300Mbps..100Gbps x1" ran 300Mbps alone: a range includes both its ends.
  for (const char* bad : {"1..2", "1Gbps..5ms x3", "0..10 x3 log", "1Xbps..2Gbps x2", "a..b x2", "1..2 x0",
                          "300Mbps..100Gbps x1", "1..2 x1"})
    EXPECT_THROW((void)expand(bad), InputError) << bad;
}

// Numbers beyond a double, and point counts beyond a long, are input errors naming the range (they
// escaped as std::out_of_range from std::stod / std::stol: "moss: stod", exit 1).
TEST(SweepRange, RejectsNumbersOutOfRangeAsInputErrors) {
  const auto message = [](const std::string& text) {
    try {
      (void)expand(text);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("300Mbps..100Gbps x99999999999999999999").find("expected 1 to 100000 points"), std::string::npos);
  EXPECT_NE(message("1..1e400 x3").find("1e400 is out of the range of a double"), std::string::npos);
  EXPECT_NE(message("1e-320..2e-320 x5").find("1e-320 is out of the range of a double"), std::string::npos);
  EXPECT_NE(message("-1.7e308..1.7e308 x3").find("overflow a double"), std::string::npos);
  // Integer ends beyond 2^53 give numbers, not integers that a cast would wrap.
  const auto big = expand("1..99999999999999999999999 x3");
  ASSERT_EQ(big.size(), 3u);
  EXPECT_TRUE(big[2].is_number_float());
  EXPECT_DOUBLE_EQ(big[2].get<double>(), 1e23);
  EXPECT_EQ(expand("+1..3 x3"), (std::vector<json>{1, 2, 3}));
}

TEST(SweepPlan, CartesianProductLastAxisFastest) {
  const json block = {{"a.x", {1, 2}}, {"b.y", {"p", "q", "r"}}};
  const SweepPlan plan = SweepPlan::from_json(block, "s.json");
  ASSERT_EQ(plan.size(), 6u);
  EXPECT_EQ(plan.fields(), (std::vector<std::string>{"a.x", "b.y"}));
  const std::vector<std::pair<int, std::string>> expected = {{1, "p"}, {1, "q"}, {1, "r"}, {2, "p"}, {2, "q"}, {2, "r"}};
  for (std::size_t i = 0; i < plan.size(); ++i) {
    const auto pt = plan.point(i);
    EXPECT_EQ(pt[0].second, expected[i].first);
    EXPECT_EQ(pt[1].second, expected[i].second);
  }
}

TEST(SweepPlan, ZipGroupsMoveTogether) {
  const json block = {{"cluster.network.bandwidth", "1Gbps..100Gbps x3 log"},
                      {"zip", {{"compression.rank_k", {8, 16}}, {"compression.rank_v", {32, 64}}}}};
  const SweepPlan plan = SweepPlan::from_json(block, "s.json");
  ASSERT_EQ(plan.size(), 6u);
  const auto p4 = plan.point(4);  // 4 = bandwidth step 2 x 2 zip steps + zip step 0
  EXPECT_EQ(p4[0].second, "100Gbps");
  EXPECT_EQ(p4[1].second, 8);
  EXPECT_EQ(p4[2].second, 32);
  EXPECT_EQ(plan.point(1)[2].second, 64);
}

TEST(SweepPlan, RangesInsideListsAreExpanded) {
  const SweepPlan plan = SweepPlan::from_json({{"x", {"1Gbps..10Gbps x2 log", "40Gbps"}}}, "s.json");
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan.point(2)[0].second, "40Gbps");
}

TEST(SweepPlan, ReportsEveryProblemWithPointer) {
  const json block = {{"bad..path", {1}}, {"ok.path", json::array()},
                      {"zip", {{"a.b", {1, 2}}, {"c.d", {1}}}}};
  try {
    (void)SweepPlan::from_json(block, "s.json");
    FAIL();
  } catch (const InputError& e) {
    ASSERT_EQ(e.problems().size(), 3u);
    EXPECT_EQ(e.problems()[0].pointer, "/sweep/bad..path");
    EXPECT_EQ(e.problems()[1].pointer, "/sweep/ok.path");
    EXPECT_EQ(e.problems()[2].pointer, "/sweep/zip/c.d");
  }
  EXPECT_THROW((void)SweepPlan::from_json(json::object(), "s.json"), InputError);
}

TEST(SweepPlan, PointDocumentSetsDottedPathsAndDropsSweep) {
  const json base = {{"name", "x"}, {"cluster", {{"nodes", 8}}}, {"sweep", {{"cluster.nodes", {2}}}}};
  const json doc = point_document(base, {{"cluster.nodes", 2}, {"compression", {{"method", "mos"}}}}, "s.json");
  EXPECT_EQ(doc, (json{{"name", "x"}, {"cluster", {{"nodes", 2}}}, {"compression", {{"method", "mos"}}}}));
  json bad = {{"cluster", 3}};
  EXPECT_THROW(set_dotted_path(bad, "cluster.nodes", 1, "s.json"), InputError);
}

}  // namespace
}  // namespace moss::sweep
