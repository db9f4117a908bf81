// The diagonal MoS path (eigen_types.h): theta fit and U(theta) when W_1^T W_1 is diagonal.
#include <algorithm>
#include <cmath>

#include "eigen_types.h"
#include "moss/kernels/rotation.h"

namespace moss::kernels::cpu {

bool diagonal_rotation(const CodecState& s) {
  const std::int64_t r = s.config.rank;
  if (s.config.method != Method::mos || s.config.rotations != 1) return false;
  if (static_cast<std::int64_t>(s.direction_gram.size()) != r * r) return false;
  double diag = 0, off = 0;
  for (std::int64_t p = 0; p < r; ++p)
    for (std::int64_t q = 0; q < r; ++q) {
      const double v = s.direction_gram[static_cast<std::size_t>(p * r + q)];
      (p == q ? diag : off) += v * v;
    }
  const double tol = diagonal_tolerance(s.config.value_bytes);
  return off <= tol * tol * diag;
}

Eigen::ArrayXd direction_eigenvalues(const CodecState& s) {
  const std::int64_t r = s.config.rank;
  Eigen::ArrayXd lambda(r);
  for (std::int64_t p = 0; p < r; ++p) lambda(p) = s.direction_gram[static_cast<std::size_t>(p * r + p)];
  return lambda;
}

void ColumnStats::add(const Eigen::Ref<const RowMatrixF>& p0, const Eigen::Ref<const RowMatrixF>& p1) {
  // Row by row (the panels are row-major): a column-wise reduction would stride through them.
  const Eigen::Index r = p0.cols();
  double* s00 = g00.data();
  double* s01 = g01.data();
  double* s11 = g11.data();
  for (Eigen::Index i = 0; i < p0.rows(); ++i) {
    const float* a = p0.row(i).data();
    const float* b = p1.row(i).data();
    for (Eigen::Index q = 0; q < r; ++q) {
      const double x = a[q], y = b[q];
      s00[q] += x * x;
      s01[q] += x * y;
      s11[q] += y * y;
    }
  }
}

float fit_theta_diagonal(const ColumnStats& st, const Eigen::ArrayXd& lambda) {
  // f(theta) = tr((U^T U)^-1 U^T X^T X U), every matrix diagonal: the objective of theta_objective.
  auto f = [&](const std::vector<float>& t) {
    const double th = t[0], th2 = th * th;
    const Eigen::ArrayXd k = 1.0 - 0.5 * th2 * lambda;
    const Eigen::ArrayXd num = k * k * st.g00 + 2.0 * th * k * st.g01 + th2 * st.g11;
    const Eigen::ArrayXd utu = 1.0 + 0.25 * th2 * th2 * lambda * lambda;
    return (num / utu).sum();
  };
  return maximise_theta(f, 1)[0];
}

DiagonalFactors diagonal_factors(const Eigen::ArrayXd& lambda, float theta) {
  // U2 = Ubar diag(k) + theta W, G = U2^T U2 = diag(g); two Newton-Schulz steps U <- U (3I - G)/2
  // (as rotation.cpp) scale column p by c = c1 c2 with c1 = (3 - g)/2, c2 = (3 - c1^2 g)/2.
  const double th = theta, th2 = th * th;
  const Eigen::ArrayXd k = 1.0 - 0.5 * th2 * lambda;
  const Eigen::ArrayXd g = 1.0 + 0.25 * th2 * th2 * lambda * lambda;
  const Eigen::ArrayXd c1 = 0.5 * (3.0 - g);
  const Eigen::ArrayXd c = c1 * 0.5 * (3.0 - c1 * c1 * g);
  return {(k * c).cast<float>(), (th * c).cast<float>()};
}

void rotated_basis_diagonal(const float* ubar, const float* w, const Eigen::ArrayXd& lambda, float theta,
                            std::int64_t dim, int rank, RowMatrixF& u) {
  const DiagonalFactors f = diagonal_factors(lambda, theta);
  u.resize(dim, rank);
  u.array() = map(ubar, dim, rank).array().rowwise() * f.a.transpose() + map(w, dim, rank).array().rowwise() * f.b.transpose();
}

void diagonalise_first_direction(RowMatrixF& ubar, std::vector<float>& directions, int rotations) {
  const std::int64_t d = ubar.rows(), r = ubar.cols();
  if (rotations < 1 || static_cast<std::int64_t>(directions.size()) < d * r) return;
  const Eigen::MatrixXd w1 = map(directions.data(), d, r).cast<double>();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(w1.transpose() * w1);
  // Eigenvalues ascend: reverse the columns so that the largest comes first.
  const Eigen::MatrixXf q = eig.eigenvectors().rowwise().reverse().cast<float>();
  ubar = (ubar * q).eval();
  for (int i = 0; i < rotations; ++i) {
    Eigen::Map<RowMatrixF> wi(directions.data() + i * d * r, d, r);
    wi = (wi * q).eval();
  }
}

}  // namespace moss::kernels::cpu
