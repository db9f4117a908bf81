#pragma once
// mos's general theta fit (several rotations) with its objective evaluated by device steps
// (cuda/theta_general.h) on the sample projections where they were computed: the CPU encoder's
// GeneralObjective (theta_fit.cpp) step for step, and its line search (maximise_theta_newton) on the
// host, which reads back one number, one gradient or the Hessian at zero per step.
#include <cstdint>
#include <span>
#include <vector>

#include "../cuda/theta_general_steps.h"

namespace moss::kernels::cpu {

/// GeneralObjective (theta_fit.cpp) on device steps: f(theta) = tr(Q^-1 Y^T Y), its gradient and its
/// Hessian at theta = 0, from p, d and scratch as fit_block_theta_on_device takes them. Each call
/// launches its steps and reads its result back (one synchronisation).
class DeviceGeneralObjective {
 public:
  DeviceGeneralObjective(cuda::ThetaGeneralSteps& steps, const float* p, std::int64_t n, const float* d, int m, int r, double* scratch);
  double value(const std::vector<float>& t);
  void gradient(const std::vector<float>& t, std::vector<double>& out);
  /// m x m, row-major.
  std::vector<double> hessian_at_zero();

 private:
  struct Scratch {  // M, Q (then L), G00 / C, V, MC (r x r); Y, Z, R (n x r); the read-back values
    double *mm, *q, *c, *v, *mc, *y, *z, *rt, *out;
  };
  static bool zero(const std::vector<float>& t);
  [[nodiscard]] cuda::FitOperand block(int i) const;
  [[nodiscard]] cuda::FitOperand direction_gram() const;
  [[nodiscard]] cuda::FitOperand square(const double* x) const;
  void form(const std::vector<float>& t);
  void cholesky();

  cuda::ThetaGeneralSteps& steps_;
  const float *p_, *d_;
  std::int64_t n_;
  int m_, r_;
  Scratch s_;
  std::vector<float> last_;
};

/// Doubles of device scratch fit_block_theta_on_device needs for n sample rows, m rotations, rank r.
std::int64_t device_theta_scratch(std::int64_t n, int m, int r);

/// theta of one block, as fit_block_theta(p, n, dir_gram, m, r) up to the order of the sums in
/// double: p the sample projections (n x (m + 1) r, fp32), d the direction Gram matrix (m r square,
/// fp32), scratch device_theta_scratch(n, m, r) doubles; all three in the steps' memory; `traces`
/// theta_traces of d (m x m, on the host). 1 <= m <= cuda::kDeviceThetaRotations.
std::vector<float> fit_block_theta_on_device(cuda::ThetaGeneralSteps& steps, const float* p, std::int64_t n, const float* d, int m,
                                             int r, double* scratch, std::span<const double> traces);

/// tr(W_i^T W_j) (m x m, symmetric) of a direction Gram matrix `dir_gram` (CodecState::direction_gram,
/// on the host): the trust region of the line search (eigen_types.h direction_traces, admissible_theta).
std::vector<double> theta_traces(std::span<const float> dir_gram, int m, int r);

/// The mixing matrix S = [K C; theta_1 C; ..; theta_m C] of U(theta) = [Ubar W_1 .. W_m] S
/// (MosBlockMixer::mix: rotation_factors' r x r factors, here in double where it uses fp32) as bf16 hi
/// and lo bits in to_bf16_hi_lo's layout, formed on the device: d the direction Gram matrix (m r
/// square, fp32), bg the basis Gram blocks (CodecState::basis_gram, r x (m + 1) r, double), scratch
/// device_theta_scratch(n, m, r) doubles for any n, bits 2 (m + 1) r^2; all in the steps' memory. No
/// synchronisation.
void mixing_bits_on_device(cuda::ThetaGeneralSteps& steps, const std::vector<float>& theta, const float* d, const double* bg, int m, int r,
                           double* scratch, std::uint16_t* bits);

}  // namespace moss::kernels::cpu
