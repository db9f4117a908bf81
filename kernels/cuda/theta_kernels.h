#pragma once
// The kernels of mos's theta on the diagonal path (theta_diagonal.h): the column statistics of a
// block's sample projections over the device, the line search in one block, then U(theta). Compiled by nvcc
// (included by mos_kernels.cu, which launches them) and, for tests/kernels/theta_kernels_test.cpp, by
// the host compiler under the CPU emulation of tests/kernels/warp_emulation.h (whole blocks of
// threads, __syncthreads included): the kernels' own source against the CPU encoder's theta. In an
// anonymous namespace: one copy per translation unit.
#include <cstdint>

#ifdef __CUDACC__
#include "bf16_device.h"
#endif
#include "theta_diagonal.h"

namespace moss::kernels::cuda {
namespace {
constexpr int kStatThreadsY = 8, kThetaThreads = 256;

// Partial column statistics of the sample projections p = [P0 | P1] (rows x 2 rank fp32, row-major):
// partition `part` (of kThetaStatParts) sums rows part, part + kThetaStatParts, ... in double;
// partials[(3 part + s) rank + q], s = 0, 1, 2 for g00, g01, g11. Blocks of 32 columns (x) by
// kStatThreadsY partitions (y), so a warp reads 32 neighbouring columns of one row and the whole
// device shares the sums (one block of 256 threads took ~512 dependent steps at rank 256).
__global__ void __launch_bounds__(32 * kStatThreadsY) theta_stats_kernel(const float* __restrict__ p, std::int64_t rows, int rank,
                                                                        double* __restrict__ partials) {
  const int q = static_cast<int>(blockIdx.x * 32 + threadIdx.x);
  const int part = static_cast<int>(blockIdx.y * kStatThreadsY + threadIdx.y);
  if (q >= rank) return;
  const std::int64_t ld = 2 * static_cast<std::int64_t>(rank);
  double s00 = 0, s01 = 0, s11 = 0;
#pragma unroll 4
  for (std::int64_t i = part; i < rows; i += kThetaStatParts) {
    const double x = p[i * ld + q], y = p[i * ld + rank + q];
    s00 += x * x, s01 += x * y, s11 += y * y;
  }
  double* out = partials + static_cast<std::int64_t>(3 * part) * rank + q;
  out[0] = s00, out[rank] = s01, out[2 * static_cast<std::int64_t>(rank)] = s11;
}

// One block of kThetaThreads.
// 1. The column statistics: the partitions' partials added in partition order (so the sums do not
//    depend on scheduling), into stats (3 rank doubles after the partials: g00, g01, g11 per column).
// 2. The CPU encoder's line search (maximise_theta_one) in rounds (maximise_theta_batched): warp w
//    evaluates the round's trial w and the central difference there, each objective a warp sum (lane
//    columns, a shuffle tree) that lane 0 hands over through shared memory; every thread then takes
//    the same decision. A round is one evaluation deep where the serial search took one per trial and
//    one per gradient (14-41 on the llama preset, against 3-13 rounds).
// 3. theta and the column scales a (scales[0, rank)) and b (scales[rank, 2 rank)).
__global__ void __launch_bounds__(kThetaThreads) theta_diagonal_kernel(const double* __restrict__ partials, int rank,
                                                                      const double* __restrict__ lambda, double* stats,
                                                                      float max_theta, float* theta, float* scales) {
  constexpr int kWarps = kThetaThreads / 32;
  __shared__ ObjectiveTriple results[kWarps];
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  for (int q = tid; q < rank; q += kThetaThreads) {
    double a = 0, b = 0, c = 0;
#pragma unroll 8
    for (int part = 0; part < kThetaStatParts; ++part) {
      const double* in = partials + static_cast<std::int64_t>(3 * part) * rank + q;
      a += in[0], b += in[rank], c += in[2 * static_cast<std::int64_t>(rank)];
    }
    stats[3 * q] = a, stats[3 * q + 1] = b, stats[3 * q + 2] = c;
  }
  __syncthreads();
  auto evaluate = [&](const float* trials, int n, ObjectiveTriple* out) {
    if (warp < n) {
      const float at = trials[warp], plus = at + 1e-3f, minus = at - 1e-3f;
      double fa = 0, fp = 0, fm = 0;
      for (int q = lane; q < rank; q += 32) {
        const ColumnStat s{stats[3 * q], stats[3 * q + 1], stats[3 * q + 2]};
        fa += diagonal_term(s, lambda[q], at);
        fp += diagonal_term(s, lambda[q], plus);
        fm += diagonal_term(s, lambda[q], minus);
      }
      for (int o = 16; o > 0; o /= 2) {
        fa += __shfl_down_sync(0xffffffffu, fa, o);
        fp += __shfl_down_sync(0xffffffffu, fp, o);
        fm += __shfl_down_sync(0xffffffffu, fm, o);
      }
      if (lane == 0) results[warp] = ObjectiveTriple{fa, fp, fm};
    }
    __syncthreads();
    for (int j = 0; j < n; ++j) out[j] = results[j];
    __syncthreads();  // read before the next round writes
  };
  const float th = maximise_theta_batched<kWarps>(evaluate, max_theta);
  if (tid == 0) *theta = th;
  for (int q = tid; q < rank; q += kThetaThreads) {
    const ColumnScale c = diagonal_scale(lambda[q], th);
    scales[q] = c.a, scales[rank + q] = c.b;
  }
}

// u (dim x rank, bf16) = Ubar diag(a) + W diag(b) from wide = [Ubar | W] (dim x 2 rank, bf16), in fp32
// without contraction, as rotated_basis_diagonal in a portable host build (a -march=native build
// may fuse it: one bf16 step apart in ~2e-5 of U's values). Columns along x, rows strided along y.
__global__ void rotate_diagonal_kernel(const std::uint16_t* __restrict__ wide, std::int64_t dim, int rank,
                                       const float* __restrict__ scales, std::uint16_t* __restrict__ u) {
  const int q = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (q >= rank) return;
  const float a = scales[q], b = scales[rank + q];
  const std::int64_t ld = 2 * static_cast<std::int64_t>(rank);
  for (std::int64_t i = blockIdx.y; i < dim; i += gridDim.y)
    u[i * rank + q] = float_to_bits(__fadd_rn(__fmul_rn(bits_to_float(wide[i * ld + q]), a), __fmul_rn(bits_to_float(wide[i * ld + rank + q]), b)));
}
}  // namespace
}  // namespace moss::kernels::cuda
