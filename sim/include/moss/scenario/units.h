#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace moss::scenario {

/// A data rate such as "300Mbps", "100Gbps", "37.5MB/s", "1.5GiB/s" in bits per second.
/// Bits: bps, kbps, Kbps, Mbps, Gbps, Tbps (powers of 1000). Bytes: B/s, kB/s, KB/s, MB/s, GB/s,
/// TB/s (powers of 1000), KiB/s, MiB/s, GiB/s (powers of 1024). nullopt when malformed.
[[nodiscard]] std::optional<double> parse_rate_bps(std::string_view text);

/// A duration such as "5ms", "1us", "2.5s", "40 ns" in seconds. Units: ns, us, ms, s, min, h.
[[nodiscard]] std::optional<double> parse_duration_s(std::string_view text);

/// A size such as "16MiB", "4GB", "512KiB", "100B" in bytes.
[[nodiscard]] std::optional<double> parse_size_bytes(std::string_view text);

/// What the parsers accept, for error messages.
inline constexpr const char* kRateExpectation =
    "a rate with a unit, such as \"300Mbps\", \"100Gbps\" or \"37.5MB/s\"";
inline constexpr const char* kDurationExpectation =
    "a duration with a unit, such as \"5ms\", \"1us\" or \"2s\"";
inline constexpr const char* kSizeExpectation =
    "a size with a unit, such as \"16MiB\", \"4GB\" or \"512KiB\"";

/// "300 Mbps" style formatting for messages and reports.
[[nodiscard]] std::string format_rate(double bps);
[[nodiscard]] std::string format_duration(double s);
[[nodiscard]] std::string format_bytes(double bytes);

}  // namespace moss::scenario
