// Loader in a forked child; answer framed on a pipe (see isolated_load.h).
//
// Wire format (native byte order, both ends are this binary):
//   'V' u64 tensors { str name; i64 layers, tokens, dim; u64 count; f32[count] }   a result
//   'I' u64 problems { str file; str pointer; str message }                          an InputError
//   'F' str what                                                                     another failure
//   then 'E'. str = u64 length + bytes. A stream without its 'E' means the child died while writing.
#include "isolated_load.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>

#include "moss/core/error.h"

namespace moss::io::detail {

namespace {

constexpr std::uint64_t kMaxString = 1U << 20;

class PipeWriter {
 public:
  explicit PipeWriter(int fd) : fd_(fd) {}
  void bytes(const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) ::_exit(3);  // the parent went away; nothing left to tell
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }
  void u8(char c) { bytes(&c, 1); }
  void u64(std::uint64_t v) { bytes(&v, sizeof v); }
  void i64(std::int64_t v) { bytes(&v, sizeof v); }
  void str(const std::string& s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }

 private:
  int fd_;
};

/// Reads exact byte counts; `ok()` turns false at the first short read and stays false.
class PipeReader {
 public:
  explicit PipeReader(int fd) : fd_(fd) {}
  bool bytes(void* data, std::size_t n) {
    char* p = static_cast<char*>(data);
    while (ok_ && n > 0) {
      const ssize_t r = ::read(fd_, p, n);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) ok_ = false;
      else {
        p += r;
        n -= static_cast<std::size_t>(r);
      }
    }
    return ok_;
  }
  char u8() {
    char c = 0;
    bytes(&c, 1);
    return c;
  }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    bytes(&v, sizeof v);
    return v;
  }
  std::int64_t i64() {
    std::int64_t v = 0;
    bytes(&v, sizeof v);
    return v;
  }
  std::string str() {
    const std::uint64_t n = u64();
    if (n > kMaxString) ok_ = false;
    if (!ok_) return {};
    std::string s(static_cast<std::size_t>(n), '\0');
    bytes(s.data(), s.size());
    return s;
  }
  [[nodiscard]] bool ok() const { return ok_; }
  void fail() { ok_ = false; }

 private:
  int fd_;
  bool ok_ = true;
};

/// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

/// Reaps the child; a child still running when the parent gives up early is killed first.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  /// Waits for the child and returns its wait status.
  int wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_;
};

[[noreturn]] void child_main(int fd, const std::string& path, Loader load) {
  // A crash in the library is the expected failure here: let it end the child by its signal, without a
  // core file and without a sanitizer's SEGV report (memory errors in moss's own code are still caught
  // by the instrumentation, which does not need these signals).
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (const int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::sigaction(sig, &dfl, nullptr);
  const int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (devnull >= 0) {
    ::dup2(devnull, STDOUT_FILENO);
    ::dup2(devnull, STDERR_FILENO);
  }
  PipeWriter w(fd);
  try {
    const Activations a = load(path);
    w.u8('V');
    w.u64(a.tensors.size());
    for (const Tensor& t : a.tensors) {
      w.str(t.name);
      w.i64(t.layers);
      w.i64(t.tokens);
      w.i64(t.dim);
      w.u64(t.values.size());
      w.bytes(t.values.data(), t.values.size() * sizeof(float));
    }
  } catch (const InputError& e) {
    w.u8('I');
    w.u64(e.problems().size());
    for (const Problem& p : e.problems()) {
      w.str(p.file);
      w.str(p.pointer);
      w.str(p.message);
    }
  } catch (const std::exception& e) {
    w.u8('F');
    w.str(e.what());
  } catch (...) {
    w.u8('F');
    w.str("unknown exception");
  }
  w.u8('E');
  ::_exit(0);  // not exit(): the parent's atexit handlers (HDF5's among them) must not run twice
}

bool read_tensor(PipeReader& r, Tensor& t) {
  t.name = r.str();
  t.layers = r.i64();
  t.tokens = r.i64();
  t.dim = r.i64();
  const std::uint64_t count = r.u64();
  if (!r.ok() || t.layers < 1 || t.tokens < 1 || t.dim < 1) return false;
  const auto layers = static_cast<std::uint64_t>(t.layers);
  const auto tokens = static_cast<std::uint64_t>(t.tokens);
  const auto dim = static_cast<std::uint64_t>(t.dim);
  constexpr std::uint64_t kMax = std::numeric_limits<std::size_t>::max() / sizeof(float);
  if (tokens > kMax / dim || layers > kMax / (tokens * dim) || count != layers * tokens * dim) return false;
  t.values.resize(static_cast<std::size_t>(count));
  return r.bytes(t.values.data(), t.values.size() * sizeof(float));
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = ::sigabbrev_np(sig);
    return "killed by signal " + std::to_string(sig) + (name ? std::string(" (SIG") + name + ")" : "");
  }
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "stopped unexpectedly";
}

}  // namespace

Activations load_in_child(const std::string& path, Loader load, const std::string& library,
                          const std::string& format) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw RuntimeFailure("cannot create a pipe to read " + path + ": " + std::strerror(errno));
  Fd read_end(fds[0]);
  Fd write_end(fds[1]);
  const pid_t pid = ::fork();
  if (pid < 0) throw RuntimeFailure("cannot start a process to read " + path + ": " + std::strerror(errno));
  if (pid == 0) {
    read_end.reset();
    child_main(write_end.get(), path, load);
  }
  Child child(pid);
  write_end.reset();  // so that the child's exit ends the stream

  PipeReader r(read_end.get());
  Activations result;
  std::vector<Problem> problems;
  std::string failure;
  const char tag = r.u8();
  if (tag == 'V') {
    const std::uint64_t n = r.u64();
    if (n > 2) r.fail();
    for (std::uint64_t i = 0; r.ok() && i < n; ++i) {
      Tensor t;
      if (!read_tensor(r, t)) break;
      result.tensors.push_back(std::move(t));
    }
  } else if (tag == 'I') {
    const std::uint64_t n = r.u64();
    for (std::uint64_t i = 0; r.ok() && i < n && i < 1000; ++i) {
      Problem p;
      p.file = r.str();
      p.pointer = r.str();
      p.message = r.str();
      problems.push_back(std::move(p));
    }
  } else if (tag == 'F') {
    failure = r.str();
  }
  const bool complete = r.ok() && (tag == 'V' || tag == 'I' || tag == 'F') && r.u8() == 'E' && r.ok();
  read_end.reset();
  const int status = child.wait();
  if (!complete || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw InputError(path, "",
                     library + " crashed reading this file (" + describe(status) + "): expected a valid " +
                         format + " file; this one is corrupt");
  }
  if (tag == 'I') throw InputError(std::move(problems));
  if (tag == 'F') throw RuntimeFailure("reading " + path + ": " + failure);
  return result;
}

}  // namespace moss::io::detail
