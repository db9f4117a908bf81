#include "report_command.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <ostream>
#include <vector>

#include "moss/core/error.h"
#include "output.h"

extern char** environ;

namespace moss::app {

namespace fs = std::filesystem;

namespace {

// Runs argv, inheriting stdout/stderr (or silencing both with `quiet`); returns the exit status
// (127 when it could not start).
int spawn_and_wait(const std::vector<std::string>& args, bool quiet = false) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (quiet) {
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid = 0;
  const int started = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (started != 0) return 127;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return 127;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// MOSS_ANALYSIS_DIR in the environment, the source tree this binary was built from, or an
// analysis/ folder next to (or above) the executable for installed copies.
std::string find_report_script() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("MOSS_ANALYSIS_DIR")) candidates.emplace_back(env);
#ifdef MOSS_ANALYSIS_DIR
  candidates.emplace_back(MOSS_ANALYSIS_DIR);
#endif
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(exe.parent_path() / "analysis");
    candidates.push_back(exe.parent_path().parent_path() / "analysis");
    candidates.push_back(exe.parent_path().parent_path() / "share" / "moss" / "analysis");
  }
  for (const auto& dir : candidates)
    if (fs::exists(dir / "moss_report.py", ec)) return (dir / "moss_report.py").string();
  throw RuntimeFailure("cannot find analysis/moss_report.py (set MOSS_ANALYSIS_DIR to the analysis folder)");
}

}  // namespace

void add_report_options(CLI::App& sub, ReportOptions& o) {
  sub.add_option("dir", o.dir, "run or sweep directory (holds results.h5 and/or summary.json)")->required();
  sub.add_option("--out", o.out, "where report.html and report.md go (default: DIR)")->check(non_empty("a directory"));
  sub.add_option("--deadline", o.deadline, "deadline for the recommendation, e.g. 30d, 72h (default: 30d)");
  sub.add_option("--budget", o.budget, "budget in USD for the recommendation, 0 or more (default: the median cost)");
  sub.add_option("--python", o.python, "Python interpreter (default python3)");
}

int run_report(const ReportOptions& o, std::ostream& out, std::ostream& err) {
  std::error_code ec;
  if (!fs::is_directory(o.dir, ec)) throw InputError(o.dir, "", "not a directory (expected a moss run or sweep directory)");
  if (!fs::exists(fs::path(o.dir) / "results.h5", ec) && !fs::exists(fs::path(o.dir) / "summary.json", ec))
    throw InputError(o.dir, "", "holds neither results.h5 nor summary.json (run `moss run` or `moss sweep` first)");
  const std::string script = find_report_script();
  // The first interpreter with the modules: a pyenv/venv python3 on PATH often lacks Debian's.
  std::vector<std::string> pythons = {o.python};
  if (o.python == "python3") pythons.emplace_back("/usr/bin/python3");
  std::string python;
  int probe = 127;
  for (const auto& candidate : pythons) {
    probe = spawn_and_wait({candidate, "-c", "import matplotlib, h5py, numpy"}, true);
    if (probe == 0) {
      python = candidate;
      break;
    }
  }
  if (python.empty() && probe == 127) throw RuntimeFailure("moss report needs " + o.python + " (Debian: apt-get install python3)");
  if (python.empty())
    throw RuntimeFailure("moss report needs matplotlib, h5py and numpy for " + o.python +
                         " (Debian: apt-get install python3-matplotlib python3-h5py python3-numpy)");
  std::vector<std::string> args = {python, script, o.dir};
  if (!o.out.empty()) args.insert(args.end(), {"--out", o.out});
  // "--flag=value": a value such as "-5d" is then the flag's (and refused by the report as a value),
  // not taken for another flag.
  if (!o.deadline.empty()) args.push_back("--deadline=" + o.deadline);
  if (!o.budget.empty()) args.push_back("--budget=" + o.budget);
  out.flush();
  err.flush();
  const int rc = spawn_and_wait(args);
  if (rc == 0) return 0;
  if (rc == 2) return 2;  // the script's own input error (message already printed)
  throw RuntimeFailure("the report script failed (exit " + std::to_string(rc) + "): " + script);
}

}  // namespace moss::app
