#pragma once
// A CPU emulation of the CUDA intrinsics that moss's warp and small-block kernels use
// (kernels/cuda/warp_row_kernels.h, kernels/cuda/theta_kernels.h), so that the kernels' own source
// runs in the CPU test suite: each CUDA thread is a std::thread, and a warp's collective operations
// (__syncwarp, shuffles, ballots) meet at a std::barrier of its 32 lanes. Shared memory
// (`__shared__`) becomes a function-local static: one copy, so blocks run one after another.
// - launch_warps: one warp at a time (32 threads), for kernels without a block-wide barrier (each
//   warp works on its own slice of shared memory); __syncthreads there aborts.
// - launch_blocks: a whole block at a time, __syncthreads a barrier of all its threads.
// Include this header before the kernels' header, outside any namespace.
#include <array>
#include <atomic>
#include <barrier>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "moss/kernels/bf16.h"

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct uint4 {
  unsigned x, y, z, w;
};
struct uint2 {
  unsigned x, y;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }

inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace moss::kernels::emulation {
/// The 32 lanes of the warp being run: their meeting point and one exchange slot each.
struct Warp {
  std::barrier<> barrier{32};
  std::array<std::uint64_t, 32> slots{};
};
inline thread_local Warp* current_warp = nullptr;

/// The lane of this thread: its linear index in the block modulo 32.
inline int lane() { return static_cast<int>((threadIdx.x + threadIdx.y * blockDim.x) & 31u); }

/// Every lane publishes `v`; each then reads the value lane `src(lane)` published (its own where src
/// is out of range).
template <typename T, typename Src>
T exchange(T v, Src src) {
  static_assert(sizeof(T) <= sizeof(std::uint64_t));
  Warp& w = *current_warp;
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof v);
  w.slots[static_cast<std::size_t>(lane())] = bits;
  w.barrier.arrive_and_wait();
  const int from = src(lane());
  T out = v;
  if (from >= 0 && from < 32) std::memcpy(&out, &w.slots[static_cast<std::size_t>(from)], sizeof out);
  w.barrier.arrive_and_wait();  // every lane has read before the next exchange writes
  return out;
}

/// The block being run by launch_blocks (null under launch_warps): its __syncthreads barrier.
inline thread_local std::barrier<>* current_block = nullptr;

/// Runs kernel(args...) on grid x block threads (1-D), one warp at a time on 32 lane threads. The
/// kernels in question run with a full warp and uniform control flow at every collective; a lane
/// that returns leaves its warp's barrier (arrive_and_drop), so a kernel that breaks that rule reads
/// stale data rather than hanging.
template <typename Kernel, typename... Args>
void launch_warps(unsigned grid, unsigned block, Kernel kernel, Args... args) {
  const unsigned per_block = (block + 31) / 32, warps = grid * per_block;
  const std::unique_ptr<Warp[]> warp(new Warp[warps]);
  std::barrier<> next_warp(32);  // a warp starts when every lane has left the one before
  std::vector<std::thread> lanes;
  lanes.reserve(32);
  for (unsigned l = 0; l < 32; ++l)
    lanes.emplace_back([&, l] {
      for (unsigned i = 0; i < warps; ++i) {
        threadIdx = {(i % per_block) * 32 + l, 0, 0};
        blockIdx = {i / per_block, 0, 0};
        blockDim = {block, 1, 1};
        gridDim = {grid, 1, 1};
        current_warp = &warp[i];
        kernel(args...);
        warp[i].barrier.arrive_and_drop();
        next_warp.arrive_and_wait();
      }
    });
  for (auto& t : lanes) t.join();
}

/// Runs kernel(args...) on a grid of blocks (2-D), each block's threads all at once (x fastest; a
/// warp is 32 consecutive threads, the block a whole number of warps). A thread that returns leaves
/// its warp's and its block's barriers, as an exited CUDA thread no longer counts at __syncthreads.
template <typename Kernel, typename... Args>
void launch_blocks(dim3 grid, dim3 block, Kernel kernel, Args... args) {
  const unsigned threads = block.x * block.y;
  if (threads % 32 != 0) std::abort();  // whole warps only
  for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      const std::unique_ptr<Warp[]> warp(new Warp[threads / 32]);
      std::barrier<> sync(static_cast<std::ptrdiff_t>(threads));
      std::vector<std::thread> all;
      all.reserve(threads);
      for (unsigned i = 0; i < threads; ++i)
        all.emplace_back([&, i] {
          threadIdx = {i % block.x, i / block.x, 0};
          blockIdx = {bx, by, 0};
          blockDim = block;
          gridDim = grid;
          current_warp = &warp[i / 32];
          current_block = &sync;
          kernel(args...);
          warp[i / 32].barrier.arrive_and_drop();
          sync.arrive_and_drop();
        });
      for (auto& t : all) t.join();
    }
}
}  // namespace moss::kernels::emulation

inline void __syncwarp(unsigned = 0xffffffffu) { moss::kernels::emulation::current_warp->barrier.arrive_and_wait(); }
inline void __syncthreads() {
  if (moss::kernels::emulation::current_block == nullptr) std::abort();  // launch_warps runs no whole block
  moss::kernels::emulation::current_block->arrive_and_wait();
}
template <typename T>
T __shfl_sync(unsigned, T v, int src) {
  return moss::kernels::emulation::exchange(v, [src](int) { return src & 31; });
}
template <typename T>
T __shfl_up_sync(unsigned, T v, unsigned delta) {
  return moss::kernels::emulation::exchange(v, [delta](int l) { return l - static_cast<int>(delta); });
}
template <typename T>
T __shfl_down_sync(unsigned, T v, unsigned delta) {
  return moss::kernels::emulation::exchange(v, [delta](int l) { return l + static_cast<int>(delta); });
}
template <typename T>
T __shfl_xor_sync(unsigned, T v, int mask) {
  return moss::kernels::emulation::exchange(v, [mask](int l) { return l ^ mask; });
}
inline unsigned __ballot_sync(unsigned, int predicate) {
  auto& w = *moss::kernels::emulation::current_warp;
  w.slots[static_cast<std::size_t>(moss::kernels::emulation::lane())] = predicate != 0 ? 1 : 0;
  w.barrier.arrive_and_wait();
  unsigned ballot = 0;
  for (int l = 0; l < 32; ++l) ballot |= static_cast<unsigned>(w.slots[static_cast<std::size_t>(l)]) << l;
  w.barrier.arrive_and_wait();
  return ballot;
}
inline int __popc(unsigned v) { return std::popcount(v); }
inline int __ffs(int v) { return v == 0 ? 0 : std::countr_zero(static_cast<unsigned>(v)) + 1; }
inline int atomicAdd(int* p, int v) { return std::atomic_ref<int>(*p).fetch_add(v); }
inline int __float2int_rn(float v) { return static_cast<int>(std::nearbyint(v)); }  // the default mode: to nearest even
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

namespace moss::kernels::cuda {
inline float bits_to_float(std::uint16_t bits) { return bf16_bits_to_float(bits); }
inline std::uint16_t float_to_bits(float x) { return float_to_bf16_bits(x); }
}  // namespace moss::kernels::cuda
