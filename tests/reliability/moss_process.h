#pragma once
// Runs the moss executable as a child process with bounded resources and captures what it printed.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moss::reliability {

/// How a child process ended and what it printed.
struct ProcessResult {
  int exit_code = -1;  ///< exit status, or -1 when killed by a signal
  int signal = 0;      ///< the signal that ended it, 0 when it exited
  std::string out;     ///< stdout
  std::string err;     ///< stderr
};

/// Resource bounds for a child.
struct Limits {
  std::uint64_t address_space_bytes = 0;  ///< RLIMIT_AS; 0 = unlimited
  std::uint64_t cpu_seconds = 120;        ///< RLIMIT_CPU (a hang becomes SIGXCPU, not a stuck test)
  std::uint64_t file_size_bytes = 0;      ///< RLIMIT_FSIZE; 0 = unlimited (SIGXFSZ is ignored: writes fail)
  std::string cwd;                        ///< working directory of the child; "" = inherited
};

/// Address-space bound used for hostile inputs: moss must refuse them inside it. 0 (no bound)
/// under AddressSanitizer, which reserves terabytes of shadow address space.
[[nodiscard]] std::uint64_t hostile_input_address_space();

/// Runs `args` (args[0] = executable path) with `limits`; stdout and stderr go to files in `scratch`.
ProcessResult run_process(const std::vector<std::string>& args, const Limits& limits,
                          const std::filesystem::path& scratch);

/// Runs MOSS_BINARY with `args`.
ProcessResult run_moss(const std::vector<std::string>& args, const Limits& limits,
                       const std::filesystem::path& scratch);

/// A fresh empty directory under the test temp dir.
[[nodiscard]] std::filesystem::path fresh_dir(const std::string& name);

/// Whole file as a string ("" when missing).
[[nodiscard]] std::string slurp(const std::filesystem::path& path);

/// Every regular file under `dir`, relative paths, sorted.
[[nodiscard]] std::vector<std::string> files_under(const std::filesystem::path& dir);

}  // namespace moss::reliability
