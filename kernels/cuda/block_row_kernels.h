#pragma once
// Row kernels of the codecs with a whole 256-thread block per row, launched from codec_kernels.cu for
// the shapes the warp kernels (warp_row_kernels.h) do not take (rows that are not whole 16-byte
// chunks, routing blocks of several tokens) and as timed alternatives: topk encode and decode, quant
// encode and decode, mos-k's route selection per routing block and its decode per token.
//
// Each block strides over the rows (t = blockIdx.x, blockIdx.x + gridDim.x, ...): the launchers give
// one block per row up to the grid's limit of 2^31 - 1 blocks, and the loop takes the rest. Shared
// memory reused by the next row is fenced by a __syncthreads at the end of each row.
//
// Compiled by nvcc (included by codec_kernels.cu) and, for tests/kernels/warp_row_kernels_test.cpp,
// by the host compiler under the CPU emulation of the CUDA intrinsics (tests/kernels/warp_emulation.h,
// and its race check under ThreadSanitizer, scripts/racecheck.sh). Anonymous namespace: one copy per
// translation unit.
#include <cstdint>

#ifdef __CUDACC__
#include "bf16_device.h"
#endif
#include "device_shared.h"


namespace moss::kernels::cuda {
namespace {

/// Threads per block of these kernels (topk_encode_kernel's shared counts are sized for it).
constexpr int kRowBlockThreads = 256;

/// The sum of v over the block, on every thread. `scratch` holds 33 floats; it is free again on return.
__device__ float block_sum(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  float total = 0;
  if (threadIdx.x == 0) {
    for (unsigned w = 0; w < (blockDim.x + 31) / 32; ++w) total += scratch[w];
    scratch[32] = total;
  }
  __syncthreads();
  total = scratch[32];
  __syncthreads();
  return total;
}

/// The largest v over the block, on every thread; as block_sum.
__device__ float block_max(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    float m = 0;
    for (unsigned w = 0; w < (blockDim.x + 31) / 32; ++w) m = fmaxf(m, scratch[w]);
    scratch[32] = m;
  }
  __syncthreads();
  const float m = scratch[32];
  __syncthreads();
  return m;
}

// mos-k routing per block of block_tokens tokens: the basis whose first route_cols coefficients hold
// the most energy over the block's tokens (first basis on ties), then those tokens' coefficients in
// it as bf16. p is tokens x subspaces * rank fp32.
__global__ void route_select_kernel(const float* __restrict__ p, std::int64_t tokens, int rank, int subspaces,
                                    int route_cols, std::int64_t block_tokens, std::uint16_t* z, std::int32_t* route) {
  __shared__ float scratch[33];
  __shared__ int best_s;
  const std::int64_t width = static_cast<std::int64_t>(subspaces) * rank;
  const std::int64_t routes = (tokens + block_tokens - 1) / block_tokens;
  for (std::int64_t b = blockIdx.x; b < routes; b += gridDim.x) {
    const std::int64_t t0 = b * block_tokens;
    const std::int64_t n = tokens - t0 < block_tokens ? tokens - t0 : block_tokens;
    float best = -1.0f;
    int best_j = 0;
    for (int j = 0; j < subspaces; ++j) {
      float e = 0;
      for (std::int64_t i = threadIdx.x; i < n * route_cols; i += blockDim.x) {  // the first route_cols columns
        const float v = p[(t0 + i / route_cols) * width + static_cast<std::int64_t>(j) * rank + i % route_cols];
        e += v * v;
      }
      e = block_sum(e, scratch);
      if (e > best) best = e, best_j = j;  // identical on every thread: block_sum broadcasts
    }
    if (threadIdx.x == 0) best_s = best_j, route[b] = best_j;
    __syncthreads();
    const int k = best_s;
    for (std::int64_t i = threadIdx.x; i < n * rank; i += blockDim.x)
      z[(t0 + i / rank) * rank + i % rank] = float_to_bits(p[(t0 + i / rank) * width + static_cast<std::int64_t>(k) * rank + i % rank]);
    __syncthreads();  // every thread has read best_s before the next routing block writes it (block_sum's barriers order that too)
  }
}

// mos-k decode per token: out_t = z_t U_route^T with the token's route's basis (dim x rank bf16),
// z_t staged in shared memory (rank floats: the launch's dynamic shared memory).
__global__ void decode_routed_kernel(const std::uint16_t* __restrict__ z, const std::uint16_t* __restrict__ bases,
                                     const std::int32_t* __restrict__ route, std::int64_t tokens, int dim, int rank,
                                     std::int64_t block_tokens, std::uint16_t* out) {
  MOSS_DYNAMIC_SHARED(float, zs);
  for (std::int64_t t = blockIdx.x; t < tokens; t += gridDim.x) {
    for (int q = threadIdx.x; q < rank; q += blockDim.x) zs[q] = bits_to_float(z[t * rank + q]);
    __syncthreads();
    const std::uint16_t* u = bases + static_cast<std::int64_t>(route[t / block_tokens]) * dim * rank;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) {
      float acc = 0;
      for (int q = 0; q < rank; ++q) acc += zs[q] * bits_to_float(u[static_cast<std::int64_t>(j) * rank + q]);
      out[t * dim + j] = float_to_bits(acc);
    }
    __syncthreads();  // every thread has read zs before the next token's are staged
  }
}

// topk encode, one block of kRowBlockThreads per row. Keys are |x| as the low 15 bits of the bf16
// pattern (monotone in |x| for finite values). The threshold is found by bisection on the key, then
// the kept entries are compacted in index order with a per-thread contiguous segment and a serial scan
// over the threads. Requires 1 <= k <= dim and blockDim.x == kRowBlockThreads.
__global__ void __launch_bounds__(kRowBlockThreads) topk_encode_kernel(const std::uint16_t* __restrict__ x, std::int64_t tokens, int dim,
                                                                       int k, std::uint16_t* values, std::int32_t* indices) {
  __shared__ int counts[2 * kRowBlockThreads];
  __shared__ int total_s;
  const int seg = (dim + kRowBlockThreads - 1) / kRowBlockThreads;
  const int begin = min(dim, static_cast<int>(threadIdx.x) * seg), end = min(dim, begin + seg);
  for (std::int64_t t = blockIdx.x; t < tokens; t += gridDim.x) {
    const std::uint16_t* row = x + t * dim;
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
    counts[kRowBlockThreads + threadIdx.x] = ties;
    __syncthreads();
    if (threadIdx.x == 0) {
      int total_above = 0;
      for (int i = 0; i < kRowBlockThreads; ++i) total_above += counts[i];
      int ties_left = k - total_above, pos = 0;
      for (int i = 0; i < kRowBlockThreads; ++i) {  // counts -> [output position, ties this thread takes]
        const int take_ties = max(0, min(ties_left, counts[kRowBlockThreads + i]));
        ties_left -= take_ties;
        const int taken = counts[i] + take_ties;
        counts[i] = pos;
        counts[kRowBlockThreads + i] = take_ties;
        pos += taken;
      }
    }
    __syncthreads();
    int pos = counts[threadIdx.x], take_ties = counts[kRowBlockThreads + threadIdx.x];
    for (int j = begin; j < end; ++j) {
      const int key = row[j] & 0x7fff;
      const bool take = key > tau || (key == tau && take_ties-- > 0);
      if (!take) continue;
      values[t * k + pos] = row[j];
      indices[t * k + pos] = j;
      ++pos;
    }
    // The next row writes counts only after the bisection's barriers, which every thread reaches
    // after its read of counts above; total_s was last read before a barrier.
  }
}

// topk decode, one block per row: the row zeroed, then the kept values scattered.
__global__ void topk_decode_kernel(const std::uint16_t* values, const std::int32_t* indices, std::int64_t tokens, int dim, int k,
                                   std::uint16_t* out) {
  for (std::int64_t t = blockIdx.x; t < tokens; t += gridDim.x) {
    for (int j = threadIdx.x; j < dim; j += blockDim.x) out[t * dim + j] = 0;
    __syncthreads();  // the zeros before another thread's value lands on them
    for (int q = threadIdx.x; q < k; q += blockDim.x) out[t * dim + indices[t * k + q]] = values[t * k + q];
  }
}

// quant encode, one block per row: scale = bf16(max |x| / qmax), codes = clamp(rint(x / scale)).
__global__ void quant_encode_kernel(const std::uint16_t* __restrict__ x, std::int64_t tokens, int dim, int qmax, std::int8_t* codes,
                                    std::uint16_t* scales) {
  __shared__ float scratch[33];
  for (std::int64_t t = blockIdx.x; t < tokens; t += gridDim.x) {
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
}

// quant decode, one block per row (any dim): bf16(code x scale).
__global__ void quant_decode_kernel(const std::int8_t* codes, const std::uint16_t* scales, std::int64_t tokens, int dim,
                                    std::uint16_t* out) {
  for (std::int64_t t = blockIdx.x; t < tokens; t += gridDim.x) {
    const float scale = bits_to_float(scales[t]);
    for (int j = threadIdx.x; j < dim; j += blockDim.x)
      out[t * dim + j] = float_to_bits(static_cast<float>(codes[t * dim + j]) * scale);
  }
}

}  // namespace
}  // namespace moss::kernels::cuda
