#include "output.h"

#include <cctype>
#include <cstdint>
#include <cstdio>
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
  if (out.empty()) return "scenario";
  // A name that had to change, or is longer than a folder name allows (255 bytes; 100 characters are
  // kept), gets a hash of the whole name: "a/b" and "a_b", or two long names that start alike, stay
  // apart. A name that is already a folder name is its own folder.
  constexpr std::size_t kKept = 100;
  if (out == name && out.size() <= kKept) return out;
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a: the same folder on every platform
  for (const unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  char hash[20];
  std::snprintf(hash, sizeof hash, "-%016llx", static_cast<unsigned long long>(h));
  return out.substr(0, kKept) + hash;
}

CLI::Validator non_empty(const char* what) {
  return CLI::Validator([what](const std::string& v) { return v.empty() ? std::string("expected ") + what + ", not an empty string" : std::string(); },
                        "", "non-empty");
}

}  // namespace moss::app
