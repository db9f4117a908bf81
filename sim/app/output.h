#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace moss::app {

/// Creates `dir` (and parents). Throws moss::RuntimeFailure when it cannot.
void ensure_directory(const std::string& dir);

/// A file-name-safe form of a scenario name: letters, digits, '.', '_' and '-' only; never
/// empty, never starting with '.', so it cannot climb out of the output root.
[[nodiscard]] std::string safe_name(const std::string& name);

/// A flag check that refuses an empty value: "expected <what>, not an empty string" (an empty --out
/// or --cache-dir would otherwise mean the default, and `cache clear` would clear that).
[[nodiscard]] CLI::Validator non_empty(const char* what);

}  // namespace moss::app
