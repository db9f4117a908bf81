#pragma once

#include <string>

namespace moss::app {

/// Creates `dir` (and parents). Throws moss::RuntimeFailure when it cannot.
void ensure_directory(const std::string& dir);

/// A file-name-safe form of a scenario name: letters, digits, '.', '_' and '-' only; never
/// empty, never starting with '.', so it cannot climb out of the output root.
[[nodiscard]] std::string safe_name(const std::string& name);

}  // namespace moss::app
