#include "moss/sweep/point_check.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <tuple>

#include "moss/converge/scaling_law.h"
#include "moss/scenario/loader.h"
#include "moss/step/compression_measure.h"

namespace moss::sweep {

namespace {

// "/compression/rank_k" for "compression.rank_k".
std::string scenario_pointer(const std::string& dotted) {
  std::string out = "/";
  for (const char c : dotted) out += c == '.' ? std::string("/") : c == '~' ? std::string("~0") : std::string(1, c);
  return out;
}

bool under(const std::string& pointer, const std::string& prefix) {
  return pointer == prefix || pointer.rfind(prefix + "/", 0) == 0;
}

// The scenario paths whose values a problem at `pointer` depends on: its own, and for the activation
// file the datasets chosen in it (and the reverse).
std::vector<std::string> causes(const std::string& pointer) {
  if (under(pointer, "/compression/activations")) return {pointer, "/compression/datasets"};
  if (under(pointer, "/compression/datasets")) return {pointer, "/compression/activations"};
  return {pointer};
}

std::string string_at(const nlohmann::json& doc, const char* pointer) {
  const nlohmann::json::json_pointer at(pointer);
  return doc.is_object() && doc.contains(at) && doc.at(at).is_string() ? doc.at(at).get<std::string>() : "";
}

// The activation file's own problems beside the scenario's other `problems` (scenario_problems).
std::vector<Problem> file_problems_beside(const nlohmann::json& doc, const std::string& file, const std::vector<Problem>& problems) {
  for (const Problem& p : problems)
    if (under(p.pointer, "/compression/activations") || under(p.pointer, "/compression/datasets")) return {};
  const std::string source = string_at(doc, "/compression/activations");
  const nlohmann::json::json_pointer measure("/simulation/measure_compression");
  if (source.empty() || source.rfind("synthetic:", 0) == 0 || string_at(doc, "/compression/method") == "none" ||
      (doc.contains(measure) && doc.at(measure) == false))
    return {};
  return step::activation_file_problems(scenario::resolve_scenario_path(file, source), file, string_at(doc, "/compression/datasets/k"),
                                        string_at(doc, "/compression/datasets/v"));
}

std::string point_text(std::size_t index, const std::vector<Assignment>& assignments) {
  std::string text = "point " + std::to_string(index) + " (";
  for (std::size_t i = 0; i < assignments.size(); ++i)
    text += (i ? ", " : "") + assignments[i].first + " = " + assignments[i].second.dump();
  return text + ")";
}

// The indices checked: all of them, or each axis's values with the other axes at their first.
std::vector<std::size_t> checked_points(const SweepPlan& plan, std::size_t max_points) {
  std::vector<std::size_t> out;
  if (plan.size() <= max_points) {
    for (std::size_t i = 0; i < plan.size(); ++i) out.push_back(i);
    return out;
  }
  std::size_t stride = plan.size();
  for (const Axis& axis : plan.axes()) {
    stride /= axis.values.size();
    for (std::size_t k = 0; k < axis.values.size(); ++k)
      if (k > 0 || out.empty()) out.push_back(k * stride);
  }
  return out;
}

}  // namespace

std::vector<Problem> point_problems(const std::vector<Problem>& problems, std::size_t index,
                                    const std::vector<Assignment>& assignments, const nlohmann::json& sweep_block,
                                    const std::string& file) {
  std::vector<Problem> out;
  for (const Problem& p : problems) {
    std::string at = "/sweep";
    for (const auto& [dotted, value] : assignments) {
      // The problem is at the swept path, inside it, or on the way to it (a value that is not an object).
      const std::string swept = scenario_pointer(dotted);
      bool caused = false;
      for (const std::string& cause : causes(p.pointer))
        caused = caused || under(cause, swept) || (!cause.empty() && cause != "/" && under(swept, cause));
      if (!caused) continue;
      at = sweep_block.is_object() && sweep_block.contains(dotted) ? "/sweep/" + escape_pointer(dotted) : "/sweep/zip";
      break;
    }
    out.push_back({file, at, point_text(index, assignments) + ": " + (p.pointer.empty() ? "" : p.pointer + ": ") + p.message});
  }
  return out;
}

std::vector<Problem> scenario_problems(const nlohmann::json& doc, const std::string& file) {
  std::vector<Problem> problems = scenario::validate_scenario(doc, file);
  if (!problems.empty()) {
    for (Problem& p : file_problems_beside(doc, file, problems)) problems.push_back(std::move(p));
    return problems;
  }
  const scenario::Scenario s = scenario::parse_scenario(doc, file);
  try {
    step::check_activations(s);
  } catch (const InputError& e) {
    problems = e.problems();
  }
  for (Problem& p : converge::efficiency_problems(s)) problems.push_back(std::move(p));
  return problems;
}

std::vector<Problem> reported_problems(const PointCheck& check) {
  std::vector<Problem> out;
  for (std::size_t i = 0; i < check.problems.size(); ++i) {
    const bool everywhere = check.points[i] == check.points_checked && check.problems[i].pointer == "/sweep";
    out.push_back(everywhere ? check.own[i] : check.problems[i]);
  }
  return out;
}

PointCheck check_sweep_points(const nlohmann::json& doc, const SweepPlan& plan, const std::string& file,
                              std::size_t max_points) {
  const nlohmann::json& block = doc.at("sweep");
  const auto problems_of = [&](const std::vector<Assignment>& assignments) {
    try {
      return scenario_problems(point_document(doc, assignments, file), file);
    } catch (const InputError& e) {  // a path through a value that is not an object
      return e.problems();
    }
  };
  // A point of a huge cluster takes far longer to check than a small one's (its topology): every point
  // only while that stays within about kCheckBudgetSeconds, judged from the first, timed once its
  // activation file is loaded (files are loaded once per process).
  const std::vector<Problem> first = problems_of(plan.point(0));
  const auto start = std::chrono::steady_clock::now();
  (void)problems_of(plan.point(0));
  const double first_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double affordable = kCheckBudgetSeconds / std::max(first_s, 1e-9);
  PointCheck check;
  check.every_point = static_cast<double>(plan.size()) <= std::min(static_cast<double>(max_points), affordable);
  const std::vector<std::size_t> indices = checked_points(plan, check.every_point ? plan.size() : 0);
  check.points_checked = indices.size();
  // (where, the point's own problem) -> the first report of it and the points that have it.
  std::map<std::tuple<std::string, std::string, std::string>, std::size_t> seen;
  std::vector<std::tuple<Problem, Problem, std::size_t>> reports;  // as reported, as the point states it, points
  for (const std::size_t index : indices) {
    const std::vector<Assignment> assignments = plan.point(index);
    const std::vector<Problem> problems = index == 0 ? first : problems_of(assignments);
    const std::vector<Problem> attributed = point_problems(problems, index, assignments, block, file);
    for (std::size_t i = 0; i < problems.size(); ++i) {
      const auto key = std::make_tuple(attributed[i].pointer, problems[i].pointer, problems[i].message);
      if (auto it = seen.find(key); it != seen.end()) {
        ++std::get<2>(reports[it->second]);
        continue;
      }
      seen.emplace(key, reports.size());
      reports.emplace_back(attributed[i], problems[i], 1);
    }
  }
  for (auto& [problem, own, points] : reports) {
    if (points > 1) problem.message += " (and " + std::to_string(points - 1) + (points == 2 ? " more point)" : " more points)");
    check.problems.push_back(std::move(problem));
    check.own.push_back(std::move(own));
    check.points.push_back(points);
  }
  return check;
}

}  // namespace moss::sweep
