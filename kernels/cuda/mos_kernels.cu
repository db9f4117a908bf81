// The diagonal mos path on the device (one rotation, W^T W = diag(lambda); theta_diagonal.h): the
// theta of a block from its sample projections, then U(theta) = Ubar diag(a) + W diag(b). Both are
// stream-ordered, so the GPU encode of a one-rotation state goes from its sample projection to its
// projection without waiting for the host (the host work it replaces was ~5-100 us, the wait for it
// a synchronisation and two copies per block). The general theta fit's steps (theta_general.h,
// several rotations) are launched here too.
#include <stdexcept>
#include <string>

#include "codec_launch.h"
#include "cuda_check.h"
#include "moss/kernels/rotation.h"
#include "theta_diagonal.h"
#include "theta_general.h"
#include "theta_kernels.h"

namespace moss::kernels::cuda {

void launch_theta_diagonal(const float* p, std::int64_t rows, int rank, const double* lambda, double* stats,
                           std::int64_t stats_doubles, float* theta, float* scales, cudaStream_t stream) {
  if (rank <= 0) return;
  if (stats_doubles < theta_diagonal_scratch(rank))
    throw std::invalid_argument("launch_theta_diagonal: " + std::to_string(stats_doubles) + " doubles of scratch, " +
                                std::to_string(theta_diagonal_scratch(rank)) + " needed at rank " + std::to_string(rank));
  static_assert(kThetaStatParts % kStatThreadsY == 0, "whole blocks of partitions");
  const dim3 grid(static_cast<unsigned>((rank + 31) / 32), kThetaStatParts / kStatThreadsY), block(32, kStatThreadsY);
  theta_stats_kernel<<<grid, block, 0, stream>>>(p, rows, rank, stats);
  MOSS_CUDA_CHECK_LAUNCH();
  theta_diagonal_kernel<<<1, kThetaThreads, 0, stream>>>(stats, rank, lambda, stats + static_cast<std::int64_t>(3 * kThetaStatParts) * rank,
                                                         kMaxTheta, theta, scales);
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

std::unique_ptr<ThetaGeneralSteps> make_cuda_theta_steps(cudaStream_t stream) {
  auto launch = [stream](dim3 grid, auto kernel, auto... args) {
    kernel<<<grid, kFitThreads, 0, stream>>>(args...);
    MOSS_CUDA_CHECK_LAUNCH();
  };
  auto copy = [stream](double* host, const double* device, std::size_t count) {
    MOSS_CUDA_CHECK(cudaMemcpyAsync(host, device, count * sizeof(double), cudaMemcpyDeviceToHost, stream));
    MOSS_CUDA_CHECK(cudaStreamSynchronize(stream));
  };
  return std::make_unique<LaunchedThetaSteps<decltype(launch), decltype(copy)>>(launch, copy);
}

}  // namespace moss::kernels::cuda
