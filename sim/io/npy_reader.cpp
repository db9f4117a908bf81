// .npy reader (format versions 1-3): header parsed and checked against the file size first.
#include <algorithm>
#include <bit>
#include <cfloat>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "activation_checks.h"
#include "moss/core/error.h"
#include "moss/io/activations.h"
#include "moss/kernels/bf16.h"

namespace moss::io {

namespace {
enum class Dtype { f32, f16, bf16, f64 };

[[noreturn]] void fail(const std::string& path, const std::string& msg) { throw InputError(path, "", msg); }

Dtype parse_dtype(const std::string& path, const std::string& d) {
  if (d == "<f4" || d == "=f4") return Dtype::f32;
  if (d == "<f2" || d == "=f2") return Dtype::f16;
  if (d == "<f8" || d == "=f8") return Dtype::f64;  // NumPy's default; read as float32, as HDF5 files are
  if (d == "bfloat16" || d == "<V2" || d == "|V2") return Dtype::bf16;
  fail(path, "dtype '" + d + "': expected float32 ('<f4'), float16 ('<f2'), bfloat16 ('bfloat16' or '<V2', as ml_dtypes writes it) or float64 ('<f8'), little-endian");
}

/// The header's dict, a Python literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (8, 4), }
/// (numpy writes exactly this form; any spacing and either quote style are valid Python, so both are read).
struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
};

class HeaderParser {
 public:
  HeaderParser(const std::string& path, const std::string& text) : path_(path), text_(text) {}

  NpyHeader parse() {
    NpyHeader h;
    bool has_descr = false, has_order = false, has_shape = false;
    std::string unknown;
    expect('{');
    while (!peek('}')) {
      const std::string key = quoted("a quoted key");
      expect(':');
      const bool repeated = (key == "descr" && has_descr) || (key == "fortran_order" && has_order) || (key == "shape" && has_shape);
      if (repeated) fail(path_, "npy header repeats the key '" + key + "'");
      if (key == "descr") {
        h.descr = quoted("a dtype string ('<f4', '<f2', '<f8' or a bfloat16 name)"), has_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = boolean(), has_order = true;
      } else if (key == "shape") {
        h.shape = tuple(), has_shape = true;
      } else {
        if (unknown.empty()) unknown = key;
        skip_value();
      }
      if (!peek('}')) expect(',');
    }
    expect('}');
    skip_space();
    if (pos_ != text_.size()) malformed("text after the closing '}'");
    for (const auto& [has, key] : {std::pair{has_descr, "descr"}, {has_order, "fortran_order"}, {has_shape, "shape"}})
      if (!has) fail(path_, std::string("npy header has no '") + key + "': expected the keys 'descr', 'fortran_order' and 'shape'");
    if (!unknown.empty())
      fail(path_, "npy header key '" + unknown + "' is unknown: expected only 'descr', 'fortran_order' and 'shape'");
    return h;
  }

 private:
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool peek(char c) {
    skip_space();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  void expect(char c) {
    if (!peek(c)) malformed(std::string("expected '") + c + "'");
    ++pos_;
  }
  [[noreturn]] void malformed(const std::string& what) {
    fail(path_, "malformed npy header at offset " + std::to_string(pos_) + " (" + what + "): " + text_.substr(0, 120));
  }
  std::string quoted(const char* what) {
    skip_space();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) malformed(std::string("expected ") + what);
    const char q = text_[pos_++];
    const std::size_t end = text_.find(q, pos_);
    if (end == std::string::npos) malformed("unterminated string");
    std::string out = text_.substr(pos_, end - pos_);
    if (out.find('\\') != std::string::npos) malformed("escape in a string");
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    skip_space();
    for (const auto& [word, value] : {std::pair<std::string_view, bool>{"True", true}, {"False", false}})
      if (text_.compare(pos_, word.size(), word) == 0) {
        pos_ += word.size();
        return value;
      }
    malformed("expected True or False");
  }
  // Any value of an unknown key: up to the next ',' or '}' outside brackets and strings.
  void skip_value() {
    int depth = 0;
    skip_space();
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '\'' || c == '"') {
        (void)quoted("a string");
        continue;
      }
      if (depth == 0 && (c == ',' || c == '}')) return;
      if (c == '(' || c == '[' || c == '{') ++depth;
      if (c == ')' || c == ']' || c == '}') --depth;
      if (depth < 0) malformed("unbalanced brackets");
      ++pos_;
    }
    malformed("unterminated value");
  }
  // "(" non-negative integers separated by commas, an optional trailing comma ("(8,)") ")".
  std::vector<std::int64_t> tuple() {
    std::vector<std::int64_t> shape;
    expect('(');
    while (!peek(')')) {
      const std::size_t begin = pos_;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
      const std::string item = text_.substr(begin, pos_ - begin);
      if (item.empty()) malformed("shape entries must be sizes");
      if (item.size() > 15) fail(path_, "shape entry " + item + " is too large");
      shape.push_back(std::stoll(item));
      if (!peek(')')) expect(',');
    }
    expect(')');
    return shape;
  }

  const std::string& path_;
  const std::string& text_;
  std::size_t pos_ = 0;
};
}  // namespace

Activations load_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open the file");
  in.seekg(0, std::ios::end);
  const auto file_bytes = static_cast<std::uint64_t>(in.tellg());
  in.seekg(0);
  char magic[8] = {};
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    fail(path, "not a .npy file (bad magic): expected \\x93NUMPY");
  const int major = static_cast<unsigned char>(magic[6]);
  std::uint32_t header_len = 0;
  if (major == 1) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char*>(b), 2)) fail(path, "truncated npy header");
    header_len = b[0] | (b[1] << 8);
  } else if (major == 2 || major == 3) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) fail(path, "truncated npy header");
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
  } else {
    fail(path, "npy format version " + std::to_string(major) + ": expected 1, 2 or 3");
  }
  if (header_len > 65536 || header_len > file_bytes) fail(path, "npy header length " + std::to_string(header_len) + " is implausible (truncated or not a .npy file)");
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len)) fail(path, "truncated npy header");
  const NpyHeader parsed = HeaderParser(path, header).parse();
  if (parsed.fortran_order) fail(path, "Fortran-ordered array: expected C order (np.ascontiguousarray)");
  const Dtype dtype = parse_dtype(path, parsed.descr);
  const std::vector<std::int64_t>& shape = parsed.shape;
  const std::uint64_t elem = dtype == Dtype::f64 ? 8 : dtype == Dtype::f32 ? 4 : 2;
  const auto data_offset = static_cast<std::uint64_t>(in.tellg());
  const detail::Layout layout = detail::layout_of(path, "", shape, detail::PairShapes::leading_two);
  const std::uint64_t count = layout.count();
  if (count > (file_bytes - data_offset) / elem || count * elem != file_bytes - data_offset)
    fail(path, "data is " + std::to_string(file_bytes - data_offset) + " bytes but the header's shape needs " +
                   std::to_string(count * elem) + " (truncated or corrupt file)");
  std::vector<unsigned char> raw(static_cast<std::size_t>(count * elem));
  if (!in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size())))
    fail(path, "truncated data");
  std::vector<float> values(static_cast<std::size_t>(count));
  // The first float64 beyond float's range, as the file holds it: the magnitude check quotes it.
  std::optional<std::pair<std::size_t, double>> first_clamped;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (dtype == Dtype::f32) {
      std::memcpy(&values[i], raw.data() + 4 * i, 4);
    } else if (dtype == Dtype::f64) {
      double v = 0;
      std::memcpy(&v, raw.data() + 8 * i, 8);
      // A finite value beyond float's range stays finite (converting it is undefined), so the
      // magnitude check refuses it, quoting it as the file holds it (not as Inf).
      const bool beyond = std::isfinite(v) && std::fabs(v) > double{FLT_MAX};
      if (beyond && !first_clamped) first_clamped.emplace(i, v);
      values[i] = beyond ? (v > 0 ? FLT_MAX : -FLT_MAX) : static_cast<float>(v);
    } else {
      const auto bits = static_cast<std::uint16_t>(raw[2 * i] | (raw[2 * i + 1] << 8));
      values[i] = dtype == Dtype::f16 ? kernels::half_bits_to_float(bits) : kernels::bf16_bits_to_float(bits);
    }
  }
  // Every clamped value is refused, so the first refused is at or before the first clamped.
  return detail::split(path, layout, std::move(values), {}, "", [&first_clamped](std::size_t i) -> std::optional<long double> {
    if (first_clamped && first_clamped->first == i) return first_clamped->second;
    return std::nullopt;
  });
}

}  // namespace moss::io
