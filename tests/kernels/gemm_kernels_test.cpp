// moss's wmma GEMM kernels (kernels/cuda/gemm_kernels.h): the simple kernel, the small-rank encode
// with its cp.async pipeline and split k, and the sum of the split partials, their own source run on
// the CPU under warp_emulation.h (wmma tiles summed in fp32, cp.async copies that land at their
// copy_wait), against a double reference: within fp32 rounding of the sums (1e-4 of sum |a b| over
// at most 600 terms), and one bf16 rounding more for bf16 outputs. Shapes with partial row and
// column tiles and a partial last k stage; outputs with guards past them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "warp_emulation.h"
// warp_emulation.h first: it defines what the kernels' source takes from CUDA.
#include "gemm_kernels.h"

namespace {
namespace cu = moss::kernels::cuda;
namespace emu = moss::kernels::emulation;
using Bits = std::vector<std::uint16_t>;
constexpr int kGuard = 64;

Bits random_bf16(std::size_t n, std::mt19937& rng) {
  std::normal_distribution<float> g;
  Bits out(n);
  for (auto& v : out) v = moss::kernels::float_to_bf16_bits(g(rng));
  return out;
}
float f(std::uint16_t bits) { return moss::kernels::bf16_bits_to_float(bits); }

/// C = A B (B k x n with row stride ldb, or given as n x k when transposed) in double, and sum |a b|.
struct Reference {
  std::vector<double> c, scale;
};
Reference reference(const Bits& a, std::int64_t lda, const Bits& b, std::int64_t ldb, bool transposed, std::int64_t m, int n, int k) {
  Reference r{std::vector<double>(static_cast<std::size_t>(m * n)), std::vector<double>(static_cast<std::size_t>(m * n))};
  for (std::int64_t i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0, abs = 0;
      for (int q = 0; q < k; ++q) {
        const double p = static_cast<double>(f(a[static_cast<std::size_t>(i * lda + q)])) *
                         f(b[static_cast<std::size_t>(transposed ? j * ldb + q : static_cast<std::int64_t>(q) * ldb + j)]);
        s += p, abs += std::fabs(p);
      }
      r.c[static_cast<std::size_t>(i * n + j)] = s, r.scale[static_cast<std::size_t>(i * n + j)] = abs;
    }
  return r;
}

/// The kernel's output (fp32 or bf16, row stride ldc) against the reference; nothing written past it.
void expect_product(const Reference& want, const std::vector<float>& c32, const Bits& c16, std::int64_t ldc, std::int64_t m, int n,
                    const std::string& what) {
  const bool bf16 = c32.empty();
  for (std::int64_t i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      const std::size_t at = static_cast<std::size_t>(i * ldc + j), ref = static_cast<std::size_t>(i * n + j);
      const double got = bf16 ? f(c16[at]) : c32[at];
      const double tol = 1e-4 * want.scale[ref] + (bf16 ? std::ldexp(std::fabs(want.c[ref]), -8) : 0.0) + 1e-30;
      ASSERT_LE(std::fabs(got - want.c[ref]), tol) << what << ": C(" << i << ", " << j << ")";
    }
  const std::size_t end = static_cast<std::size_t>((m - 1) * ldc + n);
  if (bf16) EXPECT_TRUE(std::all_of(c16.begin() + static_cast<std::ptrdiff_t>(end), c16.end(), [](std::uint16_t v) { return v == 0xdead; })) << what;
  else EXPECT_TRUE(std::all_of(c32.begin() + static_cast<std::ptrdiff_t>(end), c32.end(), [](float v) { return v == -7.0f; })) << what;
}

TEST(GemmKernels, SimpleKernelAnyShape) {
  // 64 x 64 tiles of 4 warps: partial row, column and k tiles; B as given and transposed; both outputs.
  std::mt19937 rng(3);
  const std::int64_t m = 70;
  const int n = 70, k = 50;
  const Bits a = random_bf16(static_cast<std::size_t>(m * k), rng);
  for (const bool transposed : {false, true}) {
    const Bits b = random_bf16(static_cast<std::size_t>(n * k), rng);
    const std::int64_t ldb = transposed ? k : n;
    const Reference want = reference(a, k, b, ldb, transposed, m, n, k);
    for (const bool bf16 : {false, true}) {
      std::vector<float> c32(bf16 ? 0 : static_cast<std::size_t>(m * n + kGuard), -7.0f);
      Bits c16(bf16 ? static_cast<std::size_t>(m * n + kGuard) : 0, 0xdead);
      const dim3 grid{static_cast<unsigned>((m + cu::kTileM - 1) / cu::kTileM), static_cast<unsigned>((n + cu::kTileN - 1) / cu::kTileN), 1};
      auto kernel = transposed ? cu::gemm_bf16_kernel<true> : cu::gemm_bf16_kernel<false>;
      emu::launch_blocks(grid, dim3{cu::kThreads, 1, 1}, kernel, a.data(), std::int64_t{k}, b.data(), ldb, bf16 ? nullptr : c32.data(),
                         bf16 ? c16.data() : nullptr, std::int64_t{n}, m, n, k);
      expect_product(want, c32, c16, n, m, n, std::string("simple") + (transposed ? " B^T" : "") + (bf16 ? " bf16" : " fp32"));
    }
  }
}

template <int kNT, int kMF>
void expect_tiled_encode(int n, int k, int splits, bool bf16) {
  using L = cu::EncLayout<kNT, kMF>;
  std::mt19937 rng(static_cast<unsigned>(kNT * 10 + kMF + k + splits));
  const std::int64_t m = 70, lda = k + 8, ldb = n + 8, ldc = n + 8;  // strides past the used columns
  const Bits a = random_bf16(static_cast<std::size_t>(m * lda), rng), b = random_bf16(static_cast<std::size_t>(k * ldb), rng);
  const Reference want = reference(a, lda, b, ldb, false, m, n, k);
  std::vector<float> c32(bf16 ? 0 : static_cast<std::size_t>(m * ldc + kGuard), -7.0f);
  Bits c16(bf16 ? static_cast<std::size_t>(m * ldc + kGuard) : 0, 0xdead);
  // As launch_encode runs it: k in chunks of whole stages, one fp32 partial per chunk, then their sum.
  const int chunk = splits > 1 ? ((k + splits - 1) / splits + cu::kEncK - 1) / cu::kEncK * cu::kEncK : k;
  const int parts = (k + chunk - 1) / chunk;
  std::vector<float> partials(static_cast<std::size_t>(parts > 1 ? parts * m * n : 0), -9.0f);
  const dim3 grid{static_cast<unsigned>((m + L::kEncM - 1) / L::kEncM), static_cast<unsigned>(parts), 1};
  emu::launch_blocks_shared(grid, dim3{cu::kEncThreads, 1, 1}, L::kBytes, cu::tiled_encode_kernel<kNT, kMF>, a.data(), lda, b.data(), ldb,
                            parts > 1 ? partials.data() : (bf16 ? nullptr : c32.data()), parts > 1 || !bf16 ? nullptr : c16.data(),
                            parts > 1 ? std::int64_t{n} : ldc, m, n, k, chunk);
  if (parts > 1)
    emu::launch_blocks(dim3{3, 1, 1}, dim3{256, 1, 1}, cu::add_splits_kernel, static_cast<const float*>(partials.data()), parts, m, n,
                       bf16 ? nullptr : c32.data(), bf16 ? c16.data() : nullptr, ldc);
  expect_product(want, c32, c16, ldc, m, n,
                 "tiled encode kNT " + std::to_string(kNT) + " kMF " + std::to_string(kMF) + " n " + std::to_string(n) + " k " + std::to_string(k) +
                     " parts " + std::to_string(parts) + (bf16 ? " bf16" : " fp32"));
}

TEST(GemmKernels, TiledEncodeThroughItsPipeline) {
  // 70 rows: a partial row tile; k = 296: three stages, the last 40 wide (warps past it skip);
  // columns below and at the tile's 16 kNT; 64-row tiles (kMF 2) and 32-row tiles.
  expect_tiled_encode<1, 1>(8, 296, 1, false);
  expect_tiled_encode<2, 2>(32, 296, 1, true);
  expect_tiled_encode<3, 1>(40, 296, 1, false);
  expect_tiled_encode<4, 2>(64, 136, 1, true);
}

TEST(GemmKernels, TiledEncodeSplitK) {
  // k = 600 in 2 chunks of 384 and 216, or 4 ways in 3 chunks of 256, 256 and 88: fp32 partials,
  // then add_splits_kernel with fewer threads than elements (its grid stride).
  expect_tiled_encode<1, 1>(16, 600, 2, false);
  expect_tiled_encode<4, 2>(56, 600, 4, true);
}

/// tiled_gemm_kernel<kTransB, kStages, kAliasC, kFM> as launch_general runs it: C (m x n) = A B_s,
/// B_s the basis of the row's route (routes per block_tokens rows; none: one basis), B k x n or
/// given as n x k (kTransB). Row and column strides past the used columns.
template <bool kTransB, int kStages, bool kAliasC, int kFM>
void expect_tiled_gemm(std::int64_t m, int n, int k, int subspaces, std::int64_t block_tokens, int tiles_per_block, bool bf16) {
  using L = cu::GenLayout<kTransB, kStages, kAliasC, kFM>;
  std::mt19937 rng(static_cast<unsigned>(m + n + k + subspaces));
  const std::int64_t lda = k + 8, ldb = kTransB ? k + 8 : n + 8, ldc = n + 8;
  const std::int64_t basis_stride = (kTransB ? n : k) * ldb;
  const Bits a = random_bf16(static_cast<std::size_t>(m * lda), rng), b = random_bf16(static_cast<std::size_t>(subspaces * basis_stride), rng);
  std::vector<std::int32_t> route;
  if (subspaces > 1) {
    route.resize(static_cast<std::size_t>((m + block_tokens - 1) / block_tokens));
    for (auto& r : route) r = static_cast<std::int32_t>(rng() % static_cast<unsigned>(subspaces));
    route[0] = route[1] = 0;  // a row tile whose first rows share a basis, others not
  }
  Reference want{std::vector<double>(static_cast<std::size_t>(m * n)), std::vector<double>(static_cast<std::size_t>(m * n))};
  for (std::int64_t i = 0; i < m; ++i) {
    const std::int64_t basis = route.empty() ? 0 : route[static_cast<std::size_t>(i / block_tokens)];
    for (int j = 0; j < n; ++j) {
      double sum = 0, abs = 0;
      for (int q = 0; q < k; ++q) {
        const std::int64_t at = basis * basis_stride + (kTransB ? j * ldb + q : q * ldb + j);
        const double p = static_cast<double>(f(a[static_cast<std::size_t>(i * lda + q)])) * f(b[static_cast<std::size_t>(at)]);
        sum += p, abs += std::fabs(p);
      }
      want.c[static_cast<std::size_t>(i * n + j)] = sum, want.scale[static_cast<std::size_t>(i * n + j)] = abs;
    }
  }
  std::vector<float> c32(bf16 ? 0 : static_cast<std::size_t>(m * ldc + kGuard), -7.0f);
  Bits c16(bf16 ? static_cast<std::size_t>(m * ldc + kGuard) : 0, 0xdead);
  const int n_tiles = (n + cu::kGenN - 1) / cu::kGenN, groups = (n_tiles + tiles_per_block - 1) / tiles_per_block;
  const auto blocks = static_cast<unsigned>((m + L::kGenM - 1) / L::kGenM * groups);
  emu::launch_blocks_shared(dim3{blocks, 1, 1}, dim3{cu::kGenThreads, 1, 1}, L::kBytes, cu::tiled_gemm_kernel<kTransB, kStages, kAliasC, kFM>,
                            a.data(), lda, b.data(), ldb, basis_stride, route.empty() ? nullptr : static_cast<const std::int32_t*>(route.data()),
                            block_tokens, subspaces, bf16 ? nullptr : c32.data(), bf16 ? c16.data() : nullptr, ldc, m, n, k, n_tiles,
                            tiles_per_block);
  expect_product(want, c32, c16, ldc, m, n,
                 std::string("tiled gemm") + (kTransB ? " B^T" : "") + (kAliasC ? " aliased C" : "") + " kFM " + std::to_string(kFM) + " n " +
                     std::to_string(n) + " k " + std::to_string(k) + " bases " + std::to_string(subspaces) + (bf16 ? " bf16" : " fp32"));
}

TEST(GemmKernels, TiledGemmEncodeAndDecode) {
  // The encode above rank 64 (128-row tiles, C through the pipeline's buffers): 150 x 136 x 200, two
  // row and two column tiles, both partial, a partial last k stage. The decode (B^T = U, 64-row
  // tiles): 70 x 264 x 40, three column tiles. A block over two column tiles with C in its own buffer.
  expect_tiled_gemm<false, 3, true, 4>(150, 136, 200, 1, 1, 1, false);
  expect_tiled_gemm<false, 3, true, 4>(150, 136, 200, 1, 1, 1, true);
  expect_tiled_gemm<true, 2, true, 2>(70, 264, 40, 1, 1, 1, true);
  expect_tiled_gemm<true, 2, true, 2>(70, 264, 40, 1, 1, 1, false);
  expect_tiled_gemm<false, 3, false, 2>(70, 264, 72, 1, 1, 2, false);
}

TEST(GemmKernels, TiledGemmRoutedDecode) {
  // mos-k's routed decode: each block of 16 rows (or each row) decoded with its route's basis of 3;
  // a tile runs one pass per basis its rows use, the other rows zero-filled.
  expect_tiled_gemm<true, 2, true, 2>(70, 136, 24, 3, 16, 1, true);
  expect_tiled_gemm<true, 2, true, 2>(70, 136, 24, 3, 1, 1, false);
}
}  // namespace
