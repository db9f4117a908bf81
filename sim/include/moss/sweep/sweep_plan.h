#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace moss::sweep {

/// One swept field and its value at a point.
using Assignment = std::pair<std::string, nlohmann::json>;  ///< dotted path, value

/// One axis of the product: a single field, or a `zip` group whose fields move together.
struct Axis {
  std::vector<std::string> fields;                   ///< dotted paths
  std::vector<std::vector<nlohmann::json>> values;   ///< values[k][field]: the k-th step
};

/// The points of a "sweep" block (syntax in sim/sweep/README.md): the cartesian product of its
/// axes, the last axis varying fastest. Point indices are stable for a given block, which is what
/// makes resuming possible.
class SweepPlan {
 public:
  /// Parses a sweep block; throws moss::InputError naming `file` and /sweep/... for every problem.
  static SweepPlan from_json(const nlohmann::json& block, const std::string& file);

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] const std::vector<Axis>& axes() const { return axes_; }
  /// Every swept dotted path, in axis order.
  [[nodiscard]] const std::vector<std::string>& fields() const { return fields_; }
  /// The assignments of point `index` (< size()), in fields() order.
  [[nodiscard]] std::vector<Assignment> point(std::size_t index) const;

 private:
  std::vector<Axis> axes_;
  std::vector<std::string> fields_;
  std::size_t size_ = 0;
};

/// `key` as one JSON pointer token (RFC 6901: "~" as "~0", "/" as "~1").
[[nodiscard]] std::string escape_pointer(const std::string& key);

/// Sets `dotted` ("cluster.network.bandwidth") in `doc`, creating objects on the way. Throws
/// moss::InputError when the path crosses a value that is not an object.
void set_dotted_path(nlohmann::json& doc, const std::string& dotted, const nlohmann::json& value,
                     const std::string& file);

/// The scenario document of one point: `base` without its "sweep" block, with `assignments` applied.
[[nodiscard]] nlohmann::json point_document(const nlohmann::json& base, const std::vector<Assignment>& assignments,
                                            const std::string& file);

}  // namespace moss::sweep
