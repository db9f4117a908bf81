#include "moss/converge/calibration.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "moss/converge/scaling_law.h"
#include "moss/core/error.h"

namespace moss::converge {
namespace {

const std::string kSynthetic = std::string(MOSS_TEST_DATA_DIR) + "/converge/calibration-synthetic.json";
const std::string kTwoPoint = std::string(MOSS_TEST_DATA_DIR) + "/converge/calibration-two-point.json";

nlohmann::json key(const std::string& method, int rk, int rv, double fraction = 0.1, int bits = 8) {
  scenario::CompressionSpec c;
  c.method = method;
  c.rank_k = rk;
  c.rank_v = rv;
  c.fraction = fraction;
  c.bits = bits;
  return compression_key(c);
}

TEST(Calibration, ScaledCurveGivesExactEta) {
  EXPECT_NEAR(measured_efficiency(kSynthetic, key("mos", 40, 100)).eta, 0.8, 1e-12);
  EXPECT_NEAR(measured_efficiency(kSynthetic, key("topk", 0, 0, 0.1)).eta, 0.5, 1e-12);
}

TEST(Calibration, MostSpecificRunWins) {
  const Calibration cal = read_calibration(kSynthetic);
  EXPECT_EQ(select_run(cal, key("mos", 40, 100)).label, "mos r40/100");
  EXPECT_EQ(select_run(cal, key("mos", 8, 16)).label, "mos any rank");
  EXPECT_THROW((void)select_run(cal, key("pca", 40, 100)), InputError);
}

TEST(Calibration, EnvelopeIgnoresNoisyBump) {
  // The bump 3.6 -> 3.7 is hidden by the running minimum: still 1.25x the baseline's tokens.
  EXPECT_NEAR(measured_efficiency(kSynthetic, key("quant", 0, 0, 0.1, 4)).eta, 0.8, 1e-12);
}

TEST(Calibration, AveragesOverOverlapLikeHandIntegral) {
  scenario::TrainingSpec t;
  t.sync_every_steps = 8;
  const EtaEstimate est = measured_efficiency(kTwoPoint, weight_sync_key(t));
  EXPECT_NEAR(est.loss_lo, 3.5, 1e-12);
  EXPECT_NEAR(est.loss_hi, 4.0, 1e-12);
  EXPECT_NEAR(est.eta, (1 - std::pow(10.0, -0.5)) / (0.5 * std::log(10.0)), 1e-5);
}

TEST(Calibration, TokensToReachInterpolatesInLogTokens) {
  const LossCurve c{{1e9, 1e10}, {4.0, 3.0}};
  EXPECT_NEAR(tokens_to_reach(c, 3.5), std::sqrt(1e9 * 1e10), 1);
  EXPECT_DOUBLE_EQ(tokens_to_reach(c, 4.0), 1e9);
}

TEST(Calibration, DisjointCurvesAreAnInputError) {
  const LossCurve a{{1e9, 1e10}, {4.0, 3.5}};
  const LossCurve b{{1e9, 1e10}, {3.0, 2.5}};
  EXPECT_THROW((void)efficiency_from_curves(a, b, "x.json"), InputError);
}

// lo + (hi - lo) * 200 / 200 rounds one ulp above hi for these curves: the top level was outside
// the curves and a valid calibration file made moss validate and run fail an internal check.
TEST(Calibration, TheTopLossLevelIsTheOverlapsOwnEnd) {
  const LossCurve baseline{{1e9, 1e10}, {4.84515058849536, 1.9913687017308366}};
  const LossCurve run{{1e9, 1e10}, {5.84515058849536, 1.9913687017308366}};
  const EtaEstimate est = efficiency_from_curves(baseline, run, "cal.json");
  EXPECT_EQ(est.loss_hi, 4.84515058849536);
  EXPECT_GT(est.eta, 0);
  EXPECT_LT(est.eta, 1);  // the run is slower everywhere above the common end
}

// A file is parsed once per content: one rewritten in place is read again, even at the same size
// (where a clock tick's timestamps could not tell the versions apart).
TEST(Calibration, AFileRewrittenInPlaceIsReadAgain) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("moss-cal-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "cal.json").string();
  const auto write = [&](double eta_tokens) {
    std::ofstream(path) << R"({"format": "moss-calibration/1", "baseline": {"tokens": [1e9, 1e10], "loss": [4.0, 3.0]},
      "runs": [{"label": "mos", "match": {"method": "mos"}, "tokens": [)" << eta_tokens << ", " << 10 * eta_tokens
                        << R"(], "loss": [4.0, 3.0]}]})";
  };
  write(1.5e9);  // the same size as 2.5e9 below
  const auto size = std::filesystem::file_size(path);
  EXPECT_NEAR(measured_efficiency(path, key("mos", 40, 100)).eta, 1 / 1.5, 1e-12);
  EXPECT_NEAR(measured_efficiency(path, key("mos", 40, 100)).eta, 1 / 1.5, 1e-12);  // from the parsed file
  write(2.5e9);
  EXPECT_EQ(std::filesystem::file_size(path), size);
  EXPECT_NEAR(measured_efficiency(path, key("mos", 40, 100)).eta, 0.4, 1e-12);
  const Calibration cal = read_calibration((dir / "." / "cal.json").string());  // the same file, named otherwise
  EXPECT_EQ(cal.file, (dir / "." / "cal.json").string());
  EXPECT_EQ(cal.runs.at(0).curve.tokens.at(0), 2.5e9);
  std::filesystem::remove_all(dir);
}

TEST(Calibration, MalformedFileNamesEveryProblem) {
  const nlohmann::json doc = {{"format", "nope"}, {"baseline", {{"tokens", {1, 2}}, {"loss", {3}}}}, {"runs", nlohmann::json::array()}};
  try {
    (void)parse_calibration(doc, "cal.json");
    FAIL();
  } catch (const InputError& e) {
    ASSERT_EQ(e.problems().size(), 3u);
    EXPECT_EQ(e.problems()[0].pointer, "/format");
    EXPECT_EQ(e.problems()[1].pointer, "/baseline/loss");
    EXPECT_EQ(e.problems()[2].pointer, "/runs");
  }
  EXPECT_THROW((void)read_calibration("/nonexistent/cal.json"), InputError);
}

TEST(Calibration, ProblemsAreReportedAtTheScenarioFieldThatNamesTheFile) {
  scenario::Scenario s;
  s.source_file = "scenario.json";
  s.compression.method = "quant";  // the synthetic file's only quant run is int4
  s.compression.bits = 8;
  s.convergence.compression = {"measured", 1.0, kSynthetic, false};
  s.training.sync_every_steps = 8;
  s.convergence.weight_sync = {"measured", 1.0, "/nonexistent/cal.json", false};
  const std::vector<Problem> problems = efficiency_problems(s);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].file, "scenario.json");
  EXPECT_EQ(problems[0].pointer, "/convergence/efficiency/compression/file");
  EXPECT_NE(problems[0].message.find(kSynthetic + ": /runs: no run matches"), std::string::npos) << problems[0].message;
  EXPECT_EQ(problems[1].pointer, "/convergence/efficiency/weight_sync/file");
  EXPECT_NE(problems[1].message.find("/nonexistent/cal.json: no such file"), std::string::npos) << problems[1].message;

  s.compression.bits = 4;  // matched by its run
  s.training.sync_every_steps = 1;  // weights sync every step: no calibration read
  EXPECT_TRUE(efficiency_problems(s).empty());
}

TEST(Calibration, PredictUsesMeasuredEta) {
  scenario::Scenario s;
  s.training.target_loss = 3.0;
  s.compression.method = "mos";
  s.compression.rank_k = 40;
  s.compression.rank_v = 100;
  s.convergence.compression = {"measured", 1.0, kSynthetic, false};
  const Prediction p = predict(s, 8e8, 1e5, 1e5, 8);
  EXPECT_NEAR(p.eta, 0.8, 1e-12);
  EXPECT_EQ(p.eta_compression.source, "measured");
  EXPECT_NE(p.eta_source.find("mos r40/100"), std::string::npos);
  EXPECT_NEAR(p.target_tokens, tokens_for_loss(s.convergence.law, 8e8, 3.0) / 0.8, 1e-3);
}

}  // namespace
}  // namespace moss::converge
