#include "moss/kernels/metrics.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace moss::kernels {

ReconstructionError reconstruction_error(MatrixView x, MatrixView x_hat) {
  if (x.rows != x_hat.rows || x.cols != x_hat.cols)
    throw std::invalid_argument("reconstruction_error: shapes differ");
  ReconstructionError r;
  for (std::int64_t t = 0; t < x.rows; ++t) {
    const float* a = x.row(t);
    const float* b = x_hat.row(t);
    double e = 0, n = 0;
    for (std::int64_t j = 0; j < x.cols; ++j) {
      const double diff = static_cast<double>(a[j]) - b[j];
      e += diff * diff;
      n += static_cast<double>(a[j]) * a[j];
    }
    r.error_sq += e;
    r.norm_sq += n;
    r.worst_token = std::max(r.worst_token, n > 0 ? std::sqrt(e / n) : std::sqrt(e));
  }
  r.relative = r.norm_sq > 0 ? std::sqrt(r.error_sq / r.norm_sq) : std::sqrt(r.error_sq);
  return r;
}

}  // namespace moss::kernels
