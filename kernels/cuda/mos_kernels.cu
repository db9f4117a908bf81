// The general theta fit's steps (theta_general.h, several rotations) are launched here too.
// The diagonal mos path on the device (one rotation, W^T W = diag(lambda); theta_diagonal.h): the
// theta of a block from its sample projections, then U(theta) = Ubar diag(a) + W diag(b). Both are
// stream-ordered, so the GPU encode of a one-rotation state goes from its sample projection to its
// projection without waiting for the host (the host work it replaces was ~5-100 us, the wait for it
// a synchronisation and two copies per block).
#include <algorithm>
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

namespace {
unsigned fit_blocks(std::int64_t items) { return static_cast<unsigned>((items + kFitThreads - 1) / kFitThreads); }

class CudaThetaSteps final : public ThetaGeneralSteps {
 public:
  explicit CudaThetaSteps(cudaStream_t stream) : stream_(stream) {}

  void gemm(int rows, int cols, int depth, double alpha, const FitOperand& a, const FitOperand& b, double beta, double* c,
            std::int64_t ldc) override {
    if (rows <= 0 || cols <= 0) return;
    const dim3 grid(static_cast<unsigned>((cols + kFitTile - 1) / kFitTile), static_cast<unsigned>((rows + kFitTile - 1) / kFitTile));
    fit_gemm_kernel<<<grid, kFitThreads, 0, stream_>>>(rows, cols, depth, alpha, a, b, beta, c, ldc);
    MOSS_CUDA_CHECK_LAUNCH();
  }
  void frobenius(const FrobeniusPairs& f, double* out) override {
    fit_frobenius_kernel<<<static_cast<unsigned>(frobenius_pair_count(f)), kFitThreads, 0, stream_>>>(f, out);
    MOSS_CUDA_CHECK_LAUNCH();
  }
  void direction_sum(const float* d, int m, int r, const FitTheta& theta, double* mm) override {
    fit_direction_sum_kernel<<<fit_blocks(static_cast<std::int64_t>(r) * r), kFitThreads, 0, stream_>>>(d, m, r, theta, mm);
    MOSS_CUDA_CHECK_LAUNCH();
  }
  void combine(const float* p, std::int64_t rows, int m, int r, const FitTheta& theta, double* y, double* q) override {
    const std::int64_t items = std::max(rows * r, static_cast<std::int64_t>(r) * r);
    fit_combine_kernel<<<fit_blocks(items), kFitThreads, 0, stream_>>>(p, rows, m, r, theta, y, q);
    MOSS_CUDA_CHECK_LAUNCH();
  }
  void cholesky_panel(double* q, int r, int j0, int width) override {
    fit_cholesky_panel_kernel<<<1, kFitThreads, 0, stream_>>>(q, r, r, j0, width);
    MOSS_CUDA_CHECK_LAUNCH();
  }
  void triangular_rows(const double* l, int r, const double* y, double* z, std::int64_t rows, bool transposed) override {
    if (rows <= 0) return;
    constexpr int kRowsPerBlock = kFitThreads / 32;
    fit_triangular_rows_kernel<<<static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock), kFitThreads, 0, stream_>>>(
        l, r, r, y, r, z, r, rows, transposed);
    MOSS_CUDA_CHECK_LAUNCH();
  }
  void symmetrise(double* v, const double* mc, int r) override {
    fit_symmetrise_kernel<<<fit_blocks(static_cast<std::int64_t>(r) * r), kFitThreads, 0, stream_>>>(v, mc, r);
    MOSS_CUDA_CHECK_LAUNCH();
  }
  void factors(const double* mm, const double* bg, int m, int r, const FitTheta& theta, double* k, double* f) override {
    fit_factors_kernel<<<fit_blocks(static_cast<std::int64_t>(r) * r), kFitThreads, 0, stream_>>>(mm, bg, m, r, theta, k, f);
    MOSS_CUDA_CHECK_LAUNCH();
  }
  void delta(const double* mm, const double* ky, int r, double* delta) override {
    fit_delta_kernel<<<fit_blocks(static_cast<std::int64_t>(r) * r), kFitThreads, 0, stream_>>>(mm, ky, r, delta);
    MOSS_CUDA_CHECK_LAUNCH();
  }
  void inner(const double* delta, const double* d2, int r, double* inner, double* c) override {
    fit_inner_kernel<<<fit_blocks(static_cast<std::int64_t>(r) * r), kFitThreads, 0, stream_>>>(delta, d2, r, inner, c);
    MOSS_CUDA_CHECK_LAUNCH();
  }
  void mix_bits(const double* kc, const double* c, int m, int r, const FitTheta& theta, std::uint16_t* bits) override {
    fit_mix_bits_kernel<<<fit_blocks(static_cast<std::int64_t>(m + 1) * r * r), kFitThreads, 0, stream_>>>(kc, c, m, r, theta, bits);
    MOSS_CUDA_CHECK_LAUNCH();
  }
  void download(double* host, const double* device, std::size_t count) override {
    MOSS_CUDA_CHECK(cudaMemcpyAsync(host, device, count * sizeof(double), cudaMemcpyDeviceToHost, stream_));
    MOSS_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

 private:
  cudaStream_t stream_;
};
}  // namespace

std::unique_ptr<ThetaGeneralSteps> make_cuda_theta_steps(cudaStream_t stream) { return std::make_unique<CudaThetaSteps>(stream); }

}  // namespace moss::kernels::cuda
