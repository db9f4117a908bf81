// Loader in a forked child; answer framed on a pipe (see isolated_load.h).
//
// Wire format (native byte order, both ends are this binary):
//   'V' u64 tensors { str name; i64 layers, tokens, dim; u64 count; f32[count] }   a result
//   'I' u64 problems { str file; str pointer; str message }                          an InputError
//   'F' str what                                                                     another failure
//   then 'E'. str = u64 length + bytes. A stream without its 'E' means the child died while writing.
// A child that ran out of its memory budget writes nothing and exits with kOutOfMemoryExit.
//
// The memory cap is RLIMIT_DATA, not RLIMIT_AS: both bound glibc's heap (brk and mmap) in a plain build,
// but an ASan build reserves terabytes of address space at start (shadow, allocator regions) and then
// maps its heap inside those reservations, which RLIMIT_AS never sees (measured: a child capped at
// VmSize + 256 MiB allocated 4 GiB in small blocks). The kernel charges RLIMIT_DATA for every private
// writable mapping as it is made writable, so measuring the child's VmData at start and allowing a
// budget on top works in both builds (ASan's ~14 TB of read-write shadow are part of that baseline).
#include "isolated_load.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <new>

#include "moss/core/error.h"

// Provided by the sanitizer runtime in ASan builds (resolved to null otherwise): see on_sanitizer_death.
extern "C" {
void __sanitizer_set_death_callback(void (*callback)()) __attribute__((weak));
void __asan_set_error_report_callback(void (*callback)(const char*)) __attribute__((weak));
}

namespace moss::io::detail {

namespace {

constexpr std::uint64_t kMaxString = 1U << 20;
constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
/// Exit status of a child that ran out of its memory budget (12 = ENOMEM); child_main's own exits are
/// otherwise 0 (answer sent) and 3 (parent gone).
constexpr int kOutOfMemoryExit = 12;
/// A sanitizer that dies this close to the cap died of it (see on_sanitizer_death).
constexpr std::uint64_t kNearLimitBytes = 16 * kMiB;
/// Memory a sanitizer may use beyond the cap to print its report (see on_sanitizer_error).
constexpr std::uint64_t kReportHeadroomBytes = 64 * kMiB;

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return a > std::numeric_limits<std::uint64_t>::max() - b ? std::numeric_limits<std::uint64_t>::max() : a + b;
}

/// VmData of this process (private writable mappings and heap: what RLIMIT_DATA counts), in bytes; 0
/// when /proc is unreadable. Plain open/read and no allocation: it also runs in a dying process.
std::uint64_t vm_data_bytes() {
  const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[8192];
  std::size_t len = 0;
  while (len < sizeof buf - 1) {
    const ssize_t r = ::read(fd, buf + len, sizeof buf - 1 - len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += static_cast<std::size_t>(r);
  }
  ::close(fd);
  buf[len] = '\0';
  const char* at = std::strstr(buf, "\nVmData:");
  if (at == nullptr) return 0;
  at += 8;
  while (*at == ' ' || *at == '\t') ++at;
  std::uint64_t kib = 0;
  for (; *at >= '0' && *at <= '9'; ++at) kib = kib * 10 + static_cast<std::uint64_t>(*at - '0');
  return kib * 1024;
}

// What the sanitizer callbacks below need. They take no user data, so this lives in a global; it is set
// only in the forked child, before the loader runs, and the parent never reads it.
struct ChildMemory {
  std::uint64_t limit_bytes = 0;  ///< RLIMIT_DATA of the child; 0 = none set
  bool report_says_oom = false;   ///< the sanitizer's report was an allocation failure
};
ChildMemory g_child_memory;

// ASan starts every report here. Printing one (symbolizing the stack) maps memory, which fails at the
// cap; ASan then deadlocks on its own symbolizer lock (seen with GCC 12's libasan) instead of dying. So
// the soft limit rises to the hard one, kReportHeadroomBytes above it, for the report alone.
void on_sanitizer_error() {
  if (g_child_memory.limit_bytes == 0) return;
  rlimit r{};
  if (::getrlimit(RLIMIT_DATA, &r) != 0) return;
  r.rlim_cur = r.rlim_max;
  ::setrlimit(RLIMIT_DATA, &r);
}

void on_sanitizer_report(const char* report) {
  for (const char* kind : {"out of memory", "allocation-size-too-big", "calloc-overflow"}) {
    if (std::strstr(report, kind) != nullptr) g_child_memory.report_says_oom = true;
  }
}

// ASan does not return NULL or throw std::bad_alloc when an allocation fails (allocator_may_return_null
// is off by default, and operator new never returns): it reports and dies. Printing that report needs
// memory as well and can fail first ("Failed to mmap", no report callback), hence also the distance to
// the cap. Any other sanitizer death keeps its exit status and is reported as a crash.
void on_sanitizer_death() {
  const std::uint64_t limit = g_child_memory.limit_bytes;
  if (g_child_memory.report_says_oom || (limit != 0 && saturating_add(vm_data_bytes(), kNearLimitBytes) >= limit))
    ::_exit(kOutOfMemoryExit);
}

/// Caps the child's data segment at its current size + `budget_bytes` and arms the sanitizer hooks.
void cap_memory(std::uint64_t budget_bytes) {
  if (__sanitizer_set_death_callback != nullptr) __sanitizer_set_death_callback(&on_sanitizer_death);
  if (__asan_set_error_report_callback != nullptr) __asan_set_error_report_callback(&on_sanitizer_report);
  const std::uint64_t now = vm_data_bytes();
  if (now == 0) return;  // no /proc: no baseline to cap from, and no cap rather than a wrong one
  rlimit old{};
  ::getrlimit(RLIMIT_DATA, &old);
  std::uint64_t limit = saturating_add(now, budget_bytes);
  std::uint64_t hard = saturating_add(limit, kReportHeadroomBytes);
  if (old.rlim_max != RLIM_INFINITY && old.rlim_max < hard) hard = old.rlim_max;
  limit = std::min(limit, hard);
  const rlimit cap{limit, hard};
  if (::setrlimit(RLIMIT_DATA, &cap) == 0) g_child_memory.limit_bytes = limit;
}

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

[[noreturn]] void child_main(int fd, const std::string& path, const Loader& load, std::uint64_t budget_bytes) {
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
  cap_memory(budget_bytes);
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
  } catch (const std::bad_alloc&) {
    ::_exit(kOutOfMemoryExit);
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

std::uint64_t child_memory_budget_bytes(std::uint64_t max_tensor_bytes) {
  constexpr std::uint64_t kLibraryBytes = 256 * kMiB;
  constexpr std::uint64_t kTensorCopies = 4;
  const std::uint64_t tensors = max_tensor_bytes > std::numeric_limits<std::uint64_t>::max() / kTensorCopies
                                    ? std::numeric_limits<std::uint64_t>::max()
                                    : kTensorCopies * max_tensor_bytes;
  return saturating_add(kLibraryBytes, tensors);
}

Activations load_in_child(const std::string& path, const Loader& load, const std::string& library,
                          const std::string& format, std::uint64_t max_tensor_bytes) {
  const std::uint64_t budget_bytes = child_memory_budget_bytes(max_tensor_bytes);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw RuntimeFailure("cannot create a pipe to read " + path + ": " + std::strerror(errno));
  Fd read_end(fds[0]);
  Fd write_end(fds[1]);
  const pid_t pid = ::fork();
  if (pid < 0) throw RuntimeFailure("cannot start a process to read " + path + ": " + std::strerror(errno));
  if (pid == 0) {
    read_end.reset();
    child_main(write_end.get(), path, load, budget_bytes);
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
  if (!complete && WIFEXITED(status) && WEXITSTATUS(status) == kOutOfMemoryExit) {
    throw InputError(path, "",
                     library + " needed more than " + std::to_string(budget_bytes / kMiB) +
                         " MiB reading this file (memory limit of the loader): expected a valid " + format +
                         " file; this one is corrupt or hostile");
  }
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

// ASan's documented hook, called as it detects an error (a weak no-op in its runtime, never called
// without ASan). Only a capped child acts on it.
extern "C" void __asan_on_error() { moss::io::detail::on_sanitizer_error(); }
