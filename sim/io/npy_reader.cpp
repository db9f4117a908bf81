// .npy reader (format versions 1-3): header parsed and checked against the file size first.
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <regex>

#include "activation_checks.h"
#include "moss/core/error.h"
#include "moss/io/activations.h"
#include "moss/kernels/bf16.h"

namespace moss::io {

namespace {
enum class Dtype { f32, f16, bf16 };

[[noreturn]] void fail(const std::string& path, const std::string& msg) { throw InputError(path, "", msg); }

Dtype parse_dtype(const std::string& path, const std::string& header) {
  std::smatch m;
  if (!std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([^']*)')")))
    fail(path, "npy header has no 'descr': expected a float32, float16 or bfloat16 array");
  const std::string d = m[1];
  if (d == "<f4" || d == "=f4") return Dtype::f32;
  if (d == "<f2" || d == "=f2") return Dtype::f16;
  if (d == "bfloat16" || d == "<V2" || d == "|V2") return Dtype::bf16;
  fail(path, "dtype '" + d + "': expected float32 ('<f4'), float16 ('<f2') or bfloat16");
}

std::vector<std::int64_t> parse_shape(const std::string& path, const std::string& header) {
  std::smatch m;
  if (!std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))")))
    fail(path, "npy header has no 'shape'");
  std::vector<std::int64_t> shape;
  const std::string body = m[1];
  // Comma-separated non-negative integers, an optional trailing comma ("(8,)"); anything else
  // (signs, expressions) is a corrupt header.
  std::size_t begin = 0;
  while (begin <= body.size()) {
    std::size_t end = body.find(',', begin);
    if (end == std::string::npos) end = body.size();
    std::string item = body.substr(begin, end - begin);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) {
      if (item.find_first_not_of("0123456789") != std::string::npos) fail(path, "shape entry '" + item + "' is not a size");
      if (item.size() > 15) fail(path, "shape entry " + item + " is too large");
      shape.push_back(std::stoll(item));
    } else if (end != body.size()) {
      fail(path, "npy header has an empty shape entry");
    }
    begin = end + 1;
  }
  return shape;
}
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
  if (header.find("'fortran_order': True") != std::string::npos)
    fail(path, "Fortran-ordered array: expected C order (np.ascontiguousarray)");
  const Dtype dtype = parse_dtype(path, header);
  const std::vector<std::int64_t> shape = parse_shape(path, header);
  const std::uint64_t elem = dtype == Dtype::f32 ? 4 : 2;
  const auto data_offset = static_cast<std::uint64_t>(in.tellg());
  const detail::Layout layout = detail::layout_of(path, "", shape, /*allow_pair=*/true);
  const std::uint64_t count = layout.count();
  if (count > (file_bytes - data_offset) / elem || count * elem != file_bytes - data_offset)
    fail(path, "data is " + std::to_string(file_bytes - data_offset) + " bytes but the header's shape needs " +
                   std::to_string(count * elem) + " (truncated or corrupt file)");
  std::vector<unsigned char> raw(static_cast<std::size_t>(count * elem));
  if (!in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size())))
    fail(path, "truncated data");
  std::vector<float> values(static_cast<std::size_t>(count));
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (dtype == Dtype::f32) {
      std::memcpy(&values[i], raw.data() + 4 * i, 4);
    } else {
      const auto bits = static_cast<std::uint16_t>(raw[2 * i] | (raw[2 * i + 1] << 8));
      values[i] = dtype == Dtype::f16 ? kernels::half_bits_to_float(bits) : kernels::bf16_bits_to_float(bits);
    }
  }
  return detail::split(path, layout, std::move(values));
}

}  // namespace moss::io
