#include "moss/sweep/sweep_plan.h"

#include <set>

#include "moss/core/error.h"
#include "moss/sweep/range.h"

namespace moss::sweep {

namespace {

constexpr std::size_t kMaxPoints = 10'000'000;

bool valid_dotted(const std::string& path) {
  if (path.empty() || path.front() == '.' || path.back() == '.') return false;
  if (path.find("..") != std::string::npos || path.find('/') != std::string::npos) return false;
  return path != "sweep" && path.rfind("sweep.", 0) != 0;
}

// A list of values, or a range string; ranges inside a list are expanded in place.
std::vector<nlohmann::json> values_of(const nlohmann::json& v, const std::string& file, const std::string& ptr,
                                      std::vector<Problem>& problems) {
  std::vector<nlohmann::json> out;
  try {
    if (v.is_string() && is_range(v.get<std::string>())) return expand_range(v.get<std::string>(), file, ptr);
    if (!v.is_array() || v.empty()) {
      problems.push_back({file, ptr, "expected a non-empty array of values or a range such as \"300Mbps..100Gbps x10 log\""});
      return out;
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
      const auto& e = v[i];
      if (e.is_string() && is_range(e.get<std::string>())) {
        for (auto& x : expand_range(e.get<std::string>(), file, ptr + "/" + std::to_string(i))) out.push_back(std::move(x));
      } else {
        out.push_back(e);
      }
    }
  } catch (const InputError& e) {
    problems.insert(problems.end(), e.problems().begin(), e.problems().end());
  }
  return out;
}

}  // namespace

std::string escape_pointer(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

SweepPlan SweepPlan::from_json(const nlohmann::json& block, const std::string& file) {
  std::vector<Problem> problems;
  SweepPlan plan;
  if (!block.is_object() || block.empty())
    throw InputError(file, "/sweep", "expected an object of dotted paths, e.g. {\"cluster.network.bandwidth\": [\"1Gbps\", \"10Gbps\"]}");
  std::set<std::string> seen;
  auto add_field = [&](const std::string& path, const std::string& ptr) {
    if (!valid_dotted(path)) {
      problems.push_back({file, ptr, "\"" + path + "\": expected a dotted scenario path such as cluster.network.bandwidth"});
      return false;
    }
    if (!seen.insert(path).second) {
      problems.push_back({file, ptr, "\"" + path + "\" is swept twice"});
      return false;
    }
    return true;
  };
  for (const auto& [key, value] : block.items()) {
    if (key == "zip") continue;
    const std::string ptr = "/sweep/" + escape_pointer(key);
    if (!add_field(key, ptr)) continue;
    Axis axis;
    axis.fields = {key};
    for (auto& v : values_of(value, file, ptr, problems)) axis.values.push_back({std::move(v)});
    if (!axis.values.empty()) plan.axes_.push_back(std::move(axis));
  }
  if (auto zip = block.find("zip"); zip != block.end()) {
    const nlohmann::json groups = zip->is_object() ? nlohmann::json::array({*zip}) : *zip;
    if (!groups.is_array() || groups.empty())
      problems.push_back({file, "/sweep/zip", "expected an object (or array of objects) of dotted paths whose lists have one length"});
    for (std::size_t g = 0; groups.is_array() && g < groups.size(); ++g) {
      const std::string gptr = zip->is_object() ? "/sweep/zip" : "/sweep/zip/" + std::to_string(g);
      if (!groups[g].is_object() || groups[g].empty()) {
        problems.push_back({file, gptr, "expected an object of dotted paths"});
        continue;
      }
      Axis axis;
      std::vector<std::vector<nlohmann::json>> columns;
      for (const auto& [key, value] : groups[g].items()) {
        const std::string ptr = gptr + "/" + escape_pointer(key);
        if (!add_field(key, ptr)) continue;
        auto column = values_of(value, file, ptr, problems);
        if (!columns.empty() && column.size() != columns.front().size()) {
          problems.push_back({file, ptr, "has " + std::to_string(column.size()) + " values; the zip group's first list has " +
                                             std::to_string(columns.front().size())});
          continue;
        }
        axis.fields.push_back(key);
        columns.push_back(std::move(column));
      }
      if (columns.empty() || columns.front().empty()) continue;
      for (std::size_t k = 0; k < columns.front().size(); ++k) {
        std::vector<nlohmann::json> step;
        for (const auto& c : columns) step.push_back(c[k]);
        axis.values.push_back(std::move(step));
      }
      plan.axes_.push_back(std::move(axis));
    }
  }
  if (problems.empty() && plan.axes_.empty()) problems.push_back({file, "/sweep", "sweeps nothing"});
  plan.size_ = plan.axes_.empty() ? 0 : 1;
  for (const auto& a : plan.axes_) {
    plan.size_ *= a.values.size();
    if (plan.size_ > kMaxPoints) {
      problems.push_back({file, "/sweep", "more than " + std::to_string(kMaxPoints) + " points"});
      break;
    }
    for (const auto& f : a.fields) plan.fields_.push_back(f);
  }
  if (!problems.empty()) throw InputError(std::move(problems));
  return plan;
}

std::vector<Assignment> SweepPlan::point(std::size_t index) const {
  std::vector<std::size_t> steps(axes_.size());
  for (std::size_t a = axes_.size(); a-- > 0;) {
    steps[a] = index % axes_[a].values.size();
    index /= axes_[a].values.size();
  }
  std::vector<Assignment> out;
  for (std::size_t a = 0; a < axes_.size(); ++a)
    for (std::size_t f = 0; f < axes_[a].fields.size(); ++f) out.emplace_back(axes_[a].fields[f], axes_[a].values[steps[a]][f]);
  return out;
}

void set_dotted_path(nlohmann::json& doc, const std::string& dotted, const nlohmann::json& value,
                     const std::string& file) {
  nlohmann::json* node = &doc;
  std::string pointer;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = dotted.find('.', start);
    const std::string key = dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (node->is_null()) *node = nlohmann::json::object();
    if (!node->is_object())
      throw InputError(file, pointer.empty() ? "/" : pointer, "sweep path " + dotted + " crosses a value that is not an object");
    pointer += '/';
    pointer += escape_pointer(key);
    node = &(*node)[key];
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  *node = value;
}

nlohmann::json point_document(const nlohmann::json& base, const std::vector<Assignment>& assignments,
                              const std::string& file) {
  nlohmann::json doc = base;
  doc.erase("sweep");
  for (const auto& [path, value] : assignments) set_dotted_path(doc, path, value, file);
  return doc;
}

}  // namespace moss::sweep
