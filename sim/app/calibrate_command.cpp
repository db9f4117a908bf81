#include "calibrate_command.h"

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "moss/core/error.h"

extern char** environ;

namespace moss::app {

namespace fs = std::filesystem;

void add_calibrate_options(CLI::App& sub, CalibrateOptions& o) {
  sub.prefix_command();  // everything after `calibrate` belongs to the tool
  sub.allow_extras();
  sub.footer("Arguments go to calibrate/moss-calibrate: SPEC.json [--out DIR] [--jobs N] [--threads N] "
             "[--steps N] [--seeds 1,2] [--calibration-file P] [--fresh] [--device cpu|cuda] [--quiet]");
  sub.callback([&o, &sub] { o.args = sub.remaining(); });
}

namespace {

std::string find_tool() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("MOSS_CALIBRATE")) candidates.emplace_back(env);
  candidates.emplace_back(fs::path(MOSS_SOURCE_DIR) / "calibrate" / "moss-calibrate");
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / "calibrate" / "moss-calibrate");
  for (const auto& c : candidates) {
    if (fs::is_regular_file(c, ec)) return c.string();
  }
  throw RuntimeFailure("cannot find calibrate/moss-calibrate (set MOSS_CALIBRATE to its path)");
}

}  // namespace

int run_calibrate(const CalibrateOptions& o) {
  std::vector<std::string> args{find_tool()};
  args.insert(args.end(), o.args.begin(), o.args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) {
    throw RuntimeFailure(args[0] + ": cannot start the calibration tool (is /usr/bin/python3 installed?)");
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw RuntimeFailure("waiting for the calibration tool failed");
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace moss::app
