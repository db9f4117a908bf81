#pragma once

// Reading and writing the entries of the on-disk measurement cache (moss/step/measurement_cache.h).

#include <filesystem>
#include <optional>
#include <string>

#include "moss/kernels/measure.h"

namespace moss::step::detail {

/// One cached measurement.
struct StoredMeasurement {
  kernels::MeasureResult result;
  std::string measured_at;  ///< UTC, "2026-11-28T10:40:03Z"
  double measure_s = 0;     ///< wall time the measurement took
};

/// The entry file of `key` in `dir`.
[[nodiscard]] std::filesystem::path entry_path(const std::filesystem::path& dir, const std::string& key);

/// The entry of `key`, or nullopt when there is none or it cannot be read, parsed, or is another
/// key's (a hash collision) or holds a figure out of range. Never throws for a bad entry.
[[nodiscard]] std::optional<StoredMeasurement> load_measurement(const std::filesystem::path& dir, const std::string& key);

/// Writes the entry of `key` (creating `dir`), atomically. Returns "" or why it could not.
[[nodiscard]] std::string store_measurement(const std::filesystem::path& dir, const std::string& key,
                                            const StoredMeasurement& entry);

/// The current time as "2026-11-28T10:40:03Z".
[[nodiscard]] std::string utc_now();

}  // namespace moss::step::detail
