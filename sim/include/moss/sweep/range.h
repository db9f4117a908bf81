#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moss::sweep {

/// True when `text` looks like a range ("A..B xN [log|lin]"), so it is expanded, not used as a value.
[[nodiscard]] bool is_range(const std::string& text);

/// Expands a range string into its values (see sim/sweep/README.md):
///   "300Mbps..100Gbps x10 log"  10 values log-spaced, both ends included, as rate strings
///   "1ms..100ms x3 log"         "1ms", "10ms", "100ms"
///   "8..64 x4 log"              8, 16, 32, 64 (integers when both ends are integers; repeats dropped)
///   "0.1..0.5 x5"               linear (the default)
/// Units: bps Kbps Mbps Gbps Tbps, B/s KB/s MB/s GB/s, ns us ms s; both ends in one family.
/// Values carrying a unit are written in the largest unit of the family that keeps them >= 1.
/// Throws moss::InputError(file, pointer, ...) on malformed text.
[[nodiscard]] std::vector<nlohmann::json> expand_range(const std::string& text, const std::string& file,
                                                       const std::string& pointer);

}  // namespace moss::sweep
