#pragma once
// The device steps of mos's general theta fit (theta_general.h: the kernels), their operands, and
// the steps as an interface: the CUDA launchers
// (mos_kernels.cu, make_cuda_theta_steps in codec_launch.h) and, in the tests, the same kernels under
// the CPU emulation. cpu/device_theta_fit.cpp drives them with the CPU encoder's line search. Std
// types only: the pointers are device pointers (host pointers under the emulation).
#include <cstddef>
#include <cstdint>

#include "host_device.h"

namespace moss::kernels::cuda {

/// The width of a panel of the device's blocked Cholesky factorisation.
inline constexpr int kCholeskyPanel = 32;

/// The most rotations the device fit takes (theta travels in the launch's arguments); more run on
/// the host.
inline constexpr int kDeviceThetaRotations = 16;

/// A row-major matrix operand of the device fit: fp32 (the sample projections, the direction Gram
/// blocks) or double (the fit's own scratch), read as op(X)(i, j) = X[offset + i ld + j], or
/// X[offset + j ld + i] when `transposed`.
struct FitOperand {
  const void* data = nullptr;
  std::int64_t ld = 0;
  bool f32 = false;
  bool transposed = false;
  std::int64_t offset = 0;
};

/// theta by value in a launch's arguments.
struct FitTheta {
  float v[kDeviceThetaRotations] = {};
};

/// out[b] = sum_{p < rows, q < cols} op(a)(p, q) op(b)(p, q) for the pairs b of a launch: with
/// `upper`, b enumerates (i, j), 0 <= i <= j < count, row by row; otherwise (0, j), j < count. The
/// pair (i, j) shifts a's offset by i a_i + j a_j and b's by i b_i + j b_j elements.
struct FrobeniusPairs {
  FitOperand a, b;
  int rows = 0, cols = 0, count = 1;
  bool upper = false;
  std::int64_t a_i = 0, a_j = 0, b_i = 0, b_j = 0;
};

/// The number of pairs of a FrobeniusPairs launch.
MOSS_HOST_DEVICE inline int frobenius_pair_count(const FrobeniusPairs& f) { return f.upper ? f.count * (f.count + 1) / 2 : f.count; }

/// The fit's device steps, in stream order: each returns once its work is queued, download() once
/// it is done.
class ThetaGeneralSteps {
 public:
  virtual ~ThetaGeneralSteps() = default;
  /// c (rows x cols, ldc) = alpha op(a) op(b) + beta c (fit_gemm_kernel).
  virtual void gemm(int rows, int cols, int depth, double alpha, const FitOperand& a, const FitOperand& b, double beta, double* c,
                    std::int64_t ldc) = 0;
  /// out[0 .. frobenius_pair_count(f)) (fit_frobenius_kernel).
  virtual void frobenius(const FrobeniusPairs& f, double* out) = 0;
  /// mm = M(theta) from the direction Gram matrix d (fit_direction_sum_kernel).
  virtual void direction_sum(const float* d, int m, int r, const FitTheta& theta, double* mm) = 0;
  /// y = P_0 + sum_k theta_k P_k, q = I (fit_combine_kernel).
  virtual void combine(const float* p, std::int64_t rows, int m, int r, const FitTheta& theta, double* y, double* q) = 0;
  /// Columns [j0, j0 + width) of the lower Cholesky factor of q (r x r, ld r) in place, the earlier
  /// columns' contributions already subtracted (fit_cholesky_panel_kernel).
  virtual void cholesky_panel(double* q, int r, int j0, int width) = 0;
  /// z = y L^-T, or y L^-1 when `transposed`, row by row (fit_triangular_rows_kernel); all ld r.
  virtual void triangular_rows(const double* l, int r, const double* y, double* z, std::int64_t rows, bool transposed) = 0;
  /// v = v + v^T + (mc + mc^T) / 2 (fit_symmetrise_kernel).
  virtual void symmetrise(double* v, const double* mc, int r) = 0;
  /// The mixing matrix's steps (fit_factors_kernel, fit_delta_kernel, fit_inner_kernel,
  /// fit_mix_bits_kernel); all r x r, ld r, but bg (r x (m + 1) r) and bits (2 (m + 1) r r).
  virtual void factors(const double* mm, const double* bg, int m, int r, const FitTheta& theta, double* k, double* f) = 0;
  virtual void delta(const double* mm, const double* ky, int r, double* delta) = 0;
  virtual void inner(const double* delta, const double* d2, int r, double* inner, double* c) = 0;
  virtual void mix_bits(const double* kc, const double* c, int m, int r, const FitTheta& theta, std::uint16_t* bits) = 0;
  /// Copies `count` doubles to the host once the steps before it are done.
  virtual void download(double* host, const double* device, std::size_t count) = 0;
};

}  // namespace moss::kernels::cuda
