#include "moss_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <system_error>

#include <gtest/gtest.h>

namespace moss::reliability {

namespace fs = std::filesystem;

std::uint64_t hostile_input_address_space() {
#if defined(MOSS_TEST_UNDER_SANITIZER)
  return 0;
#else
  // moss itself maps about 100 MiB (code, HDF5, thread stacks); 1 GiB leaves room for a valid run
  // and is far below what 1e15 tokens or 1e9 nodes would need if they were ever sized.
  return std::uint64_t{1} << 30;
#endif
}

ProcessResult run_process(const std::vector<std::string>& args, const Limits& limits, const fs::path& scratch) {
  fs::create_directories(scratch);
  const std::string out_path = (scratch / "stdout.txt").string();
  const std::string err_path = (scratch / "stderr.txt").string();
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Child: only async-signal-safe calls until execv.
    const int o = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0) ::_exit(126);
    ::dup2(o, 1);
    ::dup2(e, 2);
    const auto limit = [](int resource, std::uint64_t value) {
      if (value == 0) return;
      const rlimit r{static_cast<rlim_t>(value), static_cast<rlim_t>(value)};
      ::setrlimit(resource, &r);
    };
    limit(RLIMIT_AS, limits.address_space_bytes);
    limit(RLIMIT_CPU, limits.cpu_seconds);
    limit(RLIMIT_FSIZE, limits.file_size_bytes);
    if (limits.file_size_bytes != 0) ::signal(SIGXFSZ, SIG_IGN);  // a full file system, not a kill
    if (!limits.cwd.empty() && ::chdir(limits.cwd.c_str()) != 0) ::_exit(125);
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ProcessResult r;
  if (pid < 0) return r;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  return r;
}

ProcessResult run_moss(const std::vector<std::string>& args, const Limits& limits, const fs::path& scratch) {
  std::vector<std::string> full{MOSS_BINARY};
  full.insert(full.end(), args.begin(), args.end());
  return run_process(full, limits, scratch);
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("moss_rel_" + std::to_string(::getpid()) + "_" + name);
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  return dir;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace moss::reliability
