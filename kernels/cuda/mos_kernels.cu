// The diagonal mos path on the device (one rotation, W^T W = diag(lambda); theta_diagonal.h): the
// theta of a block from its sample projections, then U(theta) = Ubar diag(a) + W diag(b). Both are
// stream-ordered, so the GPU encode of a one-rotation state goes from its sample projection to its
// projection without waiting for the host (the host work it replaces was ~5-100 us, the wait for it
// a synchronisation and two copies per block).
#include "bf16_device.h"
#include "codec_launch.h"
#include "cuda_check.h"
#include "moss/kernels/rotation.h"
#include "theta_diagonal.h"

namespace moss::kernels::cuda {

namespace {
constexpr int kThetaThreads = 256, kThetaWarps = kThetaThreads / 32;

// One block of kThetaThreads. p: the sample projections [P0 | P1] (rows x 2 rank fp32, row-major).
// 1. Column statistics (double): `groups` row groups per column pass sum strided rows, then the
//    groups are added in order, so the sums do not depend on scheduling.
// 2. maximise_theta_one; each objective is a block sum (per-thread columns, warp tree, warps in
//    order) that every thread reads back whole, so all threads take the same steps.
// 3. theta and the column scales a (scales[0, rank)) and b (scales[rank, 2 rank)).
// stats: 3 rank doubles of scratch (g00, g01, g11 per column).
__global__ void __launch_bounds__(kThetaThreads) theta_diagonal_kernel(const float* __restrict__ p, std::int64_t rows, int rank,
                                                                      const double* __restrict__ lambda, double* stats,
                                                                      float max_theta, float* theta, float* scales) {
  __shared__ double part[3][kThetaThreads];
  __shared__ double warp_sums[2][kThetaWarps];
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const int cols = rank < kThetaThreads ? rank : kThetaThreads, groups = kThetaThreads / cols;
  const int col = tid % cols, group = tid / cols;
  const std::int64_t ld = 2 * static_cast<std::int64_t>(rank);
  for (int q0 = 0; q0 < rank; q0 += cols) {
    const int q = q0 + col;
    double s00 = 0, s01 = 0, s11 = 0;
    if (group < groups && q < rank)
      for (std::int64_t i = group; i < rows; i += groups) {
        const double x = p[i * ld + q], y = p[i * ld + rank + q];
        s00 += x * x, s01 += x * y, s11 += y * y;
      }
    part[0][tid] = s00, part[1][tid] = s01, part[2][tid] = s11;
    __syncthreads();
    if (group == 0 && q < rank) {
      double a = 0, b = 0, c = 0;
      for (int g = 0; g < groups; ++g) a += part[0][g * cols + col], b += part[1][g * cols + col], c += part[2][g * cols + col];
      stats[3 * q] = a, stats[3 * q + 1] = b, stats[3 * q + 2] = c;
    }
    __syncthreads();  // `part` is rewritten by the next pass; the stats are read below
  }
  auto objective = [&](float a, float b) {
    double fa = 0, fb = 0;
    for (int q = tid; q < rank; q += kThetaThreads) {
      const ColumnStat s{stats[3 * q], stats[3 * q + 1], stats[3 * q + 2]};
      fa += diagonal_term(s, lambda[q], a);
      fb += diagonal_term(s, lambda[q], b);
    }
    for (int o = 16; o > 0; o /= 2) {
      fa += __shfl_down_sync(0xffffffffu, fa, o);
      fb += __shfl_down_sync(0xffffffffu, fb, o);
    }
    if (lane == 0) warp_sums[0][warp] = fa, warp_sums[1][warp] = fb;
    __syncthreads();
    ObjectivePair out{0.0, 0.0};
    for (int w = 0; w < kThetaWarps; ++w) out.first += warp_sums[0][w], out.second += warp_sums[1][w];
    __syncthreads();  // `warp_sums` is rewritten by the next evaluation
    return out;
  };
  const float th = maximise_theta_one(objective, max_theta);
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

void launch_theta_diagonal(const float* p, std::int64_t rows, int rank, const double* lambda, double* stats, float* theta,
                           float* scales, cudaStream_t stream) {
  if (rank <= 0) return;
  theta_diagonal_kernel<<<1, kThetaThreads, 0, stream>>>(p, rows, rank, lambda, stats, kMaxTheta, theta, scales);
  MOSS_CUDA_CHECK_LAUNCH();
}

void launch_rotate_diagonal(const std::uint16_t* wide, std::int64_t dim, int rank, const float* scales, std::uint16_t* u,
                            cudaStream_t stream) {
  if (rank <= 0 || dim <= 0) return;
  const int threads = rank < 128 ? (rank + 31) / 32 * 32 : 128;  // no idle warp at small ranks
  const dim3 grid(static_cast<unsigned>((rank + threads - 1) / threads), static_cast<unsigned>(dim < 65535 ? dim : 65535));
  rotate_diagonal_kernel<<<grid, threads, 0, stream>>>(wide, dim, rank, scales, u);
  MOSS_CUDA_CHECK_LAUNCH();
}

}  // namespace moss::kernels::cuda
