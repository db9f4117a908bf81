// none, topk and quant on the CPU (eigen_types.h): one streaming pass per token, no Eigen needed.
// Bytes identical to reference_codec.cpp (tested): the same bf16 input rounding, the same topk
// threshold and tie rule (first ties in index order), the same quant codes and LSB-first bit packing.
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string_view>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "eigen_types.h"
#include "moss/kernels/bf16.h"
#include "moss/kernels/reference.h"

namespace moss::kernels::cpu {

namespace {
/// Appends fields of `bits` bits to an LSB-first stream (reference::pack_bits, sequentially).
class BitWriter {
 public:
  explicit BitWriter(std::vector<std::uint8_t>& out) : out_(out) {}
  void put(std::uint32_t value, int bits) {
    acc_ |= static_cast<std::uint64_t>(value & ((std::uint64_t{1} << bits) - 1)) << used_;
    used_ += bits;
    while (used_ >= 8) {
      out_[pos_++] = static_cast<std::uint8_t>(acc_);
      acc_ >>= 8;
      used_ -= 8;
    }
  }
  void flush() {
    if (used_ > 0) out_[pos_] = static_cast<std::uint8_t>(acc_);
  }

 private:
  std::vector<std::uint8_t>& out_;
  std::uint64_t acc_ = 0;
  int used_ = 0;
  std::size_t pos_ = 0;
};

/// dst = src as the wire carries it: one pass (bf16 round-to-nearest-even when value_bytes == 2).
void wire_row(const float* src, float* dst, std::int64_t n, int value_bytes) {
  if (value_bytes != 2) {
    std::copy(src, src + n, dst);
    return;
  }
  for (std::int64_t i = 0; i < n; ++i) {  // round_bf16_finite, fused with the copy so that it vectorises
    std::uint32_t u = 0;
    std::memcpy(&u, src + i, sizeof u);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    std::memcpy(dst + i, &u, sizeof u);
  }
}

/// Magnitude key of a finite float: monotone in |x| (bit pattern without the sign).
inline std::uint32_t mag_key(float x) {
  std::uint32_t u = 0;
  std::memcpy(&u, &x, sizeof u);
  return u & 0x7fffffffu;
}

#if defined(__AVX512F__)
/// True when the AVX-512 loops run: compiled in (a -march with AVX-512F, as MOSS_KERNELS_NATIVE gives
/// on such a machine) and not switched off with MOSS_KERNELS_SIMD=0, which the tests use so that the
/// portable loops stay checked on machines that have AVX-512.
bool use_avx512() {
  static const bool on = [] {
    const char* v = std::getenv("MOSS_KERNELS_SIMD");
    return v == nullptr || std::string_view(v) != "0";
  }();
  return on;
}

/// How many of the n keys are >= c (16 at a time).
std::int64_t count_at_least(const std::uint32_t* keys, std::int64_t n, std::uint32_t c) {
  const __m512i vc = _mm512_set1_epi32(static_cast<int>(c));
  std::int64_t count = 0, j = 0;
  for (; j + 16 <= n; j += 16) count += std::popcount(static_cast<unsigned>(_mm512_cmpge_epu32_mask(_mm512_loadu_si512(keys + j), vc)));
  for (; j < n; ++j) count += keys[j] >= c;
  return count;
}
#endif

/// Key of the k-th largest magnitude of row (1 <= k <= n), by radix select on the 31-bit magnitude
/// key, 8 bits per level from the top: O(n) per level, exact. bf16 keys have 16 zero low bits, so
/// two levels (bits 30..23, 22..16) decide them; with AVX-512, 15 vectorised counting passes instead.
std::uint32_t kth_largest_key(const float* row, std::int64_t n, std::int64_t k, int value_bytes,
                              std::vector<std::uint32_t>& keys) {
  keys.resize(static_cast<std::size_t>(n));
  for (std::int64_t j = 0; j < n; ++j) keys[static_cast<std::size_t>(j)] = mag_key(row[j]);
#if defined(__AVX512F__)
  if (value_bytes == 2 && use_avx512()) {
    // bf16 keys have 15 significant bits (30..16): the largest key c with at least k keys >= c, bit by
    // bit from the top, one vectorised counting pass per bit (the histogram passes below are scalar).
    std::uint32_t c = 0;
    for (int bit = 30; bit >= 16; --bit)
      if (count_at_least(keys.data(), n, c | (1u << bit)) >= k) c |= 1u << bit;
    return c;
  }
#endif
  struct Level {
    int shift, bits;
  };
  constexpr std::array<Level, 4> kFp32{{{23, 8}, {15, 8}, {7, 8}, {0, 7}}};
  constexpr std::array<Level, 2> kBf16{{{23, 8}, {16, 7}}};
  const std::span<const Level> levels = value_bytes == 2 ? std::span<const Level>(kBf16) : std::span<const Level>(kFp32);
  std::uint32_t prefix = 0, prefix_mask = 0;
  // Four interleaved histograms: neighbouring keys mostly share an exponent, and increments of one
  // counter would otherwise serialise on its store-to-load latency.
  std::array<std::array<std::int32_t, 256>, 4> parts{};
  std::array<std::int64_t, 256> hist{};
  for (const Level& level : levels) {
    const std::uint32_t bins = 1u << level.bits;
    for (auto& part : parts) std::fill(part.begin(), part.end(), 0);
    const std::int64_t n4 = n / 4 * 4;
    for (std::int64_t j = 0; j < n4; j += 4)
      for (int l = 0; l < 4; ++l) {
        const std::uint32_t key = keys[static_cast<std::size_t>(j + l)];
        parts[l][(key >> level.shift) & (bins - 1)] += (key & prefix_mask) == prefix;
      }
    for (std::int64_t j = n4; j < n; ++j) {
      const std::uint32_t key = keys[static_cast<std::size_t>(j)];
      parts[0][(key >> level.shift) & (bins - 1)] += (key & prefix_mask) == prefix;
    }
    for (std::uint32_t b = 0; b < bins; ++b) hist[b] = parts[0][b] + parts[1][b] + parts[2][b] + parts[3][b];
    std::uint32_t b = bins;
    while (b-- > 0) {  // from the largest bin down until k is reached
      if (hist[b] >= k) break;
      k -= hist[b];
    }
    prefix |= b << level.shift;
    prefix_mask |= (bins - 1) << level.shift;
  }
  return prefix;
}

/// Writes the kept entries of a row, in index order, to values/index: every key above tau, then the
/// first `ties` keys equal to tau. Returns how many were written. Branch-free (which entries are kept
/// is data-dependent and unpredictable); the outputs need room for d + 16 entries.
std::int64_t compact_row(const float* row, const std::uint32_t* keys, std::int64_t d, std::uint32_t tau, std::int64_t ties,
                         float* values, std::uint32_t* index) {
  std::int64_t taken = 0, j = 0;
#if defined(__AVX512F__)
  if (use_avx512()) {
    // 16 entries at a time: compress the kept lanes in registers and store all 16 (a compressing
    // store to memory is microcoded on some cores); the next store overwrites the unused lanes.
    const __m512i vt = _mm512_set1_epi32(static_cast<int>(tau)), step = _mm512_set1_epi32(16);
    __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (; j + 16 <= d; j += 16) {
      const __m512i k = _mm512_loadu_si512(keys + j);
      unsigned take = _mm512_cmpgt_epu32_mask(k, vt);
      if (ties > 0) {
        unsigned eq = _mm512_cmpeq_epu32_mask(k, vt);
        if (std::popcount(eq) > ties) {  // only the first `ties` of them, in index order
          unsigned keep = 0;
          for (std::int64_t q = 0; q < ties; ++q) keep |= eq & (0u - eq), eq &= eq - 1;
          eq = keep;
        }
        ties -= std::popcount(eq);
        take |= eq;
      }
      const auto m = static_cast<__mmask16>(take);
      _mm512_storeu_ps(values + taken, _mm512_maskz_compress_ps(m, _mm512_loadu_ps(row + j)));
      _mm512_storeu_si512(index + taken, _mm512_maskz_compress_epi32(m, iota));
      taken += std::popcount(take);
      iota = _mm512_add_epi32(iota, step);
    }
  }
#endif
  for (; j < d; ++j) {
    const std::uint32_t key = keys[j];
    const bool tie = key == tau && ties > 0;
    const bool take = key > tau || tie;
    ties -= tie;
    values[taken] = row[j];
    index[taken] = static_cast<std::uint32_t>(j);
    taken += take;
  }
  return taken;
}

void encode_topk(const CodecState& s, MatrixView x, Encoded& e) {
  const std::int64_t t = x.rows, d = x.cols, k = topk_count(s.config.fraction, d);
  const int ib = index_bits(d);
  e.values.resize(static_cast<std::size_t>(t * k));
  e.packed.assign(static_cast<std::size_t>((t * k * ib + 7) / 8), 0);
  BitWriter bits(e.packed);
  std::vector<float> row(static_cast<std::size_t>(d));
  std::vector<std::uint32_t> keys, kept_index(static_cast<std::size_t>(d + 16));
  std::vector<float> kept_values(static_cast<std::size_t>(d + 16));
  float* out = e.values.data();
  for (std::int64_t i = 0; i < t; ++i) {
    wire_row(x.row(i), row.data(), d, s.config.value_bytes);
    const std::uint32_t tau = kth_largest_key(row.data(), d, k, s.config.value_bytes, keys);
    std::int64_t above = 0;
    for (const std::uint32_t key : keys) above += key > tau;
    // Exactly k are kept: all above tau, then the first k - above ties in index order.
    compact_row(row.data(), keys.data(), d, tau, k - above, kept_values.data(), kept_index.data());
    std::copy(kept_values.begin(), kept_values.begin() + k, out);
    out += k;
    for (std::int64_t q = 0; q < k; ++q) bits.put(kept_index[static_cast<std::size_t>(q)], ib);
  }
  bits.flush();
}

void encode_quant(const CodecState& s, MatrixView x, Encoded& e) {
  const std::int64_t t = x.rows, d = x.cols;
  const int nbits = s.config.bits, qmax = nbits == 8 ? 127 : 7;
  e.packed.assign(static_cast<std::size_t>((t * d * nbits + 7) / 8), 0);
  e.scales.resize(static_cast<std::size_t>(t));
  std::vector<float> row(static_cast<std::size_t>(d));
  std::vector<std::int8_t> q(static_cast<std::size_t>(d));
  BitWriter bits(e.packed);
  for (std::int64_t i = 0; i < t; ++i) {
    wire_row(x.row(i), row.data(), d, s.config.value_bytes);
    // max |v| on the magnitude keys: for finite floats their integer order is that of |v|, and an
    // integer max reduction vectorises (a float one, NaN-aware, does not).
    std::uint32_t abits = 0;
    for (const float v : row) abits = std::max(abits, mag_key(v));
    float amax = 0.0f;
    std::memcpy(&amax, &abits, sizeof amax);
    const float scale = round_bf16(amax / static_cast<float>(qmax));
    e.scales[static_cast<std::size_t>(i)] = scale;
    for (std::int64_t j = 0; j < d; ++j) {
      const float v = scale > 0.0f ? std::nearbyint(row[static_cast<std::size_t>(j)] / scale) : 0.0f;
      q[static_cast<std::size_t>(j)] = static_cast<std::int8_t>(std::clamp(v, static_cast<float>(-qmax), static_cast<float>(qmax)));
    }
    if (nbits == 8) {
      std::memcpy(e.packed.data() + i * d, q.data(), static_cast<std::size_t>(d));
    } else if (d % 2 == 0) {  // whole bytes per row: two codes per byte, the first in the low nibble
      std::uint8_t* dst = e.packed.data() + i * d / 2;
      for (std::int64_t j = 0; j < d / 2; ++j)
        dst[j] = static_cast<std::uint8_t>((q[2 * j] & 0xf) | ((q[2 * j + 1] & 0xf) << 4));
    } else {
      for (const std::int8_t c : q) bits.put(static_cast<std::uint32_t>(c), 4);
    }
  }
  if (nbits == 4 && d % 2 != 0) bits.flush();
}

void decode_quant(const CodecState& s, const Encoded& e, float* out) {
  const std::int64_t t = e.tokens, d = e.dim;
  const int nbits = s.config.bits;
  for (std::int64_t i = 0; i < t; ++i) {
    const float scale = e.scales[static_cast<std::size_t>(i)];
    float* o = out + i * d;
    if (nbits == 8) {
      const auto* src = reinterpret_cast<const std::int8_t*>(e.packed.data() + i * d);
      for (std::int64_t j = 0; j < d; ++j) o[j] = static_cast<float>(src[j]) * scale;
    } else {
      for (std::int64_t j = 0; j < d; ++j) {
        const std::uint64_t g = static_cast<std::uint64_t>(i * d + j);
        const int nib = (e.packed[g / 2] >> (4 * (g & 1))) & 0xf;
        o[j] = static_cast<float>(nib >= 8 ? nib - 16 : nib) * scale;
      }
    }
    if (s.config.value_bytes == 2) round_bf16_finite(o, d);
  }
}
}  // namespace

void encode_elementwise(const CodecState& s, MatrixView x, Encoded& e) {
  if (s.config.method == Method::none) {
    e.values.resize(static_cast<std::size_t>(x.size()));
    wire_row(x.data, e.values.data(), x.size(), s.config.value_bytes);
  } else if (s.config.method == Method::topk) {
    encode_topk(s, x, e);
  } else {
    encode_quant(s, x, e);
  }
}

void decode_elementwise(const CodecState& s, const Encoded& e, float* out) {
  if (s.config.method == Method::quant) decode_quant(s, e, out);
  else reference::decode(s, e, out);  // none: a copy; topk: zero fill + scatter (memory-bound already)
}

}  // namespace moss::kernels::cpu
