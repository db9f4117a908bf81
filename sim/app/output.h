#pragma once

#include <string>

namespace moss::app {

/// Writes `content` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees a half-written file. Throws moss::RuntimeFailure naming the path on failure
/// (unwritable directory, full disk).
void write_file_atomic(const std::string& path, const std::string& content);

/// Creates `dir` (and parents). Throws moss::RuntimeFailure when it cannot.
void ensure_directory(const std::string& dir);

/// A file-name-safe form of a scenario name: letters, digits, '.', '_' and '-' only; never
/// empty, never starting with '.', so it cannot climb out of the output root.
[[nodiscard]] std::string safe_name(const std::string& name);

}  // namespace moss::app
