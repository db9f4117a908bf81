#pragma once

#include <map>
#include <mutex>
#include <string>

#include "moss/sweep/point_record.h"

namespace moss::sweep {

/// An append-only file of finished points, one JSON record per line. append() returns once the
/// line is on disk (write + fdatasync), so a point reported done survives kill -9 or power loss.
/// A line torn by a crash is cut off when the journal is reopened.
class Journal {
 public:
  /// Opens (creating) `path` for appending. Throws moss::RuntimeFailure on I/O errors.
  /// `sync` false skips fdatasync (tests and benchmarks on slow disks).
  explicit Journal(std::string path, bool sync = true);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  /// Thread-safe.
  void append(const PointRecord& record);
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool sync_ = true;
  std::mutex mutex_;
};

/// Throws InputError naming `path` when it exists but is not a regular file (following symbolic
/// links): a FIFO would block the read and a device never ends. `what` names it ("journal", ...).
void check_sweep_file(const std::string& path, const std::string& what);

/// Every complete record of every "*.jsonl" file in `dir`, by point index (first one wins).
/// A missing directory gives an empty map; torn, malformed or overlong (> 64 MiB) lines are skipped;
/// a journal that is not a regular file is an InputError.
[[nodiscard]] std::map<std::int64_t, PointRecord> read_journals(const std::string& dir);

}  // namespace moss::sweep
