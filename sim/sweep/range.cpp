#include "moss/sweep/range.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <regex>
#include <system_error>

#include "moss/core/error.h"

namespace moss::sweep {

namespace {

struct Unit {
  const char* name;
  int family;    // 0 bit rate, 1 byte rate, 2 time
  double scale;  // SI base: bits/s for both rate families, seconds for time
};

// Ordered small to large within each family (formatting picks the largest that keeps value >= 1).
constexpr Unit kUnits[] = {
    {"bps", 0, 1},     {"Kbps", 0, 1e3}, {"Mbps", 0, 1e6}, {"Gbps", 0, 1e9}, {"Tbps", 0, 1e12},
    {"B/s", 1, 8},     {"KB/s", 1, 8e3}, {"MB/s", 1, 8e6}, {"GB/s", 1, 8e9},
    {"ns", 2, 1e-9},   {"us", 2, 1e-6},  {"ms", 2, 1e-3},  {"s", 2, 1},
};

struct Quantity {
  double si = 0;
  int family = -1;  // -1: a bare number
  bool integer = false;
};

const std::regex& range_regex() {
  static const std::regex re(R"(^\s*(\S+?)\s*\.\.\s*(\S+)\s+x\s*(\d+)\s*(log|lin)?\s*$)");
  return re;
}

Quantity parse_quantity(const std::string& text, const std::string& file, const std::string& ptr) {
  static const std::regex re(R"(^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z/]*)$)");
  std::smatch m;
  if (!std::regex_match(text, m, re))
    throw InputError(file, ptr, "\"" + text + "\": expected a number, optionally with a unit such as 300Mbps or 5ms");
  Quantity q;
  const std::string digits = m[1].str();
  const char* begin = digits.data() + (digits[0] == '+' ? 1 : 0);  // from_chars takes no '+'
  double number = 0;
  const auto [end, ec] = std::from_chars(begin, digits.data() + digits.size(), number);
  // Out of range: beyond 1.8e308, or so small that it would be read as a subnormal or zero.
  if (ec != std::errc() || end != digits.data() + digits.size() || !std::isfinite(number) ||
      (number != 0 && std::fabs(number) < std::numeric_limits<double>::min()))
    throw InputError(file, ptr, "\"" + text + "\": " + digits + " is out of the range of a double (magnitudes 2.3e-308 to 1.8e308, or 0)");
  const std::string unit = m[2].str();
  if (unit.empty()) {
    q.si = number;
    // Integer ends give integer points, where every integer between them is exact in a double.
    constexpr double kExactIntegers = 9007199254740992.0;  // 2^53
    q.integer = digits.find_first_of(".eE") == std::string::npos && std::fabs(number) <= kExactIntegers;
    return q;
  }
  for (const auto& u : kUnits)
    if (unit == u.name) {
      q.si = number * u.scale;
      q.family = u.family;
      return q;
    }
  throw InputError(file, ptr, "\"" + text + "\": unknown unit \"" + unit +
                                  "\" (expected bps, Kbps, Mbps, Gbps, Tbps, B/s, KB/s, MB/s, GB/s, ns, us, ms or s)");
}

std::string format_with_unit(double si, int family) {
  const Unit* best = nullptr;
  for (const auto& u : kUnits) {
    if (u.family != family) continue;
    if (!best || std::fabs(si) / u.scale >= 1.0 - 1e-12) best = &u;  // a negative end keeps its unit
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g%s", si / best->scale, best->name);
  return buf;
}

double round_sig(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.12g", v);
  return std::strtod(buf, nullptr);  // not std::stod: a subnormal point is not an error here
}

}  // namespace

bool is_range(const std::string& text) { return text.find("..") != std::string::npos; }

std::vector<nlohmann::json> expand_range(const std::string& text, const std::string& file,
                                         const std::string& ptr) {
  std::smatch m;
  if (!std::regex_match(text, m, range_regex()))
    throw InputError(file, ptr, "\"" + text + "\": expected a range such as \"300Mbps..100Gbps x10 log\"");
  const Quantity lo = parse_quantity(m[1].str(), file, ptr);
  const Quantity hi = parse_quantity(m[2].str(), file, ptr);
  long count = 0;
  const std::string points = m[3].str();
  if (std::from_chars(points.data(), points.data() + points.size(), count).ec != std::errc()) count = -1;  // too many digits
  const bool log = m[4].matched && m[4].str() == "log";
  if (lo.family != hi.family)
    throw InputError(file, ptr, "\"" + text + "\": both ends of a range need the same kind of unit");
  if (count < 1 || count > 100000) throw InputError(file, ptr, "\"" + text + "\": expected 1 to 100000 points");
  // Both ends are points of a range: one point can hold both only when they are the same.
  if (count == 1 && std::fabs(lo.si - hi.si) > 1e-12 * std::max(std::fabs(lo.si), std::fabs(hi.si)))  // 1.072Gbps..1072Mbps
    throw InputError(file, ptr, "\"" + text + "\": one point cannot include both ends; give 2 or more points, or the value itself");
  if (log && (lo.si <= 0 || hi.si <= 0))
    throw InputError(file, ptr, "\"" + text + "\": a log range needs positive ends");
  std::vector<nlohmann::json> out;
  for (long i = 0; i < count; ++i) {
    const double f = count == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(count - 1);
    const double v = log ? lo.si * std::pow(hi.si / lo.si, f) : lo.si + (hi.si - lo.si) * f;
    if (!std::isfinite(v)) throw InputError(file, ptr, "\"" + text + "\": the points between these ends overflow a double");
    nlohmann::json value;
    if (lo.family >= 0) {
      value = format_with_unit(v, lo.family);
    } else if (lo.integer && hi.integer) {
      value = static_cast<std::int64_t>(std::llround(v));
    } else {
      value = round_sig(v);
    }
    if (out.empty() || out.back() != value) out.push_back(std::move(value));
  }
  return out;
}

}  // namespace moss::sweep
