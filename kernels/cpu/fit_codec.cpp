// Fitting the codec state on a warm-up sample (codec.h fit_codec), Eigen CPU implementation.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "eigen_types.h"
#include "moss/kernels/bf16.h"
#include "moss/kernels/codec.h"
#include "subspace_clustering.h"

namespace moss::kernels {

namespace {
using cpu::ConstMapF;
using cpu::kPowerIterations;
using cpu::products_of;
using cpu::RowMatrixF;

void append(std::vector<float>& out, const RowMatrixF& m) { out.insert(out.end(), m.data(), m.data() + m.size()); }

// Warm-up tokens as the wire sees them (bf16-rounded when value_bytes == 2), times a power of two
// that brings the largest |x| into [1, 2). The fit squares the data twice in fp32 (the column norms
// of X^T X V), which leaves fp32's range from |x| ~ 1e10 up (and underflows far below 1); every
// fitted basis and direction is scale-invariant, and a power of two rounds nothing.
Matrix wire_copy(MatrixView x, int value_bytes) {
  Matrix m(x.rows, x.cols);
  float largest = 0;
  for (std::int64_t i = 0; i < x.size(); ++i) {
    const float v = value_bytes == 2 ? round_bf16(x.data[i]) : x.data[i];
    m.data[static_cast<std::size_t>(i)] = v;
    largest = std::max(largest, std::fabs(v));
  }
  if (largest > 0 && std::isfinite(largest)) {
    // In double: for a subnormal largest |x| the factor (up to 2^149) overflows fp32.
    const double scale = std::ldexp(1.0, -std::ilogb(largest));
    for (float& v : m.data) v = static_cast<float>(v * scale);
  }
  return m;
}

// w without its part in span(ubar), unit Frobenius norm; zero where nothing is left. Where the data
// lie in span(ubar) (rank r = d, or data of rank <= r) the projection leaves only rounding noise,
// which normalised would carry an O(1) part in span(ubar) and make U(theta) far from orthonormal: a
// second projection of the normalised w ("twice is enough") removes that part, and leaves almost
// nothing where the complement is empty (r = d).
RowMatrixF off_basis(const RowMatrixF& ubar, RowMatrixF w) {
  for (int pass = 0; pass < 2; ++pass) {
    w -= ubar * (ubar.transpose() * w);
    const float norm = w.norm();
    if (!(norm > 0) || (pass == 1 && norm < 0.5f)) return RowMatrixF::Zero(w.rows(), w.cols());
    w /= norm;
  }
  return w;
}

// Tangent directions: the Riemannian gradient of each warm-up block's captured energy at Ubar,
//   G_c = (I - Ubar Ubar^T) X_c^T X_c Ubar / ||X_c||_F^2,
// is where that block would like the subspace to move. The principal components of {G_c} (by the
// block Gram matrix) are the generators' W_i, unit Frobenius norm, orthogonal to Ubar and each other.
std::vector<float> fit_directions(MatrixView x, const RowMatrixF& ubar, int m, int block_tokens) {
  const std::int64_t d = x.cols, r = ubar.cols();
  std::int64_t bl = block_tokens > 0 ? block_tokens : 256;
  bl = std::max<std::int64_t>(16, std::min(bl, x.rows / 8));
  const std::int64_t blocks = std::max<std::int64_t>(1, x.rows / bl);
  std::vector<RowMatrixF> g;
  for (std::int64_t b = 0; b < blocks; ++b) {
    const ConstMapF xb = cpu::map(x.slice_rows(b * bl, std::min(bl, x.rows - b * bl)));
    const double energy = xb.squaredNorm();
    if (energy <= 0) continue;
    const RowMatrixF y = xb * ubar;
    RowMatrixF h = xb.transpose() * y;
    h -= ubar * (ubar.transpose() * h);
    g.push_back(h / static_cast<float>(energy));
  }
  const auto n = static_cast<Eigen::Index>(g.size());
  std::vector<float> out;
  if (n == 0 || m == 0) return std::vector<float>(static_cast<std::size_t>(m * d * r), 0.0f);
  Eigen::MatrixXd gram(n, n);
  for (Eigen::Index a = 0; a < n; ++a)
    for (Eigen::Index b = 0; b <= a; ++b)
      gram(a, b) = gram(b, a) = (g[a].cast<double>().array() * g[b].cast<double>().array()).sum();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(gram);
  for (int i = 0; i < m; ++i) {
    RowMatrixF w = RowMatrixF::Zero(d, r);
    if (i < n) {
      const Eigen::VectorXd c = eig.eigenvectors().col(n - 1 - i);
      for (Eigen::Index a = 0; a < n; ++a) w += static_cast<float>(c(a)) * g[a];
      w = off_basis(ubar, w);
    }
    append(out, w);
  }
  return out;
}

}  // namespace

CodecState fit_codec(const CodecConfig& config, MatrixView warmup, std::uint64_t seed) {
  return cpu::fit_codec_with(config, warmup, seed, {});
}

CodecState cpu::fit_codec_with(const CodecConfig& config, MatrixView warmup, std::uint64_t seed, const ProductsFor& products) {
  validate_config(config, warmup.cols);
  CodecState s;
  s.config = config;
  s.dim = warmup.cols;
  const Matrix w = wire_copy(warmup, config.value_bytes);
  const int r = config.rank;
  if (config.method == Method::pca || config.method == Method::mos) {
    if (warmup.rows < 1) throw std::invalid_argument("fit: the warm-up sample is empty");
    const std::unique_ptr<SubspaceProducts> prod = products_of(products, w.view());
    RowMatrixF ubar = cpu::top_subspace(w.view(), r, kPowerIterations, seed, nullptr, prod.get());
    if (config.method == Method::mos) {
      s.directions = fit_directions(w.view(), ubar, config.rotations, config.theta_block_tokens);
      // A change of basis within span Ubar (and the same for every W_i) leaves every U(theta)
      // subspace unchanged; this one makes W_1^T W_1 diagonal, so that encode and decode with one
      // rotation take the O(d r) diagonal path (eigen_types.h).
      cpu::diagonalise_first_direction(ubar, s.directions, config.rotations);
      if (config.value_bytes == 2)
        for (float& v : s.directions) v = round_bf16(v);
      const int m = config.rotations;
      s.direction_gram.assign(static_cast<std::size_t>(m * r) * static_cast<std::size_t>(m * r), 0.0f);
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < m; ++j) {
          const ConstMapF wi = cpu::map(s.directions.data() + i * s.dim * r, s.dim, r);
          const ConstMapF wj = cpu::map(s.directions.data() + j * s.dim * r, s.dim, r);
          const Eigen::MatrixXd n = (wi.transpose().cast<double>() * wj.cast<double>());
          for (int p = 0; p < r; ++p)
            for (int q = 0; q < r; ++q)
              s.direction_gram[static_cast<std::size_t>((i * r + p) * m * r + j * r + q)] = static_cast<float>(n(p, q));
        }
    }
    append(s.basis, ubar);
  } else if (config.method == Method::mos_k) {
    if (warmup.rows < 1) throw std::invalid_argument("fit: the warm-up sample is empty");
    for (const RowMatrixF& b : fit_subspaces(w.view(), config.subspaces, r, config.route_block_tokens, seed, products))
      append(s.basis, b);
  }
  if (config.value_bytes == 2) {  // the exchange carries bf16; both ends use exactly that
    for (float& v : s.basis) v = round_bf16(v);
  }
  if (config.method == Method::mos) {  // Ubar^T [Ubar W_1..W_m] of the rounded bases, in double
    const int m = config.rotations;
    const Eigen::MatrixXd ub = cpu::map(s.basis.data(), s.dim, r).cast<double>();
    s.basis_gram.assign(static_cast<std::size_t>(r) * static_cast<std::size_t>((m + 1) * r), 0.0);
    for (int b = 0; b <= m; ++b) {
      const float* blk = b == 0 ? s.basis.data() : s.directions.data() + (b - 1) * s.dim * r;
      const Eigen::MatrixXd g = ub.transpose() * cpu::map(blk, s.dim, r).cast<double>();
      for (int p = 0; p < r; ++p)
        for (int q = 0; q < r; ++q) s.basis_gram[static_cast<std::size_t>(p * (m + 1) * r + b * r + q)] = g(p, q);
    }
  }
  return s;
}

}  // namespace moss::kernels
