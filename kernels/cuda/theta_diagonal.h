#pragma once
// The theta of one mos block on the diagonal path (kernels/cpu/eigen_types.h: one rotation, W^T W =
// diag(lambda)), in plain C++ that both ends compile: the CPU encoder (mos_rotation.cpp
// fit_theta_diagonal, diagonal_factors) and the device (theta_kernels.h theta_diagonal_kernel), so
// the GPU encode chooses theta by the same steps without a trip to the host. No CUDA header needed:
// the functions are __host__ __device__ under nvcc and plain C++ otherwise.
//
// Per column p of P = X [Ubar W], with the column statistics g00 = sum P0^2, g01 = sum P0 P1,
// g11 = sum P1^2 of the block's sample, and k = 1 - theta^2 lambda / 2:
//   f(theta) = sum_p (k^2 g00 + 2 theta k g01 + theta^2 g11) / (1 + theta^4 lambda^2 / 4),
// theta_fit.cpp's objective with every r x r matrix diagonal.

#include <cmath>

#include "host_device.h"

namespace moss::kernels::cuda {

/// Row partitions of the device's column statistics (theta_kernels.h), added in partition order.
constexpr int kThetaStatParts = 32;

/// Column statistics of one column of the sample projections (double sums over the sample rows).
struct ColumnStat {
  double g00, g01, g11;
};

/// Column p's term of f(theta).
MOSS_HOST_DEVICE inline double diagonal_term(const ColumnStat& s, double lambda, float theta) {
  const double th = theta, th2 = th * th;
  const double k = 1.0 - 0.5 * th2 * lambda;
  const double num = k * k * s.g00 + 2.0 * th * k * s.g01 + th2 * s.g11;
  return num / (1.0 + 0.25 * th2 * th2 * lambda * lambda);
}

/// The objective at two thetas, evaluated in one pass (the central difference needs both).
struct ObjectivePair {
  double first, second;
};

/// theta_fit.cpp maximise_theta for one generator: gradient ascent from theta = 0 with central
/// differences (h = 1e-3), backtracking along the gradient's sign from a step of 0.25 (halved below
/// an improvement, grown 1.5x after one), at most 12 steps, |theta| <= max_theta, and theta = 0 kept
/// unless it is beaten. `objective(a, b)` returns {f(a), f(b)}.
#ifdef __CUDACC__
#pragma nv_exec_check_disable
#endif
template <typename Objective>
MOSS_HOST_DEVICE float maximise_theta_one(Objective&& objective, float max_theta) {
  constexpr float kH = 1e-3f;
  float theta = 0.0f, step = 0.25f;
  const double f0 = objective(0.0f, 0.0f).first;
  double best = f0;
  for (int it = 0; it < 12 && step > 1e-4f; ++it) {
    const ObjectivePair around = objective(theta + kH, theta - kH);
    const double g = (around.first - around.second) / (2.0 * kH);
    const double norm = sqrt(g * g);
    if (norm == 0) break;
    bool improved = false;
    for (; step > 1e-4f; step *= 0.5f) {
      const auto v = static_cast<float>(theta + step * g / norm);
      const float trial = v < -max_theta ? -max_theta : (max_theta < v ? max_theta : v);
      const double ft = objective(trial, trial).first;
      if (ft > best) {
        best = ft, theta = trial, improved = true;
        step *= 1.5f;
        break;
      }
    }
    if (!improved) break;
  }
  return best > f0 ? theta : 0.0f;  // plain PCA is never beaten by a worse theta
}

/// The objective at a trial theta and at theta +- h (h = 1e-3: the central difference the next step
/// of the line search takes there).
struct ObjectiveTriple {
  double at, plus, minus;
};

/// maximise_theta_one taken in rounds of up to kBatch trials whose objectives are independent, for a
/// device that evaluates them at once (one warp each): every round evaluates the backtracking line's
/// next kBatch steps, each with the central difference at its trial, so that the step accepted (the
/// first that improves, as in maximise_theta_one) comes with its gradient. The same evaluations are
/// compared in the same order, so the result is maximise_theta_one's whenever `evaluate` computes each
/// objective as `objective` does; the sequential depth falls from one evaluation per trial and per
/// gradient to one round per accepted step (and per kBatch rejected trials). `evaluate(trials, n,
/// out)` fills out[0, n) for trials[0, n), 1 <= n <= kBatch; every caller thread must make the same
/// calls (a device version synchronises inside).
#ifdef __CUDACC__
#pragma nv_exec_check_disable
#endif
template <int kBatch, typename Evaluate>
MOSS_HOST_DEVICE float maximise_theta_batched(Evaluate&& evaluate, float max_theta) {
  static_assert(kBatch >= 1, "at least one trial per round");
  float trials[kBatch], steps[kBatch];
  ObjectiveTriple out[kBatch];
  trials[0] = 0.0f;
  evaluate(trials, 1, out);
  const double f0 = out[0].at;
  double best = f0, plus = out[0].plus, minus = out[0].minus;
  float theta = 0.0f, step = 0.25f;
  for (int it = 0; it < 12 && step > 1e-4f; ++it) {
    constexpr float kH = 1e-3f;
    const double g = (plus - minus) / (2.0 * kH);
    const double norm = sqrt(g * g);
    if (norm == 0) break;
    bool improved = false;
    while (!improved && step > 1e-4f) {
      int n = 0;
      for (float s = step; n < kBatch && s > 1e-4f; s *= 0.5f, ++n) {
        const auto v = static_cast<float>(theta + s * g / norm);
        trials[n] = v < -max_theta ? -max_theta : (max_theta < v ? max_theta : v);
        steps[n] = s;
      }
      evaluate(trials, n, out);
      step = steps[n - 1] * 0.5f;  // where the next round starts if none of these improves
      for (int j = 0; j < n; ++j)
        if (out[j].at > best) {
          best = out[j].at, theta = trials[j], improved = true;
          plus = out[j].plus, minus = out[j].minus;
          step = steps[j] * 1.5f;
          break;
        }
    }
    if (!improved) break;
  }
  return best > f0 ? theta : 0.0f;  // plain PCA is never beaten by a worse theta
}

/// maximise_theta_one with f summed over the columns in column order (the CPU encoder's sum; the
/// device adds the same terms in another order). stats, lambda: rank entries.
MOSS_HOST_DEVICE inline float fit_theta_columns(const ColumnStat* stats, const double* lambda, int rank, float max_theta) {
  auto f = [&](float a, float b) {
    ObjectivePair out{0.0, 0.0};
    for (int p = 0; p < rank; ++p) {
      out.first += diagonal_term(stats[p], lambda[p], a);
      out.second += diagonal_term(stats[p], lambda[p], b);
    }
    return out;
  };
  return maximise_theta_one(f, max_theta);
}

/// Column p's scales of U(theta) = Ubar diag(a) + W diag(b): U2 = Ubar diag(k) + theta W has
/// U2^T U2 = diag(g), g = 1 + theta^4 lambda^2 / 4; two Newton-Schulz steps U <- U (3I - G)/2 (as
/// rotation.cpp) scale it by c = c1 c2, c1 = (3 - g)/2, c2 = (3 - c1^2 g)/2. fp32, as applied.
struct ColumnScale {
  float a, b;
};
MOSS_HOST_DEVICE inline ColumnScale diagonal_scale(double lambda, float theta) {
  const double th = theta, th2 = th * th;
  const double k = 1.0 - 0.5 * th2 * lambda;
  const double g = 1.0 + 0.25 * th2 * th2 * lambda * lambda;
  const double c1 = 0.5 * (3.0 - g);
  const double c = c1 * 0.5 * (3.0 - c1 * c1 * g);
  return {static_cast<float>(k * c), static_cast<float>(th * c)};
}

}  // namespace moss::kernels::cuda
