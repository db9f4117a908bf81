#pragma once
// A CPU emulation of the CUDA intrinsics that moss's kernels use (kernels/cuda/warp_row_kernels.h,
// block_row_kernels.h, theta_kernels.h, gemm_kernels.h: shuffles, ballots, barriers, atomicAdd,
// dynamic shared memory, wmma fragments and cp.async), so that the kernels' own source
// runs in the CPU test suite. launch_blocks runs one block at a time with all its threads at once,
// each CUDA thread a std::thread: a warp's collectives (__syncwarp, shuffles, ballots) meet at a
// barrier of its 32 lanes, __syncthreads at one of the whole block. Shared memory (`__shared__`)
// becomes a function-local static: one copy, which is why blocks run one after another.
// Checked, and reported by launch_blocks as std::logic_error once all threads have ended:
// - every lane of a warp at the same collective, in the same order (a collective reached by some
//   lanes only, or after others returned, is undefined on a GPU with a full mask);
// - every thread of a block through the same number of __syncthreads.
// A launch with such a fault ends (the warp's lanes leave the kernel) rather than hangs.
// Memory ordering, as CUDA promises it: only __syncwarp and __syncthreads order the memory accesses
// of the threads they join (and a kernel's start and end); shuffles, ballots and atomicAdd do not.
// Built with ThreadSanitizer (scripts/racecheck.sh), the emulation tells TSan exactly that: the
// barriers inside a shuffle, a ballot or a wmma operation are hidden from it (AnnotateIgnoreSyncBegin), their exchange
// slots are relaxed atomics and atomicAdd is relaxed, so shared or global data written by one thread
// and read by another with no __syncwarp or __syncthreads between them is reported as a data race,
// as compute-sanitizer's racecheck would on a device. The emulation itself still runs lanes in
// step at every collective, so without TSan such a race mostly goes unnoticed.
// Not emulated: the mask arguments (the kernels use full warps) and uninitialised shared memory (a
// static here: zeros on first use, then what the last block left, never garbage).
// The host build reads the kernels' shared memory through narrower views as nvcc does: the tests
// compile with -fno-strict-aliasing.
// Include this header before the kernels' header, outside any namespace.
#include <array>
#include <atomic>
#include <barrier>
#include <bit>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "moss/kernels/bf16.h"

#if defined(__SANITIZE_THREAD__)
#define MOSS_EMULATION_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MOSS_EMULATION_TSAN 1
#endif
#endif
#ifdef MOSS_EMULATION_TSAN
extern "C" void AnnotateIgnoreSyncBegin(const char* file, int line);
extern "C" void AnnotateIgnoreSyncEnd(const char* file, int line);
#endif

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
// Dynamic shared memory (block_row_kernels.h): the launch's buffer (launch_blocks_shared).
#define MOSS_DYNAMIC_SHARED(T, name) T* name = moss::kernels::emulation::dynamic_shared<T>()

struct uint4 {
  unsigned x, y, z, w;
};
struct uint2 {
  unsigned x, y;
};
struct float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }

inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace moss::kernels::emulation {
/// True in the ThreadSanitizer build (scripts/racecheck.sh), where a launch is far slower: the row
/// and theta tests then run a smaller set of shapes that still takes every branch of the kernels.
#ifdef MOSS_EMULATION_TSAN
inline constexpr bool kRacecheck = true;
#else
inline constexpr bool kRacecheck = false;
#endif

/// What a lane is doing at a collective: its kind and how many collectives the lane made before.
enum class Collective : std::uint64_t { syncwarp = 1, shfl, shfl_up, shfl_down, shfl_xor, ballot, syncthreads, wmma };

/// Thrown through a kernel by every lane of a warp whose lanes met at different collectives (the
/// fault is recorded first): the lanes leave the kernel and their barriers instead of waiting for
/// partners that are elsewhere.
struct Diverged {};

/// The meeting point of a warp's lanes. Unlike std::barrier, whose bookkeeping is plain memory
/// ordered by its atomics, every word shared here is atomic, so that it stays free of races when TSan
/// is told to ignore its synchronisation (Unordered): the arrival count and the number of lanes still
/// running share one word (count low, lanes high), the phase a second; the lanes sleep on a condition
/// variable.
class WarpBarrier {
 public:
  explicit WarpBarrier(std::uint32_t lanes) : state_(static_cast<std::uint64_t>(lanes) << 32) {}

  void arrive_and_wait() {
    const std::uint64_t phase = phase_.load();
    if (done(state_.fetch_add(1) + 1)) return complete();
    std::unique_lock<std::mutex> lock(mutex_);
    woken_.wait(lock, [&] { return phase_.load() != phase; });
  }

  /// A lane that has left the kernel: it no longer counts, and completes the phase when the others
  /// all wait.
  void arrive_and_drop() {
    if (done(state_.fetch_sub(std::uint64_t{1} << 32) - (std::uint64_t{1} << 32))) complete();
  }

 private:
  static bool done(std::uint64_t s) { return (s & 0xffffffffu) != 0 && (s & 0xffffffffu) == (s >> 32); }
  void complete() {
    state_.fetch_and(~std::uint64_t{0xffffffffu});
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      phase_.fetch_add(1);
    }
    woken_.notify_all();
  }

  std::atomic<std::uint64_t> state_;
  std::atomic<std::uint64_t> phase_{0};
  std::mutex mutex_;
  std::condition_variable woken_;
};

/// The 32 lanes of a warp: their meeting point, one exchange slot and one collective tag each (relaxed
/// atomics: under TSan a shuffle's barriers order nothing, see Unordered), and each lane's count of
/// collectives (its own; read after the launch).
struct Warp {
  WarpBarrier barrier{32};
  std::array<std::atomic<std::uint64_t>, 32> slots{}, tags{};
  std::array<std::uint64_t, 32> count{};
};

/// While one lives, the synchronisation of this thread is hidden from ThreadSanitizer (no effect
/// without it): what a shuffle or a ballot does, which orders no memory on a GPU.
struct Unordered {
#ifdef MOSS_EMULATION_TSAN
  Unordered() { AnnotateIgnoreSyncBegin(__FILE__, __LINE__); }
  ~Unordered() { AnnotateIgnoreSyncEnd(__FILE__, __LINE__); }
#else
  Unordered() = default;
#endif
  Unordered(const Unordered&) = delete;
  Unordered& operator=(const Unordered&) = delete;
};

/// The block being run: its __syncthreads barrier, its dynamic shared memory (0xff bytes, as garbage
/// that reads as NaN in floats) and faults found.
struct Block {
  Block(unsigned threads, std::size_t shared_bytes)
      : sync(static_cast<std::ptrdiff_t>(threads)), dynamic((shared_bytes + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t)), syncs(threads, 0) {
    if (!dynamic.empty()) std::memset(static_cast<void*>(dynamic.data()), 0xff, dynamic.size() * sizeof(std::max_align_t));
  }
  std::barrier<> sync;
  std::vector<std::max_align_t> dynamic;
  std::vector<std::uint64_t> syncs;  ///< __syncthreads per thread
  std::atomic<int> faults{0};
};
inline thread_local Warp* current_warp = nullptr;
inline thread_local Block* current_block = nullptr;
inline thread_local unsigned current_thread = 0;  ///< linear index in the block

/// The lane of this thread: its linear index in the block modulo 32.
inline int lane() { return static_cast<int>(current_thread & 31u); }

/// Every lane arrives at a collective of `kind`. When the 32 lanes are not all at the same collective
/// (kind and sequence number; a lane that returned keeps its last tag), every lane sees it: each
/// records a fault and throws Diverged. Otherwise the caller waits at the warp's barrier once more
/// before it returns, so that no lane overwrites its tag or slot while another still reads them.
inline void meet(Collective kind) {
  Warp& w = *current_warp;
  const auto l = static_cast<std::size_t>(lane());
  const std::uint64_t tag = (static_cast<std::uint64_t>(kind) << 48) | w.count[l]++;
  w.tags[l].store(tag, std::memory_order_relaxed);
  w.barrier.arrive_and_wait();
  for (std::size_t other = 0; other < 32; ++other)
    if (w.tags[other].load(std::memory_order_relaxed) != tag) {
      current_block->faults.fetch_add(1);
      throw Diverged{};
    }
}

/// Every lane publishes `v`; each then reads the value lane `src(lane)` published (its own where src
/// is out of range).
template <typename T, typename Src>
T exchange(Collective kind, T v, Src src) {
  static_assert(sizeof(T) <= sizeof(std::uint64_t));
  Warp& w = *current_warp;
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof v);
  [[maybe_unused]] const Unordered unordered;
  w.slots[static_cast<std::size_t>(lane())].store(bits, std::memory_order_relaxed);
  meet(kind);
  const int from = src(lane());
  T out = v;
  if (from >= 0 && from < 32) {
    bits = w.slots[static_cast<std::size_t>(from)].load(std::memory_order_relaxed);
    std::memcpy(&out, &bits, sizeof out);
  }
  w.barrier.arrive_and_wait();  // every lane has read before the next exchange writes
  return out;
}

/// A warp collective that exchanges nothing through the slots and orders no memory (the wmma
/// operations): the lanes meet, each runs `body`, then they wait for one another, so that no lane
/// overwrites its tag while another still reads it.
template <typename Body>
void unordered_collective(Collective kind, Body&& body) {
  [[maybe_unused]] const Unordered unordered;
  meet(kind);
  body();
  current_warp->barrier.arrive_and_wait();
}

/// The block's dynamic shared memory (MOSS_DYNAMIC_SHARED).
template <typename T>
T* dynamic_shared() {
  return reinterpret_cast<T*>(current_block->dynamic.data());
}

/// Runs kernel(args...) on a grid of blocks (2-D), each block's threads all at once (x fastest; a
/// warp is 32 consecutive threads, the block a whole number of warps), with `shared_bytes` of dynamic
/// shared memory per block. A thread that returns leaves
/// its warp's and its block's barriers, as an exited CUDA thread no longer counts at __syncthreads;
/// its partners' next collective then records a fault instead of hanging. Throws std::logic_error
/// naming the faults (see the top of this file).
template <typename Kernel, typename... Args>
void launch_blocks_shared(dim3 grid, dim3 block, std::size_t shared_bytes, Kernel kernel, Args... args) {
  const unsigned threads = block.x * block.y;
  if (threads == 0 || threads % 32 != 0 || threads > 1024 || block.z != 1 || grid.z != 1)
    throw std::logic_error("launch_blocks: 2-D grids of 2-D blocks of whole warps, at most 1024 threads");
  int faults = 0;
  for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      const std::unique_ptr<Warp[]> warp(new Warp[threads / 32]);
      Block state(threads, shared_bytes);
      std::vector<std::thread> all;
      all.reserve(threads);
      for (unsigned i = 0; i < threads; ++i)
        all.emplace_back([&, i] {
          threadIdx = {i % block.x, i / block.x, 0};
          blockIdx = {bx, by, 0};
          blockDim = block;
          gridDim = grid;
          current_thread = i;
          current_warp = &warp[i / 32];
          current_block = &state;
          try {
            kernel(args...);
          } catch (const Diverged&) {  // recorded; leave the barriers below
          }
          warp[i / 32].barrier.arrive_and_drop();
          state.sync.arrive_and_drop();
        });
      for (auto& t : all) t.join();
      for (unsigned i = 0; i < threads; ++i) {  // the same collectives and barriers to the end
        if (warp[i / 32].count[i % 32] != warp[i / 32].count[0]) ++faults;
        if (state.syncs[i] != state.syncs[0]) ++faults;
      }
      faults += state.faults.load();
    }
  if (faults > 0)
    throw std::logic_error("launch_blocks: " + std::to_string(faults) + " divergent collectives or barriers (lanes of a warp at different "
                           "collectives, or threads of a block through different numbers of __syncthreads)");
}

/// launch_blocks_shared without dynamic shared memory.
template <typename Kernel, typename... Args>
void launch_blocks(dim3 grid, dim3 block, Kernel kernel, Args... args) {
  launch_blocks_shared(grid, block, 0, kernel, args...);
}
}  // namespace moss::kernels::emulation

inline void __syncwarp(unsigned = 0xffffffffu) {
  moss::kernels::emulation::meet(moss::kernels::emulation::Collective::syncwarp);
  moss::kernels::emulation::current_warp->barrier.arrive_and_wait();
}
inline void __syncthreads() {
  // A warp meets first, so that lanes split between a warp collective and this barrier throw
  // Diverged rather than wait for each other at two different barriers.
  moss::kernels::emulation::meet(moss::kernels::emulation::Collective::syncthreads);
  moss::kernels::emulation::current_warp->barrier.arrive_and_wait();
  auto& b = *moss::kernels::emulation::current_block;
  ++b.syncs[moss::kernels::emulation::current_thread];
  b.sync.arrive_and_wait();
}
template <typename T>
T __shfl_sync(unsigned, T v, int src) {
  return moss::kernels::emulation::exchange(moss::kernels::emulation::Collective::shfl, v, [src](int) { return src & 31; });
}
template <typename T>
T __shfl_up_sync(unsigned, T v, unsigned delta) {
  return moss::kernels::emulation::exchange(moss::kernels::emulation::Collective::shfl_up, v, [delta](int l) { return l - static_cast<int>(delta); });
}
template <typename T>
T __shfl_down_sync(unsigned, T v, unsigned delta) {
  return moss::kernels::emulation::exchange(moss::kernels::emulation::Collective::shfl_down, v, [delta](int l) { return l + static_cast<int>(delta); });
}
template <typename T>
T __shfl_xor_sync(unsigned, T v, int mask) {
  return moss::kernels::emulation::exchange(moss::kernels::emulation::Collective::shfl_xor, v, [mask](int l) { return l ^ mask; });
}
inline unsigned __ballot_sync(unsigned, int predicate) {
  auto& w = *moss::kernels::emulation::current_warp;
  [[maybe_unused]] const moss::kernels::emulation::Unordered unordered;
  w.slots[static_cast<std::size_t>(moss::kernels::emulation::lane())].store(predicate != 0 ? 1 : 0, std::memory_order_relaxed);
  moss::kernels::emulation::meet(moss::kernels::emulation::Collective::ballot);
  unsigned ballot = 0;
  for (int l = 0; l < 32; ++l) ballot |= static_cast<unsigned>(w.slots[static_cast<std::size_t>(l)].load(std::memory_order_relaxed)) << l;
  w.barrier.arrive_and_wait();
  return ballot;
}
inline int __popc(unsigned v) { return std::popcount(v); }
inline int __ffs(int v) { return v == 0 ? 0 : std::countr_zero(static_cast<unsigned>(v)) + 1; }
inline int atomicAdd(int* p, int v) { return std::atomic_ref<int>(*p).fetch_add(v, std::memory_order_relaxed); }  // orders nothing, as on a GPU
inline float __fadd_rn(float a, float b) { return a + b; }  // separate calls: never fused into one rounding
inline float __fmul_rn(float a, float b) { return a * b; }
inline int __float2int_rn(float v) { return static_cast<int>(std::nearbyint(v)); }  // the default mode: to nearest even
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

/// bf16 as the kernels hold it in shared memory (cuda_bf16.h's type): its bits.
struct __nv_bfloat16 {
  std::uint16_t bits;
};
inline __nv_bfloat16 __ushort_as_bfloat16(std::uint16_t bits) { return {bits}; }

namespace moss::kernels::cuda {
inline float bits_to_float(std::uint16_t bits) { return bf16_bits_to_float(bits); }
inline std::uint16_t float_to_bits(float x) { return float_to_bf16_bits(x); }
inline __nv_bfloat16 to_bf16(std::uint16_t bits) { return {bits}; }

// cp.async as the kernels use it (gemm_kernels.h): a 16-byte copy issued by copy16 lands only when a
// copy_wait<N> of the issuing thread completes its commit group (all groups but the N most recent),
// so a read of a stage before its wait sees what was there before, as it may on a device.
#define MOSS_EMULATED_COPY_ASYNC 1
struct PendingCopy {
  void* to;
  const void* from;  ///< nullptr: zero-fill
};
inline thread_local std::vector<PendingCopy> open_copies;
inline thread_local std::vector<std::vector<PendingCopy>> committed_copies;
inline void copy16(void* smem, const void* gmem, bool in_range) { open_copies.push_back({smem, in_range ? gmem : nullptr}); }
inline void copy_commit() { committed_copies.push_back(std::move(open_copies)), open_copies.clear(); }
template <int kPending>
void copy_wait() {
  while (committed_copies.size() > static_cast<std::size_t>(kPending)) {
    for (const PendingCopy& c : committed_copies.front()) {
      if (c.from != nullptr) std::memcpy(c.to, c.from, 16);
      else std::memset(c.to, 0, 16);
    }
    committed_copies.erase(committed_copies.begin());
  }
}
}  // namespace moss::kernels::cuda

// wmma (mma.h) for 16 x 16 x 16 bf16 tiles with fp32 accumulation: each lane holds the whole tile
// (fp32), loads read all of it, mma_sync sums k in order, store_matrix_sync writes lane l's share
// (elements l, l + 32, ...). Each is a collective of the warp that orders no memory, as on a device.
namespace nvcuda::wmma {
struct matrix_a;
struct matrix_b;
struct accumulator;
struct row_major;
struct col_major;
enum layout_t { mem_row_major, mem_col_major };
template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  static_assert(M == 16 && N == 16 && K == 16, "16 x 16 x 16 tiles only");
  float x[256];
};
template <typename Use, typename T, typename Layout>
void fill_fragment(fragment<Use, 16, 16, 16, T, Layout>& f, float v) {
  for (float& e : f.x) e = v;
}
/// x[r][c] (row r of the tile: a row of A, a k of B) from p[r ldm + c], or p[c ldm + r] column-major.
template <typename Use, typename Layout>
void load_matrix_sync(fragment<Use, 16, 16, 16, __nv_bfloat16, Layout>& f, const __nv_bfloat16* p, unsigned ldm) {
  moss::kernels::emulation::unordered_collective(moss::kernels::emulation::Collective::wmma, [&] {
    for (unsigned r = 0; r < 16; ++r)
      for (unsigned c = 0; c < 16; ++c)
        f.x[r * 16 + c] = moss::kernels::bf16_bits_to_float(p[std::is_same_v<Layout, col_major> ? c * ldm + r : r * ldm + c].bits);
  });
}
template <typename LayoutB>
void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, row_major>& a,
              const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LayoutB>& b, const fragment<accumulator, 16, 16, 16, float>& c) {
  moss::kernels::emulation::unordered_collective(moss::kernels::emulation::Collective::wmma, [&] {
    fragment<accumulator, 16, 16, 16, float> out;
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 16; ++j) {
        float v = c.x[i * 16 + j];
        for (int q = 0; q < 16; ++q) v += a.x[i * 16 + q] * b.x[q * 16 + j];
        out.x[i * 16 + j] = v;
      }
    d = out;  // d may be c
  });
}
inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm, layout_t layout) {
  if (layout != mem_row_major) throw std::logic_error("store_matrix_sync: row-major only");
  moss::kernels::emulation::unordered_collective(moss::kernels::emulation::Collective::wmma, [&] {
    for (int e = moss::kernels::emulation::lane(); e < 256; e += 32) p[(e / 16) * ldm + e % 16] = f.x[e];
  });
}
}  // namespace nvcuda::wmma
