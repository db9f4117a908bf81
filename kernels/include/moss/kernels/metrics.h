#pragma once

#include "moss/kernels/matrix.h"

namespace moss::kernels {

/// Reconstruction errors of x_hat against x (same shape).
struct ReconstructionError {
  double relative = 0;     ///< ||X - X_hat||_F / ||X||_F (0 when X = 0 and X_hat = 0)
  double worst_token = 0;  ///< max over tokens of ||x_t - x_hat_t|| / ||x_t|| (absolute for x_t = 0)
  double error_sq = 0;     ///< ||X - X_hat||_F^2 (to combine tensors)
  double norm_sq = 0;      ///< ||X||_F^2
};

/// Errors of `x_hat` against `x`; x_hat must have x's shape.
ReconstructionError reconstruction_error(MatrixView x, MatrixView x_hat);

}  // namespace moss::kernels
