// The warp-per-token topk and quant kernels (kernels/cuda/warp_row_kernels.h), their own source run
// on the CPU under warp_emulation.h, against a plain reference written here: topk encode as a sort
// (largest |x| first, lowest index first among ties, then back in index order), topk decode as a
// dense row with the kept values placed, quant as the codec's formula. Both forms of each kernel (streaming, row in registers at every chunk count that
// holds the row), rows of 1 to 512 chunks, ties, zero rows, k from 1 to d; the outputs must match
// exactly and nothing may be written past them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "warp_emulation.h"
// warp_emulation.h first: it defines what the kernels' source takes from CUDA.
#include "warp_row_kernels.h"
#include "block_row_kernels.h"

namespace {
namespace cu = moss::kernels::cuda;
namespace emu = moss::kernels::emulation;
using Bits = std::vector<std::uint16_t>;

constexpr std::uint16_t kGuard16 = 0xdead;
constexpr std::int32_t kGuard32 = -7;
constexpr int kGuard = 64;  // entries past each output that must stay untouched

enum class Data { gaussian, ties, zeros, subnormal };

Bits make_rows(std::int64_t tokens, int dim, Data data, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> level(-3, 3);
  Bits x(static_cast<std::size_t>(tokens * dim));
  std::uniform_int_distribution<int> tiny(0, 0x7f);  // bf16 subnormals: scales whose reciprocal overflows, or zero
  for (auto& v : x) {
    const float f = data == Data::gaussian ? normal(rng) : data == Data::ties ? 0.5f * static_cast<float>(level(rng)) : 0.0f;
    v = data == Data::subnormal ? static_cast<std::uint16_t>(tiny(rng) | (level(rng) < 0 ? 0x8000 : 0)) : moss::kernels::float_to_bf16_bits(f);
  }
  if (data == Data::zeros && dim > 3) x[2] = 0x8000;  // a negative zero ties with the zeros
  return x;
}

/// The reference topk of one row: indices in ascending order, values their bf16 bits.
void reference_topk(const std::uint16_t* row, int dim, int k, std::uint16_t* values, std::int32_t* indices) {
  std::vector<std::int32_t> order(static_cast<std::size_t>(dim));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [row](std::int32_t a, std::int32_t b) { return (row[a] & 0x7fff) > (row[b] & 0x7fff); });
  order.resize(static_cast<std::size_t>(k));
  std::sort(order.begin(), order.end());
  for (int q = 0; q < k; ++q) indices[q] = order[static_cast<std::size_t>(q)], values[q] = row[order[static_cast<std::size_t>(q)]];
}

/// The reference quant of one row (the codec's rule: scale = bf16(max |x| / qmax), codes = clamp(rint(x / scale))).
std::uint16_t reference_quant(const std::uint16_t* row, int dim, int qmax, std::int8_t* codes) {
  float amax = 0.0f;
  for (int j = 0; j < dim; ++j) amax = std::max(amax, std::fabs(moss::kernels::bf16_bits_to_float(row[j])));
  const std::uint16_t scale_bits = moss::kernels::float_to_bf16_bits(amax / static_cast<float>(qmax));
  const float scale = moss::kernels::bf16_bits_to_float(scale_bits);
  for (int j = 0; j < dim; ++j) {
    const float v = scale > 0.0f ? std::nearbyint(moss::kernels::bf16_bits_to_float(row[j]) / scale) : 0.0f;
    codes[j] = static_cast<std::int8_t>(std::clamp(v, static_cast<float>(-qmax), static_cast<float>(qmax)));
  }
  return scale_bits;
}

unsigned warp_grid(std::int64_t tokens) { return static_cast<unsigned>((tokens + cu::kWarpsPerBlock - 1) / cu::kWarpsPerBlock); }

/// The launch of a row kernel: a warp per token (row_grid 0) or `row_grid` blocks of
/// kRowBlockThreads that stride over the rows (block_row_kernels.h).
void launch_rows(std::int64_t tokens, unsigned row_grid, auto kernel, auto... args) {
  if (row_grid == 0)
    emu::launch_blocks(dim3{warp_grid(tokens), 1, 1}, dim3{cu::kWarpsPerBlock * 32, 1, 1}, kernel, args...);
  else
    emu::launch_blocks(dim3{row_grid, 1, 1}, dim3{cu::kRowBlockThreads, 1, 1}, kernel, args...);
}

template <typename Kernel>
void expect_topk(Kernel kernel, const std::string& form, const Bits& x, std::int64_t tokens, int dim, int k, unsigned row_grid = 0) {
  Bits values(static_cast<std::size_t>(tokens * k + kGuard), kGuard16);
  std::vector<std::int32_t> indices(static_cast<std::size_t>(tokens * k + kGuard), kGuard32);
  launch_rows(tokens, row_grid, kernel, x.data(), tokens, dim, k, values.data(), indices.data());
  Bits want_values(static_cast<std::size_t>(k));
  std::vector<std::int32_t> want_indices(static_cast<std::size_t>(k));
  for (std::int64_t t = 0; t < tokens; ++t) {
    reference_topk(x.data() + t * dim, dim, k, want_values.data(), want_indices.data());
    const auto first = static_cast<std::ptrdiff_t>(t * k);
    ASSERT_TRUE(std::equal(want_indices.begin(), want_indices.end(), indices.begin() + first))
        << form << ": indices of token " << t << " (d = " << dim << ", k = " << k << ")";
    ASSERT_TRUE(std::equal(want_values.begin(), want_values.end(), values.begin() + first))
        << form << ": values of token " << t << " (d = " << dim << ", k = " << k << ")";
  }
  const auto end = static_cast<std::ptrdiff_t>(tokens * k);
  EXPECT_TRUE(std::all_of(values.begin() + end, values.end(), [](std::uint16_t v) { return v == kGuard16; })) << form << ": wrote past the values";
  EXPECT_TRUE(std::all_of(indices.begin() + end, indices.end(), [](std::int32_t v) { return v == kGuard32; })) << form << ": wrote past the indices";
}

template <typename Kernel>
void expect_quant(Kernel kernel, const std::string& form, const Bits& x, std::int64_t tokens, int dim, int qmax, unsigned row_grid = 0) {
  std::vector<std::int8_t> codes(static_cast<std::size_t>(tokens * dim + kGuard), 99);
  Bits scales(static_cast<std::size_t>(tokens + kGuard), kGuard16);
  launch_rows(tokens, row_grid, kernel, x.data(), tokens, dim, qmax, codes.data(), scales.data());
  std::vector<std::int8_t> want(static_cast<std::size_t>(dim));
  for (std::int64_t t = 0; t < tokens; ++t) {
    const std::uint16_t scale = reference_quant(x.data() + t * dim, dim, qmax, want.data());
    ASSERT_EQ(scales[static_cast<std::size_t>(t)], scale) << form << ": scale of token " << t << " (d = " << dim << ")";
    ASSERT_TRUE(std::equal(want.begin(), want.end(), codes.begin() + static_cast<std::ptrdiff_t>(t * dim)))
        << form << ": codes of token " << t << " (d = " << dim << ", qmax = " << qmax << ")";
  }
  EXPECT_TRUE(std::all_of(codes.begin() + static_cast<std::ptrdiff_t>(tokens * dim), codes.end(), [](std::int8_t v) { return v == 99; }))
      << form << ": wrote past the codes";
  EXPECT_TRUE(std::all_of(scales.begin() + static_cast<std::ptrdiff_t>(tokens), scales.end(), [](std::uint16_t v) { return v == kGuard16; }))
      << form << ": wrote past the scales";
}

/// The resident forms for a row of `dim`: the smallest chunk count that holds it (what the launcher
/// runs), and 16, whose extra chunks past the row check the masking.
template <typename Run>
void for_resident_forms(int dim, Run run) {
  if (cu::resident_chunks(dim) == 0) return;
  cu::with_resident_chunks(cu::resident_chunks(dim), run);
  if (cu::resident_chunks(dim) != 16) run(std::integral_constant<int, 16>{});
}

struct Shape {
  std::int64_t tokens;
  int dim;
};
// 1, 5, 32 (one per lane), 33 (a second step), 65, 128, 256 and 512 chunks; 10 tokens leave the
// second block's last 6 warps without a token.
constexpr Shape kShapes[] = {{10, 8}, {10, 40}, {10, 256}, {10, 264}, {10, 520}, {4, 1024}, {3, 2048}, {2, 4096}};
// Under ThreadSanitizer (emu::kRacecheck): one step, two steps, eight chunks per lane; resident forms
// 2, 8 and 16; idle warps in the second block.
constexpr Shape kRaceShapes[] = {{10, 40}, {10, 264}, {3, 2048}};
std::span<const Shape> shapes() { return emu::kRacecheck ? std::span<const Shape>(kRaceShapes) : std::span<const Shape>(kShapes); }

// Kernels that break the rules of warp collectives, for the emulation's own checks.
void split_warp_then_block_barrier(int* out) {
  if (moss::kernels::emulation::lane() < 16) __syncwarp();
  __syncthreads();
  out[threadIdx.x] = 1;
}
void half_warp_shuffles(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x % 32 < 8) v = __shfl_down_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}
void lane_returns_early(int* out) {
  if (threadIdx.x % 32 == 3) return;
  out[threadIdx.x] = __shfl_sync(0xffffffffu, 7, 0);
}
void well_formed(int* out) {
  __shared__ int total[2];
  if (threadIdx.x < 2) total[threadIdx.x] = 0;
  __syncthreads();
  const int v = __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);
  atomicAdd(&total[threadIdx.x / 32], v);
  __syncthreads();
  out[threadIdx.x] = total[threadIdx.x / 32];
}

TEST(WarpEmulation, RejectsDivergentCollectivesWithoutHanging) {
  std::vector<int> out(64, 0);
  EXPECT_THROW(emu::launch_blocks(dim3{1, 1, 1}, dim3{64, 1, 1}, split_warp_then_block_barrier, out.data()), std::logic_error);
  EXPECT_THROW(emu::launch_blocks(dim3{1, 1, 1}, dim3{64, 1, 1}, half_warp_shuffles, out.data()), std::logic_error);
  EXPECT_THROW(emu::launch_blocks(dim3{1, 1, 1}, dim3{64, 1, 1}, lane_returns_early, out.data()), std::logic_error);
  EXPECT_THROW(emu::launch_blocks(dim3{1, 1, 1}, dim3{48, 1, 1}, well_formed, out.data()), std::logic_error);  // not whole warps
  emu::launch_blocks(dim3{1, 1, 1}, dim3{64, 1, 1}, well_formed, out.data());
  EXPECT_EQ(out[0], 31 * 32 / 2 + 0);  // the sum of lanes 0..31, each swapped with its neighbour
  EXPECT_EQ(out[63], (32 + 63) * 32 / 2);
}

TEST(WarpRowKernels, ResidentChunksHoldTheRowOrSayNo) {
  EXPECT_EQ(cu::resident_chunks(8), 2);
  EXPECT_EQ(cu::resident_chunks(512), 2);
  EXPECT_EQ(cu::resident_chunks(520), 4);
  EXPECT_EQ(cu::resident_chunks(2048), 8);
  EXPECT_EQ(cu::resident_chunks(4096), 16);
  EXPECT_EQ(cu::resident_chunks(4104), 0);
}

TEST(WarpRowKernels, TopkMatchesTheSortingReference) {
  unsigned seed = 1;
  for (const Shape& s : shapes())
    for (const Data data : {Data::gaussian, Data::ties, Data::zeros}) {
      const Bits x = make_rows(s.tokens, s.dim, data, seed++);
      const int tenth = static_cast<int>(std::ceil(0.1 * s.dim));
      const std::vector<int> ks = s.dim <= 264 || data == Data::gaussian ? std::vector<int>{1, tenth, s.dim} : std::vector<int>{tenth};
      for (const int k : ks) {
        const std::string what = "d " + std::to_string(s.dim) + " k " + std::to_string(k) + " data " + std::to_string(static_cast<int>(data));
        expect_topk(cu::topk_encode_warp_kernel, "streaming " + what, x, s.tokens, s.dim, k);
        for_resident_forms(s.dim, [&](auto per_lane) {
          expect_topk(cu::topk_encode_resident_kernel<decltype(per_lane)::value>, "resident " + std::to_string(per_lane()) + " " + what, x,
                      s.tokens, s.dim, k);
        });
      }
    }
}

/// k kept entries per token as the encoders write them, indices ascending: a random subset of the row,
/// or (at_ends, k = 1) one entry at either end of the row on alternate tokens; values never 0, so
/// that a lost value shows.
struct Kept {
  Bits values;
  std::vector<std::int32_t> indices;
};
Kept random_kept(std::int64_t tokens, int dim, int k, bool at_ends, std::mt19937& rng) {
  Kept kept{Bits(static_cast<std::size_t>(tokens * k)), std::vector<std::int32_t>(static_cast<std::size_t>(tokens * k))};
  std::vector<std::int32_t> all(static_cast<std::size_t>(dim));
  std::iota(all.begin(), all.end(), 0);
  for (std::int64_t t = 0; t < tokens; ++t) {
    std::shuffle(all.begin(), all.end(), rng);
    std::vector<std::int32_t> pick(all.begin(), all.begin() + k);
    if (at_ends) pick = {t % 2 == 0 ? 0 : dim - 1};
    std::sort(pick.begin(), pick.end());
    for (int q = 0; q < k; ++q) {
      kept.indices[static_cast<std::size_t>(t * k + q)] = pick[static_cast<std::size_t>(q)];
      kept.values[static_cast<std::size_t>(t * k + q)] = static_cast<std::uint16_t>(1 + (rng() % 0xfffe));
    }
  }
  return kept;
}

template <typename Kernel>
void expect_topk_decode(Kernel kernel, const std::string& form, const Bits& values, const std::vector<std::int32_t>& indices, std::int64_t tokens,
                        int dim, int k, unsigned row_grid = 0) {
  Bits out(static_cast<std::size_t>(tokens * dim + kGuard), kGuard16);
  launch_rows(tokens, row_grid, kernel, values.data(), indices.data(), tokens, dim, k, out.data());
  Bits want(static_cast<std::size_t>(dim));
  for (std::int64_t t = 0; t < tokens; ++t) {
    std::fill(want.begin(), want.end(), std::uint16_t{0});
    for (int q = 0; q < k; ++q) want[static_cast<std::size_t>(indices[static_cast<std::size_t>(t * k + q)])] = values[static_cast<std::size_t>(t * k + q)];
    ASSERT_TRUE(std::equal(want.begin(), want.end(), out.begin() + static_cast<std::ptrdiff_t>(t * dim)))
        << form << ": token " << t << " (d = " << dim << ", k = " << k << ")";
  }
  EXPECT_TRUE(std::all_of(out.begin() + static_cast<std::ptrdiff_t>(tokens * dim), out.end(), [](std::uint16_t v) { return v == kGuard16; }))
      << form << ": wrote past the output";
}

TEST(WarpRowKernels, TopkDecodePlacesEveryKeptValue) {
  // Ascending index sets as the encoders write them: one entry, every entry, random subsets of 10 %
  // and 60 % (steps of 32 chunks with more than 32 entries), entries only at the ends of the row.
  std::mt19937 rng(7);
  for (const Shape& s : shapes())
    for (const double density : {0.0, 0.1, 0.6, 1.0}) {
      const int k = density == 0.0 ? 1 : std::max(1, static_cast<int>(density * s.dim));
      const auto [values, indices] = random_kept(s.tokens, s.dim, k, density == 0.0, rng);
      const std::string what = "d " + std::to_string(s.dim) + " k " + std::to_string(k);
      expect_topk_decode(cu::topk_decode_warp_kernel, "scatter " + what, values, indices, s.tokens, s.dim, k);
      expect_topk_decode(cu::topk_decode_merge_kernel, "merge " + what, values, indices, s.tokens, s.dim, k);
      expect_topk_decode(cu::topk_decode_kernel, "block " + what, values, indices, s.tokens, s.dim, k, 3);
    }
}

TEST(WarpRowKernels, TopkDecodeMergeStaysInTheRowOnIndicesOutOfOrder) {
  // Not what an encoder writes (out of order, negative, beyond the row): the merge may then misplace
  // values but must write nothing outside the row (guards before and after it) nor hang.
  const int dim = 264, k = 40;
  std::vector<std::int32_t> indices(static_cast<std::size_t>(k));
  for (int pattern = 0; pattern < 3; ++pattern) {
    for (int q = 0; q < k; ++q) indices[static_cast<std::size_t>(q)] = static_cast<std::int32_t>((q * 97 + pattern * 13) % dim);
    indices[5] = -3, indices[9] = dim + 1, indices[17] = 2 * dim, indices[k - 1] = std::numeric_limits<std::int32_t>::min();
    if (pattern == 2) std::reverse(indices.begin(), indices.end());
    const Bits values(static_cast<std::size_t>(k), 0x3f80);
    Bits out(static_cast<std::size_t>(kGuard + dim + kGuard), kGuard16);
    emu::launch_blocks(dim3{1, 1, 1}, dim3{cu::kWarpsPerBlock * 32, 1, 1}, cu::topk_decode_merge_kernel, values.data(), indices.data(),
                       std::int64_t{1}, dim, k, out.data() + kGuard);
    EXPECT_TRUE(std::all_of(out.begin(), out.begin() + kGuard, [](std::uint16_t v) { return v == kGuard16; })) << "pattern " << pattern;
    EXPECT_TRUE(std::all_of(out.end() - kGuard, out.end(), [](std::uint16_t v) { return v == kGuard16; })) << "pattern " << pattern;
    EXPECT_TRUE(std::all_of(out.begin() + kGuard, out.end() - kGuard, [](std::uint16_t v) { return v == 0 || v == 0x3f80; }));
  }
}

// The quant kernels divide by the row's scale through its reciprocal and one exact correction:
// the code must be the division's for every x a row with that scale can hold (|x| <= 128.5 scale).
// All bf16 x against scales of every binade (random mantissas) and the subnormal scales whose
// reciprocal is finite; a one-off run over all 2.2e9 pairs found no difference either.
TEST(WarpRowKernels, QuotientByReciprocalGivesTheDivisionsCode) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<unsigned> mantissa(0, 0x7f);
  std::vector<std::uint16_t> scales;
  for (unsigned e = 0; e < 0xff; ++e)
    for (int i = 0; i < 3; ++i) scales.push_back(static_cast<std::uint16_t>(e << 7 | mantissa(rng)));
  long long checked = 0;
  for (const std::uint16_t sb : scales) {
    const float scale = moss::kernels::bf16_bits_to_float(sb);
    const float inv = 1.0f / scale;
    if (!(inv <= std::numeric_limits<float>::max())) continue;  // those divide
    for (const int qmax : {127, 7})
      for (std::uint16_t xb = 0; xb < 0x7f80; ++xb) {
        const float ax = moss::kernels::bf16_bits_to_float(xb);
        if (ax > 128.5f * scale) break;  // bf16 patterns ascend with magnitude
        for (const float x : {ax, -ax}) {
          const auto code = [qmax](float q) { return std::max(-qmax, std::min(qmax, static_cast<int>(std::nearbyint(q)))); };
          ASSERT_EQ(code(cu::quotient_by_reciprocal(x, scale, inv)), code(x / scale)) << "x " << x << " scale " << scale;
          ++checked;
        }
      }
  }
  EXPECT_GT(checked, 10'000'000);
}

TEST(WarpRowKernels, QuantMatchesTheCodecRule) {
  unsigned seed = 100;
  for (const Shape& s : shapes())
    for (const Data data : {Data::gaussian, Data::ties, Data::zeros, Data::subnormal})
      for (const int qmax : {127, 7}) {
        const Bits x = make_rows(s.tokens, s.dim, data, seed++);
        const std::string what = "d " + std::to_string(s.dim) + " qmax " + std::to_string(qmax);
        expect_quant(cu::quant_encode_warp_kernel<0>, "streaming " + what, x, s.tokens, s.dim, qmax);
        for_resident_forms(s.dim, [&](auto per_lane) {
          expect_quant(cu::quant_encode_warp_kernel<decltype(per_lane)::value>, "resident " + std::to_string(per_lane()) + " " + what,
                       x, s.tokens, s.dim, qmax);
        });
      }
}

/// The routes and coefficients of a route selection over p (tokens x subspaces * rank fp32), per
/// routing block of block_tokens tokens: the basis whose first route_cols coefficients hold the most
/// energy over the block's tokens (double sums here; the kernel's fp32 sums may differ only on near
/// ties), and those tokens' coefficients in it as bf16. Returns the routing blocks checked.
int expect_routes(const std::vector<float>& p, std::int64_t tokens, int rank, int subspaces, int route_cols, std::int64_t block_tokens,
                  const Bits& z, const std::vector<std::int32_t>& route) {
  const std::int64_t routes = (tokens + block_tokens - 1) / block_tokens;
  for (std::int64_t b = 0; b < routes; ++b) {
    std::vector<double> energy(static_cast<std::size_t>(subspaces), 0.0);
    const std::int64_t end = std::min(tokens, (b + 1) * block_tokens);
    for (std::int64_t t = b * block_tokens; t < end; ++t)
      for (int s = 0; s < subspaces; ++s)
        for (int i = 0; i < route_cols; ++i) {
          const double v = p[static_cast<std::size_t>((t * subspaces + s) * rank + i)];
          energy[static_cast<std::size_t>(s)] += v * v;
        }
    const int got = route[static_cast<std::size_t>(b)];
    EXPECT_TRUE(got >= 0 && got < subspaces) << "routing block " << b;
    if (got < 0 || got >= subspaces) return static_cast<int>(b);
    EXPECT_GE(energy[static_cast<std::size_t>(got)], *std::max_element(energy.begin(), energy.end()) * (1 - 1e-5))
        << "routing block " << b << " rank " << rank;
    for (std::int64_t t = b * block_tokens; t < end; ++t)
      for (int i = 0; i < rank; ++i)
        if (z[static_cast<std::size_t>(t * rank + i)] != moss::kernels::float_to_bf16_bits(p[static_cast<std::size_t>((t * subspaces + got) * rank + i)])) {
          ADD_FAILURE() << "coefficient " << i << " of token " << t << " rank " << rank;
          return static_cast<int>(b);
        }
  }
  EXPECT_TRUE(std::all_of(z.end() - kGuard, z.end(), [](std::uint16_t v) { return v == kGuard16; }));
  EXPECT_TRUE(std::all_of(route.end() - kGuard, route.end(), [](std::int32_t v) { return v == kGuard32; }));
  return static_cast<int>(routes);
}

TEST(WarpRowKernels, RouteSelectPicksTheBasisWithTheMostEnergy) {
  // p = X [U_1 .. U_K] (tokens x K rank fp32): the basis whose first route_cols coefficients hold the
  // most energy (double sums here; the kernel's fp32 warp sums may differ only on near ties), and its
  // coefficients as bf16.
  std::mt19937 rng(11);
  std::normal_distribution<float> g;
  int checked = 0;
  for (const int rank : {8, 24, 64, 100})
    for (const int subspaces : {1, 4})
      for (const int route_cols : {rank, std::max(1, rank / 8)}) {
        const std::int64_t tokens = 12;
        std::vector<float> p(static_cast<std::size_t>(tokens * subspaces * rank));
        for (auto& v : p) v = g(rng);
        Bits z(static_cast<std::size_t>(tokens * rank + kGuard), kGuard16);
        std::vector<std::int32_t> route(static_cast<std::size_t>(tokens + kGuard), kGuard32);
        emu::launch_blocks(dim3{warp_grid(tokens), 1, 1}, dim3{cu::kWarpsPerBlock * 32, 1, 1}, cu::route_select_warp_kernel,
                           static_cast<const float*>(p.data()), tokens, rank, subspaces, route_cols, z.data(), route.data());
        checked += expect_routes(p, tokens, rank, subspaces, route_cols, 1, z, route);
      }
  EXPECT_EQ(checked, 4 * 2 * 2 * 12);
}

template <int V>
void expect_expanded(int rank, int subspaces, std::int64_t tokens, std::int64_t block_tokens, unsigned grid) {
  std::mt19937 rng(static_cast<unsigned>(rank * 31 + subspaces + V));
  Bits z(static_cast<std::size_t>(tokens * rank));
  for (auto& v : z) v = static_cast<std::uint16_t>(1 + rng() % 0xfffe);
  const std::int64_t blocks = (tokens + block_tokens - 1) / block_tokens;
  std::vector<std::int32_t> route(static_cast<std::size_t>(blocks));
  for (auto& r : route) r = static_cast<std::int32_t>(rng() % static_cast<unsigned>(subspaces));
  const std::int64_t width = static_cast<std::int64_t>(subspaces) * rank;
  Bits wide(static_cast<std::size_t>(tokens * width + kGuard), kGuard16);
  emu::launch_blocks(dim3{grid, 1, 1}, dim3{64, 1, 1}, cu::expand_routed_kernel<V>, static_cast<const std::uint16_t*>(z.data()),
                     static_cast<const std::int32_t*>(route.data()), tokens, rank, subspaces, block_tokens, wide.data());
  for (std::int64_t t = 0; t < tokens; ++t)
    for (std::int64_t c = 0; c < width; ++c) {
      const std::int64_t s = c / rank;
      const std::uint16_t want = s == route[static_cast<std::size_t>(t / block_tokens)] ? z[static_cast<std::size_t>(t * rank + c % rank)] : 0;
      ASSERT_EQ(wide[static_cast<std::size_t>(t * width + c)], want) << "V " << V << " token " << t << " column " << c;
    }
  EXPECT_TRUE(std::all_of(wide.end() - kGuard, wide.end(), [](std::uint16_t v) { return v == kGuard16; }));
}

TEST(WarpRowKernels, ExpandRoutedPlacesEachTokenInItsBasisBlock) {
  // One GEMM over all bases decodes mos-k from this expansion: z_t in its route's block, zeros
  // elsewhere; per token and per 16-token routing block; fewer threads than chunks (grid stride).
  expect_expanded<8>(16, 4, 37, 1, 2);
  expect_expanded<8>(24, 3, 40, 16, 1);
  expect_expanded<1>(20, 4, 19, 1, 3);
  expect_expanded<1>(7, 2, 33, 16, 1);
}

/// A quant decode kernel on random codes and scales: bf16(code x scale) for every code of every token,
/// nothing written past the output.
template <typename Kernel>
void expect_quant_decode(Kernel kernel, std::int64_t tokens, int dim, dim3 grid, dim3 block, std::mt19937& rng) {
  std::vector<std::int8_t> codes(static_cast<std::size_t>(tokens * dim));
  for (auto& c : codes) c = static_cast<std::int8_t>(static_cast<int>(rng() % 255) - 127);
  Bits scales(static_cast<std::size_t>(tokens));
  for (auto& sc : scales) sc = moss::kernels::float_to_bf16_bits(std::ldexp(1.0f + static_cast<float>(rng() % 100) / 100.0f, -static_cast<int>(rng() % 20)));
  Bits out(static_cast<std::size_t>(tokens * dim + kGuard), kGuard16);
  emu::launch_blocks(grid, block, kernel, static_cast<const std::int8_t*>(codes.data()), static_cast<const std::uint16_t*>(scales.data()), tokens,
                     dim, out.data());
  for (std::int64_t t = 0; t < tokens; ++t)
    for (int j = 0; j < dim; ++j) {
      const float scale = moss::kernels::bf16_bits_to_float(scales[static_cast<std::size_t>(t)]);
      ASSERT_EQ(out[static_cast<std::size_t>(t * dim + j)],
                moss::kernels::float_to_bf16_bits(static_cast<float>(codes[static_cast<std::size_t>(t * dim + j)]) * scale))
          << "d " << dim << " token " << t << " value " << j;
    }
  EXPECT_TRUE(std::all_of(out.end() - kGuard, out.end(), [](std::uint16_t v) { return v == kGuard16; }));
}

TEST(WarpRowKernels, QuantDecodeRowsScalesEveryCode) {
  // Rows of whole 8-value chunks; fewer blocks than tokens (grid stride).
  std::mt19937 rng(5);
  for (const int dim : {8, 264, 1024}) expect_quant_decode(cu::quant_decode_rows_kernel, 11, dim, dim3{3, 1, 1}, dim3{64, 1, 1}, rng);
}

}  // namespace

namespace {
// The block-per-row kernels (block_row_kernels.h): any row length (not only whole 16-byte chunks),
// fewer blocks than rows (the blocks stride over them, reusing shared memory), 256 threads a block.
constexpr int kAnyDims[] = {1, 7, 37, 300, 1000};
constexpr int kRaceDims[] = {7, 300};
std::span<const int> any_dims() { return emu::kRacecheck ? std::span<const int>(kRaceDims) : std::span<const int>(kAnyDims); }

TEST(BlockRowKernels, TopkAndQuantEncodeAnyRow) {
  unsigned seed = 300;
  const std::int64_t tokens = 3;
  for (const int dim : any_dims())
    for (const Data data : {Data::gaussian, Data::ties, Data::zeros}) {
      const Bits x = make_rows(tokens, dim, data, seed++);
      const std::string what = "d " + std::to_string(dim) + " data " + std::to_string(static_cast<int>(data));
      const int tenth = static_cast<int>(std::ceil(0.1 * dim));
      for (const int k : data == Data::gaussian ? std::vector<int>{1, tenth, dim} : std::vector<int>{tenth})
        expect_topk(cu::topk_encode_kernel, "block " + what, x, tokens, dim, k, 2);
      for (const int qmax : {127, 7}) expect_quant(cu::quant_encode_kernel, "block " + what, x, tokens, dim, qmax, 2);
    }
}

TEST(BlockRowKernels, TopkAndQuantDecodeAnyRow) {
  std::mt19937 rng(17);
  const std::int64_t tokens = 5;
  for (const int dim : any_dims()) {
    // topk: ascending random subsets of 30 % of the row.
    const int k = std::max(1, static_cast<int>(0.3 * dim));
    const auto [values, indices] = random_kept(tokens, dim, k, false, rng);
    expect_topk_decode(cu::topk_decode_kernel, "block d " + std::to_string(dim), values, indices, tokens, dim, k, 2);
    expect_quant_decode(cu::quant_decode_kernel, tokens, dim, dim3{2, 1, 1}, dim3{cu::kRowBlockThreads, 1, 1}, rng);
  }
}

TEST(BlockRowKernels, RouteSelectPerRoutingBlock) {
  // Routing blocks of 16 tokens and one route for all 37: the basis whose first route_cols
  // coefficients hold the most energy over the block's tokens (double sums here), and those tokens'
  // coefficients in it as bf16; 2 blocks stride over 3 routing blocks.
  std::mt19937 rng(23);
  std::normal_distribution<float> g;
  const std::int64_t tokens = 37;
  int checked = 0;
  for (const int rank : {8, 24})
    for (const int subspaces : {1, 4})
      for (const std::int64_t block_tokens : {std::int64_t{16}, tokens}) {
        const int route_cols = std::max(1, rank / 8);
        std::vector<float> p(static_cast<std::size_t>(tokens * subspaces * rank));
        for (auto& v : p) v = g(rng);
        const std::int64_t routes = (tokens + block_tokens - 1) / block_tokens;
        Bits z(static_cast<std::size_t>(tokens * rank + kGuard), kGuard16);
        std::vector<std::int32_t> route(static_cast<std::size_t>(routes + kGuard), kGuard32);
        launch_rows(routes, 2, cu::route_select_kernel, static_cast<const float*>(p.data()), tokens, rank, subspaces, route_cols, block_tokens,
                    z.data(), route.data());
        checked += expect_routes(p, tokens, rank, subspaces, route_cols, block_tokens, z, route);
      }
  EXPECT_EQ(checked, 2 * 2 * (3 + 1));
}

TEST(BlockRowKernels, DecodeRoutedPerToken) {
  // out_t = z_t U_route^T in fp32, in the kernel's order of the sum (the same float operations here),
  // z_t staged in dynamic shared memory; routes per token and per 16 tokens; 4 blocks over 19 tokens.
  std::mt19937 rng(29);
  std::normal_distribution<float> g;
  const std::int64_t tokens = 19;
  const int subspaces = 3;
  for (const int dim : {24, 7})
    for (const int rank : {8, 5})
      for (const std::int64_t block_tokens : {std::int64_t{1}, std::int64_t{16}}) {
        Bits z(static_cast<std::size_t>(tokens * rank)), bases(static_cast<std::size_t>(subspaces * dim * rank));
        for (auto& v : z) v = moss::kernels::float_to_bf16_bits(g(rng));
        for (auto& v : bases) v = moss::kernels::float_to_bf16_bits(g(rng));
        std::vector<std::int32_t> route(static_cast<std::size_t>((tokens + block_tokens - 1) / block_tokens));
        for (auto& r : route) r = static_cast<std::int32_t>(rng() % subspaces);
        Bits out(static_cast<std::size_t>(tokens * dim + kGuard), kGuard16);
        emu::launch_blocks_shared(dim3{4, 1, 1}, dim3{cu::kRowBlockThreads, 1, 1}, static_cast<std::size_t>(rank) * sizeof(float),
                                  cu::decode_routed_kernel, static_cast<const std::uint16_t*>(z.data()),
                                  static_cast<const std::uint16_t*>(bases.data()), static_cast<const std::int32_t*>(route.data()), tokens, dim, rank,
                                  block_tokens, out.data());
        for (std::int64_t t = 0; t < tokens; ++t) {
          const std::uint16_t* u = bases.data() + static_cast<std::int64_t>(route[static_cast<std::size_t>(t / block_tokens)]) * dim * rank;
          for (int j = 0; j < dim; ++j) {
            float acc = 0;
            for (int q = 0; q < rank; ++q)
              acc += moss::kernels::bf16_bits_to_float(z[static_cast<std::size_t>(t * rank + q)]) * moss::kernels::bf16_bits_to_float(u[j * rank + q]);
            ASSERT_EQ(out[static_cast<std::size_t>(t * dim + j)], moss::kernels::float_to_bf16_bits(acc))
                << "d " << dim << " r " << rank << " token " << t << " column " << j;
          }
        }
        EXPECT_TRUE(std::all_of(out.end() - kGuard, out.end(), [](std::uint16_t v) { return v == kGuard16; }));
      }
}
}  // namespace
