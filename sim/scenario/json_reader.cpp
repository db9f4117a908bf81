#include "json_reader.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "moss/scenario/units.h"

namespace moss::scenario {

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (same ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string fmt(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string list(const std::vector<std::string>& options) {
  std::string out;
  for (std::size_t i = 0; i < options.size(); ++i) out += (i ? ", \"" : "\"") + options[i] + "\"";
  return out;
}

}  // namespace

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

namespace {

constexpr std::size_t kBriefChars = 60;

// Renders at most about kBriefChars characters, descending at most a few levels: a hostile document
// (a 60 MB array, 100,000 nested arrays) must not cost a full dump or a recursion per level.
void append_brief(const nlohmann::json& value, std::string& out, int depth) {
  if (out.size() > kBriefChars) return;
  if (!value.is_structured()) {
    if (value.is_string() && value.get_ref<const std::string&>().size() > kBriefChars) {
      out += nlohmann::json(value.get_ref<const std::string&>().substr(0, kBriefChars)).dump(
          -1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      out += value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    return;
  }
  const bool object = value.is_object();
  if (value.empty()) {
    out += object ? "{}" : "[]";
    return;
  }
  if (depth >= 4) {
    out += object ? "{...}" : "[...]";
    return;
  }
  out += object ? '{' : '[';
  bool first = true;
  for (const auto& [key, item] : value.items()) {
    if (out.size() > kBriefChars) break;
    if (!first) out += ',';
    first = false;
    if (object) out += nlohmann::json(key).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + ':';
    append_brief(item, out, depth + 1);
  }
  out += object ? '}' : ']';
}

}  // namespace

std::string brief(const nlohmann::json& value) {
  std::string s;
  append_brief(value, s, 0);
  if (s.size() > kBriefChars) {
    std::size_t cut = kBriefChars - 3;
    // Never split a UTF-8 sequence: messages end up in JSON (sweep rows), which must stay valid UTF-8.
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    s = s.substr(0, cut) + "...";
  }
  return s;
}

JsonReader::JsonReader(std::string file, std::vector<Problem>& problems)
    : file_(std::move(file)), problems_(problems), start_count_(problems.size()) {}

void JsonReader::problem(const std::string& pointer, std::string message) {
  problems_.push_back({file_, pointer, std::move(message)});
}

std::string JsonReader::child(const std::string& pointer, std::string_view key) {
  std::string out = pointer + "/";
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

bool JsonReader::expect_object(const json& j, const std::string& pointer) {
  if (j.is_object()) return true;
  problem(pointer, "= " + brief(j) + ": expected an object");
  return false;
}

void JsonReader::allow_keys(const json& obj, const std::string& pointer,
                            std::initializer_list<std::string_view> allowed) {
  std::vector<std::string> names(allowed.begin(), allowed.end());
  for (const auto& [key, value] : obj.items()) {
    if (std::find(names.begin(), names.end(), key) != names.end()) continue;
    std::string msg = "unknown key \"" + key + "\"";
    const std::string hint = closest_match(key, names);
    msg += hint.empty() ? "; expected one of: " + list(names) : "; did you mean \"" + hint + "\"?";
    problem(child(pointer, key), msg);
  }
}

const nlohmann::json* JsonReader::member(const json& obj, const std::string& pointer,
                                         std::string_view key, bool required) {
  if (obj.is_object()) {
    auto it = obj.find(key);
    if (it != obj.end()) return &*it;
  }
  if (required) problem(child(pointer, key), "missing: this field is required");
  return nullptr;
}

std::optional<std::int64_t> JsonReader::integer(const json& obj, const std::string& pointer,
                                                std::string_view key, std::int64_t lo,
                                                std::int64_t hi, bool required) {
  const json* v = member(obj, pointer, key, required);
  if (!v) return std::nullopt;
  const std::string where = child(pointer, key);
  const std::string expect = "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  if (!v->is_number()) {
    problem(where, "= " + brief(*v) + ": " + expect);
    return std::nullopt;
  }
  const double d = v->get<double>();
  if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
    problem(where, "= " + brief(*v) + ": " + expect);
    return std::nullopt;
  }
  return static_cast<std::int64_t>(d);
}

std::optional<double> JsonReader::number(const json& obj, const std::string& pointer, std::string_view key,
                                         double lo, double hi, bool required, bool lo_open) {
  const json* v = member(obj, pointer, key, required);
  if (!v) return std::nullopt;
  const std::string expect = "expected a number in " + std::string(lo_open ? "(" : "[") + fmt(lo) + ", " + fmt(hi) + "]";
  if (!v->is_number()) {
    problem(child(pointer, key), "= " + brief(*v) + ": " + expect);
    return std::nullopt;
  }
  const double d = v->get<double>();
  if (!std::isfinite(d) || d > hi || d < lo || (lo_open && d == lo)) {
    problem(child(pointer, key), "= " + brief(*v) + ": " + expect);
    return std::nullopt;
  }
  return d;
}

std::optional<bool> JsonReader::boolean(const json& obj, const std::string& pointer, std::string_view key,
                                        bool required) {
  const json* v = member(obj, pointer, key, required);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) {
    problem(child(pointer, key), "= " + brief(*v) + ": expected true or false");
    return std::nullopt;
  }
  return v->get<bool>();
}

std::optional<std::string> JsonReader::string(const json& obj, const std::string& pointer,
                                              std::string_view key, bool required) {
  const json* v = member(obj, pointer, key, required);
  if (!v) return std::nullopt;
  if (!v->is_string() || v->get<std::string>().empty()) {
    problem(child(pointer, key), "= " + brief(*v) + ": expected a non-empty string");
    return std::nullopt;
  }
  return v->get<std::string>();
}

std::optional<std::string> JsonReader::choice(const json& obj, const std::string& pointer,
                                              std::string_view key, const std::vector<std::string>& options,
                                              bool required) {
  const json* v = member(obj, pointer, key, required);
  if (!v) return std::nullopt;
  if (v->is_string()) {
    const auto s = v->get<std::string>();
    if (std::find(options.begin(), options.end(), s) != options.end()) return s;
    const std::string hint = closest_match(s, options);
    if (!hint.empty()) {
      problem(child(pointer, key), "= " + brief(*v) + ": did you mean \"" + hint + "\"? expected one of: " + list(options));
      return std::nullopt;
    }
  }
  problem(child(pointer, key), "= " + brief(*v) + ": expected one of: " + list(options));
  return std::nullopt;
}

std::optional<double> JsonReader::with_unit(const json& obj, const std::string& pointer, std::string_view key,
                                            double lo, double hi, bool required, const char* expectation,
                                            std::optional<double> (*parse)(std::string_view),
                                            std::string (*format)(double)) {
  const json* v = member(obj, pointer, key, required);
  if (!v) return std::nullopt;
  const std::string where = child(pointer, key);
  std::optional<double> value;
  if (v->is_string()) value = parse(v->get<std::string>());
  if (!value) {
    problem(where, "= " + brief(*v) + ": expected " + expectation);
    return std::nullopt;
  }
  if (*value < lo || *value > hi) {
    problem(where, "= " + brief(*v) + ": expected a value between " + format(lo) + " and " + format(hi));
    return std::nullopt;
  }
  return value;
}

std::optional<double> JsonReader::rate_bps(const json& obj, const std::string& pointer, std::string_view key,
                                           double lo, double hi, bool required) {
  return with_unit(obj, pointer, key, lo, hi, required, kRateExpectation, parse_rate_bps, format_rate);
}

std::optional<double> JsonReader::duration_s(const json& obj, const std::string& pointer, std::string_view key,
                                             double lo, double hi, bool required) {
  return with_unit(obj, pointer, key, lo, hi, required, kDurationExpectation, parse_duration_s, format_duration);
}

std::optional<double> JsonReader::size_bytes(const json& obj, const std::string& pointer, std::string_view key,
                                             double lo, double hi, bool required) {
  return with_unit(obj, pointer, key, lo, hi, required, kSizeExpectation, parse_size_bytes, format_bytes);
}

}  // namespace moss::scenario
