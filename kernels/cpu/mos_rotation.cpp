// The diagonal MoS path (eigen_types.h): theta fit and U(theta) when W_1^T W_1 is diagonal.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../cuda/theta_diagonal.h"
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
  // The device's own steps (cuda/theta_diagonal.h).
  std::vector<cuda::ColumnStat> stats(static_cast<std::size_t>(lambda.size()));
  for (Eigen::Index p = 0; p < lambda.size(); ++p) stats[static_cast<std::size_t>(p)] = {st.g00(p), st.g01(p), st.g11(p)};
  return cuda::fit_theta_columns(stats.data(), lambda.data(), static_cast<int>(lambda.size()), kMaxTheta);
}

DiagonalFactors diagonal_factors(const Eigen::ArrayXd& lambda, float theta) {
  DiagonalFactors f{Eigen::ArrayXf(lambda.size()), Eigen::ArrayXf(lambda.size())};
  for (Eigen::Index p = 0; p < lambda.size(); ++p) {
    const cuda::ColumnScale c = cuda::diagonal_scale(lambda(p), theta);
    f.a(p) = c.a, f.b(p) = c.b;
  }
  return f;
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
