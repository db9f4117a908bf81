#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "moss/core/error.h"

namespace moss::scenario {

/// Closest candidate within a small edit distance, or "" (for "did you mean" hints).
[[nodiscard]] std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

/// Reads typed values out of a JSON document, recording every problem (file, JSON pointer,
/// expectation) instead of stopping at the first.
class JsonReader {
 public:
  using json = nlohmann::json;

  JsonReader(std::string file, std::vector<Problem>& problems);

  void problem(const std::string& pointer, std::string message);
  [[nodiscard]] bool ok() const { return problems_.size() == start_count_; }
  [[nodiscard]] const std::string& file() const { return file_; }

  /// Pointer of a member: pointer + "/" + escaped key.
  [[nodiscard]] static std::string child(const std::string& pointer, std::string_view key);

  /// True when `j` is an object; records a problem otherwise.
  bool expect_object(const json& j, const std::string& pointer);
  /// Records every key of `obj` not in `allowed`, with a did-you-mean hint.
  void allow_keys(const json& obj, const std::string& pointer, std::initializer_list<std::string_view> allowed);
  /// Member or nullptr; records a problem when `required` and absent.
  const json* member(const json& obj, const std::string& pointer, std::string_view key, bool required);

  std::optional<std::int64_t> integer(const json& obj, const std::string& pointer, std::string_view key,
                                      std::int64_t lo, std::int64_t hi, bool required);
  /// A finite number in [lo, hi] (or (lo, hi] when `lo_open`).
  std::optional<double> number(const json& obj, const std::string& pointer, std::string_view key,
                               double lo, double hi, bool required, bool lo_open = false);
  std::optional<bool> boolean(const json& obj, const std::string& pointer, std::string_view key, bool required);
  std::optional<std::string> string(const json& obj, const std::string& pointer, std::string_view key,
                                    bool required);
  /// A string out of `options`, with a did-you-mean hint.
  std::optional<std::string> choice(const json& obj, const std::string& pointer, std::string_view key,
                                    const std::vector<std::string>& options, bool required);
  /// Rates, durations and sizes are strings with units; bounds are in SI (bits/s, s, bytes).
  std::optional<double> rate_bps(const json& obj, const std::string& pointer, std::string_view key,
                                 double lo, double hi, bool required);
  std::optional<double> duration_s(const json& obj, const std::string& pointer, std::string_view key,
                                   double lo, double hi, bool required);
  std::optional<double> size_bytes(const json& obj, const std::string& pointer, std::string_view key,
                                   double lo, double hi, bool required);

 private:
  std::optional<double> with_unit(const json& obj, const std::string& pointer, std::string_view key,
                                  double lo, double hi, bool required, const char* expectation,
                                  std::optional<double> (*parse)(std::string_view),
                                  std::string (*format)(double));

  std::string file_;
  std::vector<Problem>& problems_;
  std::size_t start_count_;
};

/// Short JSON rendering of a value for messages (strings quoted, long values cut).
[[nodiscard]] std::string brief(const nlohmann::json& value);

}  // namespace moss::scenario
