#pragma once
// A CPU emulation of the CUDA warp intrinsics the warp-per-token kernels use
// (kernels/cuda/warp_row_kernels.h), so that the kernels' own source runs in the CPU test suite: each
// thread of a warp is a std::thread, warps run one after another, and the warp's collective
// operations (__syncwarp, shuffles, ballots) meet at a std::barrier of the 32 lanes. Shared memory
// (`__shared__`) becomes a function-local static, one copy for all warps: the kernels give each warp
// its own slice and need no block-wide barrier (__syncthreads is deliberately not provided).
// Include this header before kernels/cuda/warp_row_kernels.h, outside any namespace.
#include <array>
#include <atomic>
#include <barrier>
#include <bit>
#include <cmath>
#include <cstdint>
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

inline int lane() { return static_cast<int>(threadIdx.x & 31u); }

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

/// Runs kernel(args...) on grid x block threads, one warp at a time on 32 lane threads. The kernels in
/// question run with a full warp and uniform control flow at every collective; a lane that returns
/// leaves its warp's barrier (arrive_and_drop), so a kernel that breaks that rule reads stale data
/// rather than hanging.
template <typename Kernel, typename... Args>
void launch(unsigned grid, unsigned block, Kernel kernel, Args... args) {
  const unsigned warps = grid * ((block + 31) / 32);
  const std::unique_ptr<Warp[]> warp(new Warp[warps]);
  std::barrier<> next_warp(32);  // a warp starts when every lane has left the one before
  std::vector<std::thread> lanes;
  lanes.reserve(32);
  for (unsigned l = 0; l < 32; ++l)
    lanes.emplace_back([&, l] {
      for (unsigned i = 0; i < warps; ++i) {
        const unsigned per_block = (block + 31) / 32;
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
}  // namespace moss::kernels::emulation

inline void __syncwarp(unsigned = 0xffffffffu) { moss::kernels::emulation::current_warp->barrier.arrive_and_wait(); }
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
