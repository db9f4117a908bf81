#include "moss/converge/calibration.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <sstream>
#include <utility>

#include "moss/core/error.h"
#include "moss/scenario/loader.h"

namespace moss::converge {

namespace {

constexpr const char* kCalibrationFormat = "moss-calibration/1";
constexpr int kEtaLevels = 201;  // loss levels of the trapezoid average

// Reads {"tokens": [...], "loss": [...]} at `ptr`, collecting problems instead of throwing so
// a file with several mistakes is reported in one go.
LossCurve curve_at(const nlohmann::json& obj, const std::string& ptr, const std::string& file,
                   std::vector<Problem>& problems) {
  LossCurve c;
  if (!obj.is_object()) {
    problems.push_back({file, ptr, "expected an object with \"tokens\" and \"loss\" arrays"});
    return c;
  }
  for (const char* name : {"tokens", "loss"}) {
    auto it = obj.find(name);
    if (it == obj.end() || !it->is_array() || it->size() < 2) {
      problems.push_back({file, ptr + "/" + name, "expected an array of at least 2 numbers"});
      return c;
    }
    auto& out = std::string(name) == "tokens" ? c.tokens : c.loss;
    for (std::size_t i = 0; i < it->size(); ++i) {
      const auto& v = (*it)[i];
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() <= 0) {
        problems.push_back({file, ptr + "/" + name + "/" + std::to_string(i), "expected a positive number"});
        return c;
      }
      out.push_back(v.get<double>());
    }
  }
  if (c.tokens.size() != c.loss.size())
    problems.push_back({file, ptr + "/loss", "expected as many entries as /tokens (" +
                                                 std::to_string(c.tokens.size()) + ")"});
  for (std::size_t i = 1; i < c.tokens.size(); ++i)
    if (c.tokens[i] <= c.tokens[i - 1]) {
      problems.push_back({file, ptr + "/tokens/" + std::to_string(i), "expected strictly increasing token counts"});
      break;
    }
  return c;
}

// The points where the curve reaches a new lowest loss: a noisy curve "first reaches" a level
// between two of them, and a bump (loss above an earlier value) says nothing new.
LossCurve envelope(const LossCurve& c) {
  LossCurve m;
  for (std::size_t i = 0; i < c.loss.size(); ++i) {
    if (!m.loss.empty() && c.loss[i] >= m.loss.back()) continue;
    m.tokens.push_back(c.tokens[i]);
    m.loss.push_back(c.loss[i]);
  }
  return m;
}

bool json_equal_values(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.is_number() && b.is_number()) return std::abs(a.get<double>() - b.get<double>()) <= 1e-12 * std::abs(a.get<double>());
  return a == b;
}

}  // namespace

Calibration parse_calibration(const nlohmann::json& doc, const std::string& file) {
  std::vector<Problem> problems;
  Calibration cal;
  cal.file = file;
  if (!doc.is_object()) throw InputError(file, "", "expected a JSON object (format \"moss-calibration/1\")");
  if (doc.value("format", std::string()) != kCalibrationFormat)
    problems.push_back({file, "/format", std::string("expected \"") + kCalibrationFormat + "\""});
  cal.description = doc.value("description", std::string());
  cal.baseline = curve_at(doc.value("baseline", nlohmann::json()), "/baseline", file, problems);
  const auto runs = doc.value("runs", nlohmann::json());
  if (!runs.is_array() || runs.empty()) {
    problems.push_back({file, "/runs", "expected a non-empty array of runs"});
  } else {
    for (std::size_t i = 0; i < runs.size(); ++i) {
      const std::string ptr = "/runs/" + std::to_string(i);
      CalibrationRun run;
      run.curve = curve_at(runs[i], ptr, file, problems);
      if (!runs[i].is_object()) continue;
      run.match = runs[i].value("match", nlohmann::json());
      if (!run.match.is_object() || run.match.empty())
        problems.push_back({file, ptr + "/match", "expected an object of scenario fields, e.g. {\"method\": \"mos\", \"rank_k\": 40}"});
      run.label = runs[i].value("label", run.match.dump());
      cal.runs.push_back(std::move(run));
    }
  }
  if (!problems.empty()) throw InputError(std::move(problems));
  return cal;
}

Calibration read_calibration(const std::string& path) {
  // A sweep reads one file at every point, twice per evaluation (efficiency_problems, then predict):
  // a file is parsed once per content and process. Known by its bytes, not its timestamps: a rewrite
  // of the same size within one clock tick keeps them (kernels before 6.13 advance them per tick).
  constexpr std::size_t kKept = 16;  // calibration files in one process are few
  static std::mutex mutex;
  static std::map<std::string, Calibration> parsed;
  // The scenario reader's checks serve here too: no FIFO or device is opened, no huge file read.
  const std::string text = scenario::read_json_text(path);
  {
    const std::lock_guard lock(mutex);
    if (const auto it = parsed.find(text); it != parsed.end()) {
      Calibration cal = it->second;
      cal.file = path;  // as this caller names it, for its messages
      return cal;
    }
  }
  Calibration cal = parse_calibration(scenario::parse_json_text(text, path), path);
  const std::lock_guard lock(mutex);
  if (parsed.size() >= kKept) parsed.clear();
  parsed[text] = cal;
  return cal;
}

namespace {

// tokens_to_reach on a curve that is its own envelope (strictly decreasing loss).
double tokens_on_envelope(const LossCurve& m, double level) {
  MOSS_CHECK(level <= m.loss.front() && level >= m.loss.back(), "loss level outside the curve");
  if (level >= m.loss.front()) return m.tokens.front();
  for (std::size_t i = 1; i < m.loss.size(); ++i) {
    if (m.loss[i] > level) continue;
    // m[i-1] > level >= m[i]: interpolate log(tokens) linearly in loss.
    const double f = (m.loss[i - 1] - level) / (m.loss[i - 1] - m.loss[i]);
    const double log_t = std::log(m.tokens[i - 1]) + f * (std::log(m.tokens[i]) - std::log(m.tokens[i - 1]));
    return std::exp(log_t);
  }
  return m.tokens.back();
}

}  // namespace

double tokens_to_reach(const LossCurve& curve, double level) { return tokens_on_envelope(envelope(curve), level); }

EtaEstimate efficiency_from_curves(const LossCurve& baseline, const LossCurve& other, const std::string& file) {
  // Each envelope once, not once per level (a sweep evaluates this at every point).
  const LossCurve eb = envelope(baseline), eo = envelope(other);
  const std::vector<double>& mb = eb.loss;
  const std::vector<double>& mo = eo.loss;
  EtaEstimate est;
  est.loss_lo = std::max(mb.back(), mo.back());
  est.loss_hi = std::min(mb.front(), mo.front());
  if (!(est.loss_hi > est.loss_lo))
    throw InputError(file, "", "the baseline and the compared run reach no common loss range "
                               "(baseline " + std::to_string(mb.back()) + ".." + std::to_string(mb.front()) +
                               ", run " + std::to_string(mo.back()) + ".." + std::to_string(mo.front()) + ")");
  double sum = 0;
  for (int i = 0; i < kEtaLevels; ++i) {
    // The last level is loss_hi itself: lo + (hi - lo) * 1 can round one ulp above hi, outside the curves.
    const double level = i == kEtaLevels - 1 ? est.loss_hi : est.loss_lo + (est.loss_hi - est.loss_lo) * i / (kEtaLevels - 1);
    const double w = (i == 0 || i == kEtaLevels - 1) ? 0.5 : 1.0;
    sum += w * tokens_on_envelope(eb, level) / tokens_on_envelope(eo, level);
  }
  est.eta = sum / (kEtaLevels - 1);
  return est;
}

nlohmann::json compression_key(const scenario::CompressionSpec& c) {
  return {{"method", c.method}, {"rank_k", c.rank_k},     {"rank_v", c.rank_v},   {"rotations", c.rotations},
          {"subspaces", c.subspaces}, {"fraction", c.fraction}, {"bits", c.bits}};
}

nlohmann::json weight_sync_key(const scenario::TrainingSpec& t) {
  return {{"every_steps", t.sync_every_steps}, {"overlap", t.sync_overlap}};
}

const CalibrationRun& select_run(const Calibration& cal, const nlohmann::json& key) {
  const CalibrationRun* best = nullptr;
  for (const auto& run : cal.runs) {
    bool ok = true;
    for (const auto& [k, v] : run.match.items()) {
      auto it = key.find(k);
      if (it == key.end() || !json_equal_values(*it, v)) {
        ok = false;
        break;
      }
    }
    if (ok && (!best || run.match.size() > best->match.size())) best = &run;
  }
  if (best) return *best;
  std::ostringstream os;
  os << "no run matches the scenario " << key.dump() << "; runs in the file:";
  for (const auto& run : cal.runs) os << ' ' << run.match.dump();
  throw InputError(cal.file, "/runs", os.str());
}

EtaEstimate measured_efficiency(const std::string& path, const nlohmann::json& key) {
  const Calibration cal = read_calibration(path);
  const CalibrationRun& run = select_run(cal, key);
  EtaEstimate est = efficiency_from_curves(cal.baseline, run.curve, path);
  est.run_label = run.label;
  return est;
}

}  // namespace moss::converge
