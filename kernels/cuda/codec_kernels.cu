// CUDA kernels of the codecs (one copy each) and their launchers. No Eigen here.
// Roofline: at rank r the projection does 2r flops per 2-byte input value, so encode/decode are
// memory-bound only on tensor cores; the GEMM below uses bf16 WMMA with fp32 accumulation and, for
// r <= 64, one column tile, i.e. X is read once.
#include <cuda_bf16.h>
#include <mma.h>

#include "codec_launch.h"
#include "cuda_check.h"

namespace moss::kernels::cuda {

namespace {
using bf16 = __nv_bfloat16;
namespace wmma = nvcuda::wmma;

constexpr int kTileM = 64, kTileN = 64, kTileK = 32, kThreads = 128;
constexpr int kPadA = kTileK + 8, kPadB = kTileN + 8, kPadC = kTileN + 4;

__device__ __forceinline__ bf16 to_bf16(std::uint16_t bits) { return __ushort_as_bfloat16(bits); }
__device__ __forceinline__ float bits_to_float(std::uint16_t bits) { return __bfloat162float(__ushort_as_bfloat16(bits)); }
__device__ __forceinline__ std::uint16_t float_to_bits(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }

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

__device__ float block_sum(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  float total = 0;
  if (threadIdx.x == 0) {
    for (int w = 0; w < (blockDim.x + 31) / 32; ++w) total += scratch[w];
    scratch[32] = total;
  }
  __syncthreads();
  total = scratch[32];
  __syncthreads();
  return total;
}

__device__ float block_max(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    float m = 0;
    for (int w = 0; w < (blockDim.x + 31) / 32; ++w) m = fmaxf(m, scratch[w]);
    scratch[32] = m;
  }
  __syncthreads();
  const float m = scratch[32];
  __syncthreads();
  return m;
}

__global__ void route_select_kernel(const float* __restrict__ p, std::int64_t tokens, int rank, int subspaces,
                                    int route_cols, std::int64_t block_tokens, std::uint16_t* z, std::int32_t* route) {
  __shared__ float scratch[33];
  __shared__ int best_s;
  const std::int64_t t0 = static_cast<std::int64_t>(blockIdx.x) * block_tokens;
  const std::int64_t n = min(block_tokens, tokens - t0);
  const std::int64_t width = static_cast<std::int64_t>(subspaces) * rank;
  if (threadIdx.x == 0) best_s = 0;
  float best = -1.0f;
  for (int j = 0; j < subspaces; ++j) {
    float e = 0;
    for (std::int64_t i = threadIdx.x; i < n * route_cols; i += blockDim.x) {  // the first route_cols columns
      const float v = p[(t0 + i / route_cols) * width + static_cast<std::int64_t>(j) * rank + i % route_cols];
      e += v * v;
    }
    e = block_sum(e, scratch);
    if (e > best) {  // identical on every thread: block_sum broadcasts
      best = e;
      if (threadIdx.x == 0) best_s = j;
    }
  }
  __syncthreads();
  const int k = best_s;
  if (threadIdx.x == 0) route[blockIdx.x] = k;
  for (std::int64_t i = threadIdx.x; i < n * rank; i += blockDim.x)
    z[(t0 + i / rank) * rank + i % rank] = float_to_bits(p[(t0 + i / rank) * width + static_cast<std::int64_t>(k) * rank + i % rank]);
}

__global__ void decode_routed_kernel(const std::uint16_t* __restrict__ z, const std::uint16_t* __restrict__ bases,
                                     const std::int32_t* __restrict__ route, int dim, int rank,
                                     std::int64_t block_tokens, std::uint16_t* out) {
  extern __shared__ float zs[];
  const std::int64_t t = blockIdx.x;
  for (int q = threadIdx.x; q < rank; q += blockDim.x) zs[q] = bits_to_float(z[t * rank + q]);
  __syncthreads();
  const std::uint16_t* u = bases + static_cast<std::int64_t>(route[t / block_tokens]) * dim * rank;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) {
    float acc = 0;
    for (int q = 0; q < rank; ++q) acc += zs[q] * bits_to_float(u[static_cast<std::int64_t>(j) * rank + q]);
    out[t * dim + j] = float_to_bits(acc);
  }
}

// One block per token. Keys are |x| as the low 15 bits of the bf16 pattern (monotone in |x| for
// finite values). The threshold is found by bisection on the key, then kept entries are compacted in
// index order with a per-thread contiguous segment and serial scans over threads.
__global__ void topk_encode_kernel(const std::uint16_t* __restrict__ x, int dim, int k, std::uint16_t* values,
                                   std::int32_t* indices) {
  extern __shared__ int counts[];  // 2 * blockDim.x
  __shared__ int total_s;
  const std::int64_t t = blockIdx.x;
  const std::uint16_t* row = x + t * dim;
  const int seg = (dim + blockDim.x - 1) / blockDim.x;
  const int begin = min(dim, static_cast<int>(threadIdx.x) * seg), end = min(dim, begin + seg);
  int lo = 0, hi = 0x7fff;  // largest tau with count(key >= tau) >= k
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    int c = 0;
    for (int j = begin; j < end; ++j) c += (row[j] & 0x7fff) >= mid;
    if (threadIdx.x == 0) total_s = 0;
    __syncthreads();
    atomicAdd(&total_s, c);
    __syncthreads();
    const int total = total_s;
    __syncthreads();
    if (total >= k) lo = mid;
    else hi = mid - 1;
  }
  const int tau = lo;
  int above = 0, ties = 0;
  for (int j = begin; j < end; ++j) {
    const int key = row[j] & 0x7fff;
    above += key > tau;
    ties += key == tau;
  }
  counts[threadIdx.x] = above;
  counts[blockDim.x + threadIdx.x] = ties;
  __syncthreads();
  if (threadIdx.x == 0) {
    int total_above = 0;
    for (unsigned i = 0; i < blockDim.x; ++i) total_above += counts[i];
    int ties_left = k - total_above, pos = 0;
    for (unsigned i = 0; i < blockDim.x; ++i) {  // counts -> [output position, ties this thread takes]
      const int take_ties = max(0, min(ties_left, counts[blockDim.x + i]));
      ties_left -= take_ties;
      const int taken = counts[i] + take_ties;
      counts[i] = pos;
      counts[blockDim.x + i] = take_ties;
      pos += taken;
    }
  }
  __syncthreads();
  int pos = counts[threadIdx.x], take_ties = counts[blockDim.x + threadIdx.x];
  for (int j = begin; j < end; ++j) {
    const int key = row[j] & 0x7fff;
    const bool take = key > tau || (key == tau && take_ties-- > 0);
    if (!take) continue;
    values[t * k + pos] = row[j];
    indices[t * k + pos] = j;
    ++pos;
  }
}

__global__ void topk_decode_kernel(const std::uint16_t* values, const std::int32_t* indices, int dim, int k,
                                   std::uint16_t* out) {
  const std::int64_t t = blockIdx.x;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) out[t * dim + j] = 0;
  __syncthreads();
  for (int q = threadIdx.x; q < k; q += blockDim.x) out[t * dim + indices[t * k + q]] = values[t * k + q];
}

__global__ void quant_encode_kernel(const std::uint16_t* __restrict__ x, int dim, int qmax, std::int8_t* codes,
                                    std::uint16_t* scales) {
  __shared__ float scratch[33];
  const std::int64_t t = blockIdx.x;
  float amax = 0;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) amax = fmaxf(amax, fabsf(bits_to_float(x[t * dim + j])));
  amax = block_max(amax, scratch);
  const std::uint16_t scale_bits = float_to_bits(amax / static_cast<float>(qmax));
  const float scale = bits_to_float(scale_bits);
  if (threadIdx.x == 0) scales[t] = scale_bits;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) {
    int q = 0;
    if (scale > 0.0f) q = max(-qmax, min(qmax, __float2int_rn(bits_to_float(x[t * dim + j]) / scale)));
    codes[t * dim + j] = static_cast<std::int8_t>(q);
  }
}

__global__ void quant_decode_kernel(const std::int8_t* codes, const std::uint16_t* scales, int dim,
                                    std::uint16_t* out) {
  const std::int64_t t = blockIdx.x;
  const float scale = bits_to_float(scales[t]);
  for (int j = threadIdx.x; j < dim; j += blockDim.x)
    out[t * dim + j] = float_to_bits(static_cast<float>(codes[t * dim + j]) * scale);
}
}  // namespace

void launch_gemm_bf16(const std::uint16_t* a, std::int64_t lda, const std::uint16_t* b, std::int64_t ldb,
                      bool b_transposed, float* c_f32, std::uint16_t* c_bf16, std::int64_t ldc, std::int64_t m,
                      int n, int k, cudaStream_t stream) {
  if (m <= 0 || n <= 0) return;
  if ((c_f32 == nullptr) == (c_bf16 == nullptr)) throw std::invalid_argument("launch_gemm_bf16: exactly one output");
  const dim3 grid(static_cast<unsigned>((m + kTileM - 1) / kTileM), static_cast<unsigned>((n + kTileN - 1) / kTileN));
  if (b_transposed) gemm_bf16_kernel<true><<<grid, kThreads, 0, stream>>>(a, lda, b, ldb, c_f32, c_bf16, ldc, m, n, k);
  else gemm_bf16_kernel<false><<<grid, kThreads, 0, stream>>>(a, lda, b, ldb, c_f32, c_bf16, ldc, m, n, k);
  MOSS_CUDA_CHECK_LAUNCH();
}

void launch_route_select(const float* p, std::int64_t tokens, int rank, int subspaces, int route_cols, int block_tokens,
                         std::uint16_t* z, std::int32_t* route, cudaStream_t stream) {
  if (tokens <= 0) return;
  const std::int64_t bl = block_tokens <= 0 ? tokens : block_tokens;
  route_select_kernel<<<static_cast<unsigned>((tokens + bl - 1) / bl), 256, 0, stream>>>(p, tokens, rank, subspaces, route_cols, bl, z, route);
  MOSS_CUDA_CHECK_LAUNCH();
}

void launch_decode_routed(const std::uint16_t* z, const std::uint16_t* bases, const std::int32_t* route,
                          std::int64_t tokens, int dim, int rank, int block_tokens, std::uint16_t* out,
                          cudaStream_t stream) {
  if (tokens <= 0) return;
  const std::int64_t bl = block_tokens <= 0 ? tokens : block_tokens;
  decode_routed_kernel<<<static_cast<unsigned>(tokens), 256, static_cast<std::size_t>(rank) * sizeof(float), stream>>>(
      z, bases, route, dim, rank, bl, out);
  MOSS_CUDA_CHECK_LAUNCH();
}

void launch_topk_encode(const std::uint16_t* x, std::int64_t tokens, int dim, int k, std::uint16_t* values,
                        std::int32_t* indices, cudaStream_t stream) {
  if (tokens <= 0) return;
  topk_encode_kernel<<<static_cast<unsigned>(tokens), 256, 2 * 256 * sizeof(int), stream>>>(x, dim, k, values, indices);
  MOSS_CUDA_CHECK_LAUNCH();
}

void launch_topk_decode(const std::uint16_t* values, const std::int32_t* indices, std::int64_t tokens, int dim,
                        int k, std::uint16_t* out, cudaStream_t stream) {
  if (tokens <= 0) return;
  topk_decode_kernel<<<static_cast<unsigned>(tokens), 256, 0, stream>>>(values, indices, dim, k, out);
  MOSS_CUDA_CHECK_LAUNCH();
}

void launch_quant_encode(const std::uint16_t* x, std::int64_t tokens, int dim, int bits, std::int8_t* codes,
                         std::uint16_t* scales, cudaStream_t stream) {
  if (tokens <= 0) return;
  quant_encode_kernel<<<static_cast<unsigned>(tokens), 256, 0, stream>>>(x, dim, bits == 8 ? 127 : 7, codes, scales);
  MOSS_CUDA_CHECK_LAUNCH();
}

void launch_quant_decode(const std::int8_t* codes, const std::uint16_t* scales, std::int64_t tokens, int dim,
                         std::uint16_t* out, cudaStream_t stream) {
  if (tokens <= 0) return;
  quant_decode_kernel<<<static_cast<unsigned>(tokens), 256, 0, stream>>>(codes, scales, dim, out);
  MOSS_CUDA_CHECK_LAUNCH();
}

}  // namespace moss::kernels::cuda
