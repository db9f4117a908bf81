// The optimised CPU paths (kernels/cpu: diagonal MoS rotation, general theta fit, single-pass
// none/topk/quant) against the plain ones they replace: same theta, coefficients, bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <random>

#include "moss/kernels/bf16.h"
#include "moss/kernels/codec.h"
#include "moss/kernels/mos_block_mixer.h"
#include "moss/kernels/metrics.h"
#include "moss/kernels/reference.h"
#include "moss/kernels/rotation.h"
#include "moss/kernels/synthetic.h"

#include "codec_test_support.h"

namespace mk = moss::kernels;
using mk::test::config;
using mk::test::decode_difference;
using mk::test::gaussian;
using mk::test::mixture;
using mk::test::mos_blocks;
using mk::test::product;
using mk::test::relative_difference;

namespace {

// `s` with Ubar and every W_i right-multiplied by the orthogonal r x r `q` (the same subspaces), and
// the direction and basis Gram matrices transformed to match: D_ij -> q^T D_ij q.
mk::CodecState rotate_state(const mk::CodecState& s, const std::vector<double>& q) {
  const std::int64_t d = s.dim, r = s.config.rank, m = s.config.rotations;
  auto times_q = [&](const float* a, float* out) {
    for (std::int64_t i = 0; i < d; ++i)
      for (std::int64_t c = 0; c < r; ++c) {
        double acc = 0;
        for (std::int64_t p = 0; p < r; ++p) acc += static_cast<double>(a[i * r + p]) * q[p * r + c];
        out[i * r + c] = static_cast<float>(acc);
      }
  };
  mk::CodecState o = s;
  times_q(s.basis.data(), o.basis.data());
  for (std::int64_t i = 0; i < m; ++i) times_q(s.directions.data() + i * d * r, o.directions.data() + i * d * r);
  const std::int64_t n = m * r;
  for (std::int64_t bi = 0; bi < m; ++bi)
    for (std::int64_t bj = 0; bj < m; ++bj)
      for (std::int64_t a = 0; a < r; ++a)
        for (std::int64_t b = 0; b < r; ++b) {
          double acc = 0;
          for (std::int64_t p = 0; p < r; ++p)
            for (std::int64_t c = 0; c < r; ++c)
              acc += q[p * r + a] * s.direction_gram[(bi * r + p) * n + bj * r + c] * q[c * r + b];
          o.direction_gram[(bi * r + a) * n + bj * r + b] = acc;
        }
  const std::int64_t nb = (m + 1) * r;  // basis_gram: Ubar^T [Ubar W_i] blocks alike
  for (std::int64_t bj = 0; bj <= m; ++bj)
    for (std::int64_t a = 0; a < r; ++a)
      for (std::int64_t b = 0; b < r; ++b) {
        double acc = 0;
        for (std::int64_t p = 0; p < r; ++p)
          for (std::int64_t c = 0; c < r; ++c) acc += q[p * r + a] * s.basis_gram[p * nb + bj * r + c] * q[c * r + b];
        o.basis_gram[a * nb + bj * r + b] = acc;
      }
  return o;
}

// A random orthogonal matrix (Gram-Schmidt of a Gaussian one), row-major.
std::vector<double> random_orthogonal(int r, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n;
  std::vector<double> q(static_cast<std::size_t>(r * r));
  for (double& v : q) v = n(rng);
  for (int c = 0; c < r; ++c) {
    for (int p = 0; p < c; ++p) {
      double dot = 0;
      for (int i = 0; i < r; ++i) dot += q[i * r + c] * q[i * r + p];
      for (int i = 0; i < r; ++i) q[i * r + c] -= dot * q[i * r + p];
    }
    double norm = 0;
    for (int i = 0; i < r; ++i) norm += q[i * r + c] * q[i * r + c];
    for (int i = 0; i < r; ++i) q[i * r + c] /= std::sqrt(norm);
  }
  return q;
}

double off_diagonal_ratio(const mk::CodecState& s) {
  const std::int64_t r = s.config.rank;
  double diag = 0, off = 0;
  for (std::int64_t p = 0; p < r; ++p)
    for (std::int64_t q = 0; q < r; ++q) (p == q ? diag : off) += std::pow(s.direction_gram[p * r + q], 2);
  return std::sqrt(off / diag);
}
}  // namespace

TEST(MosDiagonalPath, FittedStatesQualifyForTheDiagonalPath) {
  // fit_codec makes W_1^T W_1 diagonal; encode takes the diagonal path when the off-diagonal part is
  // below 2^-8 of it with bf16 values, 1e-6 with fp32 (eigen_types.h diagonal_tolerance). The bf16
  // rounding of W must leave a wide margin.
  mk::SyntheticSpec spec = mk::parse_synthetic_spec("llama,dim=512");
  spec.tokens = 2048;
  const mk::Matrix warm = mk::generate_synthetic(spec, false);
  for (int vb : {2, 4})
    for (int r : {16, 64}) {
      mk::CodecConfig c = config(mk::Method::mos, r);
      c.value_bytes = vb;
      const mk::CodecState s = mk::fit_codec(c, warm.view(), 3);
      EXPECT_LT(off_diagonal_ratio(s), vb == 2 ? 1.0 / 1024 : 1e-7) << "value_bytes " << vb << " rank " << r;
      for (int p = 1; p < r; ++p)  // descending eigenvalues
        EXPECT_GE(s.direction_gram[(p - 1) * r + p - 1], s.direction_gram[p * r + p] * (1 - 1e-6));
    }
}

class MosDiagonalVsPlain : public ::testing::TestWithParam<int> {};

TEST_P(MosDiagonalVsPlain, SameThetaCoefficientsAndReconstruction) {
  // The diagonal path (O(d r) rotation, column-statistics theta fit) on the fitted state against the
  // general path (full Gram theta fit, Newton-Schulz on the actual U^T U) on the same state rotated by
  // a random orthogonal Q: that state is not diagonal, so encode takes the previous plain path. The
  // coefficients must agree up to Q: Z_plain = Z_diag Q.
  const int vb = GetParam();
  const mk::Matrix all = mixture(3548, 128, 4, 8, 0.6, 256, 51);  // one draw: warm-up, then test tokens
  const mk::MatrixView warm = all.view().slice_rows(0, 2048);
  mk::Matrix x(1500, 128);
  std::copy(all.row(2048), all.row(2048) + 1500 * 128, x.data.begin());
  mk::CodecConfig c = config(mk::Method::mos, 8);
  c.theta_block_tokens = 256;  // 6 blocks, the last one partial
  c.value_bytes = vb;
  const mk::CodecState fast = mk::fit_codec(c, warm, 4);
  ASSERT_LT(off_diagonal_ratio(fast), vb == 2 ? 1.0 / 1024 : 1e-7);
  const std::vector<double> q = random_orthogonal(8, 99);
  mk::CodecState plain = rotate_state(fast, q);
  ASSERT_GT(off_diagonal_ratio(plain), 1e-2);  // really the general path
  if (vb == 2) {
    for (float& v : plain.basis) v = mk::round_bf16(v);
    for (float& v : plain.directions) v = mk::round_bf16(v);
  }
  const mk::Encoded ef = mk::encode(fast, x.view()), ep = mk::encode(plain, x.view());
  ASSERT_EQ(ef.theta.size(), ep.theta.size());
  EXPECT_EQ(ef.wire_bytes(), ep.wire_bytes());
  int nonzero = 0;
  for (std::size_t b = 0; b < ef.theta.size(); ++b) {
    // The diagonal path's 1-D line search (at most 12 rounds) and the general path's Newton steps stop
    // at different points of a flat maximum: 4e-3 apart at theta = -0.14 in one block of this state,
    // while the coefficients below still agree to 1e-4.
    EXPECT_NEAR(ef.theta[b], ep.theta[b], vb == 4 ? 5e-3 : 2e-2) << "block " << b;
    nonzero += ef.theta[b] != 0.0f;
  }
  EXPECT_GT(nonzero, 0) << "the test data must make theta move";
  double num = 0, den = 0;
  const std::int64_t r = 8;
  for (std::int64_t t = 0; t < x.rows; ++t)
    for (std::int64_t b = 0; b < r; ++b) {
      double zq = 0;
      for (std::int64_t p = 0; p < r; ++p) zq += ef.values[t * r + p] * q[p * r + b];
      num += std::pow(zq - ep.values[t * r + b], 2);
      den += std::pow(ep.values[t * r + b], 2);
    }
  EXPECT_LT(std::sqrt(num / den), vb == 4 ? 1e-4 : 1e-2) << "relative coefficient difference";
  mk::Matrix a(x.rows, x.cols), b(x.rows, x.cols);
  mk::decode(fast, ef, a.data.data());
  mk::decode(plain, ep, b.data.data());
  const double err_fast = mk::reconstruction_error(x.view(), a.view()).relative;
  const double err_plain = mk::reconstruction_error(x.view(), b.view()).relative;
  EXPECT_NEAR(err_fast, err_plain, vb == 4 ? 1e-5 : 2e-3 + 0.01 * err_plain);
  std::cout << "value_bytes " << vb << ": error diagonal " << err_fast << " plain " << err_plain << '\n';
}

INSTANTIATE_TEST_SUITE_P(WireTypes, MosDiagonalVsPlain, ::testing::Values(2, 4));

TEST(MosDiagonalPath, MatchesTheReferenceCodec) {
  // The plain C++ reference (rotation.cpp: U^T U from the actual U) with the encoder's theta.
  const mk::Matrix warm = mixture(1024, 72, 3, 6, 0.8, 100, 61);
  const mk::Matrix x = mixture(333, 72, 3, 6, 0.8, 100, 62);
  mk::CodecConfig c = config(mk::Method::mos, 6);
  c.theta_block_tokens = 100;
  for (int vb : {2, 4}) {
    c.value_bytes = vb;
    const mk::CodecState s = mk::fit_codec(c, warm.view(), 2);
    const mk::Encoded e = mk::encode(s, x.view());
    const mk::Encoded ref = mk::reference::encode(s, x.view(), e.theta);
    const double diff = relative_difference(e.values, ref.values);
    std::cout << "value_bytes " << vb << " relative coefficient difference " << diff << '\n';
    EXPECT_LT(diff, vb == 4 ? 1e-5 : 4e-3) << "value_bytes " << vb;
    EXPECT_LT(decode_difference(s, e, x.rows, x.cols), vb == 4 ? 1e-5 : 1e-2);
  }
}

TEST(MosGeneralPath, MatchesTheReferenceCodec) {
  // Several generators: U(theta) from the stored r x r Gram blocks (Newton-Schulz on r x r factors,
  // kernels/cpu/subspace.cpp) against rotation.cpp's U^T U of the actual U, with the encoder's theta.
  const mk::Matrix warm = mixture(1024, 72, 3, 6, 0.8, 100, 61);
  const mk::Matrix x = mixture(333, 72, 3, 6, 0.8, 100, 62);
  mk::CodecConfig c = config(mk::Method::mos, 6);
  c.theta_block_tokens = 100;
  for (int m : {2, 4})
    for (int vb : {2, 4}) {
      c.rotations = m;
      c.value_bytes = vb;
      const mk::CodecState s = mk::fit_codec(c, warm.view(), 2);
      const mk::Encoded e = mk::encode(s, x.view());
      bool moved = false;
      for (float t : e.theta) moved = moved || t != 0.0f;
      EXPECT_TRUE(moved) << "rotations " << m;
      const mk::Encoded ref = mk::reference::encode(s, x.view(), e.theta);
      const double diff = relative_difference(e.values, ref.values);
      std::cout << "rotations " << m << " value_bytes " << vb << " relative coefficient difference " << diff << '\n';
      EXPECT_LT(diff, vb == 4 ? 1e-5 : 4e-3) << "rotations " << m << " value_bytes " << vb;
      EXPECT_LT(decode_difference(s, e, x.rows, x.cols), vb == 4 ? 1e-5 : 1e-2);
    }
}

TEST(MosGeneralPath, MatchesTheReferenceAndBeatsPcaAtLargeRank) {
  // Rank >= 128: the smaller theta sample (256 / m tokens, at least 32) and, with bf16 values, U(theta)
  // without the W_theta (C - I) product when its bound allows (kernels/cpu/subspace.cpp). Against the
  // reference codec on the encoder's theta, and against PCA on held-out tokens of mixture data.
  const mk::Matrix all = mixture(3072, 192, 4, 48, 0.8, 128, 91);
  const mk::MatrixView warm = all.view().slice_rows(0, 1024);
  mk::Matrix x(2048, 192);
  std::copy(all.row(1024), all.row(1024) + x.data.size(), x.data.begin());
  mk::CodecConfig c = config(mk::Method::mos, 128);
  for (int m : {2, 8})
    for (int vb : {2, 4}) {
      c.rotations = m;
      c.value_bytes = vb;
      const mk::CodecState s = mk::fit_codec(c, warm, 5);
      const mk::Encoded e = mk::encode(s, x.view());
      const mk::Encoded ref = mk::reference::encode(s, x.view(), e.theta);
      const double diff = relative_difference(e.values, ref.values);
      EXPECT_LT(diff, vb == 4 ? 1e-5 : 4e-3) << "rotations " << m << " value_bytes " << vb;
      mk::Matrix a(x.rows, x.cols), p(x.rows, x.cols);
      mk::decode(s, e, a.data.data());
      mk::CodecConfig pc = config(mk::Method::pca, 128);
      pc.value_bytes = vb;
      const mk::CodecState ps = mk::fit_codec(pc, warm, 5);
      mk::decode(ps, mk::encode(ps, x.view()), p.data.data());
      const double e_mos = mk::reconstruction_error(x.view(), a.view()).relative;
      const double e_pca = mk::reconstruction_error(x.view(), p.view()).relative;
      std::cout << "rotations " << m << " value_bytes " << vb << " coefficient difference " << diff
                << " error mos " << e_mos << " pca " << e_pca << '\n';
      EXPECT_LE(e_mos, e_pca) << "rotations " << m << " value_bytes " << vb;
    }
}

TEST(ElementwisePaths, SameBytesAsTheReferenceIncludingTiesAndOddWidths) {
  // topk/quant CPU loops (radix select, byte packing) against reference_codec.cpp, byte for byte:
  // odd widths (4-bit codes straddle rows), repeated magnitudes (topk ties), zero rows (scale 0),
  // rows of large and small magnitudes (every exponent bit of the selection).
  for (std::int64_t d : {7, 100, 257, 1024}) {
    mk::Matrix x = gaussian(37, d, static_cast<std::uint64_t>(d));
    for (std::int64_t j = 0; j < d; j += 3) x(5, j) = (j % 2 ? -1.0f : 1.0f) * 0.5f;  // ties
    for (std::int64_t j = 0; j < d; ++j) x(9, j) = 0.0f;
    for (std::int64_t j = 0; j < d; ++j) x(11, j) *= 1000.0f, x(13, j) *= 1e-3f;  // other exponent ranges
    for (int vb : {2, 4})
      for (const auto& [method, param] : {std::pair{mk::Method::topk, 0.1}, std::pair{mk::Method::topk, 0.5},
                                          std::pair{mk::Method::quant, 4.0}, std::pair{mk::Method::quant, 8.0},
                                          std::pair{mk::Method::none, 0.0}}) {
        mk::CodecConfig c = config(method, 0);
        c.value_bytes = vb;
        if (method == mk::Method::topk) c.fraction = param;
        if (method == mk::Method::quant) c.bits = static_cast<int>(param);
        const mk::CodecState s = mk::fit_codec(c, x.view(), 1);
        const mk::Encoded e = mk::encode(s, x.view()), ref = mk::reference::encode(s, x.view());
        const std::string what = std::string(mk::method_name(method)) + " d=" + std::to_string(d) +
                                 " vb=" + std::to_string(vb) + " p=" + std::to_string(param);
        EXPECT_EQ(e.values, ref.values) << what;
        EXPECT_EQ(e.packed, ref.packed) << what;
        EXPECT_EQ(e.scales, ref.scales) << what;
        mk::Matrix a(x.rows, x.cols), b(x.rows, x.cols);
        mk::decode(s, e, a.data.data());
        mk::reference::decode(s, e, b.data.data());
        EXPECT_EQ(a.data, b.data) << what;
      }
  }
}

TEST(MosGeneralPath, EncoderThetaIsFitThetaOfTheChunk) {
  // Several generators (the general, non-diagonal path): the encoder's theta fit (Newton steps with
  // the exact gradient, kernels/cpu/theta_fit.cpp) against rotation.h's fit_theta (gradient line
  // search by central differences) on the Gram matrix of P = X [Ubar W_1..W_m] computed here. The
  // chunk has 160 <= 512 / m tokens, so the encoder samples all of them. Both maximise the same
  // objective: the encoder's theta must be at least as good and close to fit_theta's.
  const mk::Matrix all = mixture(2400, 96, 4, 6, 0.8, 200, 71);
  const mk::MatrixView warm = all.view().slice_rows(0, 2000);
  const std::int64_t tokens = 160;
  mk::Matrix x(tokens, 96);
  std::copy(all.row(2000), all.row(2000) + tokens * 96, x.data.begin());
  mk::CodecConfig c = config(mk::Method::mos, 6);
  c.rotations = 3;
  c.value_bytes = 4;
  const mk::CodecState s = mk::fit_codec(c, warm, 8);
  const std::int64_t d = 96, r = 6, m = 3, n = (m + 1) * r;
  const mk::Matrix b = mos_blocks(s);  // [Ubar W_1 W_2 W_3]
  const mk::Matrix p = product(x, b);
  std::vector<double> gram(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t t = 0; t < x.rows; ++t)
    for (std::int64_t a = 0; a < n; ++a)
      for (std::int64_t e = 0; e < n; ++e) gram[a * n + e] += static_cast<double>(p(t, a)) * p(t, e);
  // W_i^T W_j in double from the directions themselves (the state stores them in fp32).
  std::vector<double> dg(static_cast<std::size_t>(m * r * m * r), 0.0);
  for (std::int64_t a = 0; a < m * r; ++a)
    for (std::int64_t e = 0; e < m * r; ++e)
      for (std::int64_t i = 0; i < d; ++i)
        dg[a * m * r + e] += static_cast<double>(b(i, r + a)) * b(i, r + e);
  const std::vector<float> expect = mk::fit_theta(gram, dg, 3, 6);
  const mk::Encoded enc = mk::encode(s, x.view());
  ASSERT_EQ(enc.theta.size(), 3u);
  bool moved = false;
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(enc.theta[i], expect[i], 1e-3) << "theta " << i;
    moved = moved || expect[i] != 0.0f;
  }
  EXPECT_TRUE(moved);
  const double f_enc = mk::theta_objective(gram, dg, enc.theta, 3, 6);
  const double f_ref = mk::theta_objective(gram, dg, expect, 3, 6);
  const double f_zero = mk::theta_objective(gram, dg, std::vector<float>(3, 0.0f), 3, 6);
  EXPECT_GE(f_enc, f_ref - 1e-6 * f_ref);
  EXPECT_GT(f_enc, f_zero);
  std::cout << "objective: theta = 0 " << f_zero << ", fit_theta " << f_ref << ", encoder " << f_enc << '\n';
}

TEST(MosBlockMixer, EncoderThetaAndReferenceBasisFromTheSampleProjections) {
  // The host side of the GPU mos encode (MosBlockMixer, mos_block_mixer.h), on the CPU: from the sample
  // projections P = X [Ubar W_1..W_m] of a block it must return the CPU encoder's theta and an S with
  // [Ubar W_1..W_m] S = U(theta) of rotation.cpp (the plain reference), orthonormal; and X times that
  // U (wire-rounded) must be the encoder's coefficients. Two and three rotations: the general path
  // (one rotation runs on the device, kernels/cuda/mos_kernels.cu). The block has 120 tokens, under
  // every theta sample size: P covers every token.
  const mk::Matrix warm = mixture(1024, 72, 3, 6, 0.8, 100, 61);
  const mk::Matrix x = mixture(120, 72, 3, 6, 0.8, 100, 63);
  const std::int64_t d = 72, r = 6;
  for (int m : {2, 3})
    for (int vb : {2, 4}) {
      SCOPED_TRACE("rotations " + std::to_string(m) + " value_bytes " + std::to_string(vb));
      mk::CodecConfig c = config(mk::Method::mos, static_cast<int>(r));
      c.rotations = m, c.value_bytes = vb;
      const mk::CodecState s = mk::fit_codec(c, warm.view(), 2);
      const mk::MosBlockMixer mixer(s);
      ASSERT_TRUE(mixer.available());
      const std::int64_t w = (m + 1) * r;
      const mk::Matrix wide = mos_blocks(s);  // [Ubar W_1..W_m]
      mk::Matrix xw = x;                      // X as it travels
      if (vb == 2) mk::round_bf16_finite(xw.data.data(), static_cast<std::int64_t>(xw.data.size()));
      const mk::Matrix p = product(xw, wide);
      std::vector<float> theta, mix;
      mixer.fit(p.data.data(), p.rows, theta, mix);
      ASSERT_EQ(theta.size(), static_cast<std::size_t>(m));
      ASSERT_EQ(mix.size(), static_cast<std::size_t>(w * r));
      std::vector<float> again;  // S for a theta fitted elsewhere (the device's fit): the same S
      mixer.mix(theta, again);
      EXPECT_EQ(again, mix);
      EXPECT_THROW(mixer.mix(std::vector<float>(static_cast<std::size_t>(m + 1), 0.0f), again), std::invalid_argument);
      const mk::Encoded e = mk::encode(s, x.view());
      ASSERT_EQ(e.theta.size(), theta.size());
      bool moved = false;
      for (int i = 0; i < m; ++i) {
        EXPECT_NEAR(theta[i], e.theta[i], 1e-4 + 1e-3 * std::abs(e.theta[i])) << "theta " << i;
        moved = moved || theta[i] != 0.0f;
      }
      EXPECT_TRUE(moved);
      mk::Matrix smat(w, r);
      smat.data = mix;
      const mk::Matrix u = product(wide, smat);
      const std::vector<float> ref = mk::rotated_basis(s.basis, s.directions, theta, d, static_cast<int>(r));
      const double basis_diff = relative_difference(u.data, ref);
      auto non_orthonormality = [&](const std::vector<float>& b) {  // ||B^T B - I||_F
        double sum = 0;
        for (std::int64_t a = 0; a < r; ++a)
          for (std::int64_t q = 0; q < r; ++q) {
            double g = 0;
            for (std::int64_t i = 0; i < d; ++i) g += static_cast<double>(b[i * r + a]) * b[i * r + q];
            sum += std::pow(g - (a == q ? 1.0 : 0.0), 2);
          }
        return std::sqrt(sum);
      };
      const double ortho = non_orthonormality(u.data), ortho_ref = non_orthonormality(ref);
      mk::Matrix uw = u;
      if (vb == 2) mk::round_bf16_finite(uw.data.data(), static_cast<std::int64_t>(uw.data.size()));
      mk::Matrix z = product(xw, uw);
      if (vb == 2) mk::round_bf16_finite(z.data.data(), static_cast<std::int64_t>(z.data.size()));
      const double coeff_diff = relative_difference(z.data, e.values);
      std::cout << "rotations " << m << " value_bytes " << vb << ": |U_S - U_ref| " << basis_diff << ", |U^T U - I| "
                << ortho << " (reference " << ortho_ref << "), coefficients vs encoder " << coeff_diff << '\n';
      // The general path forms the reference's U (measured 1e-7 in both wire types).
      EXPECT_LT(basis_diff, 1e-5);
      EXPECT_LT(ortho, ortho_ref + 1e-5);
      EXPECT_LT(coeff_diff, 1e-5);  // the encoder's own coefficients (measured 0 to 2.1e-7)
    }
}

TEST(MosBlockMixer, RefusesStatesWithoutTheFittedForms) {
  // A mos state that fit_codec did not make (no Gram blocks): U(theta) must then be
  // formed whole, and fit() says so instead of reading absent blocks.
  mk::CodecState s;
  s.config = config(mk::Method::mos, 4);
  s.dim = 16;
  s.basis.assign(16 * 4, 0.0f);
  s.directions.assign(16 * 4, 0.0f);
  const mk::MosBlockMixer mixer(s);
  EXPECT_FALSE(mixer.available());
  std::vector<float> p(8 * 8, 1.0f), theta, mix;
  EXPECT_THROW(mixer.fit(p.data(), 8, theta, mix), std::logic_error);
  const mk::CodecState pca = mk::fit_codec(config(mk::Method::pca, 4), gaussian(64, 16, 5).view(), 1);
  EXPECT_FALSE(mk::MosBlockMixer(pca).available());
}

// With many generators each |theta_i| <= kMaxTheta let sum_i theta_i W_i reach sqrt(m) kMaxTheta,
// where U^T U = I + M^2/4 is too far from I for the two Newton-Schulz steps: one token per theta on
// LLaMA-like data gave a worst-token error of 118 (an orthogonal projection never exceeds 1). The
// trust region bounds ||sum_i theta_i W_i||_F instead; every token's error must stay below 1 and
// more generators must not do worse than fewer.
TEST(MosGeneralPath, ManyGeneratorsKeepEveryTokensErrorBelowOne) {
  mk::SyntheticSpec spec = mk::parse_synthetic_spec("llama,tokens=2048,dim=2048");
  spec.seed = spec.seed * 1000003u + 1;  // `moss compress`'s data for --seed 1
  const mk::Matrix x = mk::generate_synthetic(spec, false);
  const mk::MatrixView warm = x.view().slice_rows(0, 1024), test = x.view().slice_rows(1024, 1024);
  double previous = 2.0;
  for (const int m : {4, 12}) {
    mk::CodecConfig c;
    c.method = mk::Method::mos, c.rank = 16, c.rotations = m, c.theta_block_tokens = 1;
    const mk::CodecState s = mk::fit_codec(c, warm, 1);
    mk::Matrix xh(test.rows, test.cols);
    const mk::Encoded e = mk::encode(s, test);
    mk::decode(s, e, xh.data.data());
    const mk::ReconstructionError err = mk::reconstruction_error(test, xh.view());
    EXPECT_LE(err.worst_token, 1.0) << m << " generators";
    EXPECT_LE(err.relative, previous) << m << " generators";
    previous = err.relative;
  }
}
