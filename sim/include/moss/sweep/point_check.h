#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moss/core/error.h"
#include "moss/sweep/sweep_plan.h"

namespace moss::sweep {

/// Sweeps up to this many points are checked point by point (about 70 us each for a small cluster),
/// larger ones value by value.
inline constexpr std::size_t kMaxCheckedPoints = 16384;
/// Checking takes about this long at most when point by point (judged from the first point's time:
/// a point of a 16,384-GPU full mesh takes a third of a second); beyond, value by value.
inline constexpr double kCheckBudgetSeconds = 10.0;

/// The problems of point `index` (with `assignments`) of the sweep in `file`, as a sweep reports
/// them: each under the swept field that caused it (/sweep/<dotted path>, or /sweep/zip for a zip
/// group's field), or under /sweep when no swept field is at fault (a cross-field check), with the
/// point, its values and the scenario path in the message.
[[nodiscard]] std::vector<Problem> point_problems(const std::vector<Problem>& problems, std::size_t index,
                                                  const std::vector<Assignment>& assignments,
                                                  const nlohmann::json& sweep_block, const std::string& file);

/// What check_sweep_points found.
struct PointCheck {
  std::vector<Problem> problems;    ///< empty when every point checked is valid
  std::vector<Problem> own;         ///< own[i]: problems[i] as its point's scenario states it (its path, no point)
  std::vector<std::size_t> points;  ///< points[i]: how many of the checked points have problems[i]
  std::size_t points_checked = 0;
  bool every_point = true;          ///< false: value by value (combinations unchecked)
};

/// The problems of scenario document `doc` (of `file`) as a run meets them: the scenario's own
/// (scenario::validate_scenario); when it has none, its activation file as the run loads it
/// (step::check_activations); else, beside them, that file's own problems (it loads:
/// step::activation_file_problems), so that one validation shows every problem. The file is not
/// looked at when the problems concern it or its datasets, the data is synthetic, the method is none
/// or the scenario does not measure its compression. Each file is loaded once per process.
[[nodiscard]] std::vector<Problem> scenario_problems(const nlohmann::json& doc, const std::string& file);

/// check.problems as `moss validate` and `moss sweep` report them: one that every checked point has
/// and no swept field causes (at /sweep) is the scenario's own, reported at its own path; the others
/// by point.
[[nodiscard]] std::vector<Problem> reported_problems(const PointCheck& check);

/// The problems of a scenario's sweep points (`doc` holds the scenario and its "sweep" block, parsed
/// into `plan`), as `moss sweep` will meet them: each point's scenario and, where it is valid, its
/// activation file as the run loads it (step::check_activations; each file is loaded once). Every
/// point when the plan has at most `max_points` and they can be checked within about
/// kCheckBudgetSeconds, else every value of every axis with the other axes at their first value. The
/// same problem in several points is reported once, with the number of points.
[[nodiscard]] PointCheck check_sweep_points(const nlohmann::json& doc, const SweepPlan& plan, const std::string& file,
                                            std::size_t max_points = kMaxCheckedPoints);

}  // namespace moss::sweep
