#include "moss/sweep/sweep_lock.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "moss/core/error.h"

namespace moss::sweep {

SweepLock::SweepLock(const std::string& path, const std::string& out_dir) {
  // O_NONBLOCK: a FIFO in the lock's place must not block the open.
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
  if (fd_ < 0 && (errno == EISDIR || errno == ENXIO))  // a directory, or a socket
    throw InputError(path, "", "is not a regular file: moss sweep keeps its lock there; remove it");
  if (fd_ < 0) throw RuntimeFailure("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    throw InputError(path, "", "is not a regular file: moss sweep keeps its lock there; remove it");
  }
  int rc = 0;
  do {
    rc = ::flock(fd_, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) return;
  const int err = errno;
  if (err == ENOLCK || err == EOPNOTSUPP) return;  // no locks here: run unlocked, as before
  ::close(fd_);
  fd_ = -1;
  if (err == EWOULDBLOCK)
    throw InputError(out_dir, "",
                     "another moss sweep is writing this directory (it holds " +
                         std::filesystem::path(path).lexically_relative(out_dir).string() +
                         "): wait for it to finish, or give another --out");
  throw RuntimeFailure("cannot lock " + path + ": " + std::strerror(err));
}

SweepLock::SweepLock(SweepLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

SweepLock::~SweepLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

}  // namespace moss::sweep
