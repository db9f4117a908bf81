// Randomised principal subspaces and U(theta) with Eigen.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>
#include <stdexcept>
#include <string>

#include "eigen_types.h"
#include "moss/kernels/bf16.h"

namespace moss::kernels::cpu {

RowMatrixF orthonormal_columns(const RowMatrixF& a) {
  Eigen::HouseholderQR<Eigen::MatrixXf> qr(a);
  Eigen::MatrixXf q = qr.householderQ() * Eigen::MatrixXf::Identity(a.rows(), a.cols());
  return q;
}

namespace {
// hi = bf16(a), lo = bf16(a - hi), as bf16 bits; `at(i, j)` is element (i, j) of the operand laid out
// as `rows` x `cols`; hi goes to (i, j) and lo to (i, j + cols) of a rows x 2 cols result when
// `side_by_side`, else to (i, j) and (i + rows, j) of a 2 rows x cols one.
template <typename At>
std::vector<std::uint16_t> split_bits(std::int64_t rows, std::int64_t cols, bool side_by_side, At&& at) {
  std::vector<std::uint16_t> out(static_cast<std::size_t>(2 * rows * cols));
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      const float v = at(i, j);
      const std::uint16_t hi = float_to_bf16_bits(v);
      const std::uint16_t lo = float_to_bf16_bits(v - bf16_bits_to_float(hi));
      const std::int64_t hi_at = side_by_side ? i * 2 * cols + j : i * cols + j;
      const std::int64_t lo_at = side_by_side ? hi_at + cols : (i + rows) * cols + j;
      out[static_cast<std::size_t>(hi_at)] = hi;
      out[static_cast<std::size_t>(lo_at)] = lo;
    }
  return out;
}

std::runtime_error wrong_size(const char* what) { return std::runtime_error(std::string("Bf16SplitProducts: ") + what + " returned the wrong size"); }
}  // namespace

RowMatrixF Bf16SplitProducts::x_times(const RowMatrixF& v) const {
  const std::int64_t p = v.cols();
  // X [hi lo] = [X hi, X lo]: rows x 2p; Y = X hi + X lo.
  const std::vector<float> c = x_times_bits_(split_bits(dim_, p, true, [&](std::int64_t i, std::int64_t j) { return v(i, j); }), 2 * p);
  if (static_cast<std::int64_t>(c.size()) != rows_ * 2 * p) throw wrong_size("x_times_bits");
  const ConstMapF cm(c.data(), rows_, 2 * p);
  RowMatrixF y = cm.leftCols(p) + cm.rightCols(p);
  return y;
}

RowMatrixF Bf16SplitProducts::xt_times(const RowMatrixF& y) const {
  const std::int64_t p = y.cols();
  // [hi; lo] X with hi, lo the parts of Y^T (p x rows): 2p x dim; W^T = hi X + lo X.
  const std::vector<float> c = bits_times_x_(split_bits(p, rows_, false, [&](std::int64_t i, std::int64_t j) { return y(j, i); }), 2 * p);
  if (static_cast<std::int64_t>(c.size()) != 2 * p * dim_) throw wrong_size("bits_times_x");
  const ConstMapF cm(c.data(), 2 * p, dim_);
  RowMatrixF w = (cm.topRows(p) + cm.bottomRows(p)).transpose();
  return w;
}

namespace {
// The starting block of top_subspace (dim x p): Gaussian columns, the first `kept` replaced by `start`
// where given.
RowMatrixF random_start(std::int64_t d, Eigen::Index p, std::uint64_t seed, const RowMatrixF* start, Eigen::Index kept) {
  std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ull + 17);
  RowMatrixF v(d, p);
  for (Eigen::Index i = 0; i < v.size(); ++i) {  // Box-Muller on the library-independent engine
    if (i % p < kept) {  // a column the start replaces: its two draws skipped, not computed (log, cos)
      rng.discard(2);
      continue;
    }
    constexpr double kHalfStep = 0.5 / 9007199254740992.0;  // (0, 1): log(u1) stays finite
    const double u1 = uniform_unit(rng) + kHalfStep;
    const double u2 = uniform_unit(rng) + kHalfStep;
    v.data()[i] = static_cast<float>(std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2));
  }
  if (kept > 0) v.leftCols(kept) = *start;
  return v;
}

// X Q for the thin Q factor of v0 = Q R, whose first columns' product x_start = X v0.leftCols is
// known: X Q = [x_start, X (the rest of v0)] R^-1, which multiplies X by the rest only.
RowMatrixF times_q(const SubspaceProducts& xp, const RowMatrixF& v0, const RowMatrixF& x_start) {
  const Eigen::Index p = v0.cols(), kept = x_start.cols();
  const Eigen::HouseholderQR<Eigen::MatrixXf> qr(v0);
  RowMatrixF y(x_start.rows(), p);
  y.leftCols(kept) = x_start;
  if (kept < p) y.rightCols(p - kept) = xp.x_times(v0.rightCols(p - kept));
  const Eigen::MatrixXf r = qr.matrixQR().topRows(p).triangularView<Eigen::Upper>();
  r.triangularView<Eigen::Upper>().solveInPlace<Eigen::OnTheRight>(y);
  return y;
}
}  // namespace

RowMatrixF top_subspace(MatrixView x, int rank, int iterations, std::uint64_t seed, const RowMatrixF* start,
                        const SubspaceProducts* products) {
  const CpuProducts cpu_products(x);
  return top_subspace(products != nullptr ? *products : cpu_products, x.rows, x.cols, rank, iterations, seed, start, nullptr);
}

RowMatrixF top_subspace(const SubspaceProducts& xp, std::int64_t rows, std::int64_t d, int rank, int iterations,
                        std::uint64_t seed, const RowMatrixF* start, const RowMatrixF* x_start) {
  // Oversampling of r/2 columns, 8 to 64: with 8 the top-r captured energy of a slowly decaying
  // spectrum stays 1-2 % short of the exact subspace's after 2 passes (0.3 % after 4); with r/2 up to
  // 64 it is within 0.1 % after 4, and more than 64 gains little at large r for its O(d p^2) QRs.
  const auto p = static_cast<Eigen::Index>(std::min<std::int64_t>(d, rank + std::clamp(rank / 2, 8, 64)));
  // With no more rows than columns, one pass spans all of X's row space (Y = X V has X's rank for a
  // random V), so the Rayleigh-Ritz step finds the exact top-r subspace: further passes change only
  // rounding (mos-k's seeds: neighbourhoods of r + 8 tokens, and blocks of as many from r = 24).
  if (rows <= p) iterations = std::min(iterations, 1);
  const bool warm = start != nullptr && start->rows() == d && start->cols() <= p;
  const Eigen::Index kept = warm ? start->cols() : 0;
  RowMatrixF v = random_start(d, p, seed, start, kept);
  RowMatrixF y;
  int it = 0;
  if (warm && x_start != nullptr && x_start->rows() == rows && x_start->cols() == kept && iterations > 0) {
    v = orthonormal_columns(xp.xt_times(times_q(xp, v, *x_start)));
    ++it;
  } else {
    v = orthonormal_columns(v);
  }
  for (; it < iterations; ++it) {
    y = xp.x_times(v);
    v = orthonormal_columns(xp.xt_times(y));
  }
  y = xp.x_times(v);
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

RotationFactors rotation_factors(const CodecState& s, const float* theta, const RowMatrixD* m_theta) {
  const int m = s.config.rotations, r = s.config.rank, nd = m * r;
  const Eigen::Map<const RowMatrixD> bg(s.basis_gram.data(), r, (m + 1) * r);
  const RowMatrixD mm = m_theta != nullptr ? *m_theta : direction_gram_sum(ConstMapF(s.direction_gram.data(), nd, nd), theta, m, r);
  RowMatrixD ft = RowMatrixD::Zero(r, r);  // F = Ubar^T W_theta
  for (int i = 0; i < m; ++i)
    if (theta[i] != 0.0f) ft += static_cast<double>(theta[i]) * bg.middleCols((i + 1) * r, r);
  // U2 = Ubar K + W_theta, K = I - M/2, and its Gram matrix from the stored r x r blocks (exactly
  // U2^T U2 of the rounded bases, not the I + M^2/4 of exact ones): G = K E0 K + K F + F^T K + M with
  // E0 = Ubar^T Ubar, F = Ubar^T W_theta; as two products, G = K Y + (K Y)^T + M with Y = E0 K / 2 + F.
  // The two Newton-Schulz steps U <- U (3I - U^T U)/2 of rotated_basis_eigen give U = U2 c1 c2 with
  // c1 = (3I - G)/2, c2 = (3I - c1 G c1)/2, polynomials in G that commute: with Delta = G - I,
  //   C = c1 c2 = I - Delta/2 + (3/8) Delta^2 - (5/16) Delta^3 + (1/16) Delta^4   (two products).
  // fp32 is enough for these r x r products: U is rounded to the wire type.
  RotationFactors f;
  f.k = (RowMatrixD::Identity(r, r) - 0.5 * mm).cast<float>();
  const RowMatrixF& k = f.k;
  const RowMatrixF id = RowMatrixF::Identity(r, r);
  RowMatrixF y = ft.cast<float>(), ky, delta = mm.cast<float>() - id, d2;
  RowMatrixF& c = f.c;
  c = id;
  y.noalias() += 0.5f * (bg.leftCols(r).cast<float>() * k);
  ky.noalias() = k * y;
  delta += ky + ky.transpose();
  d2.noalias() = delta * delta;
  const RowMatrixF inner = 0.375f * id - 0.3125f * delta + 0.0625f * d2;
  c -= 0.5f * delta;
  c.noalias() += d2 * inner;
  f.bound = std::sqrt(mm.norm()) * (c - id).norm();
  return f;
}

void rotated_basis_general(const CodecState& s, const float* theta, RowMatrixF& u, const RowMatrixD* m_theta) {
  const int m = s.config.rotations, r = s.config.rank;
  const std::int64_t dim = s.dim;
  const RotationFactors f = rotation_factors(s, theta, m_theta);
  const RowMatrixF& k = f.k;
  const RowMatrixF& c = f.c;
  // U = Ubar (K C) + W_theta C = Ubar (K C) + W_theta + W_theta (C - I). The last term is at most
  // ||W_theta||_2 ||C - I||_F = sqrt(||M||_2) ||C - I||_F <= sqrt(||M||_F) ||C - I||_F in Frobenius
  // norm (M = W_theta^T W_theta of the stored directions). With bf16 values, when that bound is below
  // skip_tolerance (1/32 of the Frobenius norm of U's own bf16 rounding) the term is dropped and
  // one dim x r x r product saved.
  const bool skip = f.bound <= skip_tolerance(s.config.value_bytes, r);
  u.resize(dim, r);
  auto add_directions = [&](RowMatrixF& out) {  // out += W_theta in cache-resident row strips: one pass
    constexpr std::int64_t kRows = 16;
    for (std::int64_t i0 = 0; i0 < dim; i0 += kRows) {
      const std::int64_t n = std::min(kRows, dim - i0);
      for (int i = 0; i < m; ++i)
        if (theta[i] != 0.0f) out.middleRows(i0, n) += theta[i] * map(s.directions.data() + (i * dim + i0) * r, n, r);
    }
  };
  if (skip) {
    const RowMatrixF kc = k * c;
    u.noalias() = map(s.basis.data(), dim, r) * kc;
    add_directions(u);
    return;
  }
  RowMatrixF u2(dim, r);  // U2 = Ubar K + W_theta, then U = U2 C: two dim x r x r products
  u2.noalias() = map(s.basis.data(), dim, r) * k;
  add_directions(u2);
  u.noalias() = u2 * c;
}

bool has_rotation_grams(const CodecState& s) {
  const auto r = static_cast<std::size_t>(s.config.rank), m = static_cast<std::size_t>(s.config.rotations);
  return m >= 1 && s.direction_gram.size() == m * r * m * r && s.basis_gram.size() == r * (m + 1) * r;
}

}  // namespace moss::kernels::cpu
