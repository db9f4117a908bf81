#include "moss/scenario/units.h"

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>

namespace moss::scenario {

namespace {

struct Unit {
  std::string_view name;
  double factor;
};

// Splits "<number><optional spaces><unit>" strictly: a plain decimal or scientific number,
// then a unit from the table, nothing else.
std::optional<double> parse_with_units(std::string_view text, const Unit* units, std::size_t count) {
  std::size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  const std::size_t begin = i;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.' ||
                             text[i] == 'e' || text[i] == 'E' || text[i] == '+' || text[i] == '-')) {
    // 'e' belongs to the number only when a digit or sign follows ("1e9"), not a unit.
    if ((text[i] == 'e' || text[i] == 'E') &&
        (i + 1 >= text.size() ||
         !(std::isdigit(static_cast<unsigned char>(text[i + 1])) || text[i + 1] == '-' || text[i + 1] == '+'))) {
      break;
    }
    ++i;
  }
  if (i == begin) return std::nullopt;
  double value = 0;
  const auto* first = text.data() + begin;
  const auto* last = text.data() + i;
  auto [ptr, ec] = std::from_chars(first, last, value);
  if (ec != std::errc() || ptr != last || !std::isfinite(value)) return std::nullopt;
  while (i < text.size() && text[i] == ' ') ++i;
  std::size_t end = text.size();
  while (end > i && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  const std::string_view unit = text.substr(i, end - i);
  for (std::size_t u = 0; u < count; ++u) {
    if (units[u].name == unit) return value * units[u].factor;
  }
  return std::nullopt;
}

constexpr double kKi = 1024.0;

constexpr std::array kRates{
    Unit{"bps", 1}, Unit{"kbps", 1e3}, Unit{"Kbps", 1e3}, Unit{"Mbps", 1e6}, Unit{"Gbps", 1e9},
    Unit{"Tbps", 1e12}, Unit{"B/s", 8}, Unit{"kB/s", 8e3}, Unit{"KB/s", 8e3}, Unit{"MB/s", 8e6},
    Unit{"GB/s", 8e9}, Unit{"TB/s", 8e12}, Unit{"KiB/s", 8 * kKi}, Unit{"MiB/s", 8 * kKi * kKi},
    Unit{"GiB/s", 8 * kKi * kKi * kKi}};
constexpr std::array kDurations{Unit{"ns", 1e-9}, Unit{"us", 1e-6}, Unit{"\xC2\xB5s", 1e-6},
                                Unit{"ms", 1e-3}, Unit{"s", 1},     Unit{"min", 60},
                                Unit{"h", 3600}};
constexpr std::array kSizes{Unit{"B", 1},    Unit{"kB", 1e3},  Unit{"KB", 1e3},
                            Unit{"MB", 1e6}, Unit{"GB", 1e9},  Unit{"TB", 1e12},
                            Unit{"KiB", kKi}, Unit{"MiB", kKi * kKi}, Unit{"GiB", kKi * kKi * kKi},
                            Unit{"TiB", kKi * kKi * kKi * kKi}};

std::string with_unit(double value, const char* unit) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g %s", value, unit);
  return buf;
}

}  // namespace

std::optional<double> parse_rate_bps(std::string_view text) {
  return parse_with_units(text, kRates.data(), kRates.size());
}

std::optional<double> parse_duration_s(std::string_view text) {
  return parse_with_units(text, kDurations.data(), kDurations.size());
}

std::optional<double> parse_size_bytes(std::string_view text) {
  return parse_with_units(text, kSizes.data(), kSizes.size());
}

std::string format_rate(double bps) {
  if (bps >= 1e12) return with_unit(bps / 1e12, "Tbps");
  if (bps >= 1e9) return with_unit(bps / 1e9, "Gbps");
  if (bps >= 1e6) return with_unit(bps / 1e6, "Mbps");
  if (bps >= 1e3) return with_unit(bps / 1e3, "kbps");
  return with_unit(bps, "bps");
}

std::string format_duration(double s) {
  if (s >= 3600) return with_unit(s / 3600, "h");
  if (s >= 1) return with_unit(s, "s");
  if (s >= 1e-3) return with_unit(s * 1e3, "ms");
  if (s >= 1e-6) return with_unit(s * 1e6, "us");
  return with_unit(s * 1e9, "ns");
}

std::string format_bytes(double bytes) {
  if (bytes >= kKi * kKi * kKi) return with_unit(bytes / (kKi * kKi * kKi), "GiB");
  if (bytes >= kKi * kKi) return with_unit(bytes / (kKi * kKi), "MiB");
  if (bytes >= kKi) return with_unit(bytes / kKi, "KiB");
  return with_unit(bytes, "B");
}

}  // namespace moss::scenario
