// Randomised principal subspaces and U(theta) with Eigen.
#include <cmath>
#include <numbers>
#include <random>

#include "eigen_types.h"

namespace moss::kernels::cpu {

RowMatrixF orthonormal_columns(const RowMatrixF& a) {
  Eigen::HouseholderQR<Eigen::MatrixXf> qr(a);
  Eigen::MatrixXf q = qr.householderQ() * Eigen::MatrixXf::Identity(a.rows(), a.cols());
  return q;
}

RowMatrixF top_subspace(MatrixView x, int rank, int iterations, std::uint64_t seed, const RowMatrixF* start) {
  const std::int64_t d = x.cols;
  const auto p = static_cast<Eigen::Index>(std::min<std::int64_t>(d, rank + 8));
  std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ull + 17);
  RowMatrixF v(d, p);
  for (Eigen::Index i = 0; i < v.size(); ++i) {  // Box-Muller on the library-independent engine
    const double u1 = (static_cast<double>(rng() >> 11) + 0.5) / 9007199254740992.0;
    const double u2 = (static_cast<double>(rng() >> 11) + 0.5) / 9007199254740992.0;
    v.data()[i] = static_cast<float>(std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2));
  }
  if (start != nullptr && start->rows() == d && start->cols() <= p) v.leftCols(start->cols()) = *start;
  v = orthonormal_columns(v);
  const ConstMapF xm = map(x);
  RowMatrixF y;
  for (int it = 0; it < iterations; ++it) {
    y.noalias() = xm * v;
    v.noalias() = xm.transpose() * y;
    v = orthonormal_columns(v);
  }
  y.noalias() = xm * v;
  const Eigen::MatrixXd small = (y.transpose() * y).cast<double>();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(small);
  // Eigenvalues ascend: take the last `rank` columns, largest first.
  Eigen::MatrixXf e(p, rank);
  for (int j = 0; j < rank; ++j) e.col(j) = eig.eigenvectors().col(p - 1 - j).cast<float>();
  RowMatrixF u = v * e;
  return u;
}

RowMatrixF rotated_basis_eigen(const float* ubar, const float* directions, const float* theta,
                               int rotations, std::int64_t dim, int rank) {
  RowMatrixF u = map(ubar, dim, rank);
  if (rotations == 0) return u;
  RowMatrixF w = RowMatrixF::Zero(dim, rank);
  for (int i = 0; i < rotations; ++i) w += theta[i] * map(directions + i * dim * rank, dim, rank);
  const Eigen::MatrixXd m = (w.transpose() * w).cast<double>();
  const Eigen::MatrixXd k = Eigen::MatrixXd::Identity(rank, rank) - 0.5 * m;
  u = u * k.cast<float>() + w;
  for (int step = 0; step < 2; ++step) {  // Newton-Schulz, as in rotation.cpp
    const Eigen::MatrixXd g = (u.transpose() * u).cast<double>();
    const Eigen::MatrixXd ns = 0.5 * (3.0 * Eigen::MatrixXd::Identity(rank, rank) - g);
    u = u * ns.cast<float>();
  }
  return u;
}

}  // namespace moss::kernels::cpu
