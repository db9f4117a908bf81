#include "moss/core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "moss/core/error.h"

namespace moss {

namespace {

std::string reason(int error) { return std::string(std::strerror(error)) + (error == ENOSPC ? "; disk full" : ""); }

[[noreturn]] void fail(const std::string& path, const std::string& what, int error) {
  throw RuntimeFailure(path + ": " + what + " (" + reason(error) + ")");
}

// write_all's loop: 0 when all of `data` was written, else the errno of the failed write.
int write_fully(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

std::string parent_directory(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// install_file's and replace_file's last step: `temporary`, already as durable as asked, renamed over
// `path`, then the directory entry synced where asked. On failure removes `temporary` and throws.
void rename_into_place(const std::string& temporary, const std::string& path, Durability durability) {
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    fail(path, "cannot move the finished file into place", error);
  }
  if (durability == Durability::kFileAndDirectory) sync_path(parent_directory(path));
}

}  // namespace

void write_all(int fd, std::string_view data, const std::string& path) {
  if (const int error = write_fully(fd, data); error != 0) throw RuntimeFailure("cannot write " + path + ": " + reason(error));
}

std::string temporary_name(const std::string& path) {
  static std::atomic<std::uint64_t> serial{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char host[64] = "host";
  ::gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  std::string name = path + ".tmp-";
  for (const char* c = host; *c != '\0'; ++c) name += std::isalnum(static_cast<unsigned char>(*c)) ? *c : '_';
  char tail[64];
  std::snprintf(tail, sizeof tail, "-%ld-%llu-%016llx", static_cast<long>(::getpid()),
                static_cast<unsigned long long>(serial.fetch_add(1)), static_cast<unsigned long long>(rng()));
  return name + tail;
}

void sync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    throw RuntimeFailure("cannot fsync " + path + ": " + reason(error));
  }
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (rc != 0) throw RuntimeFailure("cannot fsync " + path + ": " + reason(error));
}

void install_file(const std::string& temporary, const std::string& path, Durability durability) {
  try {
    if (durability != Durability::kNone) sync_path(temporary);
  } catch (...) {
    ::unlink(temporary.c_str());
    throw;
  }
  rename_into_place(temporary, path, durability);
}

std::string stage_file(const std::string& path, std::string_view content, Durability durability) {
  const std::string temporary = temporary_name(path);
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, "cannot write", errno);
  // A full disk shows up at write (ENOSPC, EFBIG), at fsync or at close (quotas, NFS).
  int error = write_fully(fd, content);
  if (error == 0 && durability != Durability::kNone && ::fsync(fd) != 0) error = errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    ::unlink(temporary.c_str());
    fail(path, "write failed", error);
  }
  return temporary;
}

void replace_file(const std::string& path, std::string_view content, Durability durability) {
  rename_into_place(stage_file(path, content, durability), path, durability);
}

std::optional<std::string> file_version(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  const auto ns = [](const timespec& t) { return std::to_string(t.tv_sec) + "." + std::to_string(t.tv_nsec); };
  return "inode " + std::to_string(st.st_ino) + " size " + std::to_string(st.st_size) + " modified " + ns(st.st_mtim) +
         " changed " + ns(st.st_ctim);
}

}  // namespace moss
