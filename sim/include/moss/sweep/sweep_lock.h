#pragma once

#include <string>

namespace moss::sweep {

/// An exclusive advisory lock (flock) on the file `path`, created when missing and held for the
/// object's life: two `moss sweep` processes of the same rank never write one directory's journal
/// and results at once (each would run every unfinished point and append to the same journal).
/// Released by the kernel when the process dies, so a killed sweep never leaves a stale lock.
/// On a file system without locks (ENOLCK, EOPNOTSUPP) nothing is locked.
class SweepLock {
 public:
  /// Throws moss::InputError naming `out_dir` when another process holds the lock, or when `path`
  /// is not a regular file; moss::RuntimeFailure when it cannot be opened.
  SweepLock(const std::string& path, const std::string& out_dir);
  ~SweepLock();
  SweepLock(const SweepLock&) = delete;
  SweepLock& operator=(const SweepLock&) = delete;
  SweepLock(SweepLock&& other) noexcept;
  SweepLock& operator=(SweepLock&&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace moss::sweep
