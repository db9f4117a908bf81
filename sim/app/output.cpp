#include "output.h"

#include <cctype>
#include <filesystem>
#include <system_error>

#include "moss/core/error.h"

namespace moss::app {

void ensure_directory(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    throw RuntimeFailure(dir + ": cannot create the output directory: " + (ec ? ec.message() : "not a directory"));
  }
}

std::string safe_name(const std::string& name) {
  std::string out;
  for (char c : name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    out += ok ? c : '_';
  }
  while (!out.empty() && out.front() == '.') out.erase(out.begin());
  return out.empty() ? "scenario" : out;
}

}  // namespace moss::app
