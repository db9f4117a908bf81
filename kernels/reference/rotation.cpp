// Plain C++ U(theta) (rotation.h): shared by the reference codec and moss_gpu_check.
#include "moss/kernels/rotation.h"

#include <stdexcept>

namespace moss::kernels {

namespace {
// c (r x r) = a^T b for a, b dim x r row-major, double accumulation.
std::vector<double> gram_at_b(const float* a, const float* b, std::int64_t dim, int r) {
  std::vector<double> c(static_cast<std::size_t>(r) * r, 0.0);
  for (std::int64_t i = 0; i < dim; ++i) {
    const float* ai = a + i * r;
    const float* bi = b + i * r;
    for (int p = 0; p < r; ++p) {
      const double ap = ai[p];
      double* cp = c.data() + static_cast<std::size_t>(p) * r;
      for (int q = 0; q < r; ++q) cp[q] += ap * bi[q];
    }
  }
  return c;
}

// u (dim x r) <- u * k (r x r).
void right_multiply(std::vector<float>& u, const std::vector<double>& k, std::int64_t dim, int r) {
  std::vector<double> row(static_cast<std::size_t>(r));
  for (std::int64_t i = 0; i < dim; ++i) {
    float* ui = u.data() + i * r;
    std::fill(row.begin(), row.end(), 0.0);
    for (int p = 0; p < r; ++p) {
      const double up = ui[p];
      const double* kp = k.data() + static_cast<std::size_t>(p) * r;
      for (int q = 0; q < r; ++q) row[q] += up * kp[q];
    }
    for (int q = 0; q < r; ++q) ui[q] = static_cast<float>(row[q]);
  }
}
}  // namespace

std::vector<float> rotated_basis_second_order(std::span<const float> ubar,
                                              std::span<const float> directions,
                                              std::span<const float> theta, std::int64_t dim,
                                              int rank) {
  const auto block = static_cast<std::size_t>(dim) * static_cast<std::size_t>(rank);
  const std::size_t m = theta.size();
  if (ubar.size() != block || directions.size() < m * block)
    throw std::invalid_argument("rotated_basis: basis/direction sizes do not match dim x rank");
  std::vector<float> u(ubar.begin(), ubar.end());
  if (m == 0) return u;
  // W = sum theta_i W_i, and M = W_sum^T W_sum = sum_ij theta_i theta_j W_i^T W_j.
  std::vector<float> w(block, 0.0f);
  for (std::size_t i = 0; i < m; ++i) {
    const float t = theta[i];
    const float* wi = directions.data() + i * block;
    for (std::size_t e = 0; e < block; ++e) w[e] += t * wi[e];
  }
  const std::vector<double> mm = gram_at_b(w.data(), w.data(), dim, rank);
  // U = Ubar + W - Ubar M / 2.
  std::vector<double> k(static_cast<std::size_t>(rank) * rank);
  for (int p = 0; p < rank; ++p)
    for (int q = 0; q < rank; ++q)
      k[static_cast<std::size_t>(p) * rank + q] = (p == q ? 1.0 : 0.0) - 0.5 * mm[static_cast<std::size_t>(p) * rank + q];
  right_multiply(u, k, dim, rank);
  for (std::size_t e = 0; e < block; ++e) u[e] += w[e];
  return u;
}

std::vector<float> rotated_basis(std::span<const float> ubar, std::span<const float> directions,
                                 std::span<const float> theta, std::int64_t dim, int rank) {
  std::vector<float> u = rotated_basis_second_order(ubar, directions, theta, dim, rank);
  if (theta.empty()) return u;
  for (int step = 0; step < 2; ++step) {  // Newton-Schulz: U <- U (3I - U^T U) / 2
    std::vector<double> g = gram_at_b(u.data(), u.data(), dim, rank);
    for (int p = 0; p < rank; ++p)
      for (int q = 0; q < rank; ++q) {
        double& e = g[static_cast<std::size_t>(p) * rank + q];
        e = ((p == q ? 3.0 : 0.0) - e) * 0.5;
      }
    right_multiply(u, g, dim, rank);
  }
  return u;
}

}  // namespace moss::kernels
