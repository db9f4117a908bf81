#pragma once

// File helpers shared by the test suites.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace moss::testing {

/// An empty directory under the system temp dir, unique to this process: <tmp>/<prefix>-<name>-<pid>.
inline std::string fresh_temp_dir(const std::string& prefix, const std::string& name, bool create = false) {
  const auto p = std::filesystem::temp_directory_path() / (prefix + "-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  if (create) std::filesystem::create_directories(p);
  return p.string();
}

/// The whole file as bytes ("" when it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

}  // namespace moss::testing
