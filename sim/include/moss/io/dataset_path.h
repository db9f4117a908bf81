#pragma once
// The one rule for the name of an HDF5 dataset a user chooses (scenario "compression.datasets",
// `moss compress --dataset*`, io::DatasetChoice). Header-only: the scenario reader checks names
// without linking libhdf5's loader.

#include <string>
#include <string_view>

namespace moss::io {

/// `name` as a path from the file's root without empty or "." components: "cache/layer3/k" for
/// "/cache//layer3/./k/"; "" when nothing is left.
[[nodiscard]] inline std::string dataset_path_from_root(std::string_view name) {
  std::string out;
  for (std::size_t start = 0; start < name.size();) {
    std::size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    if (const std::string_view part = name.substr(start, end - start); !part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out += part;
    }
    start = end + 1;
  }
  return out;
}

/// "" when `name` can name a dataset; else the rule it breaks, for the caller to place after the name
/// and where it came from. A name must not hold a NUL byte and must keep a component other than "."
/// ("/", "./" and "" name no dataset).
[[nodiscard]] inline std::string dataset_name_problem(std::string_view name) {
  if (name.find('\0') != std::string_view::npos) return "a dataset name must not hold a NUL byte";
  if (dataset_path_from_root(name).empty())
    return "expected the path of a dataset in the file, such as \"k\" or \"cache/layer3/k\"";
  return "";
}

}  // namespace moss::io
