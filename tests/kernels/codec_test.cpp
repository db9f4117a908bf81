// Closed-form and cross-implementation checks of the codecs (CPU Eigen vs plain reference).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "moss/kernels/bf16.h"
#include "moss/kernels/codec.h"
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
using mk::test::product;
using mk::test::relative_difference;

namespace {
double roundtrip_error(const mk::CodecState& s, const mk::Matrix& x) {
  const mk::Encoded e = mk::encode(s, x.view());
  mk::Matrix xh(x.rows, x.cols);
  mk::decode(s, e, xh.data.data());
  return mk::reconstruction_error(x.view(), xh.view()).relative;
}
}  // namespace

TEST(Pca, ExactlyLowRankInputReconstructsToFloatPrecision) {
  const std::int64_t t = 512, d = 96;
  const int r = 8;
  const mk::Matrix x = product(gaussian(t, r, 1), gaussian(r, d, 2));
  for (int rank : {8, 12}) {
    mk::CodecConfig c = config(mk::Method::pca, rank);
    c.value_bytes = 4;  // fp32 end to end: no bf16 rounding in the way of the closed form
    const mk::CodecState s = mk::fit_codec(c, x.view(), 7);
    EXPECT_LT(roundtrip_error(s, x), 2e-6) << "rank " << rank;
  }
}

TEST(Pca, Bf16ErrorIsAtTheBf16RoundingLevel) {
  const mk::Matrix x = product(gaussian(256, 4, 3), gaussian(4, 64, 4));
  const mk::CodecState s = mk::fit_codec(config(mk::Method::pca, 4), x.view(), 1);
  EXPECT_LT(roundtrip_error(s, x), 1e-2);
}

TEST(None, ErrorIsBf16Rounding) {
  const mk::Matrix x = gaussian(64, 32, 5);
  const mk::CodecState s = mk::fit_codec(config(mk::Method::none, 0), x.view(), 1);
  const double err = roundtrip_error(s, x);
  EXPECT_GT(err, 0.0);
  EXPECT_LT(err, std::ldexp(1.0, -8));  // bf16 has 8 significant bits: relative rounding <= 2^-9
}

TEST(Rotation, RotatedBasisIsOrthonormal) {
  const std::int64_t d = 200;
  const int r = 12, m = 3;
  const mk::Matrix x = gaussian(400, d, 9);
  mk::CodecConfig c = config(mk::Method::mos, r);
  c.rotations = m;
  c.value_bytes = 4;
  const mk::CodecState s = mk::fit_codec(c, x.view(), 3);
  for (const std::vector<float>& theta : {std::vector<float>{0.1f, -0.2f, 0.05f}, std::vector<float>{0.75f, 0.75f, -0.75f}}) {
    const auto u = mk::rotated_basis(s.basis, s.directions, theta, d, r);
    double worst = 0;
    for (int p = 0; p < r; ++p)
      for (int q = 0; q < r; ++q) {
        double dot = 0;
        for (std::int64_t i = 0; i < d; ++i) dot += static_cast<double>(u[i * r + p]) * u[i * r + q];
        worst = std::max(worst, std::fabs(dot - (p == q ? 1.0 : 0.0)));
      }
    EXPECT_LT(worst, 1e-5) << "theta[0] " << theta[0];
  }
}

TEST(Rotation, SecondOrderMatchesTheMatrixExponentialSeries) {
  // U(theta) = (I + S + S^2/2) Ubar built densely from the generators, against the closed form.
  const std::int64_t d = 40;
  const int r = 3;
  const mk::Matrix x = gaussian(300, d, 11);
  mk::CodecConfig c = config(mk::Method::mos, r);
  c.rotations = 2;
  c.value_bytes = 4;
  const mk::CodecState s = mk::fit_codec(c, x.view(), 5);
  const std::vector<float> theta{0.3f, -0.2f};
  std::vector<double> sm(static_cast<std::size_t>(d * d), 0.0);  // S = sum theta_i (W_i Ubar^T - Ubar W_i^T)
  for (int i = 0; i < 2; ++i)
    for (std::int64_t a = 0; a < d; ++a)
      for (std::int64_t b = 0; b < d; ++b)
        for (int q = 0; q < r; ++q) {
          const double w_a = s.directions[i * d * r + a * r + q], u_b = s.basis[b * r + q];
          const double u_a = s.basis[a * r + q], w_b = s.directions[i * d * r + b * r + q];
          sm[a * d + b] += theta[i] * (w_a * u_b - u_a * w_b);
        }
  const auto u = mk::rotated_basis_second_order(s.basis, s.directions, theta, d, r);
  double worst = 0;
  for (std::int64_t a = 0; a < d; ++a)
    for (int q = 0; q < r; ++q) {
      double su = 0, ssu = 0;
      for (std::int64_t b = 0; b < d; ++b) {
        su += sm[a * d + b] * s.basis[b * r + q];
        double sub = 0;
        for (std::int64_t e = 0; e < d; ++e) sub += sm[b * d + e] * s.basis[e * r + q];
        ssu += sm[a * d + b] * sub;
      }
      const double expect = s.basis[a * r + q] + su + 0.5 * ssu;
      worst = std::max(worst, std::fabs(expect - u[a * r + q]));
    }
  EXPECT_LT(worst, 1e-5);
}

TEST(Mos, NoWorseThanPcaAtEqualRankOnMixtureData) {
  const mk::Matrix warm = mixture(4096, 256, 4, 12, 0.6, 512, 21);
  const mk::Matrix x = mixture(6144, 256, 4, 12, 0.6, 512, 21);
  const mk::MatrixView test = x.view().slice_rows(4096, 2048);
  mk::CodecConfig p = config(mk::Method::pca, 12), m = config(mk::Method::mos, 12);
  m.rotations = 3;
  m.theta_block_tokens = 512;
  mk::Matrix copy(test.rows, test.cols);
  std::copy(test.data, test.data + test.size(), copy.data.begin());
  const double e_pca = roundtrip_error(mk::fit_codec(p, warm.view(), 1), copy);
  const double e_mos = roundtrip_error(mk::fit_codec(m, warm.view(), 1), copy);
  EXPECT_LE(e_mos, e_pca);
  RecordProperty("pca_error", std::to_string(e_pca));
  RecordProperty("mos_error", std::to_string(e_mos));
  std::cout << "pca " << e_pca << " mos " << e_mos << '\n';
}

// Data from 4 subspaces of rank 8 in d = 128: codecs fit on the first 2048 tokens (warm) and encode
// the next 1024 (x); pca's error at rank 8 and the mos-k configuration (4 bases of rank 8).
struct KSubspaceCase {
  KSubspaceCase() = default;
  KSubspaceCase(const KSubspaceCase&) = delete;  // warm views `all`
  KSubspaceCase& operator=(const KSubspaceCase&) = delete;
  mk::Matrix all = mixture(3072, 128, 4, 8, 2.0, 64, 33);
  mk::MatrixView warm = all.view().slice_rows(0, 2048);
  mk::Matrix x = [this] {
    mk::Matrix m(1024, 128);
    std::copy(all.row(2048), all.row(2048) + m.data.size(), m.data.begin());
    return m;
  }();
  double e_pca = roundtrip_error(mk::fit_codec(config(mk::Method::pca, 8), warm, 1), x);
  mk::CodecConfig mos_k = [] {
    mk::CodecConfig c = config(mk::Method::mos_k, 8);
    c.subspaces = 4;
    return c;
  }();
};

TEST(MosK, NoWorseThanPcaOnDataFromKSubspaces) {
  const KSubspaceCase k;
  const double e_mosk = roundtrip_error(mk::fit_codec(k.mos_k, k.warm, 1), k.x);
  std::cout << "pca " << k.e_pca << " mos-k " << e_mosk << '\n';
  EXPECT_LE(e_mosk, k.e_pca);
  EXPECT_LT(e_mosk, 0.05);
}

TEST(MosK, SketchRoutingNoWorseThanPcaOnDataFromKSubspaces) {
  // Route then project (Routing::sketch, the first max(1, r/8) columns of each basis route): a
  // different choice than the exhaustive one for some tokens, still far better than one subspace.
  const KSubspaceCase k;
  mk::CodecConfig c = k.mos_k;
  const double e_exhaustive = roundtrip_error(mk::fit_codec(c, k.warm, 1), k.x);
  c.routing = mk::Routing::sketch;
  const double e_sketch = roundtrip_error(mk::fit_codec(c, k.warm, 1), k.x);
  std::cout << "pca " << k.e_pca << " mos-k exhaustive " << e_exhaustive << " sketch " << e_sketch << '\n';
  EXPECT_LE(e_sketch, k.e_pca);
  EXPECT_LE(e_exhaustive, e_sketch * (1 + 1e-6));  // exhaustive maximises the captured energy
}

TEST(MosK, SketchRoutingMatchesTheReference) {
  // The CPU route-then-project path (fused panels for per-token routes, a routing pass for longer
  // blocks) against reference_codec.cpp's loops: same routes and bytes of indices, same coefficients.
  const mk::Matrix warm = mixture(1024, 72, 3, 6, 2.0, 50, 43);
  const mk::Matrix x = mixture(333, 72, 3, 6, 2.0, 50, 44);
  for (int block : {1, 16, 0})
    for (int vb : {2, 4}) {
      mk::CodecConfig c = config(mk::Method::mos_k, 16);
      c.subspaces = 3;
      c.route_block_tokens = block;
      c.routing = mk::Routing::sketch;
      c.value_bytes = vb;
      const mk::CodecState s = mk::fit_codec(c, warm.view(), 2);
      const mk::Encoded e = mk::encode(s, x.view());
      const mk::Encoded ref = mk::reference::encode(s, x.view());
      EXPECT_EQ(e.route, ref.route) << "block " << block << " value_bytes " << vb;
      EXPECT_EQ(e.packed, ref.packed);
      ASSERT_EQ(e.values.size(), ref.values.size());
      EXPECT_LT(relative_difference(e.values, ref.values), vb == 4 ? 1e-5 : 4e-3) << "block " << block << " value_bytes " << vb;
      EXPECT_LT(decode_difference(s, e, x.rows, x.cols), vb == 4 ? 1e-5 : 1e-2);
    }
}

TEST(WireBytes, TopkCountsValuesAndIndexBitsExactly) {
  // 10 tokens x 100 features, 10 %: k = 10 bf16 values (20 B) + 10 indices of 7 bits per token.
  // 10 * 20 = 200 B of values; 10 * 10 * 7 = 700 bits = 87.5 -> 88 B of indices.
  const mk::Matrix x = gaussian(10, 100, 3);
  mk::CodecConfig c = config(mk::Method::topk, 0);
  c.fraction = 0.1;
  const mk::CodecState s = mk::fit_codec(c, x.view(), 1);
  const mk::Encoded e = mk::encode(s, x.view());
  EXPECT_EQ(e.wire_bytes(), 288u);
  EXPECT_EQ(mk::encoded_bytes(c, 10, 100), 288u);
}

TEST(WireBytes, QuantCountsCodesAndScalesExactly) {
  const mk::Matrix x = gaussian(3, 5, 4);  // 15 codes
  mk::CodecConfig c = config(mk::Method::quant, 0);
  c.bits = 4;  // 60 bits -> 8 B, + 3 bf16 scales = 6 B
  EXPECT_EQ(mk::encode(mk::fit_codec(c, x.view(), 1), x.view()).wire_bytes(), 14u);
  c.bits = 8;  // 15 B + 6 B
  EXPECT_EQ(mk::encode(mk::fit_codec(c, x.view(), 1), x.view()).wire_bytes(), 21u);
}

TEST(WireBytes, SubspaceMethodsCountCoefficientsThetaAndIndices) {
  const mk::Matrix x = gaussian(300, 64, 8);
  mk::CodecConfig m = config(mk::Method::mos, 5);
  m.rotations = 2;
  m.theta_block_tokens = 128;  // 3 blocks x 2 fp32 theta = 24 B, + 300 * 5 * 2 = 3000 B
  EXPECT_EQ(mk::encode(mk::fit_codec(m, x.view(), 1), x.view()).wire_bytes(), 3024u);
  mk::CodecConfig k = config(mk::Method::mos_k, 5);
  k.subspaces = 3;  // 2 bits per token: 600 bits = 75 B, + 3000 B
  EXPECT_EQ(mk::encode(mk::fit_codec(k, x.view(), 1), x.view()).wire_bytes(), 3075u);
  EXPECT_EQ(mk::one_time_bytes(m, 64), 2u * 64 * 5 * 3);
  EXPECT_EQ(mk::encode(mk::fit_codec(config(mk::Method::none, 0), x.view(), 1), x.view()).wire_bytes(), 300u * 64 * 2);
}

// The rates the simulator sizes its transfers with are the wire format's: for whole blocks a chunk's
// encoded_bytes is rate x tokens + per chunk, less than one byte short of it (the bit-packed
// indices and codes rounded up once).
TEST(WireBytes, RatesAreTheWireFormatsUpToOneBytePerChunk) {
  for (const std::int64_t dim : {64, 100, 2048}) {
    for (const mk::Method method : {mk::Method::none, mk::Method::pca, mk::Method::mos, mk::Method::mos_k, mk::Method::topk, mk::Method::quant}) {
      for (const int block : {0, 1, 16}) {
        mk::CodecConfig c = config(method, 7);
        c.rotations = 3, c.subspaces = 5, c.fraction = 0.013, c.bits = 4;
        c.theta_block_tokens = block, c.route_block_tokens = block;
        const mk::WireRate rate = mk::wire_rate(c, dim);
        for (const std::int64_t tokens : {16, 48, 4096}) {
          const double bytes = static_cast<double>(mk::encoded_bytes(c, tokens, dim));
          const double from_rate = rate.per_token_bytes * static_cast<double>(tokens) + rate.per_chunk_bytes;
          EXPECT_GE(bytes, from_rate) << mk::method_name(method) << " dim " << dim << " block " << block << " tokens " << tokens;
          EXPECT_LT(bytes, from_rate + 1.0) << mk::method_name(method) << " dim " << dim << " block " << block << " tokens " << tokens;
        }
      }
    }
  }
  // By hand: mos's angles per chunk (block 0), mos-k's 3 bits per token, topk's values and indices.
  mk::CodecConfig mos = config(mk::Method::mos, 40);
  mos.rotations = 2;
  EXPECT_EQ(mk::wire_rate(mos, 2048).per_token_bytes, 80.0);
  EXPECT_EQ(mk::wire_rate(mos, 2048).per_chunk_bytes, 8.0);
  mk::CodecConfig k = config(mk::Method::mos_k, 40);
  k.subspaces = 5;
  EXPECT_EQ(mk::wire_rate(k, 2048).per_token_bytes, 80.375);
  mk::CodecConfig top = config(mk::Method::topk, 0);
  top.fraction = 0.1;  // 205 values, 11-bit indices: 410 + 281.875
  EXPECT_EQ(mk::wire_rate(top, 2048).per_token_bytes, 691.875);
}

TEST(Quant, DecodesWithinHalfAStepPerRow) {
  const mk::Matrix x = gaussian(20, 50, 6);
  for (int bits : {4, 8}) {
    mk::CodecConfig c = config(mk::Method::quant, 0);
    c.bits = bits;
    const mk::CodecState s = mk::fit_codec(c, x.view(), 1);
    const mk::Encoded e = mk::encode(s, x.view());
    mk::Matrix xh(20, 50);
    mk::decode(s, e, xh.data.data());
    for (std::int64_t t = 0; t < 20; ++t)
      for (std::int64_t j = 0; j < 50; ++j)
        EXPECT_LE(std::fabs(xh(t, j) - x(t, j)), 0.5 * e.scales[t] * 1.02 + 0.01 * std::fabs(x(t, j)));
  }
}

TEST(Topk, KeepsTheLargestMagnitudes) {
  mk::Matrix x(1, 8);
  x.data = {0.5f, -4.0f, 1.0f, 3.0f, -0.25f, 2.0f, 0.0f, -1.5f};
  mk::CodecConfig c = config(mk::Method::topk, 0);
  c.fraction = 0.375;  // k = 3
  const mk::CodecState s = mk::fit_codec(c, x.view(), 1);
  mk::Matrix xh(1, 8);
  mk::decode(s, mk::encode(s, x.view()), xh.data.data());
  EXPECT_EQ(xh.data, (std::vector<float>{0, -4, 0, 3, 0, 2, 0, 0}));
}

class EigenVsReference : public ::testing::TestWithParam<mk::Method> {};

TEST_P(EigenVsReference, SameEncodingAndDecoding) {
  const mk::Matrix warm = mixture(1024, 72, 3, 6, 0.8, 100, 41);
  const mk::Matrix x = mixture(333, 72, 3, 6, 0.8, 100, 42);  // not a multiple of any block size
  mk::CodecConfig c = config(GetParam(), 6);
  c.rotations = 2;
  c.subspaces = 3;
  c.theta_block_tokens = 100;
  const mk::CodecState s = mk::fit_codec(c, warm.view(), 2);
  const mk::Encoded e = mk::encode(s, x.view());
  const mk::Encoded ref = mk::reference::encode(s, x.view(), e.theta);
  ASSERT_EQ(e.values.size(), ref.values.size());
  EXPECT_EQ(e.packed, ref.packed);
  EXPECT_EQ(e.wire_bytes(), ref.wire_bytes());
  double worst = 0;
  for (std::size_t i = 0; i < e.values.size(); ++i)
    worst = std::max(worst, std::fabs(e.values[i] - ref.values[i]) / (1e-3 + std::fabs(ref.values[i])));
  EXPECT_LT(worst, 1e-2) << "worst relative coefficient difference";
  EXPECT_LT(decode_difference(s, e, x.rows, x.cols), 1e-2);
}

INSTANTIATE_TEST_SUITE_P(AllMethods, EigenVsReference,
                         ::testing::Values(mk::Method::none, mk::Method::pca, mk::Method::mos,
                                           mk::Method::mos_k, mk::Method::topk, mk::Method::quant),
                         [](const auto& param_info) {
                           std::string n(mk::method_name(param_info.param));
                           for (char& ch : n) if (ch == '-') ch = '_';
                           return n;
                         });

TEST(Config, RejectsInvalidParameters) {
  EXPECT_THROW(mk::parse_method("svd"), std::invalid_argument);
  EXPECT_THROW(mk::parse_routing("random"), std::invalid_argument);
  mk::CompressionParams p;
  p.method = "mos-k", p.rank_k = p.rank_v = 8, p.routing = "sketch";
  EXPECT_EQ(mk::codec_config(p, false).routing, mk::Routing::sketch);
  p.routing = "greedy";
  EXPECT_THROW(mk::codec_config(p, false), std::invalid_argument);
  EXPECT_EQ(mk::route_sketch_columns(16), 2);
  EXPECT_EQ(mk::route_sketch_columns(4), 1);
  EXPECT_THROW(mk::validate_config(config(mk::Method::pca, 0), 64), std::invalid_argument);
  EXPECT_THROW(mk::validate_config(config(mk::Method::pca, 65), 64), std::invalid_argument);
  mk::CodecConfig q = config(mk::Method::quant, 0);
  q.bits = 3;
  EXPECT_THROW(mk::validate_config(q, 64), std::invalid_argument);
  mk::CodecConfig t = config(mk::Method::topk, 0);
  t.fraction = 0;
  EXPECT_THROW(mk::validate_config(t, 64), std::invalid_argument);
}

TEST(Encode, IntoAReusedEncodedEqualsAFreshEncoding) {
  // encode(state, x, out) reuses out's buffers (evaluate_tensor's repeats, a training loop's send
  // buffer): whatever out held before (another method or configuration, another chunk length), the
  // result must be exactly encode(state, x), field by field. Every ordered pair of configurations.
  const std::int64_t d = 49;  // odd: 4-bit codes straddle rows
  const mk::Matrix warm = mixture(1024, d, 3, 5, 0.8, 64, 81);
  const mk::Matrix x_long = mixture(300, d, 3, 5, 0.8, 64, 82);
  const mk::Matrix x_short = mixture(77, d, 3, 5, 0.8, 64, 83);
  struct Case {
    mk::Method method;
    int rotations, bits, value_bytes;
    mk::Routing routing;
  };
  const std::vector<Case> cases{{mk::Method::none, 1, 8, 2, mk::Routing::exhaustive},
                                {mk::Method::pca, 1, 8, 2, mk::Routing::exhaustive},
                                {mk::Method::pca, 1, 8, 4, mk::Routing::exhaustive},
                                {mk::Method::mos, 1, 8, 2, mk::Routing::exhaustive},
                                {mk::Method::mos, 2, 8, 4, mk::Routing::exhaustive},
                                {mk::Method::mos_k, 1, 8, 2, mk::Routing::exhaustive},
                                {mk::Method::mos_k, 1, 8, 2, mk::Routing::sketch},
                                {mk::Method::topk, 1, 8, 2, mk::Routing::exhaustive},
                                {mk::Method::topk, 1, 8, 4, mk::Routing::exhaustive},
                                {mk::Method::quant, 1, 4, 2, mk::Routing::exhaustive},
                                {mk::Method::quant, 1, 8, 4, mk::Routing::exhaustive}};
  std::vector<mk::CodecState> states;
  for (const Case& k : cases) {
    mk::CodecConfig c = config(k.method, 6);
    c.rotations = k.rotations, c.bits = k.bits, c.value_bytes = k.value_bytes, c.routing = k.routing;
    c.theta_block_tokens = k.method == mk::Method::mos ? 50 : 0;
    c.route_block_tokens = 4;
    states.push_back(mk::fit_codec(c, warm.view(), 3));
  }
  int checked = 0;
  for (std::size_t a = 0; a < states.size(); ++a)
    for (std::size_t b = 0; b < states.size(); ++b) {
      const mk::MatrixView before = (a + b) % 2 == 0 ? x_long.view() : x_short.view();
      const mk::MatrixView x = (a + b) % 2 == 0 ? x_short.view() : x_long.view();
      mk::Encoded reused;
      mk::encode(states[a], before, reused);
      mk::encode(states[b], x, reused);
      const mk::Encoded fresh = mk::encode(states[b], x);
      const std::string what = "case " + std::to_string(a) + " then " + std::to_string(b);
      EXPECT_EQ(reused.tokens, fresh.tokens) << what;
      EXPECT_EQ(reused.dim, fresh.dim) << what;
      EXPECT_EQ(reused.value_bytes, fresh.value_bytes) << what;
      EXPECT_EQ(reused.values, fresh.values) << what;
      EXPECT_EQ(reused.packed, fresh.packed) << what;
      EXPECT_EQ(reused.theta, fresh.theta) << what;
      EXPECT_EQ(reused.scales, fresh.scales) << what;
      EXPECT_EQ(reused.route, fresh.route) << what;
      EXPECT_EQ(reused.wire_bytes(), mk::encoded_bytes(states[b].config, x.rows, x.cols)) << what;
      ++checked;
    }
  EXPECT_EQ(checked, 121);
}

TEST(Scale, FitAndErrorDoNotDependOnAPowerOfTwoScale) {
  // x 2^k changes no rounding, so a scale-invariant codec gives the same relative error. The fit
  // squares the data twice in fp32: before it scaled its warm-up to |x| ~ 1, pca, mos and mos-k
  // returned NaN from |x| ~ 1e10 (2^40 is 1.1e12).
  const mk::Matrix all = mixture(1536, 64, 4, 8, 0.6, 128, 41);
  auto scaled = [&](std::int64_t first, std::int64_t rows, int k) {
    mk::Matrix m(rows, all.cols);
    for (std::size_t i = 0; i < m.data.size(); ++i) m.data[i] = std::ldexp(all.data[static_cast<std::size_t>(first * all.cols) + i], k);
    return m;
  };
  struct Case {
    mk::Method method;
    int rotations, subspaces;
  };
  for (const Case& c : {Case{mk::Method::pca, 0, 0}, Case{mk::Method::mos, 1, 0}, Case{mk::Method::mos, 2, 0}, Case{mk::Method::mos_k, 0, 3}}) {
    mk::CodecConfig cfg = config(c.method, 8);
    if (c.rotations > 0) cfg.rotations = c.rotations, cfg.theta_block_tokens = 128;
    if (c.subspaces > 0) cfg.subspaces = c.subspaces;
    const double at_one = roundtrip_error(mk::fit_codec(cfg, scaled(0, 1024, 0).view(), 5), scaled(1024, 512, 0));
    EXPECT_LT(at_one, 0.5) << "method " << static_cast<int>(c.method);
    for (const int k : {-40, 40}) {
      const double at_k = roundtrip_error(mk::fit_codec(cfg, scaled(0, 1024, k).view(), 5), scaled(1024, 512, k));
      EXPECT_NEAR(at_k, at_one, 1e-6 * at_one) << "method " << static_cast<int>(c.method) << " rotations " << c.rotations << " scale 2^" << k;
    }
  }
}

TEST(Mos, RankEqualToTheWidthIsAsGoodAsPca) {
  // r = d leaves no room to rotate into: the directions were rounding noise normalised to unit norm,
  // with an O(1) part in span(Ubar), and U(theta) far from orthonormal (error 0.43 against pca's
  // 0.004). Data of rank <= r is the same case in part of the space.
  const mk::Matrix full = gaussian(768, 48, 43);
  const mk::Matrix low = product(gaussian(768, 4, 44), gaussian(4, 48, 45));
  struct Case {
    const mk::Matrix* x;
    int rank;
  };
  for (const Case& k : {Case{&full, 48}, Case{&low, 8}, Case{&low, 48}}) {
    const mk::MatrixView warm = k.x->view().slice_rows(0, 512);
    mk::Matrix test(256, k.x->cols);
    std::copy(k.x->row(512), k.x->row(512) + test.data.size(), test.data.begin());
    const double e_pca = roundtrip_error(mk::fit_codec(config(mk::Method::pca, k.rank), warm, 1), test);
    for (const int rotations : {1, 2}) {
      mk::CodecConfig c = config(mk::Method::mos, k.rank);
      c.rotations = rotations, c.theta_block_tokens = 64;
      const mk::CodecState s = mk::fit_codec(c, warm, 1);
      const double e_mos = roundtrip_error(s, test);
      EXPECT_LE(e_mos, 1.05 * e_pca + 1e-4) << "rank " << k.rank << " rotations " << rotations << " pca " << e_pca;
      // Whatever directions are left are orthogonal to Ubar (to bf16 rounding of the exchanged bases).
      const std::int64_t d = s.dim;
      double worst = 0;
      for (int i = 0; i < rotations; ++i)
        for (int p = 0; p < k.rank; ++p)
          for (int q = 0; q < k.rank; ++q) {
            double dot = 0;
            for (std::int64_t a = 0; a < d; ++a) dot += static_cast<double>(s.basis[a * k.rank + p]) * s.directions[i * d * k.rank + a * k.rank + q];
            worst = std::max(worst, std::fabs(dot));
          }
      EXPECT_LT(worst, 2e-2) << "rank " << k.rank << " rotations " << rotations;
    }
  }
}
