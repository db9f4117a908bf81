// Method names, configuration checks and the closed-form byte counts of the wire format (codec.h).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string>

#include "moss/kernels/codec.h"

namespace moss::kernels {

namespace {
struct NamedMethod {
  std::string_view name;
  Method method;
};
constexpr NamedMethod kMethods[] = {{"none", Method::none},   {"pca", Method::pca},
                                    {"mos", Method::mos},     {"mos-k", Method::mos_k},
                                    {"topk", Method::topk},   {"quant", Method::quant}};

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

std::int64_t block_count(std::int64_t tokens, int block_tokens) {
  if (tokens <= 0) return 0;
  return block_tokens <= 0 ? 1 : ceil_div(tokens, block_tokens);
}
}  // namespace

bool uses_basis(Method m) { return m == Method::pca || m == Method::mos || m == Method::mos_k; }

Method parse_method(std::string_view name) {
  for (const auto& m : kMethods)
    if (m.name == name) return m.method;
  throw std::invalid_argument("unknown compression method \"" + std::string(name) +
                              "\": expected none, pca, mos, mos-k, topk or quant");
}

std::string_view method_name(Method method) {
  for (const auto& m : kMethods)
    if (m.method == method) return m.name;
  return "?";
}

Routing parse_routing(std::string_view name) {
  if (name == "exhaustive") return Routing::exhaustive;
  if (name == "sketch") return Routing::sketch;
  throw std::invalid_argument("unknown mos-k routing \"" + std::string(name) + "\": expected exhaustive or sketch");
}

std::string_view routing_name(Routing routing) { return routing == Routing::sketch ? "sketch" : "exhaustive"; }

int route_sketch_columns(int rank) { return std::max(1, rank / 8); }

std::int64_t theta_sample_tokens(int rotations, int rank) {
  if (rotations <= 1) return rank >= 64 ? 256 : 512;
  return rank >= 128 ? std::max(32, 256 / rotations) : std::max(64, 512 / rotations);
}

std::int64_t theta_sample_stride(std::int64_t block_tokens, int rotations, int rank) {
  return std::max<std::int64_t>(1, block_tokens / theta_sample_tokens(rotations, rank));
}

std::int64_t theta_sample_count(std::int64_t block_tokens, int rotations, int rank) {
  const std::int64_t stride = theta_sample_stride(block_tokens, rotations, rank);
  return (block_tokens + stride - 1) / stride;
}

CodecConfig codec_config(const CompressionParams& p, bool is_v) {
  CodecConfig c;
  c.method = parse_method(p.method);
  c.rank = is_v ? p.rank_v : p.rank_k;
  c.rotations = p.rotations;
  c.subspaces = p.subspaces;
  c.fraction = p.fraction;
  c.bits = p.bits;
  c.theta_block_tokens = p.theta_block_tokens;
  c.route_block_tokens = p.route_block_tokens;
  c.routing = parse_routing(p.routing);
  c.value_bytes = p.value_bytes;
  return c;
}

void validate_config(const CodecConfig& c, std::int64_t dim) {
  const std::string m(method_name(c.method));
  if (dim < 1) throw std::invalid_argument("feature width must be >= 1");
  if (c.value_bytes != 2 && c.value_bytes != 4)
    throw std::invalid_argument("value_bytes must be 2 (bf16) or 4 (fp32)");
  if (uses_basis(c.method) && (c.rank < 1 || c.rank > dim))
    throw std::invalid_argument(m + ": rank " + std::to_string(c.rank) + " must be in [1, " +
                                std::to_string(dim) + "] (the feature width)");
  if (c.method == Method::mos && (c.rotations < 0 || c.rotations > 16))
    throw std::invalid_argument("mos: rotations must be in [0, 16], got " + std::to_string(c.rotations));
  if (c.method == Method::mos_k && (c.subspaces < 1 || c.subspaces > 256))
    throw std::invalid_argument("mos-k: subspaces must be in [1, 256], got " +
                                std::to_string(c.subspaces));
  if (c.method == Method::topk && !(c.fraction > 0.0 && c.fraction <= 1.0)) {
    char got[32];  // the shortest form that reads back as the value: 1.0000001, not "1.000000"
    const auto end = std::to_chars(got, got + sizeof got, c.fraction).ptr;
    throw std::invalid_argument("topk: fraction must be in (0, 1], got " + std::string(got, end));
  }
  if (c.method == Method::quant && c.bits != 4 && c.bits != 8)
    throw std::invalid_argument("quant: bits must be 4 or 8, got " + std::to_string(c.bits));
  if (c.theta_block_tokens < 0 || c.route_block_tokens < 0)
    throw std::invalid_argument("block sizes must be >= 0 tokens");
}

int index_bits(std::int64_t choices) {
  int bits = 0;
  while ((std::int64_t{1} << bits) < choices) ++bits;
  return bits;
}

std::int64_t topk_count(double fraction, std::int64_t dim) {
  const auto k = static_cast<std::int64_t>(std::ceil(fraction * static_cast<double>(dim) - 1e-9));
  return k < 1 ? 1 : (k > dim ? dim : k);
}

std::uint64_t encoded_bytes(const CodecConfig& c, std::int64_t tokens, std::int64_t dim) {
  const auto vb = static_cast<std::uint64_t>(c.value_bytes);
  const auto t = static_cast<std::uint64_t>(tokens);
  const auto d = static_cast<std::uint64_t>(dim);
  const auto r = static_cast<std::uint64_t>(c.rank);
  switch (c.method) {
    case Method::none:
      return vb * t * d;
    case Method::pca:
      return vb * t * r;
    case Method::mos:
      return vb * t * r + 4u * static_cast<std::uint64_t>(c.rotations) *
                              static_cast<std::uint64_t>(block_count(tokens, c.theta_block_tokens));
    case Method::mos_k: {
      const auto bits = static_cast<std::uint64_t>(index_bits(c.subspaces)) *
                        static_cast<std::uint64_t>(block_count(tokens, c.route_block_tokens));
      return vb * t * r + (bits + 7) / 8;
    }
    case Method::topk: {
      const auto k = static_cast<std::uint64_t>(topk_count(c.fraction, dim));
      const auto bits = t * k * static_cast<std::uint64_t>(index_bits(dim));
      return vb * t * k + (bits + 7) / 8;
    }
    case Method::quant:
      return (t * d * static_cast<std::uint64_t>(c.bits) + 7) / 8 + 2u * t;
  }
  return 0;
}

WireRate wire_rate(const CodecConfig& c, std::int64_t dim) {
  const double vb = c.value_bytes, d = static_cast<double>(dim), r = c.rank;
  // Bytes of something sent once per block of `block_tokens` (0: once per chunk), as rates.
  const auto per_block = [](double bytes, int block_tokens) {
    return block_tokens <= 0 ? WireRate{0, bytes} : WireRate{bytes / block_tokens, 0};
  };
  switch (c.method) {
    case Method::none:
      return {vb * d, 0};
    case Method::pca:
      return {vb * r, 0};
    case Method::mos: {
      const WireRate theta = per_block(4.0 * c.rotations, c.theta_block_tokens);
      return {vb * r + theta.per_token_bytes, theta.per_chunk_bytes};
    }
    case Method::mos_k: {
      const WireRate index = per_block(index_bits(c.subspaces) / 8.0, c.route_block_tokens);
      return {vb * r + index.per_token_bytes, index.per_chunk_bytes};
    }
    case Method::topk: {
      const auto k = static_cast<double>(topk_count(c.fraction, dim));
      return {vb * k + k * index_bits(dim) / 8.0, 0};
    }
    case Method::quant:
      return {d * c.bits / 8.0 + 2.0, 0};
  }
  return {};
}

std::uint64_t one_time_bytes(const CodecConfig& c, std::int64_t dim) {
  const auto vb = static_cast<std::uint64_t>(c.value_bytes);
  const auto dr = static_cast<std::uint64_t>(dim) * static_cast<std::uint64_t>(c.rank);
  switch (c.method) {
    case Method::pca:
      return vb * dr;
    case Method::mos:
      return vb * dr * (1u + static_cast<std::uint64_t>(c.rotations));
    case Method::mos_k:
      return vb * dr * static_cast<std::uint64_t>(c.subspaces);
    default:
      return 0;
  }
}

std::uint64_t Encoded::wire_bytes() const {
  return static_cast<std::uint64_t>(value_bytes) * values.size() + packed.size() +
         4u * theta.size() + 2u * scales.size();
}

}  // namespace moss::kernels
