#pragma once
// Inputs shared by the codec test files: seeded Gaussian matrices, reference products, codec
// configurations and synthetic subspace mixtures.

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "moss/kernels/codec.h"
#include "moss/kernels/metrics.h"
#include "moss/kernels/reference.h"
#include "moss/kernels/synthetic.h"

namespace moss::kernels::test {

/// rows x cols standard normal values from `seed`.
inline Matrix gaussian(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n;
  Matrix m(rows, cols);
  for (float& v : m.data) v = n(rng);
  return m;
}

/// a x b by the plain reference GEMM.
inline Matrix product(const Matrix& a, const Matrix& b) {
  Matrix c(a.rows, b.cols);
  reference::gemm(a.data.data(), b.data.data(), c.data.data(), a.rows, a.cols, b.cols);
  return c;
}

/// Default codec configuration of `m` at `rank`.
inline CodecConfig config(Method m, int rank) {
  CodecConfig c;
  c.method = m;
  c.rank = rank;
  return c;
}

/// Synthetic K-like data: `subspaces` subspaces of `rank`, segments of `segment` tokens.
inline Matrix mixture(std::int64_t tokens, std::int64_t dim, int subspaces, int rank, double spread,
                      std::int64_t segment, std::uint64_t seed) {
  SyntheticSpec s;
  s.tokens = tokens, s.dim = dim, s.subspaces = subspaces, s.rank = rank, s.decay = 0.5;
  s.noise = 0.01, s.spread = spread, s.segment = segment, s.seed = seed;
  return generate_synthetic(s, false);
}

/// [Ubar W_1 .. W_m] of a mos state (dim x (rotations + 1) rank): the matrix its theta sample is
/// projected on.
inline Matrix mos_blocks(const CodecState& s) {
  const std::int64_t d = s.dim, r = s.config.rank, m = s.config.rotations;
  Matrix b(d, (m + 1) * r);
  for (std::int64_t i = 0; i < d; ++i)
    for (std::int64_t blk = 0; blk <= m; ++blk)
      for (std::int64_t q = 0; q < r; ++q)
        b(i, blk * r + q) = blk == 0 ? s.basis[i * r + q] : s.directions[(blk - 1) * d * r + i * r + q];
  return b;
}

/// ||values - ref||_F / ||ref||_F: norm-wise, since single coefficients near 0 differ by bf16 ulps of
/// the basis.
inline double relative_difference(const std::vector<float>& values, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < values.size(); ++i)
    num += std::pow(values[i] - ref[i], 2), den += std::pow(ref[i], 2);
  return std::sqrt(num / den);
}

/// Relative difference of `e` decoded by the codec and by reference::decode (rows x cols tokens).
inline double decode_difference(const CodecState& s, const Encoded& e, std::int64_t rows, std::int64_t cols) {
  Matrix a(rows, cols), b(rows, cols);
  decode(s, e, a.data.data());
  reference::decode(s, e, b.data.data());
  return reconstruction_error(b.view(), a.view()).relative;
}

}  // namespace moss::kernels::test
