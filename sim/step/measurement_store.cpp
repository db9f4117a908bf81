#include "measurement_store.h"

#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <regex>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "moss/core/error.h"
#include "moss/core/file_io.h"
#include "moss/step/measurement_cache.h"

namespace moss::step {

namespace fs = std::filesystem;

namespace {

constexpr int kFormat = 1;
constexpr const char* kPrefix = "m-";
constexpr const char* kSuffix = ".json";

std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 14695981039346656037ull;
  for (const unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Only names this code writes: the cache may share a directory with the user's own files.
bool is_entry(const fs::path& p) {
  static const std::regex name("m-[0-9a-f]{16}\\.json");
  return std::regex_match(p.filename().string(), name);
}

// Written by this code: a named entry is also an entry by content, its name the hash of the key it
// holds. `moss cache clear` removes no file of the user's that happens to have an entry's name.
bool holds_entry(const fs::path& p) {
  constexpr std::uintmax_t kMaxEntryBytes = 16u << 20;  // entries are a few KiB
  std::error_code ec;
  if (!is_entry(p) || !fs::is_regular_file(p, ec) || fs::file_size(p, ec) > kMaxEntryBytes || ec) return false;
  std::ifstream in(p, std::ios::binary);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return false;
  const auto format = j.find("format");
  const auto key = j.find("key");
  // Any format: an entry of an older moss is still moss's (its key hashing to its name says so).
  return format != j.end() && format->is_number_integer() && key != j.end() && key->is_string() &&
         detail::entry_path(p.parent_path(), key->get<std::string>()).filename() == p.filename();
}

// An entry's temporary: temporary_name(entry), "<entry>.tmp-<host>-<pid>-<serial>-<random>".
bool is_temporary(const fs::path& p) {
  static const std::regex name("m-[0-9a-f]{16}\\.json\\.tmp-[0-9a-zA-Z._-]+");
  return std::regex_match(p.filename().string(), name);
}

nlohmann::json to_json(const kernels::MeasureResult& m) {
  return {{"raw_bytes_per_token", m.raw_bytes_per_token},
          {"sent_bytes_per_token", m.sent_bytes_per_token},
          {"ratio", m.ratio},
          {"relative_error", m.relative_error},
          {"relative_error_k", m.relative_error_k},
          {"relative_error_v", m.relative_error_v},
          {"encode_input_bytes_per_s", m.encode_input_bytes_per_s},
          {"decode_output_bytes_per_s", m.decode_output_bytes_per_s},
          {"device", m.device},
          {"throughput_measured", m.throughput_measured},
          {"one_time_bytes", m.one_time_bytes},
          {"layers_measured", m.layers_measured},
          {"layers_in_source", m.layers_in_source},
          {"warmup_tokens", m.warmup_tokens}};
}

// Every field present, of its type and in range; anything else is not an entry this build wrote.
std::optional<kernels::MeasureResult> from_json(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  kernels::MeasureResult m;
  bool ok = true;
  auto number = [&](const char* k, double& out, double lo) {
    const auto it = j.find(k);
    if (it == j.end() || !it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < lo) {
      ok = false;
      return;
    }
    out = it->get<double>();
  };
  auto integer = [&](const char* k, auto& out, std::int64_t lo) {
    const auto it = j.find(k);
    if (it == j.end() || !it->is_number_integer() || it->get<std::int64_t>() < lo) {
      ok = false;
      return;
    }
    out = static_cast<std::remove_reference_t<decltype(out)>>(it->get<std::int64_t>());
  };
  number("raw_bytes_per_token", m.raw_bytes_per_token, 1e-300);
  number("sent_bytes_per_token", m.sent_bytes_per_token, 0);
  number("ratio", m.ratio, 0);
  number("relative_error", m.relative_error, 0);
  number("relative_error_k", m.relative_error_k, 0);
  number("relative_error_v", m.relative_error_v, 0);
  number("encode_input_bytes_per_s", m.encode_input_bytes_per_s, 0);
  number("decode_output_bytes_per_s", m.decode_output_bytes_per_s, 0);
  number("one_time_bytes", m.one_time_bytes, 0);
  integer("layers_measured", m.layers_measured, 1);
  integer("layers_in_source", m.layers_in_source, 1);
  integer("warmup_tokens", m.warmup_tokens, 0);
  const auto device = j.find("device");
  const auto measured = j.find("throughput_measured");
  if (!ok || device == j.end() || !device->is_string() || device->get<std::string>().empty() ||
      measured == j.end() || !measured->is_boolean())
    return std::nullopt;
  m.device = device->get<std::string>();
  m.throughput_measured = measured->get<bool>();
  return m;
}

}  // namespace

std::optional<fs::path> default_measurement_cache_dir() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  const std::string explicit_dir = env("MOSS_CACHE_DIR");
  if (explicit_dir == "off") return std::nullopt;
  if (!explicit_dir.empty()) return fs::path(explicit_dir);
  // The XDG Base Directory specification: a relative path in XDG_CACHE_HOME is invalid and ignored.
  if (const std::string xdg = env("XDG_CACHE_HOME"); fs::path(xdg).is_absolute()) return fs::path(xdg) / "moss" / "measurements";
  if (const std::string home = env("HOME"); !home.empty()) return fs::path(home) / ".cache" / "moss" / "measurements";
  return std::nullopt;
}

MeasurementCacheUsage measurement_cache_usage(const fs::path& dir) {
  MeasurementCacheUsage u;
  if (!fs::exists(dir)) return u;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    if (holds_entry(e.path())) {
      ++u.entries;
      u.bytes += e.file_size();
    } else if (is_entry(e.path())) {
      ++u.foreign;
    } else if (is_temporary(e.path())) {
      ++u.leftovers;
    }
  }
  return u;
}

std::uintmax_t clear_measurement_cache(const fs::path& dir) {
  if (!fs::exists(dir)) return 0;
  std::vector<fs::path> doomed;
  for (const fs::directory_entry& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && (holds_entry(e.path()) || is_temporary(e.path()))) doomed.push_back(e.path());
  std::uintmax_t entries = 0;
  for (const fs::path& p : doomed) {
    if (!is_temporary(p)) ++entries;
    fs::remove(p);
  }
  return entries;
}

namespace detail {

fs::path entry_path(const fs::path& dir, const std::string& key) {
  char name[40];
  std::snprintf(name, sizeof name, "%s%016llx%s", kPrefix, static_cast<unsigned long long>(fnv1a(key)), kSuffix);
  return dir / name;
}

std::optional<StoredMeasurement> load_measurement(const fs::path& dir, const std::string& key) {
  // Whatever is in the entry's place (a directory, an unreadable file, JSON of any shape) is a miss.
  try {
    const fs::path path = entry_path(dir, key);
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return std::nullopt;
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return std::nullopt;
    const auto format = j.find("format");
    const auto stored_key = j.find("key");
    const auto at = j.find("measured_at");
    const auto seconds = j.find("measure_s");
    const auto result = j.find("result");
    if (format == j.end() || !format->is_number_integer() || format->get<std::int64_t>() != kFormat ||
        stored_key == j.end() || !stored_key->is_string() || stored_key->get<std::string>() != key || at == j.end() ||
        !at->is_string() || seconds == j.end() || !seconds->is_number() || result == j.end())
      return std::nullopt;
    std::optional<kernels::MeasureResult> m = from_json(*result);
    if (!m) return std::nullopt;
    return StoredMeasurement{std::move(*m), at->get<std::string>(), seconds->get<double>()};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string store_measurement(const fs::path& dir, const std::string& key, const StoredMeasurement& entry) {
  std::string text;
  try {
    const nlohmann::json j = {{"format", kFormat},
                              {"key", key},
                              {"measured_at", entry.measured_at},
                              {"measure_s", entry.measure_s},
                              {"result", to_json(entry.result)}};
    text = j.dump(2) + "\n";
  } catch (const std::exception& e) {  // e.g. a key that is not UTF-8
    return std::string("cannot encode the entry: ") + e.what();
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return "cannot create " + dir.string() + ": " + ec.message();
  // A reader sees the old entry or the new one, never a part. No fsync: an entry lost to a crash of
  // the machine is measured again.
  try {
    replace_file(entry_path(dir, key).string(), text, Durability::kNone);
  } catch (const RuntimeFailure& e) {
    return e.what();
  }
  return "";
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace detail

}  // namespace moss::step
