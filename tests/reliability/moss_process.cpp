#include "moss_process.h"

#include <fcntl.h>
#include <poll.h>
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

namespace {

// Reads both pipes until the child closes them (poll, so neither pipe can fill up and block it).
void drain(int out_fd, int err_fd, std::string& out, std::string& err) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* sinks[2] = {&out, &err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
}

}  // namespace

// Pipes, not files, carry stdout and stderr: RLIMIT_FSIZE limits regular files only, so the child's
// messages survive a "full disk".
ProcessResult run_process(const std::vector<std::string>& args, const Limits& limits, const fs::path& scratch) {
  fs::create_directories(scratch);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int out_pipe[2], err_pipe[2];
  ProcessResult r;
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return r;
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return r;
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Child: only async-signal-safe calls until execv.
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    const auto limit = [](int resource, std::uint64_t value) {
      if (value == 0) return;
      const rlimit rl{static_cast<rlim_t>(value), static_cast<rlim_t>(value)};
      ::setrlimit(resource, &rl);
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
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (pid < 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return r;
  }
  drain(out_pipe[0], err_pipe[0], r.out, r.err);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  // Kept for looking at a failure after the fact.
  std::ofstream(scratch / "stdout.txt", std::ios::binary) << r.out;
  std::ofstream(scratch / "stderr.txt", std::ios::binary) << r.err;
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
