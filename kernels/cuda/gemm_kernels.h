#pragma once
// moss's own GEMM kernels, all on wmma fragments, launched from codec_kernels.cu: the simple kernel
// (gemm_bf16_kernel, the fallback for any shape), the small-rank encode (tiled_encode_kernel, k
// through a 3-stage cp.async pipeline) and the sum of its split-k partials (add_splits_kernel), and
// the general tile kernel (tiled_gemm_kernel: the encode above rank 64, the decode, mos-k's routed
// decode).
//
// Compiled by nvcc and, for tests/kernels/gemm_kernels_test.cpp, by the host compiler under the CPU
// emulation of tests/kernels/warp_emulation.h, which supplies wmma fragments (a whole 16 x 16 tile per
// lane, fp32 sums) and cp.async copies that land only when copy_wait lets them
// (MOSS_EMULATED_COPY_ASYNC): the kernels' own source against a double reference, and under
// ThreadSanitizer (scripts/racecheck.sh). Anonymous namespace: one copy per translation unit.
#include <cstddef>
#include <cstdint>

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <mma.h>

#include "bf16_device.h"
#endif
#include "device_shared.h"

namespace moss::kernels::cuda {
namespace {
using bf16 = __nv_bfloat16;
namespace wmma = nvcuda::wmma;

constexpr int kTileM = 64, kTileN = 64, kTileK = 32, kThreads = 128;
constexpr int kPadA = kTileK + 8, kPadB = kTileN + 8, kPadC = kTileN + 4;

template <bool kTransB>
__global__ void gemm_bf16_kernel(const std::uint16_t* __restrict__ a, std::int64_t lda,
                                 const std::uint16_t* __restrict__ b, std::int64_t ldb, float* c_f32,
                                 std::uint16_t* c_bf16, std::int64_t ldc, std::int64_t m, int n, int k) {
  __shared__ __align__(32) bf16 as[kTileM][kPadA];
  __shared__ __align__(32) bf16 bs[kTileK][kPadB];
  __shared__ __align__(32) float cs[kTileM][kPadC];
  const std::int64_t m0 = static_cast<std::int64_t>(blockIdx.x) * kTileM;
  const int n0 = blockIdx.y * kTileN;
  const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
  for (auto& row : acc)
    for (auto& f : row) wmma::fill_fragment(f, 0.0f);
  const bf16 zero = __ushort_as_bfloat16(0);
  for (int k0 = 0; k0 < k; k0 += kTileK) {
    for (int i = threadIdx.x; i < kTileM * kTileK; i += kThreads) {
      const int r = i / kTileK, c = i % kTileK;
      const std::int64_t gm = m0 + r;
      const int gk = k0 + c;
      as[r][c] = (gm < m && gk < k) ? to_bf16(a[gm * lda + gk]) : zero;
    }
    for (int i = threadIdx.x; i < kTileK * kTileN; i += kThreads) {
      // Consecutive threads walk the contiguous dimension of B in memory.
      const int kk = kTransB ? i % kTileK : i / kTileN, nn = kTransB ? i / kTileK : i % kTileN;
      const int gk = k0 + kk, gn = n0 + nn;
      bf16 v = zero;
      if (gk < k && gn < n) v = to_bf16(kTransB ? b[static_cast<std::int64_t>(gn) * ldb + gk] : b[static_cast<std::int64_t>(gk) * ldb + gn]);
      bs[kk][nn] = v;
    }
    __syncthreads();
    for (int kk = 0; kk < kTileK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb[2];
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], &as[wm * 32 + i * 16][kk], kPadA);
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], &bs[kk][wn * 32 + j * 16], kPadB);
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(&cs[wm * 32 + i * 16][wn * 32 + j * 16], acc[i][j], kPadC, wmma::mem_row_major);
  __syncthreads();
  for (int i = threadIdx.x; i < kTileM * kTileN; i += kThreads) {
    const int r = i / kTileN, c = i % kTileN;
    const std::int64_t gm = m0 + r;
    const int gn = n0 + c;
    if (gm >= m || gn >= n) continue;
    if (c_f32 != nullptr) c_f32[gm * ldc + gn] = cs[r][c];
    else c_bf16[gm * ldc + gn] = float_to_bits(cs[r][c]);
  }
}

// ---- tiled kernels -------------------------------------------------------------------------------
#ifndef MOSS_EMULATED_COPY_ASYNC
// 16-byte global -> shared copies; bytes = 0 zero-fills the destination (out-of-range chunks).
__device__ __forceinline__ void copy16(void* smem, const void* gmem, bool in_range) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(in_range ? 16 : 0));
#else
  *static_cast<uint4*>(smem) = in_range ? *static_cast<const uint4*>(gmem) : make_uint4(0, 0, 0, 0);
#endif
}
__device__ __forceinline__ void copy_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
template <int kPending>
__device__ __forceinline__ void copy_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
#endif
}
#endif

// The multi-stage copy pipeline of the tiled kernels: `load(stage, step)` issues the cp.async copies of
// step `step` into buffer `stage`. pipeline_start loads the first kStages - 1 steps; pipeline_next,
// at the top of step `step`, waits until that step has landed for every thread (the barrier also
// frees the buffer of step - 1) and issues step + kStages - 1 into it. One commit group per step,
// empty ones included, keeps the wait counts exact.
template <int kStages, typename Load>
__device__ __forceinline__ void pipeline_start(int steps, Load&& load) {
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < steps) load(s, s);
    copy_commit();
  }
}
template <int kStages, typename Load>
__device__ __forceinline__ void pipeline_next(int step, int steps, Load&& load) {
  copy_wait<kStages - 2>();
  __syncthreads();
  if (step + kStages - 1 < steps) load((step + kStages - 1) % kStages, step + kStages - 1);
  copy_commit();
}

// Encode at small rank: C (m x n) = A (m x k) B (k x n), n <= 64. Block tile 32 * kMF rows x 16 * kNT
// columns (one column tile: A is read once), k in stages of 128 through a 3-stage cp.async pipeline;
// 8 warps = 2 (rows, 16 * kMF each) x 4 (a 32-wide k slice of each stage each), whose partial sums are
// added through shared memory at the end. kMF = 1 doubles the blocks for short inputs. Split k
// (gridDim.y > 1, for inputs too short to fill the device): block row y sums k in
// [y k_chunk, (y + 1) k_chunk) into its own fp32 partial C (c_f32 + y m ldc); add_splits_kernel adds them.
constexpr int kEncK = 128, kEncStages = 3, kEncThreads = 256;
template <int kNT, int kMF>
struct EncLayout {
  static constexpr int kEncM = 32 * kMF;
  static constexpr int kN = 16 * kNT, kLdA = kEncK + 8, kLdB = kN + 8, kLdC = kN + 4;
  static constexpr int kStageA = kEncM * kLdA, kStageB = kEncK * kLdB;  // bf16 elements
  static constexpr std::size_t kPipeBytes = kEncStages * (kStageA + kStageB) * sizeof(bf16);
  static constexpr std::size_t kReduceBytes = 4 * kEncM * kLdC * sizeof(float);
  static constexpr std::size_t kBytes = kPipeBytes > kReduceBytes ? kPipeBytes : kReduceBytes;
};

template <int kNT, int kMF>
__global__ void __launch_bounds__(kEncThreads, kNT <= 2 ? 3 : 2) tiled_encode_kernel(const std::uint16_t* __restrict__ a, std::int64_t lda,
                                                                   const std::uint16_t* __restrict__ b, std::int64_t ldb,
                                                                   float* c_f32, std::uint16_t* c_bf16, std::int64_t ldc,
                                                                   std::int64_t m, int n, int k, int k_chunk) {
  using L = EncLayout<kNT, kMF>;
  const int k_begin = static_cast<int>(blockIdx.y) * k_chunk;
  a += k_begin;
  b += static_cast<std::int64_t>(k_begin) * ldb;
  k = min(k - k_begin, k_chunk);
  if (gridDim.y > 1) c_f32 += static_cast<std::int64_t>(blockIdx.y) * m * ldc;
  constexpr int kEncM = L::kEncM;
  MOSS_DYNAMIC_SHARED(unsigned char, smem);
  bf16* as = reinterpret_cast<bf16*>(smem);
  bf16* bs = as + kEncStages * L::kStageA;
  const std::int64_t m0 = static_cast<std::int64_t>(blockIdx.x) * kEncM;
  constexpr int n0 = 0;
  const int warp = threadIdx.x / 32, wm = warp & 1, wk = warp >> 1;
  const int k_tiles = (k + kEncK - 1) / kEncK;
  auto load = [&](int stage, int kt) {
    const int k0 = kt * kEncK;
    bf16* sa = as + stage * L::kStageA;
    bf16* sb = bs + stage * L::kStageB;
    for (int i = threadIdx.x; i < kEncM * (kEncK / 8); i += kEncThreads) {
      const int r = i / (kEncK / 8), c = (i % (kEncK / 8)) * 8;
      const bool ok = m0 + r < m && k0 + c < k;
      copy16(sa + r * L::kLdA + c, ok ? a + (m0 + r) * lda + k0 + c : a, ok);
    }
    for (int i = threadIdx.x; i < kEncK * (L::kN / 8); i += kEncThreads) {
      const int r = i / (L::kN / 8), c = (i % (L::kN / 8)) * 8;
      const bool ok = k0 + r < k && n0 + c < n;
      copy16(sb + r * L::kLdB + c, ok ? b + static_cast<std::int64_t>(k0 + r) * ldb + n0 + c : b, ok);
    }
  };
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kMF][kNT];
  for (auto& row : acc)
    for (auto& f : row) wmma::fill_fragment(f, 0.0f);
  pipeline_start<kEncStages>(k_tiles, load);
  for (int kt = 0; kt < k_tiles; ++kt) {
    pipeline_next<kEncStages>(kt, k_tiles, load);
    const bf16* sa = as + (kt % kEncStages) * L::kStageA;
    const bf16* sb = bs + (kt % kEncStages) * L::kStageB;
    for (int s = 0; s < 2; ++s) {
      const int kk = wk * 32 + s * 16;
      if (kt * kEncK + kk >= k) break;  // zero-filled tail of the last stage
      wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa[kMF];
      for (int i = 0; i < kMF; ++i) wmma::load_matrix_sync(fa[i], sa + (wm * 16 * kMF + i * 16) * L::kLdA + kk, L::kLdA);
      for (int j = 0; j < kNT; ++j) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb;
        wmma::load_matrix_sync(fb, sb + kk * L::kLdB + j * 16, L::kLdB);
        for (int i = 0; i < kMF; ++i) wmma::mma_sync(acc[i][j], fa[i], fb, acc[i][j]);
      }
    }
  }
  copy_wait<0>();
  __syncthreads();  // the pipeline buffers become the reduction buffer
  float* red = reinterpret_cast<float*>(smem);
  for (int i = 0; i < kMF; ++i)
    for (int j = 0; j < kNT; ++j)
      wmma::store_matrix_sync(red + (wk * kEncM + wm * 16 * kMF + i * 16) * L::kLdC + j * 16, acc[i][j], L::kLdC, wmma::mem_row_major);
  __syncthreads();
  for (int i = threadIdx.x; i < kEncM * L::kN; i += kEncThreads) {
    const int r = i / L::kN, c = i % L::kN;
    if (m0 + r >= m || n0 + c >= n) continue;
    float v = 0;
    for (int w = 0; w < 4; ++w) v += red[(w * kEncM + r) * L::kLdC + c];
    if (c_f32 != nullptr) c_f32[(m0 + r) * ldc + n0 + c] = v;
    else c_bf16[(m0 + r) * ldc + n0 + c] = float_to_bits(v);
  }
}

// The split-k partials (splits blocks of m x n fp32, contiguous) added into C.
__global__ void add_splits_kernel(const float* __restrict__ parts, int splits, std::int64_t m, int n, float* c_f32,
                                  std::uint16_t* c_bf16, std::int64_t ldc) {
  // Element i = row n + col; row and col advance with i by the grid's stride (no division per element).
  const std::int64_t total = m * n, stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t stride_rows = stride / n;
  const int stride_cols = static_cast<int>(stride % n);
  std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x, row = i / n;
  int col = static_cast<int>(i % n);
  for (; i < total; i += stride) {
    float v = 0;
    for (int s = 0; s < splits; ++s) v += parts[s * total + i];
    if (c_f32 != nullptr) c_f32[row * ldc + col] = v;
    else c_bf16[row * ldc + col] = float_to_bits(v);
    row += stride_rows, col += stride_cols;
    if (col >= n) col -= n, ++row;
  }
}

// General tile kernel: C (m x n) = A (m x k) B, 64 x 128 tiles, k in stages of 64 through a
// kStages-deep cp.async pipeline; 8 warps as 2 (rows, 32 each) x 4 (32 columns each), each warp over
// the whole stage. B is k x n (kTransB false: the encode of ranks > 64, the mos-k projection) or given
// as n x k (kTransB true: decode, U is d x r and row j of U is column j of B^T). A block computes
// `tiles_per_block` consecutive column tiles of one row tile, loading the next tile's stages while it
// writes the finished one (decode is bound by writing C, k = r is short); C goes out through its own
// shared buffer as 16-byte stores. Routed (mos-k decode): B is one of `subspaces` bases per row block
// of `block_tokens`; a tile runs one pass per basis its rows use, the rows of other bases zero-filled.
constexpr int kGenN = 128, kGenK = 64, kGenThreads = 256, kMaxSubspaces = 64;
template <bool kTransB, int kStages, bool kAliasC, int kFM>
struct GenLayout {
  static constexpr int kGenM = 32 * kFM;  // rows per tile: 2 warps of kFM 16-row fragments
  static constexpr int kLdA = kGenK + 8, kLdB = kTransB ? kGenK + 8 : kGenN + 8, kLdC = kGenN + 4;
  static constexpr int kStageA = kGenM * kLdA, kStageB = kTransB ? kGenN * kLdB : kGenK * kLdB;
  static constexpr std::size_t kPipeBytes = kStages * (kStageA + kStageB) * sizeof(bf16);
  static constexpr std::size_t kOutBytes = kGenM * kLdC * sizeof(float);
  // kAliasC (one column tile per block): C reuses the pipeline buffers once the last stage is consumed.
  static constexpr std::size_t kBytes = kAliasC ? (kPipeBytes > kOutBytes ? kPipeBytes : kOutBytes) : kPipeBytes + kOutBytes;
};

template <bool kTransB, int kStages, bool kAliasC, int kFM>
__global__ void __launch_bounds__(kGenThreads, kFM == 2 ? 3 : 2) tiled_gemm_kernel(const std::uint16_t* __restrict__ a, std::int64_t lda,
                                                                 const std::uint16_t* __restrict__ b, std::int64_t ldb,
                                                                 std::int64_t basis_stride, const std::int32_t* __restrict__ route,
                                                                 std::int64_t block_tokens, int subspaces, float* c_f32,
                                                                 std::uint16_t* c_bf16, std::int64_t ldc, std::int64_t m, int n,
                                                                 int k, int n_tiles, int tiles_per_block) {
  using L = GenLayout<kTransB, kStages, kAliasC, kFM>;
  constexpr int kGenM = L::kGenM;
  MOSS_DYNAMIC_SHARED(unsigned char, smem);
  __shared__ int used[kMaxSubspaces], used_count, row_basis[kGenM];
  bf16* as = reinterpret_cast<bf16*>(smem);
  bf16* bs = as + kStages * L::kStageA;
  float* cs = reinterpret_cast<float*>(kAliasC ? smem : smem + L::kPipeBytes);
  const int groups = (n_tiles + tiles_per_block - 1) / tiles_per_block;
  const std::int64_t m0 = static_cast<std::int64_t>(blockIdx.x / groups) * kGenM;
  const int tile0 = static_cast<int>(blockIdx.x % groups) * tiles_per_block;
  const int tiles = min(tiles_per_block, n_tiles - tile0);
  const int warp = threadIdx.x / 32, wm = warp & 1, wn = warp >> 1;
  if (threadIdx.x < kGenM) {
    const std::int64_t row = m0 + threadIdx.x;
    row_basis[threadIdx.x] = route == nullptr ? 0 : row < m ? route[row / block_tokens] : -1;
  }
  __syncthreads();
  if (threadIdx.x == 0) {  // the bases this tile's rows use, in order
    int count = 0;
    for (int s = 0; s < subspaces; ++s) {
      bool any = false;
      for (int r = 0; r < kGenM && !any; ++r) any = row_basis[r] == s;
      if (any) used[count++] = s;
    }
    used_count = count;
  }
  __syncthreads();
  const int k_tiles = (k + kGenK - 1) / kGenK, per_tile = used_count * k_tiles, steps = per_tile * tiles;
  auto load = [&](int stage, int step) {
    const int n0 = (tile0 + step / per_tile) * kGenN, basis = used[step % per_tile / k_tiles], k0 = step % k_tiles * kGenK;
    const std::uint16_t* bb = b + basis * basis_stride;
    bf16* sa = as + stage * L::kStageA;
    bf16* sb = bs + stage * L::kStageB;
    for (int i = threadIdx.x; i < kGenM * (kGenK / 8); i += kGenThreads) {
      const int r = i / (kGenK / 8), c = (i % (kGenK / 8)) * 8;
      const bool ok = m0 + r < m && k0 + c < k && row_basis[r] == basis;
      copy16(sa + r * L::kLdA + c, ok ? a + (m0 + r) * lda + k0 + c : a, ok);
    }
    for (int i = threadIdx.x; i < kGenN * (kGenK / 8); i += kGenThreads) {
      if (kTransB) {  // rows of B^T (= rows of U), k contiguous
        const int r = i / (kGenK / 8), c = (i % (kGenK / 8)) * 8;
        const bool ok = n0 + r < n && k0 + c < k;
        copy16(sb + r * L::kLdB + c, ok ? bb + static_cast<std::int64_t>(n0 + r) * ldb + k0 + c : bb, ok);
      } else {  // rows of B, n contiguous
        const int r = i / (kGenN / 8), c = (i % (kGenN / 8)) * 8;
        const bool ok = k0 + r < k && n0 + c < n;
        copy16(sb + r * L::kLdB + c, ok ? bb + static_cast<std::int64_t>(k0 + r) * ldb + n0 + c : bb, ok);
      }
    }
  };
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kFM][2];
  for (auto& row : acc)
    for (auto& f : row) wmma::fill_fragment(f, 0.0f);
  pipeline_start<kStages>(steps, load);
  for (int step = 0; step < steps; ++step) {
    pipeline_next<kStages>(step, steps, load);
    const bf16* sa = as + (step % kStages) * L::kStageA;
    const bf16* sb = bs + (step % kStages) * L::kStageB;
    const int k0 = step % k_tiles * kGenK;
    for (int kk = 0; kk < kGenK && k0 + kk < k; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa[kFM];
      for (int i = 0; i < kFM; ++i) wmma::load_matrix_sync(fa[i], sa + (wm * 16 * kFM + i * 16) * L::kLdA + kk, L::kLdA);
      for (int j = 0; j < 2; ++j) {
        if constexpr (kTransB) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb;
          wmma::load_matrix_sync(fb, sb + (wn * 32 + j * 16) * L::kLdB + kk, L::kLdB);
          for (int i = 0; i < kFM; ++i) wmma::mma_sync(acc[i][j], fa[i], fb, acc[i][j]);
        } else {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb;
          wmma::load_matrix_sync(fb, sb + kk * L::kLdB + wn * 32 + j * 16, L::kLdB);
          for (int i = 0; i < kFM; ++i) wmma::mma_sync(acc[i][j], fa[i], fb, acc[i][j]);
        }
      }
    }
    if (step % per_tile != per_tile - 1) continue;
    // Column tile finished: out through cs (free since the top-of-loop barrier), then reset.
    if constexpr (kAliasC) {
      copy_wait<0>();
      __syncthreads();
    }
    const int n0 = (tile0 + step / per_tile) * kGenN;
    for (int i = 0; i < kFM; ++i)
      for (int j = 0; j < 2; ++j) {
        wmma::store_matrix_sync(cs + (wm * 16 * kFM + i * 16) * L::kLdC + wn * 32 + j * 16, acc[i][j], L::kLdC, wmma::mem_row_major);
        wmma::fill_fragment(acc[i][j], 0.0f);
      }
    __syncthreads();
    for (int i = threadIdx.x; i < kGenM * (kGenN / 8); i += kGenThreads) {
      const int r = i / (kGenN / 8), c = (i % (kGenN / 8)) * 8;
      if (m0 + r >= m || n0 + c >= n) continue;
      const float* v = cs + r * L::kLdC + c;
      if (c_f32 != nullptr) {
        *reinterpret_cast<float4*>(c_f32 + (m0 + r) * ldc + n0 + c) = make_float4(v[0], v[1], v[2], v[3]);
        *reinterpret_cast<float4*>(c_f32 + (m0 + r) * ldc + n0 + c + 4) = make_float4(v[4], v[5], v[6], v[7]);
      } else {
        uint4 packed;
        std::uint16_t* h = reinterpret_cast<std::uint16_t*>(&packed);
        for (int q = 0; q < 8; ++q) h[q] = float_to_bits(v[q]);
        *reinterpret_cast<uint4*>(c_bf16 + (m0 + r) * ldc + n0 + c) = packed;
      }
    }
  }
  if (steps == 0) {  // no row of this tile is in range (cannot happen for m0 < m) or k == 0: zeros
    for (int t = 0; t < tiles; ++t)
      for (int i = threadIdx.x; i < kGenM * kGenN; i += kGenThreads) {
        const int r = i / kGenN, c = i % kGenN, n0 = (tile0 + t) * kGenN;
        if (m0 + r >= m || n0 + c >= n) continue;
        if (c_f32 != nullptr) c_f32[(m0 + r) * ldc + n0 + c] = 0;
        else c_bf16[(m0 + r) * ldc + n0 + c] = 0;
      }
  }
  copy_wait<0>();
}

}  // namespace
}  // namespace moss::kernels::cuda
