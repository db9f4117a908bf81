// The launchers of the codecs' CUDA kernels, and the bit packing kernel. The kernels themselves are
// in headers that the CPU test suite also compiles, under an emulation of the CUDA intrinsics:
// gemm_kernels.h (the GEMMs), warp_row_kernels.h and block_row_kernels.h (topk, quant, mos-k routing
// and decode). No Eigen here.
// Roofline: at rank r the projection does 2r flops per 2-byte input value (r flop/byte). An H100/H200
// streams ~3-4.5 TB/s and does ~800 bf16 TFLOP/s on tensor cores, so encode and decode are
// memory-bound up to r ~ 180 and tensor-core-bound above. The tiled kernels (tiled_encode_kernel for
// ranks <= 64, tiled_gemm_kernel for the rest and for decode) read X once, with 16-byte cp.async loads
// in a multi-stage pipeline so enough bytes are in flight to approach the copy bandwidth; the simple
// kernel (gemm_bf16_kernel) is the fallback for shapes whose rows are not whole 16-byte chunks.
#include <cuda_bf16.h>
#include <mma.h>

#include <algorithm>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bf16_device.h"
#include "codec_launch.h"
#include "cuda_check.h"
#include "pack_word.h"
#include "block_row_kernels.h"
#include "gemm_kernels.h"
#include "warp_row_kernels.h"

namespace moss::kernels::cuda {

namespace {
// The wire's bit stream (pack_word.h), one 32-bit word per thread, grid-stride.
template <typename T>
__global__ void pack_bits_kernel(const T* __restrict__ values, std::int64_t count, int bits, std::uint32_t* words) {
  const std::int64_t n = packed_words(count, bits);
  for (std::int64_t w = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; w < n; w += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    words[w] = packed_word(values, count, bits, w);
}

}  // namespace

namespace {
int current_device() {
  int device = 0;
  MOSS_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

/// What the launchers need to know of a device, read once per device.
struct DeviceFacts {
  int multiprocessors = 132;
  bool memory_pools = false;  ///< stream-ordered allocation (the split-k partials)
};

const DeviceFacts& device_facts() {
  static std::mutex mutex;
  static std::map<int, DeviceFacts> facts;
  const int device = current_device();
  const std::lock_guard<std::mutex> lock(mutex);
  const auto it = facts.find(device);
  if (it != facts.end()) return it->second;
  DeviceFacts f;
  int v = 0;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, device) == cudaSuccess && v > 0) f.multiprocessors = v;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrMemoryPoolsSupported, device) == cudaSuccess && v != 0) {
    // The default pool hands unused memory back at every synchronisation (release threshold 0), so
    // each split-k launch after one would map its partials afresh; keep them for reuse instead.
    cudaMemPool_t pool = nullptr;
    std::uint64_t keep = UINT64_MAX;
    f.memory_pools = cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess &&
                     cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) == cudaSuccess;
  }
  // A failed probe above leaves a (non-sticky) last error that the next launch check would report
  // as its own: the facts say what failed, the error is cleared.
  (void)cudaGetLastError();
  return facts.emplace(device, f).first->second;
}

int multiprocessors() { return device_facts().multiprocessors; }

/// cudaFuncSetAttribute of the dynamic shared memory a tiled kernel needs, once per kernel and device
/// (the attribute is per device).
void allow_shared_memory(const void* kernel, std::size_t bytes) {
  static std::mutex mutex;
  static std::set<std::pair<const void*, int>> done;
  const std::pair<const void*, int> key{kernel, current_device()};
  const std::lock_guard<std::mutex> lock(mutex);
  if (done.count(key) != 0) return;
  MOSS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  done.insert(key);
}

template <int kNT, int kMF>
void launch_encode_mf(const std::uint16_t* a, std::int64_t lda, const std::uint16_t* b, std::int64_t ldb, float* c_f32,
                      std::uint16_t* c_bf16, std::int64_t ldc, std::int64_t m, int n, int k, int splits, int k_chunk,
                      cudaStream_t stream) {
  using L = EncLayout<kNT, kMF>;
  allow_shared_memory(reinterpret_cast<const void*>(&tiled_encode_kernel<kNT, kMF>), L::kBytes);
  const dim3 grid(static_cast<unsigned>((m + L::kEncM - 1) / L::kEncM), static_cast<unsigned>(splits));
  tiled_encode_kernel<kNT, kMF><<<grid, kEncThreads, L::kBytes, stream>>>(a, lda, b, ldb, c_f32, c_bf16, ldc, m, n, k, k_chunk);
  MOSS_CUDA_CHECK_LAUNCH();
}

// k split `splits` ways (1: none) in chunks of whole 128-wide stages; returns the chunk.
int split_chunk(int k, int splits) { return ((k + splits - 1) / splits + kEncK - 1) / kEncK * kEncK; }

template <int kNT>
void launch_encode(const std::uint16_t* a, std::int64_t lda, const std::uint16_t* b, std::int64_t ldb, float* c_f32,
                   std::uint16_t* c_bf16, std::int64_t ldc, std::int64_t m, int n, int k, int splits, cudaStream_t stream) {
  // A split needs at least one whole stage and stream-ordered memory; otherwise k is not split.
  if (splits > 1 && (k / kEncK < splits || !device_facts().memory_pools)) splits = 1;  // k / kEncK: no overflow
  const int chunk = splits > 1 ? split_chunk(k, splits) : k;
  if (splits > 1) splits = (k + chunk - 1) / chunk;
  // The partials, in stream-ordered memory (no device-wide synchronisation), freed on every exit.
  struct Parts {
    float* p = nullptr;
    cudaStream_t stream;
    ~Parts() {
      if (p != nullptr && cudaFreeAsync(p, stream) != cudaSuccess) (void)cudaGetLastError();  // not a later launch's error
    }
  } partials{nullptr, stream};
  if (splits > 1)
    MOSS_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&partials.p), static_cast<std::size_t>(splits) * m * n * sizeof(float), stream));
  float* const parts = partials.p;
  float* out_f32 = splits > 1 ? parts : c_f32;
  std::uint16_t* out_bf16 = splits > 1 ? nullptr : c_bf16;
  const std::int64_t out_ld = splits > 1 ? n : ldc;
  // 64-row tiles unless that leaves fewer than four blocks per multiprocessor.
  if ((m + 63) / 64 * splits >= 4 * multiprocessors()) launch_encode_mf<kNT, 2>(a, lda, b, ldb, out_f32, out_bf16, out_ld, m, n, k, splits, chunk, stream);
  else launch_encode_mf<kNT, 1>(a, lda, b, ldb, out_f32, out_bf16, out_ld, m, n, k, splits, chunk, stream);
  if (splits > 1) {
    const std::int64_t total = m * n;
    const std::int64_t blocks = std::min<std::int64_t>((total + 255) / 256, 8 * static_cast<std::int64_t>(multiprocessors()));
    add_splits_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(parts, splits, m, n, c_f32, c_bf16, ldc);
    MOSS_CUDA_CHECK_LAUNCH();
  }
}

template <bool kTransB, int kStages, bool kAliasC, int kFM>
void launch_general(const std::uint16_t* a, std::int64_t lda, const std::uint16_t* b, std::int64_t ldb, std::int64_t basis_stride,
                    const std::int32_t* route, std::int64_t block_tokens, int subspaces, float* c_f32, std::uint16_t* c_bf16,
                    std::int64_t ldc, std::int64_t m, int n, int k, int tiles_per_block, cudaStream_t stream) {
  if (kAliasC && tiles_per_block != 1) throw std::logic_error("launch_general: aliased C needs one column tile per block");
  using L = GenLayout<kTransB, kStages, kAliasC, kFM>;
  constexpr std::size_t bytes = L::kBytes;
  allow_shared_memory(reinterpret_cast<const void*>(&tiled_gemm_kernel<kTransB, kStages, kAliasC, kFM>), bytes);
  const int n_tiles = (n + kGenN - 1) / kGenN;
  const int groups = (n_tiles + tiles_per_block - 1) / tiles_per_block;
  const std::int64_t blocks = (m + L::kGenM - 1) / L::kGenM * groups;
  tiled_gemm_kernel<kTransB, kStages, kAliasC, kFM><<<static_cast<unsigned>(blocks), kGenThreads, bytes, stream>>>(
      a, lda, b, ldb, basis_stride, route, block_tokens, subspaces, c_f32, c_bf16, ldc, m, n, k, n_tiles, tiles_per_block);
  MOSS_CUDA_CHECK_LAUNCH();
}

// Decode: one 64 x 128 tile per block (measured on an H200: looping a block over several column
// tiles, with C in its own buffer, was slower than more resident blocks).
void launch_decode(const std::uint16_t* a, std::int64_t lda, const std::uint16_t* b, std::int64_t ldb, std::int64_t basis_stride,
                   const std::int32_t* route, std::int64_t block_tokens, int subspaces, float* c_f32, std::uint16_t* c_bf16,
                   std::int64_t ldc, std::int64_t m, int n, int k, cudaStream_t stream) {
  launch_general<true, 2, true, 2>(a, lda, b, ldb, basis_stride, route, block_tokens, subspaces, c_f32, c_bf16, ldc, m, n, k, 1, stream);
}
}  // namespace

namespace {
// The tiled kernels move 8 bf16 values per copy: rows and leading dimensions in whole 16-byte chunks.
bool tiled_shape(const void* a, std::int64_t lda, const void* b, std::int64_t ldb, const void* c, std::int64_t ldc, int n, int k) {
  return k % 8 == 0 && n % 8 == 0 && lda % 8 == 0 && ldb % 8 == 0 && ldc % 8 == 0 && aligned_to(a, 16) && aligned_to(b, 16) && aligned_to(c, 16);
}

}  // namespace

std::vector<int> moss_gemm_k_splits(const std::uint16_t* a, std::int64_t lda, const std::uint16_t* b, std::int64_t ldb,
                                    bool b_transposed, const void* c, std::int64_t ldc, std::int64_t m, int n, int k) {
  std::vector<int> splits;
  if (b_transposed || n > 64 || m <= 0 || !tiled_shape(a, lda, b, ldb, c, ldc, n, k)) return splits;
  if ((m + 63) / 64 >= 4 * multiprocessors() || !device_facts().memory_pools) return splits;
  for (int s : {2, 4})
    if (k >= s * 4 * kEncK) splits.push_back(s);
  return splits;
}

void launch_moss_gemm(const std::uint16_t* a, std::int64_t lda, const std::uint16_t* b, std::int64_t ldb,
                      bool b_transposed, float* c_f32, std::uint16_t* c_bf16, std::int64_t ldc, std::int64_t m,
                      int n, int k, bool simple_only, int k_splits, cudaStream_t stream) {
  if (m <= 0 || n <= 0) return;
  if ((c_f32 == nullptr) == (c_bf16 == nullptr)) throw std::invalid_argument("launch_moss_gemm: exactly one output");
  const bool tiled = !simple_only && tiled_shape(a, lda, b, ldb, c_f32 != nullptr ? static_cast<void*>(c_f32) : c_bf16, ldc, n, k);
  if (tiled && b_transposed) {
    launch_decode(a, lda, b, ldb, 0, nullptr, 1, 1, c_f32, c_bf16, ldc, m, n, k, stream);
    return;
  }
  if (tiled && n > 64) {  // rank > 64 or the mos-k projection: 128 x 128 tiles, blocks of one row tile adjacent
    launch_general<false, 3, true, 4>(a, lda, b, ldb, 0, nullptr, 1, 1, c_f32, c_bf16, ldc, m, n, k, 1, stream);
    return;
  }
  if (tiled) {
    const int splits = std::max(1, k_splits);
    if (n <= 16) launch_encode<1>(a, lda, b, ldb, c_f32, c_bf16, ldc, m, n, k, splits, stream);
    else if (n <= 32) launch_encode<2>(a, lda, b, ldb, c_f32, c_bf16, ldc, m, n, k, splits, stream);
    else if (n <= 48) launch_encode<3>(a, lda, b, ldb, c_f32, c_bf16, ldc, m, n, k, splits, stream);
    else launch_encode<4>(a, lda, b, ldb, c_f32, c_bf16, ldc, m, n, k, splits, stream);
    return;
  }
  const dim3 grid(static_cast<unsigned>((m + kTileM - 1) / kTileM), static_cast<unsigned>((n + kTileN - 1) / kTileN));
  if (b_transposed) gemm_bf16_kernel<true><<<grid, kThreads, 0, stream>>>(a, lda, b, ldb, c_f32, c_bf16, ldc, m, n, k);
  else gemm_bf16_kernel<false><<<grid, kThreads, 0, stream>>>(a, lda, b, ldb, c_f32, c_bf16, ldc, m, n, k);
  MOSS_CUDA_CHECK_LAUNCH();
}

namespace {
// Rows of whole 16-byte chunks: the warp-per-token kernels apply.
bool chunked_rows(const void* p, int dim) { return dim % 8 == 0 && aligned_to(p, 16); }
/// Blocks of the warp-per-token kernels (8 tokens each; they take no more than a grid holds: 2^34
/// tokens, beyond any device's memory even at 8 values per row).
unsigned warp_blocks(std::int64_t tokens) {
  const std::int64_t blocks = (tokens + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (blocks > std::numeric_limits<int>::max()) throw std::invalid_argument("warp kernels: more than 2^34 tokens in one launch");
  return static_cast<unsigned>(blocks);
}
/// Blocks of the block-per-row kernels (block_row_kernels.h): one per row up to the grid's limit; the
/// blocks stride over the rest.
unsigned row_blocks(std::int64_t rows) { return static_cast<unsigned>(std::min<std::int64_t>(rows, std::numeric_limits<int>::max())); }

// The row-in-registers form of an element-wise encode where it holds the row (`resident_fits`), else
// the streaming one. `automatic` times the two per shape (fastest_alternative: which is faster
// depends on the device and the row), `simple` runs the streaming one (the older, simpler form, as
// for the GEMMs), `moss` and `cublas` the resident one. `shape()` names the operation and its shape
// but the token count, which the remembered choice adds as a bucket; it is called under `automatic`
// only.
void run_resident_or_streaming(const std::function<std::string()>& shape, std::int64_t tokens, bool resident_fits,
                               const std::function<void()>& resident, const std::function<void()>& streaming, cudaStream_t stream) {
  const GemmKernel choice = gemm_kernel();
  if (!resident_fits || choice == GemmKernel::simple) return streaming();
  if (choice != GemmKernel::automatic) return resident();
  run_fastest_alternative(shape() + " m<=" + std::to_string(pow2_bucket(tokens)), {"row in registers", "streaming"}, {resident, streaming},
                          stream);
}

// An element-wise row encode (topk, quant): the block-per-row kernel where the rows are not whole
// 16-byte chunks or the outputs not aligned for the warp kernels' stores (`warp_rows` false), else a
// warp per token, the row in registers where it fits (run_resident_or_streaming). per_block()
// launches the first; per_warp(std::integral_constant<int, c>) the second with c chunks per lane
// held, 0 for the streaming form.
template <typename PerBlock, typename PerWarp>
void launch_row_encode(bool warp_rows, int dim, std::int64_t tokens, PerBlock&& per_block, PerWarp&& per_warp,
                       const std::function<std::string()>& shape, cudaStream_t stream) {
  if (!warp_rows) {
    per_block();
    MOSS_CUDA_CHECK_LAUNCH();
    return;
  }
  auto streaming = [&] {
    per_warp(std::integral_constant<int, 0>{});
    MOSS_CUDA_CHECK_LAUNCH();
  };
  const int per_lane = resident_chunks(dim);
  auto resident = [&] {
    with_resident_chunks(per_lane, per_warp);
    MOSS_CUDA_CHECK_LAUNCH();
  };
  run_resident_or_streaming(shape, tokens, per_lane != 0, resident, streaming, stream);
}
}  // namespace

void launch_route_select(const float* p, std::int64_t tokens, int rank, int subspaces, int route_cols, int block_tokens,
                         std::uint16_t* z, std::int32_t* route, cudaStream_t stream) {
  if (tokens <= 0) return;
  const std::int64_t bl = block_tokens <= 0 ? tokens : block_tokens;
  if (bl == 1) route_select_warp_kernel<<<warp_blocks(tokens), kWarpsPerBlock * 32, 0, stream>>>(p, tokens, rank, subspaces, route_cols, z, route);
  else route_select_kernel<<<row_blocks((tokens + bl - 1) / bl), kRowBlockThreads, 0, stream>>>(p, tokens, rank, subspaces, route_cols, bl, z, route);
  MOSS_CUDA_CHECK_LAUNCH();
}

void launch_decode_routed(const std::uint16_t* z, const std::uint16_t* bases, const std::int32_t* route,
                          std::int64_t tokens, int dim, int rank, int block_tokens, std::uint16_t* out,
                          cudaStream_t stream, int subspaces) {
  if (tokens <= 0) return;
  const std::int64_t bl = block_tokens <= 0 ? tokens : block_tokens;
  if (gemm_kernel() != GemmKernel::simple && subspaces >= 1 && subspaces <= kMaxSubspaces && dim % 8 == 0 &&
      rank % 8 == 0 && aligned_to(z, 16) && aligned_to(bases, 16) && aligned_to(out, 16)) {
    launch_decode(z, rank, bases, rank, static_cast<std::int64_t>(dim) * rank, route, bl, subspaces, nullptr, out, dim,
                  tokens, dim, rank, stream);
    return;
  }
  decode_routed_kernel<<<row_blocks(tokens), kRowBlockThreads, static_cast<std::size_t>(rank) * sizeof(float), stream>>>(
      z, bases, route, tokens, dim, rank, bl, out);
  MOSS_CUDA_CHECK_LAUNCH();
}


void launch_decode_expanded(const std::uint16_t* z, const std::uint16_t* wide, const std::int32_t* route, std::int64_t tokens,
                            int dim, int rank, int block_tokens, int subspaces, std::uint16_t* z_wide, std::uint16_t* out,
                            cudaStream_t stream) {
  if (tokens <= 0 || dim <= 0) return;
  if (rank <= 0 || subspaces < 1) throw std::invalid_argument("launch_decode_expanded: rank and subspaces must be positive");
  if (static_cast<std::int64_t>(subspaces) * rank > std::numeric_limits<int>::max())
    throw std::invalid_argument("launch_decode_expanded: subspaces x rank beyond int");
  if (z_wide == nullptr) throw std::invalid_argument("launch_decode_expanded: no z_wide scratch");
  const std::int64_t bl = block_tokens <= 0 ? tokens : block_tokens;
  const int width = subspaces * rank;
  const bool vector = rank % 8 == 0 && aligned_to(z, 16) && aligned_to(z_wide, 16);
  const std::int64_t chunks = tokens * (vector ? width / 8 : width);
  const auto blocks = static_cast<unsigned>(std::min<std::int64_t>((chunks + 255) / 256, 8 * static_cast<std::int64_t>(multiprocessors())));
  if (vector) expand_routed_kernel<8><<<blocks, 256, 0, stream>>>(z, route, tokens, rank, subspaces, bl, z_wide);
  else expand_routed_kernel<1><<<blocks, 256, 0, stream>>>(z, route, tokens, rank, subspaces, bl, z_wide);
  MOSS_CUDA_CHECK_LAUNCH();
  launch_gemm_bf16(z_wide, width, wide, width, true, nullptr, out, dim, tokens, dim, width, stream);
}

void launch_decode_mos_k(const std::uint16_t* z, const std::uint16_t* bases, const std::uint16_t* wide,
                         const std::int32_t* route, std::int64_t tokens, int dim, int rank, int block_tokens, int subspaces,
                         std::uint16_t* z_wide, std::uint16_t* out, cudaStream_t stream) {
  auto routed = [&] { launch_decode_routed(z, bases, route, tokens, dim, rank, block_tokens, out, stream, subspaces); };
  auto expanded = [&] { launch_decode_expanded(z, wide, route, tokens, dim, rank, block_tokens, subspaces, z_wide, out, stream); };
  const GemmKernel choice = gemm_kernel();
  if (z_wide == nullptr || choice == GemmKernel::moss || choice == GemmKernel::simple) return routed();
  if (choice == GemmKernel::cublas) return expanded();
  const bool aligned = aligned_to(z, 16) && aligned_to(bases, 16) && aligned_to(wide, 16) && aligned_to(z_wide, 16) && aligned_to(out, 16);
  const std::string key = "mos-k decode m<=" + std::to_string(pow2_bucket(tokens)) + " d=" + std::to_string(dim) + " r=" + std::to_string(rank) +
                          " K=" + std::to_string(subspaces) +
                          (block_tokens == 1 ? "" : block_tokens <= 0 ? " one route" : " routes per " + std::to_string(block_tokens)) +
                          (aligned ? "" : " unaligned");
  run_fastest_alternative(key, {"routed", "expanded"}, {routed, expanded}, stream);
}

namespace {
template <typename T>
void launch_pack(const T* values, std::int64_t count, int bits, std::uint32_t* words, cudaStream_t stream) {
  if (count <= 0 || bits <= 0) return;
  if (bits > 32) throw std::invalid_argument("launch_pack_bits: at most 32 bits per value");
  const std::int64_t n = packed_words(count, bits);
  const std::int64_t blocks = std::min<std::int64_t>((n + 255) / 256, 16 * static_cast<std::int64_t>(multiprocessors()));
  pack_bits_kernel<T><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(values, count, bits, words);
  MOSS_CUDA_CHECK_LAUNCH();
}
}  // namespace

void launch_pack_bits(const std::int32_t* values, std::int64_t count, int bits, std::uint32_t* words, cudaStream_t stream) {
  launch_pack(values, count, bits, words, stream);
}

void launch_pack_bits(const std::int8_t* values, std::int64_t count, int bits, std::uint32_t* words, cudaStream_t stream) {
  launch_pack(values, count, bits, words, stream);
}

void launch_topk_encode(const std::uint16_t* x, std::int64_t tokens, int dim, int k, std::uint16_t* values,
                        std::int32_t* indices, cudaStream_t stream) {
  if (tokens <= 0) return;
  if (k < 1 || k > dim) throw std::invalid_argument("launch_topk_encode: k must be in [1, dim]");
  auto per_block = [&] { topk_encode_kernel<<<row_blocks(tokens), kRowBlockThreads, 0, stream>>>(x, tokens, dim, k, values, indices); };
  auto per_warp = [&](auto chunks) {
    constexpr int kPerLane = decltype(chunks)::value;
    if constexpr (kPerLane == 0)
      topk_encode_warp_kernel<<<warp_blocks(tokens), kWarpsPerBlock * 32, 0, stream>>>(x, tokens, dim, k, values, indices);
    else
      topk_encode_resident_kernel<kPerLane><<<warp_blocks(tokens), kWarpsPerBlock * 32, 0, stream>>>(x, tokens, dim, k, values, indices);
  };
  launch_row_encode(chunked_rows(x, dim), dim, tokens, per_block, per_warp,
                    [&] { return "topk encode d=" + std::to_string(dim) + " k=" + std::to_string(k); }, stream);
}

void launch_topk_decode(const std::uint16_t* values, const std::int32_t* indices, std::int64_t tokens, int dim,
                        int k, std::uint16_t* out, cudaStream_t stream) {
  if (tokens <= 0) return;
  auto per_block = [&] {
    topk_decode_kernel<<<row_blocks(tokens), kRowBlockThreads, 0, stream>>>(values, indices, tokens, dim, k, out);
    MOSS_CUDA_CHECK_LAUNCH();
  };
  auto per_warp = [&] {
    topk_decode_warp_kernel<<<warp_blocks(tokens), kWarpsPerBlock * 32, 0, stream>>>(values, indices, tokens, dim, k, out);
    MOSS_CUDA_CHECK_LAUNCH();
  };
  auto merged = [&] {
    topk_decode_merge_kernel<<<warp_blocks(tokens), kWarpsPerBlock * 32, 0, stream>>>(values, indices, tokens, dim, k, out);
    MOSS_CUDA_CHECK_LAUNCH();
  };
  if (!chunked_rows(out, dim)) return per_block();
  const GemmKernel choice = gemm_kernel();
  if (choice == GemmKernel::simple) return per_warp();
  if (choice != GemmKernel::automatic) return merged();
  // The warp (scatter) kernel was slower than the block one on an H200 (0.29-0.34 of the copy
  // against 0.52); the merged one is newer: whichever is faster here.
  const std::string key = "topk decode m<=" + std::to_string(pow2_bucket(tokens)) + " d=" + std::to_string(dim) + " k=" + std::to_string(k);
  run_fastest_alternative(key, {"merged per warp", "warp per token", "block per token"}, {merged, per_warp, per_block}, stream);
}

void launch_quant_encode(const std::uint16_t* x, std::int64_t tokens, int dim, int bits, std::int8_t* codes,
                         std::uint16_t* scales, cudaStream_t stream) {
  if (tokens <= 0) return;
  const int qmax = bits == 8 ? 127 : 7;
  auto per_block = [&] { quant_encode_kernel<<<row_blocks(tokens), kRowBlockThreads, 0, stream>>>(x, tokens, dim, qmax, codes, scales); };
  auto per_warp = [&](auto chunks) {
    quant_encode_warp_kernel<decltype(chunks)::value><<<warp_blocks(tokens), kWarpsPerBlock * 32, 0, stream>>>(x, tokens, dim, qmax, codes, scales);
  };
  launch_row_encode(chunked_rows(x, dim) && aligned_to(codes, 8), dim, tokens, per_block, per_warp,
                    [&] { return "quant encode d=" + std::to_string(dim) + " bits=" + std::to_string(bits); }, stream);
}

void launch_quant_decode(const std::int8_t* codes, const std::uint16_t* scales, std::int64_t tokens, int dim,
                         std::uint16_t* out, cudaStream_t stream) {
  if (tokens <= 0) return;
  if (chunked_rows(out, dim) && aligned_to(codes, 8)) {
    const std::int64_t blocks = std::min<std::int64_t>(tokens, 16 * static_cast<std::int64_t>(multiprocessors()));
    quant_decode_rows_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(codes, scales, tokens, dim, out);
  } else {
    quant_decode_kernel<<<row_blocks(tokens), kRowBlockThreads, 0, stream>>>(codes, scales, tokens, dim, out);
  }
  MOSS_CUDA_CHECK_LAUNCH();
}

}  // namespace moss::kernels::cuda
