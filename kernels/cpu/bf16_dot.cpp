#include "bf16_dot.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "moss/kernels/bf16.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MOSS_BF16_DOT_X86 1
#include <immintrin.h>
#endif

namespace moss::kernels::cpu {

void to_bf16_bits(const float* x, std::int64_t n, std::uint16_t* out) {
  for (std::int64_t i = 0; i < n; ++i) {
    std::uint32_t u = 0;
    std::memcpy(&u, x + i, sizeof u);
    out[i] = static_cast<std::uint16_t>(round_bf16_finite_bits(u) >> 16);
  }
}

bool simd_switch_on() {
  const char* env = std::getenv("MOSS_KERNELS_SIMD");
  return env == nullptr || std::strcmp(env, "0") != 0;
}

std::vector<std::uint32_t> bf16_pack_pairs(const std::uint16_t* bt, std::int64_t q, std::int64_t depth) {
  const std::int64_t pairs = (depth + 1) / 2;
  std::vector<std::uint32_t> bp(static_cast<std::size_t>(pairs * q + 16), 0u);
  for (std::int64_t j = 0; j < q; ++j)
    for (std::int64_t p = 0; p < pairs; ++p) {
      const std::uint32_t lo = bt[j * depth + 2 * p], hi = 2 * p + 1 < depth ? bt[j * depth + 2 * p + 1] : 0u;
      bp[static_cast<std::size_t>(p * q + j)] = lo | (hi << 16);
    }
  return bp;
}

#ifdef MOSS_BF16_DOT_X86

namespace {

#define MOSS_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

template <bool kMasked>
MOSS_BF16_TARGET inline __m512bh load_bf16(const std::uint16_t* p, __mmask32 mask) {
  if constexpr (kMasked)
    return (__m512bh)_mm512_maskz_loadu_epi16(mask, p);
  else
    return (__m512bh)_mm512_loadu_si512(p);
}

/// The sum of the 16 lanes, as a fixed tree (halves, quarters, pairs, neighbours) in registers.
/// Not _mm512_reduce_add_ps nor the unmasked shuffles: in GCC 12 they seed an unused operand with a
/// self-initialised variable, which -Wuninitialized reports (GCC bug 105593). Not a store to an array
/// and a loop over it: that makes clang 14 keep every accumulator in memory (half the speed).
MOSS_BF16_TARGET inline float sum_lanes(__m512 v) {
  // The all-lanes masked forms: the same instructions, without GCC 12's self-initialised operand.
  v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, 0xffff, v, v, 0x4e));
  v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, 0xffff, v, v, 0xb1));
  v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, 0xffff, v, 0x4e));
  v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, 0xffff, v, 0xb1));
  return _mm512_cvtss_f32(v);
}

/// acc[i][j] += the next 32 bf16 products of A row i and Bt row j, summed pairwise. Unmasked loads
/// on the full steps: masked 512-bit loads halve the throughput (measured on AMD Zen 4).
template <int RA, int CB, bool kMasked>
MOSS_BF16_TARGET inline void dot_step(__m512 (&acc)[RA][CB], const std::uint16_t* const* a, const std::uint16_t* bt, std::int64_t d,
                                      std::int64_t k, __mmask32 mask) {
  __m512bh av[RA], bv[CB];
  for (int i = 0; i < RA; ++i) av[i] = load_bf16<kMasked>(a[i] + k, mask);
  for (int j = 0; j < CB; ++j) bv[j] = load_bf16<kMasked>(bt + j * d + k, mask);
  for (int i = 0; i < RA; ++i)
    for (int j = 0; j < CB; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], av[i], bv[j]);
}

/// A block of RA rows of A against CB rows of Bt over the whole depth d: RA x CB accumulators of
/// 16 fp32 lanes (at most 16 of the 32 vector registers), 32 bf16 per step, the last step masked.
/// The whole depth in one pass: splitting it would add a horizontal sum per block and split, and
/// Bt (q x d bf16, 1 MB at q = 256, d = 2048) stays in the second-level cache between row blocks.
template <int RA, int CB>
MOSS_BF16_TARGET void dot_block(const std::uint16_t* const* a, std::int64_t d, const std::uint16_t* bt, float* const* c) {
  __m512 acc[RA][CB];
  for (int i = 0; i < RA; ++i)
    for (int j = 0; j < CB; ++j) acc[i][j] = _mm512_setzero_ps();
  std::int64_t k = 0;
  for (; k + 32 <= d; k += 32) dot_step<RA, CB, false>(acc, a, bt, d, k, 0);
  if (k < d) dot_step<RA, CB, true>(acc, a, bt, d, k, static_cast<__mmask32>((std::uint64_t{1} << (d - k)) - 1));
  for (int i = 0; i < RA; ++i)
    for (int j = 0; j < CB; ++j) c[i][j] = sum_lanes(acc[i][j]);
}

using BlockFn = void (*)(const std::uint16_t* const*, std::int64_t, const std::uint16_t*, float* const*);

template <int RA>
constexpr BlockFn block_for(int cb) {
  return cb == 4 ? dot_block<RA, 4> : cb == 3 ? dot_block<RA, 3> : cb == 2 ? dot_block<RA, 2> : dot_block<RA, 1>;
}

BlockFn block_for(int ra, int cb) {
  return ra == 4 ? block_for<4>(cb) : ra == 3 ? block_for<3>(cb) : ra == 2 ? block_for<2>(cb) : block_for<1>(cb);
}

/// RA rows of C from column j0 (c[i] points there), CB vectors of 16 columns: per pair step, A's
/// pair broadcast and 16 columns' pairs of B, one dot-product instruction per accumulator. bp points
/// at column j0 of pair row 0 (row stride q); its padding keeps the full-width loads in bounds, and
/// the last vector is stored under `last` (the columns that exist).
template <int RA, int CB>
MOSS_BF16_TARGET void pair_block(const std::uint16_t* const* a, std::int64_t depth, const std::uint32_t* bp, std::int64_t q, float* const* c,
                                 __mmask16 last) {
  __m512 acc[RA][CB];
  for (int i = 0; i < RA; ++i)
    for (int j = 0; j < CB; ++j) acc[i][j] = _mm512_setzero_ps();
  const std::int64_t pairs = (depth + 1) / 2;
  for (std::int64_t p = 0; p < pairs; ++p) {
    __m512bh av[RA], bv[CB];
    for (int i = 0; i < RA; ++i) {
      std::uint32_t w = a[i][2 * p];  // an odd depth's last pair is (a, 0), as packed
      if (2 * p + 1 < depth) std::memcpy(&w, a[i] + 2 * p, sizeof w);  // low half first (x86 is little-endian)
      av[i] = (__m512bh)_mm512_set1_epi32(static_cast<int>(w));
    }
    for (int j = 0; j < CB; ++j) bv[j] = (__m512bh)_mm512_loadu_si512(bp + p * q + 16 * j);
    for (int i = 0; i < RA; ++i)
      for (int j = 0; j < CB; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], av[i], bv[j]);
  }
  for (int i = 0; i < RA; ++i)
    for (int j = 0; j < CB; ++j) {
      if (j + 1 < CB || last == 0xffff)
        _mm512_storeu_ps(c[i] + 16 * j, acc[i][j]);
      else
        _mm512_mask_storeu_ps(c[i] + 16 * j, last, acc[i][j]);
    }
}

using PairFn = void (*)(const std::uint16_t* const*, std::int64_t, const std::uint32_t*, std::int64_t, float* const*, __mmask16);

template <int CB>
PairFn pair_for(int ra) {
  return ra == 4 ? pair_block<4, CB> : ra == 3 ? pair_block<3, CB> : ra == 2 ? pair_block<2, CB> : pair_block<1, CB>;
}

/// The A and C rows of the row block starting at i0 of an n-row product: up to 4, through the index
/// lists where given (the row addressing both products share).
struct RowBlock {
  int count;
  const std::uint16_t* a[4];
  float* c[4];
  RowBlock(const std::uint16_t* a0, const std::int64_t* a_rows, std::int64_t n, std::int64_t depth, float* c0, const std::int64_t* c_rows,
           std::int64_t ldc, std::int64_t i0)
      : count(static_cast<int>(n - i0 < 4 ? n - i0 : 4)), a{}, c{} {
    for (int i = 0; i < count; ++i) {
      a[i] = a0 + (a_rows != nullptr ? a_rows[i0 + i] : i0 + i) * depth;
      c[i] = c0 + (c_rows != nullptr ? c_rows[i0 + i] : i0 + i) * ldc;
    }
  }
};

}  // namespace

bool bf16_dot_supported() {
  static const bool has = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return has;
}

bool bf16_dot_enabled() { return bf16_dot_supported() && simd_switch_on(); }

Bf16Dots bf16_dot_policy() {
  if (!bf16_dot_enabled()) return Bf16Dots::off;
  if (const char* env = std::getenv("MOSS_KERNELS_BF16"); env != nullptr) {
    if (std::strcmp(env, "all") == 0) return Bf16Dots::all;
    if (std::strcmp(env, "narrow") == 0) return Bf16Dots::narrow;
    if (std::strcmp(env, "off") == 0) return Bf16Dots::off;
  }
  static const bool amd = __builtin_cpu_is("amd");
  return amd ? Bf16Dots::all : Bf16Dots::narrow;
}

void bf16_gemm_nt(const std::uint16_t* a, const std::int64_t* a_rows, std::int64_t n, std::int64_t d, const std::uint16_t* bt,
                  std::int64_t q, float* c, const std::int64_t* c_rows, std::int64_t ldc) {
  if (!bf16_dot_supported()) throw std::logic_error("bf16_gemm_nt: this CPU has no AVX512-BF16 dot product");
  for (std::int64_t i0 = 0; i0 < n; i0 += 4) {
    const RowBlock rb(a, a_rows, n, d, c, c_rows, ldc, i0);
    for (std::int64_t j0 = 0; j0 < q; j0 += 4) {
      const int cb = static_cast<int>(q - j0 < 4 ? q - j0 : 4);
      float out[4][4];
      float* out_rows[4] = {out[0], out[1], out[2], out[3]};
      block_for(rb.count, cb)(rb.a, d, bt + j0 * d, out_rows);
      for (int i = 0; i < rb.count; ++i) std::memcpy(rb.c[i] + j0, out[i], static_cast<std::size_t>(cb) * sizeof(float));
    }
  }
}

void bf16_gemm_pairs(const std::uint16_t* a, const std::int64_t* a_rows, std::int64_t n, std::int64_t depth, const std::uint32_t* bp,
                     std::int64_t q, float* c, const std::int64_t* c_rows, std::int64_t ldc) {
  if (!bf16_dot_supported()) throw std::logic_error("bf16_gemm_pairs: this CPU has no AVX512-BF16 dot product");
  for (std::int64_t i0 = 0; i0 < n; i0 += 4) {
    const RowBlock rb(a, a_rows, n, depth, c, c_rows, ldc, i0);
    float* cj[4];
    auto at_column = [&](std::int64_t j0) {
      for (int i = 0; i < rb.count; ++i) cj[i] = rb.c[i] + j0;
      return static_cast<float* const*>(cj);
    };
    std::int64_t j0 = 0;
    for (; j0 + 64 <= q; j0 += 64) pair_for<4>(rb.count)(rb.a, depth, bp + j0, q, at_column(j0), 0xffff);  // 4 x 4 accumulators
    for (; j0 < q; j0 += 16) {
      const __mmask16 last = q - j0 >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << (q - j0)) - 1);
      pair_for<1>(rb.count)(rb.a, depth, bp + j0, q, at_column(j0), last);
    }
  }
}

#else  // not x86-64: the Eigen fp32 path runs

bool bf16_dot_supported() { return false; }

bool bf16_dot_enabled() { return false; }

Bf16Dots bf16_dot_policy() { return Bf16Dots::off; }

void bf16_gemm_nt(const std::uint16_t*, const std::int64_t*, std::int64_t, std::int64_t, const std::uint16_t*, std::int64_t, float*,
                  const std::int64_t*, std::int64_t) {
  throw std::logic_error("bf16_gemm_nt: bf16 dot products are built for x86-64 only");
}

void bf16_gemm_pairs(const std::uint16_t*, const std::int64_t*, std::int64_t, std::int64_t, const std::uint32_t*, std::int64_t, float*,
                     const std::int64_t*, std::int64_t) {
  throw std::logic_error("bf16_gemm_pairs: bf16 dot products are built for x86-64 only");
}

#endif

bool bf16_dots_for(std::int64_t columns, bool decode) {
  switch (bf16_dot_policy()) {
    case Bf16Dots::all: return true;
    case Bf16Dots::narrow: return !decode && columns <= kNarrowDotColumns;
    case Bf16Dots::off: break;
  }
  return false;
}

}  // namespace moss::kernels::cpu
