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

void rotated_basis_general(const CodecState& s, const float* theta, RowMatrixF& u) {
  const int m = s.config.rotations, r = s.config.rank, nd = m * r;
  const std::int64_t dim = s.dim;
  const Eigen::Map<const RowMatrixD> dg(s.direction_gram.data(), nd, nd);
  const Eigen::Map<const RowMatrixD> bg(s.basis_gram.data(), r, (m + 1) * r);
  RowMatrixD mm = RowMatrixD::Zero(r, r), ft = RowMatrixD::Zero(r, r), upper = RowMatrixD::Zero(r, r);
  for (int i = 0; i < m; ++i) {  // M = sum_i theta_i^2 D_ii + S + S^T, S = sum_{i<j} theta_i theta_j D_ij
    if (theta[i] == 0.0f) continue;
    ft += static_cast<double>(theta[i]) * bg.middleCols((i + 1) * r, r);  // Ubar^T W_theta
    mm += static_cast<double>(theta[i]) * theta[i] * dg.block(i * r, i * r, r, r);
    for (int j = i + 1; j < m; ++j)
      if (theta[j] != 0.0f) upper += static_cast<double>(theta[i]) * theta[j] * dg.block(i * r, j * r, r, r);
  }
  mm += upper + upper.transpose();
  // U2 = Ubar K + W_theta, K = I - M/2, and its Gram matrix from the stored r x r blocks (exactly
  // U2^T U2 of the rounded bases, not the I + M^2/4 of exact ones): K E0 K + K F + F^T K + M with
  // E0 = Ubar^T Ubar, F = Ubar^T W_theta. The two Newton-Schulz steps U <- U (3I - U^T U)/2 of
  // rotated_basis_eigen then act on r x r factors only: U = U2 c1 c2 with c1 = (3I - G)/2,
  // c2 = (3I - c1^T G c1)/2. fp32 is enough for these r x r products: U is rounded to the wire type.
  const RowMatrixF k = (RowMatrixD::Identity(r, r) - 0.5 * mm).cast<float>();
  const RowMatrixF e0 = bg.leftCols(r).cast<float>(), f = ft.cast<float>();
  const RowMatrixF kf = k * f;
  RowMatrixF g = k * e0 * k + kf + kf.transpose() + mm.cast<float>();
  const RowMatrixF id = RowMatrixF::Identity(r, r);
  const RowMatrixF c1 = 1.5f * id - 0.5f * g;
  const RowMatrixF g1 = c1.transpose() * g * c1;
  const RowMatrixF c = c1 * (1.5f * id - 0.5f * g1);
  RowMatrixF w = theta[0] * map(s.directions.data(), dim, r);  // no zero-fill pass
  for (int i = 1; i < m; ++i)
    if (theta[i] != 0.0f) w += theta[i] * map(s.directions.data() + i * dim * r, dim, r);
  u.resize(dim, r);
  u.noalias() = map(s.basis.data(), dim, r) * (k * c);
  u.noalias() += w * c;
}

bool has_rotation_grams(const CodecState& s) {
  const auto r = static_cast<std::size_t>(s.config.rank), m = static_cast<std::size_t>(s.config.rotations);
  return m >= 1 && s.direction_gram.size() == m * r * m * r && s.basis_gram.size() == r * (m + 1) * r;
}

}  // namespace moss::kernels::cpu
