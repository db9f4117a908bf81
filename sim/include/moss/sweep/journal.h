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

/// Every complete record of every "*.jsonl" file in `dir`, by point index (first one wins).
/// A missing directory gives an empty map; torn or malformed lines are skipped.
[[nodiscard]] std::map<std::int64_t, PointRecord> read_journals(const std::string& dir);

}  // namespace moss::sweep
