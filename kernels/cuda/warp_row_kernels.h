#pragma once
// Row kernels of the codecs without a GEMM (rows of whole 16-byte chunks), launched from
// codec_kernels.cu: topk encode and decode, quant encode and decode, and mos-k's routing selection
// and expansion; and the warp primitives they share. The warp kernels run one warp per token, 8
// tokens per 256-thread block, no block-wide barrier.
//
// Two forms of each encode:
// - streaming (topk_encode_warp_kernel, quant_encode_warp_kernel<0>): each lane walks the row's
//   16-byte chunks lane, lane + 32, ..., one chunk in flight per lane, and walks it again (L1) per pass;
// - row in registers (topk_encode_resident_kernel<kPerLane>, quant_encode_warp_kernel<kPerLane>,
//   rows of up to 256 kPerLane values): every lane loads its kPerLane chunks at once, so a warp has
//   the whole row in flight (4 KB at d = 2048, not 512 bytes), and the later passes read registers.
//   topk's first histogram (the high 7 bits of the key: mostly the exponent, so nearly every value
//   of a row falls in a handful of bins) is counted in per-lane 8-bit counters, [word][lane] in
//   shared memory: no atomics and no bank conflicts, where the streaming kernel's shared atomics on
//   a few hot bins serialise.
//
// Compiled by nvcc (included by codec_kernels.cu) and, for tests/kernels/warp_row_kernels_test.cpp,
// by the host compiler under a CPU emulation of the warp intrinsics used here
// (tests/kernels/warp_emulation.h): each kernel's own source is run there against a CPU reference.
// Everything is in an anonymous namespace: one copy per translation unit, no clash between the two.
#include <cstdint>
#include <type_traits>

#ifdef __CUDACC__
#include "bf16_device.h"
#endif

namespace moss::kernels::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr unsigned kFullMask = 0xffffffffu;
/// Largest chunks per lane of the row-in-registers kernels: rows of up to 32 x 16 x 8 = 4096 values.
constexpr int kMaxResidentChunks = 16;

/// Chunks per lane (2, 4, 8 or 16) of the row-in-registers kernels for a row of `dim` values (a
/// multiple of 8), or 0 when the row is longer than they hold.
inline int resident_chunks(int dim) {
  const int per_lane = (dim / 8 + 31) / 32;
  for (int c = 2; c <= kMaxResidentChunks; c *= 2)
    if (per_lane <= c) return c;
  return 0;
}

/// Calls f(std::integral_constant<int, c>{}) with c = per_lane, one of resident_chunks's non-zero
/// values (the template argument of the row-in-registers kernels).
template <typename F>
void with_resident_chunks(int per_lane, F&& f) {
  switch (per_lane) {
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
    default: f(std::integral_constant<int, 16>{}); break;
  }
}

__device__ __forceinline__ int lane_id() { return static_cast<int>(threadIdx.x & 31); }
__device__ __forceinline__ std::int64_t warp_token() { return static_cast<std::int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32; }

__device__ __forceinline__ int warp_exclusive_sum(int v) {
  int inclusive = v;
  for (int o = 1; o < 32; o <<= 1) {
    const int n = __shfl_up_sync(kFullMask, inclusive, o);
    if (lane_id() >= o) inclusive += n;
  }
  return inclusive - v;
}

// The 8 bf16 values of a 16-byte chunk and the 8 int8 codes of an 8-byte one, by shifts (no aliasing
// of the vector through narrower pointers); `q` is a constant once the caller's loop is unrolled.
__device__ __forceinline__ std::uint16_t half_of(const uint4& v, int q) {
  const unsigned word = q < 2 ? v.x : q < 4 ? v.y : q < 6 ? v.z : v.w;
  return static_cast<std::uint16_t>((q & 1) != 0 ? word >> 16 : word & 0xffffu);
}
__device__ __forceinline__ void set_half(uint4& v, int q, std::uint16_t h) {
  unsigned& word = q < 2 ? v.x : q < 4 ? v.y : q < 6 ? v.z : v.w;
  word = (q & 1) != 0 ? (word & 0xffffu) | (static_cast<unsigned>(h) << 16) : (word & 0xffff0000u) | h;
}
__device__ __forceinline__ int code_of(const uint2& v, int q) {
  const unsigned word = q < 4 ? v.x : v.y;
  return static_cast<int>(static_cast<std::int8_t>((word >> (8 * (q & 3))) & 0xffu));
}
__device__ __forceinline__ void set_code(uint2& v, int q, int code) {
  unsigned& word = q < 4 ? v.x : v.y;
  const int shift = 8 * (q & 3);
  word = (word & ~(0xffu << shift)) | ((static_cast<unsigned>(code) & 0xffu) << shift);
}

// Of the 32 * kPerLane bins whose counts lane i holds in own[] (bins [i kPerLane, (i + 1) kPerLane)),
// the largest bin b with base + sum_{h >= b} count[h] >= k, and base + sum_{h > b} count[h]; every
// lane gets both. The caller guarantees base < k <= base + sum of the counts, so exactly one bin
// qualifies.
template <int kPerLane>
__device__ void select_bin_of(const int (&own)[kPerLane], int base, int k, int& bin, int& above) {
  const int lane = lane_id();
  int lane_sum = 0;
  for (int i = 0; i < kPerLane; ++i) lane_sum += own[i];
  int suffix = lane_sum;  // this lane's bins and all higher lanes'
  for (int o = 1; o < 32; o <<= 1) {
    const int n = __shfl_down_sync(kFullMask, suffix, o);
    if (lane + o < 32) suffix += n;
  }
  int count = base + suffix - lane_sum;  // keys in bins above this lane's
  int found = -1, found_above = 0;
  for (int i = kPerLane - 1; i >= 0; --i) {
    const int above_bin = count;
    count += own[i];
    if (found < 0 && count >= k && above_bin < k) found = lane * kPerLane + i, found_above = above_bin;
  }
  const unsigned who = __ballot_sync(kFullMask, found >= 0);
  const int src = who != 0 ? __ffs(static_cast<int>(who)) - 1 : 0;
  bin = __shfl_sync(kFullMask, found, src);
  above = __shfl_sync(kFullMask, found_above, src);
}

/// select_bin_of over a shared histogram of 32 * kPerLane bins.
template <int kPerLane>
__device__ void select_bin(const int* hist, int base, int k, int& bin, int& above) {
  int own[kPerLane];
  for (int i = 0; i < kPerLane; ++i) own[i] = hist[lane_id() * kPerLane + i];
  select_bin_of<kPerLane>(own, base, k, bin, above);
}

// Chunk c of a row as one 128-bit load: read as row[c], the compiler split some of these loads into
// four of 32 bits (profile-rows.log's code), four instructions and four L1 requests for one.
__device__ __forceinline__ uint4 load_chunk(const uint4* row, int c) {
#ifdef __CUDACC__
  return __ldg(row + c);
#else
  return row[c];
#endif
}

// This lane's chunks of a row of `chunks` 16-byte chunks, all loads issued at once: v[i] = chunk
// lane + 32 i, zeros past the row.
template <int kPerLane>
__device__ __forceinline__ void load_row(const uint4* row, int chunks, uint4 (&v)[kPerLane]) {
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int c = lane_id() + 32 * i;
    v[i] = c < chunks ? load_chunk(row, c) : make_uint4(0, 0, 0, 0);
  }
}

// The second histogram of the radix select: the low 8 bits of the keys of chunk v whose high 7 bits
// are `high`, added to hist (256 bins, shared by the warp).
__device__ __forceinline__ void count_low_bits(const uint4& v, int high, int* hist) {
#pragma unroll
  for (int q = 0; q < 8; ++q) {
    const int key = half_of(v, q) & 0x7fff;
    if ((key >> 8) == high) atomicAdd(&hist[key & 0xff], 1);
  }
}

// max |x| of a chunk's 8 values.
__device__ __forceinline__ float chunk_amax(const uint4& v, float amax) {
#pragma unroll
  for (int q = 0; q < 8; ++q) amax = fmaxf(amax, fabsf(bits_to_float(half_of(v, q))));
  return amax;
}

// A row's quant scale and, formed once per row, its reciprocal: 1 / scale where that is finite and
// the scale positive, else 0 (a zero scale, and the 64 smallest subnormals, whose reciprocal
// overflows: those divide).
struct QuantScale {
  float scale;
  float inv;
};

// The token's scale from every lane's max |x| (a warp reduction): bf16(max |x| / qmax), written by
// lane 0 to *scale_out; returns it as a float with its reciprocal.
__device__ __forceinline__ QuantScale warp_quant_scale(float amax, int qmax, std::uint16_t* scale_out) {
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(kFullMask, amax, o));
  const std::uint16_t scale_bits = float_to_bits(amax / static_cast<float>(qmax));
  if (lane_id() == 0) *scale_out = scale_bits;
  const float scale = bits_to_float(scale_bits);
  const float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
  return {scale, inv <= 3.4028234663852886e38f ? inv : 0.0f};
}

// x / scale from the row's reciprocal inv = 1 / scale and one correction by the exact residual (an
// FMA), in place of a division per value (about 9 instructions, the largest share of the quant
// encode's, which instruction issue bounds: profile-rows.log). Not always the correctly rounded
// quotient, but always the same code: over every bf16 x and bf16 scale a row can pair (|x| at most
// 128.5 scale; 2.2e9 pairs, 8 and 4 bits) clamp(rint()) of it equals that of x / scale; the
// quotients differ in 0.2 % of the pairs, each time on the same side of every rounding boundary.
__device__ __forceinline__ float quotient_by_reciprocal(float x, float scale, float inv) {
  const float q = __fmul_rn(x, inv);
  return fmaf(fmaf(-q, scale, x), inv, q);
}

// The 8 codes of chunk v: clamp(rint(x / scale)), 0 for a zero scale; by the reciprocal where the
// row has one, else by division. The branches are the same on every lane.
__device__ __forceinline__ uint2 quant_codes(const uint4& v, QuantScale s, int qmax) {
  uint2 packed = make_uint2(0, 0);
  if (!(s.scale > 0.0f)) return packed;
  if (s.inv > 0.0f) {
#pragma unroll
    for (int q = 0; q < 8; ++q)
      set_code(packed, q, max(-qmax, min(qmax, __float2int_rn(quotient_by_reciprocal(bits_to_float(half_of(v, q)), s.scale, s.inv)))));
  } else {
#pragma unroll
    for (int q = 0; q < 8; ++q) set_code(packed, q, max(-qmax, min(qmax, __float2int_rn(bits_to_float(half_of(v, q)) / s.scale))));
  }
  return packed;
}

// The kept entries of one step of 32 chunks (chunk c = c0 + lane of this lane, `v` its values,
// `valid` false past the row), written in index order: every key above tau, then the ties (lowest
// index first) while fewer than ties_needed were taken. kept_before and ties_before count the
// earlier steps' and are advanced (the same on every lane). Instruction count is what bounds the
// encode (profile-rows.log): ties at tau are a handful per row, so a step where no lane has one
// skips their prefix sum, and the stores walk the set bits of `take` (about one value in ten), not
// all eight positions.
__device__ __forceinline__ void compact_step(const uint4& v, int c, bool valid, int tau, int ties_needed, std::uint16_t* out_values,
                                             std::int32_t* out_indices, int& kept_before, int& ties_before) {
  unsigned take = 0, ties = 0;
#pragma unroll
  for (int q = 0; q < 8; ++q) {
    const int key = half_of(v, q) & 0x7fff;
    if (valid && key > tau) take |= 1u << q;
    else if (valid && key == tau) ties |= 1u << q;
  }
  if (__ballot_sync(kFullMask, ties != 0) != 0) {  // the same on every lane
    const int n_ties = __popc(ties), ties_lane = warp_exclusive_sum(n_ties);
    // The row's first ties_needed ties in index order: this lane's lowest `allowed` ones.
    for (int allowed = min(max(ties_needed - (ties_before + ties_lane), 0), n_ties); allowed > 0; --allowed) {
      take |= ties & (0u - ties);
      ties &= ties - 1;
    }
    ties_before += __shfl_sync(kFullMask, ties_lane + n_ties, 31);
  }
  const int n_take = __popc(take), kept_lane = warp_exclusive_sum(n_take);
  const int pos = kept_before + kept_lane;
  int i = 0;
  for (unsigned left = take; left != 0; left &= left - 1, ++i) {
    const int q = __ffs(static_cast<int>(left)) - 1;
    out_values[pos + i] = half_of(v, q);
    out_indices[pos + i] = c * 8 + q;
  }
  kept_before += __shfl_sync(kFullMask, kept_lane + n_take, 31);
}

// topk encode, one warp per token, streaming: the k-th largest key tau (keys: |x| as the low 15 bits
// of the bf16 pattern, monotone in |x| for finite values) by a two-pass radix select (histograms of
// the high 7 bits, then of the low 8 bits of the keys in tau's high bin) in shared memory, then the
// kept entries compacted in index order (compact_step). Requires 1 <= k <= dim. Inputs are finite
// (the loaders reject NaN and Inf); a NaN's 15-bit key ranks it above every finite value, as the
// block kernel's does.
__global__ void __launch_bounds__(kWarpsPerBlock * 32) topk_encode_warp_kernel(const std::uint16_t* __restrict__ x, std::int64_t tokens,
                                                                              int dim, int k, std::uint16_t* values, std::int32_t* indices) {
  __shared__ int hist_all[kWarpsPerBlock][256];
  const std::int64_t t = warp_token();
  if (t >= tokens) return;  // the whole warp: no block-wide barrier follows
  const int lane = lane_id();
  int* hist = hist_all[threadIdx.x / 32];
  const uint4* row = reinterpret_cast<const uint4*>(x + t * dim);
  const int chunks = dim / 8;
  for (int i = lane; i < 128; i += 32) hist[i] = 0;
  __syncwarp();
  for (int c = lane; c < chunks; c += 32) {
    const uint4 v = load_chunk(row, c);
#pragma unroll
    for (int q = 0; q < 8; ++q) atomicAdd(&hist[(half_of(v, q) & 0x7fff) >> 8], 1);
  }
  __syncwarp();
  int high = 0, above_high = 0;
  select_bin<4>(hist, 0, k, high, above_high);
  __syncwarp();  // every lane has read the histogram
  for (int i = lane; i < 256; i += 32) hist[i] = 0;
  __syncwarp();
  for (int c = lane; c < chunks; c += 32) count_low_bits(load_chunk(row, c), high, hist);
  __syncwarp();
  int low = 0, above = 0;
  select_bin<8>(hist, above_high, k, low, above);
  const int tau = (high << 8) | low;
  int kept_before = 0, ties_before = 0;
  for (int c0 = 0; c0 < chunks; c0 += 32) {
    const int c = c0 + lane;
    const uint4 v = c < chunks ? load_chunk(row, c) : make_uint4(0, 0, 0, 0);
    compact_step(v, c, c < chunks, tau, k - above, values + t * k, indices + t * k, kept_before, ties_before);
  }
}

// topk encode, one warp per token, the row in registers (chunk c = lane + 32 i in v[i], dim <= 256
// kPerLane): the same select and compaction as topk_encode_warp_kernel, the same output. The first
// histogram is counted per lane: 128 bins as 8-bit counters, 4 per word, word w of lane l at
// counts[32 w + l] (a lane counts at most 8 kPerLane <= 128 keys per bin); lane j then owns bins
// [4 j, 4 j + 4), word j, summed over the 32 lanes' columns starting at its own, so that the 32 lanes
// read 32 different banks.
template <int kPerLane>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) topk_encode_resident_kernel(const std::uint16_t* __restrict__ x, std::int64_t tokens,
                                                                                  int dim, int k, std::uint16_t* values, std::int32_t* indices) {
  static_assert(kPerLane >= 1 && 8 * kPerLane <= 255, "8-bit counters");
  __shared__ unsigned counts_all[kWarpsPerBlock][32 * 32];
  const std::int64_t t = warp_token();
  if (t >= tokens) return;  // the whole warp: no block-wide barrier follows
  const int lane = lane_id();
  unsigned* counts = counts_all[threadIdx.x / 32];
  const uint4* row = reinterpret_cast<const uint4*>(x + t * dim);
  const int chunks = dim / 8;
  uint4 v[kPerLane];
  load_row<kPerLane>(row, chunks, v);
#pragma unroll
  for (int w = 0; w < 32; ++w) counts[32 * w + lane] = 0;  // this lane's column only: no sync needed
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    if (lane + 32 * i >= chunks) continue;
#pragma unroll
    for (int q = 0; q < 8; ++q) {
      const int bin = (half_of(v[i], q) & 0x7fff) >> 8;
      counts[32 * (bin >> 2) + lane] += 1u << (8 * (bin & 3));
    }
  }
  __syncwarp();
  unsigned even = 0, odd = 0;  // bytes 0 and 2, 1 and 3 of word `lane` summed into 16-bit halves
  for (int i = 0; i < 32; ++i) {
    const unsigned w = counts[32 * lane + ((lane + i) & 31)];
    even += w & 0x00ff00ffu;
    odd += (w >> 8) & 0x00ff00ffu;
  }
  int own[4] = {static_cast<int>(even & 0xffffu), static_cast<int>(odd & 0xffffu), static_cast<int>(even >> 16), static_cast<int>(odd >> 16)};
  int high = 0, above_high = 0;
  select_bin_of<4>(own, 0, k, high, above_high);
  __syncwarp();  // every lane has read the counters before they become the second histogram
  int* hist = reinterpret_cast<int*>(counts);
  for (int i = lane; i < 256; i += 32) hist[i] = 0;
  __syncwarp();
#pragma unroll
  for (int i = 0; i < kPerLane; ++i)
    if (lane + 32 * i < chunks) count_low_bits(v[i], high, hist);
  __syncwarp();
  int low = 0, above = 0;
  select_bin<8>(hist, above_high, k, low, above);
  const int tau = (high << 8) | low;
  int kept_before = 0, ties_before = 0;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    if (32 * i >= chunks) break;  // the same on every lane
    const int c = lane + 32 * i;
    compact_step(v[i], c, c < chunks, tau, k - above, values + t * k, indices + t * k, kept_before, ties_before);
  }
}

// topk decode, one warp per token, scattering: the row zeroed with 16-byte stores, then the kept
// values scattered (2-byte stores; any order of indices in [0, dim)).
__global__ void __launch_bounds__(kWarpsPerBlock * 32) topk_decode_warp_kernel(const std::uint16_t* __restrict__ values,
                                                                              const std::int32_t* __restrict__ indices, std::int64_t tokens,
                                                                              int dim, int k, std::uint16_t* out) {
  const std::int64_t t = warp_token();
  if (t >= tokens) return;
  const int lane = lane_id();
  uint4* row = reinterpret_cast<uint4*>(out + t * dim);
  for (int c = lane; c < dim / 8; c += 32) row[c] = make_uint4(0, 0, 0, 0);
  __syncwarp();  // orders the zeros before the scatter within the warp
  for (int q = lane; q < k; q += 32) out[t * dim + indices[t * k + q]] = values[t * k + q];
}

// topk decode, one warp per token, merging: the kept entries (indices ascending, as the encoders
// write them) are placed step by step into a 512-byte stage of the warp's next 32 chunks, which the
// lanes then store once with 16-byte stores: every output byte written once, the values read once
// and coalesced (32 entries per load; the entries of a step are a prefix of those not yet placed,
// counted by a ballot; the window of indices that ends a step is read again by the next, from
// cache). Indices out of order give wrong values, never an access outside the row or the stage.
__global__ void __launch_bounds__(kWarpsPerBlock * 32) topk_decode_merge_kernel(const std::uint16_t* __restrict__ values,
                                                                               const std::int32_t* __restrict__ indices, std::int64_t tokens,
                                                                               int dim, int k, std::uint16_t* out) {
  __shared__ uint4 stage_all[kWarpsPerBlock][32];
  const std::int64_t t = warp_token();
  if (t >= tokens) return;
  const int lane = lane_id();
  uint4* stage = stage_all[threadIdx.x / 32];
  std::uint16_t* stage_values = reinterpret_cast<std::uint16_t*>(stage);
  const std::int32_t* row_indices = indices + t * k;
  const std::uint16_t* row_values = values + t * k;
  uint4* row = reinterpret_cast<uint4*>(out + t * dim);
  const int chunks = dim / 8;
  int placed = 0;  // entries placed in earlier steps (the same on every lane)
  for (int c0 = 0; c0 < chunks; c0 += 32) {
    const int begin = 8 * c0, end = 8 * (c0 + 32);
    stage[lane] = make_uint4(0, 0, 0, 0);
    __syncwarp();
    for (;;) {
      const int q = placed + lane;
      const int index = q < k ? row_indices[q] : end;
      const bool here = index < end;
      if (here && index >= begin) stage_values[index - begin] = row_values[q];
      const int n = __popc(__ballot_sync(kFullMask, here));
      placed += n;
      if (n < 32) break;
    }
    __syncwarp();
    if (c0 + lane < chunks) row[c0 + lane] = stage[lane];
    __syncwarp();  // every lane has read the stage before the next step clears it
  }
}

// quant encode, one warp per token: max |x| by a warp reduction, then the codes, 8 per 8-byte store.
// kPerLane = 0 streams the row (each lane reads its chunks twice, the second time from cache); above
// 0 the row is held in registers (as topk_encode_resident_kernel, dim <= 256 kPerLane). The same
// codes and scale either way.
template <int kPerLane>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) quant_encode_warp_kernel(const std::uint16_t* __restrict__ x, std::int64_t tokens,
                                                                               int dim, int qmax, std::int8_t* codes, std::uint16_t* scales) {
  const std::int64_t t = warp_token();
  if (t >= tokens) return;
  const int lane = lane_id();
  const uint4* row = reinterpret_cast<const uint4*>(x + t * dim);
  const int chunks = dim / 8;
  uint2* out = reinterpret_cast<uint2*>(codes + t * dim);
  float amax = 0;
  if constexpr (kPerLane == 0) {
    for (int c = lane; c < chunks; c += 32) amax = chunk_amax(load_chunk(row, c), amax);
    const QuantScale scale = warp_quant_scale(amax, qmax, scales + t);
    for (int c = lane; c < chunks; c += 32) out[c] = quant_codes(load_chunk(row, c), scale, qmax);
  } else {
    uint4 v[kPerLane];
    load_row<kPerLane>(row, chunks, v);  // zeros past the row leave max |x| as it is
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) amax = chunk_amax(v[i], amax);
    const QuantScale scale = warp_quant_scale(amax, qmax, scales + t);
#pragma unroll
    for (int i = 0; i < kPerLane; ++i)
      if (lane + 32 * i < chunks) out[lane + 32 * i] = quant_codes(v[i], scale, qmax);
  }
}

// ---- other row kernels of codec_kernels.cu, here so that the CPU suite runs them too ----

// mos-k routing per token (routing blocks of one token, the default), one warp per token: the energy
// of each basis's first route_cols coefficients by a warp reduction (first basis on ties), then the
// chosen basis's coefficients as bf16. Reads K rank floats per token where route_select_kernel ran
// a 256-thread block with three barriers per basis.
__global__ void __launch_bounds__(kWarpsPerBlock * 32) route_select_warp_kernel(const float* __restrict__ p, std::int64_t tokens, int rank,
                                                                               int subspaces, int route_cols, std::uint16_t* z,
                                                                               std::int32_t* route) {
  const std::int64_t t = warp_token();
  if (t >= tokens) return;
  const int lane = lane_id();
  const float* pt = p + t * subspaces * rank;
  float best = -1.0f;
  int best_s = 0;
  for (int s = 0; s < subspaces; ++s) {
    float e = 0;
    for (int i = lane; i < route_cols; i += 32) {
      const float v = pt[s * rank + i];
      e += v * v;
    }
    for (int o = 16; o > 0; o >>= 1) e += __shfl_xor_sync(kFullMask, e, o);  // the same sum on every lane
    if (e > best) best = e, best_s = s;
  }
  if (lane == 0) route[t] = best_s;
  for (int i = lane; i < rank; i += 32) z[t * rank + i] = float_to_bits(pt[best_s * rank + i]);
}

// quant decode (rows of whole 8-value chunks): blocks stride over tokens, threads over a row's
// chunks; no barrier, no per-token block start-up, no index division.
__global__ void quant_decode_rows_kernel(const std::int8_t* __restrict__ codes, const std::uint16_t* __restrict__ scales,
                                         std::int64_t tokens, int dim, std::uint16_t* out) {
  const int chunks = dim / 8;
  for (std::int64_t t = blockIdx.x; t < tokens; t += gridDim.x) {
    const float scale = bits_to_float(scales[t]);
    const uint2* in = reinterpret_cast<const uint2*>(codes + t * dim);
    uint4* row = reinterpret_cast<uint4*>(out + t * dim);
    for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
      const uint2 packed = in[c];
      uint4 v = make_uint4(0, 0, 0, 0);
#pragma unroll
      for (int q = 0; q < 8; ++q) set_half(v, q, float_to_bits(static_cast<float>(code_of(packed, q)) * scale));
      row[c] = v;
    }
  }
}

// z_wide (tokens x subspaces * rank) = z_t in the columns of its route's block, zeros elsewhere, in
// chunks of V bf16 values (V = 8: 16-byte stores, rank a multiple of 8 and the rows 16-byte aligned).
template <int V>
__global__ void expand_routed_kernel(const std::uint16_t* __restrict__ z, const std::int32_t* __restrict__ route,
                                     std::int64_t tokens, int rank, int subspaces, std::int64_t block_tokens,
                                     std::uint16_t* __restrict__ z_wide) {
  using Chunk = std::conditional_t<V == 8, uint4, std::uint16_t>;
  const int row_chunks = subspaces * rank / V, rank_chunks = rank / V;
  const std::int64_t total = tokens * row_chunks;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t t = i / row_chunks;
    const int c = static_cast<int>(i - t * row_chunks), block = c / rank_chunks;
    Chunk v{};
    if (block == route[t / block_tokens]) v = reinterpret_cast<const Chunk*>(z + t * rank)[c - block * rank_chunks];
    reinterpret_cast<Chunk*>(z_wide + t * static_cast<std::int64_t>(subspaces) * rank)[c] = v;
  }
}

}  // namespace
}  // namespace moss::kernels::cuda
