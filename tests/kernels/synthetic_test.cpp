#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "moss/kernels/synthetic.h"

namespace mk = moss::kernels;

TEST(Synthetic, IsDeterministicAndPrefixStable) {
  mk::SyntheticSpec s = mk::parse_synthetic_spec("llama,tokens=300,dim=64,seed=3");
  const mk::Matrix a = mk::generate_synthetic(s, false);
  const mk::Matrix b = mk::generate_synthetic(s, false);
  EXPECT_EQ(a.data, b.data);
  s.tokens = 100;
  const mk::Matrix c = mk::generate_synthetic(s, false);
  EXPECT_TRUE(std::equal(c.data.begin(), c.data.end(), a.data.begin()));
  EXPECT_NE(mk::generate_synthetic(s, true).data, c.data);  // V differs from K
}

TEST(Synthetic, ParsesSpecsAndRoundTripsTheCanonicalForm) {
  const mk::SyntheticSpec s =
      mk::parse_synthetic_spec("tokens=4096,dim=2048,subspaces=4,rank=32,decay=1.0,noise=1e-3,seed=1");
  EXPECT_EQ(s.tokens, 4096);
  EXPECT_EQ(s.dim, 2048);
  EXPECT_EQ(mk::effective_rank(s), 32);
  EXPECT_EQ(mk::effective_rank(s, true), 32);
  EXPECT_EQ(mk::effective_rank(mk::parse_synthetic_spec("llama,dim=2048"), true), 64);
  EXPECT_DOUBLE_EQ(s.noise, 1e-3);
  const mk::SyntheticSpec t = mk::parse_synthetic_spec(mk::to_string(s));
  EXPECT_EQ(mk::to_string(t), mk::to_string(s));
  EXPECT_EQ(mk::effective_rank(mk::parse_synthetic_spec("isotropic,dim=100")), 100);
}

TEST(Synthetic, RejectsBadSpecs) {
  EXPECT_THROW(mk::parse_synthetic_spec("tokens=abc"), std::invalid_argument);
  EXPECT_THROW(mk::parse_synthetic_spec("colour=3"), std::invalid_argument);
  EXPECT_THROW(mk::parse_synthetic_spec("tokens=10,llama"), std::invalid_argument);
  EXPECT_THROW(mk::parse_synthetic_spec("gpt"), std::invalid_argument);
  EXPECT_THROW(mk::parse_synthetic_spec("dim=0"), std::invalid_argument);
  EXPECT_THROW(mk::parse_synthetic_spec("llama,dim=64,rank=4,dim=128"), std::invalid_argument);  // dim twice
}

TEST(Synthetic, RejectsNonFiniteParametersAndWorkBeyondItsBound) {
  for (const char* spec : {"noise=inf", "spread=inf", "decay=1e7", "noise=1e40", "noise=nan", "decay_v=-1"})
    EXPECT_THROW(mk::parse_synthetic_spec(spec), std::invalid_argument) << spec;
  // 1024 x 256 x 8192 basis values (V's default rank is dim / 32): 2^31, over 2^28.
  EXPECT_THROW(mk::parse_synthetic_spec("llama,tokens=16,dim=8192,subspaces=1024"), std::invalid_argument);
  // 4 x 4096^2 x 8192 multiply-adds to orthonormalise: 2^39, over 2^37.
  EXPECT_THROW(mk::parse_synthetic_spec("llama,tokens=16,dim=8192,rank=4096"), std::invalid_argument);
  // A spec enlarged after parsing is refused by the generator too.
  mk::SyntheticSpec s = mk::parse_synthetic_spec("llama,tokens=16,dim=64,subspaces=1024");
  s.dim = 8192;
  EXPECT_THROW((void)mk::generate_synthetic(s, false), std::invalid_argument);
  EXPECT_NO_THROW((void)mk::parse_synthetic_spec("llama,dim=4096,subspaces=16"));
}

TEST(Synthetic, IsotropicIsStandardNormalAtAnyWidth) {
  // Full rank without decay costs no basis: the widest spec is cheap, and each entry is N(0, 1).
  EXPECT_NO_THROW((void)mk::parse_synthetic_spec("isotropic,tokens=16,dim=65536"));
  const mk::Matrix x = mk::generate_synthetic(mk::parse_synthetic_spec("isotropic,tokens=1024,dim=256"), false);
  double sum = 0, sum_sq = 0;
  for (const float v : x.data) sum += v, sum_sq += static_cast<double>(v) * v;
  const double n = static_cast<double>(x.data.size());
  EXPECT_NEAR(sum / n, 0.0, 4.0 / std::sqrt(n));                  // 4 standard errors
  EXPECT_NEAR(sum_sq / n, 1.0, 4.0 * std::sqrt(2.0 / n));         // var of x^2 is 2
  // With noise on top: variance 1 + noise^2.
  const mk::Matrix y = mk::generate_synthetic(mk::parse_synthetic_spec("isotropic,tokens=1024,dim=256,noise=0.5"), false);
  double y_sq = 0;
  for (const float v : y.data) y_sq += static_cast<double>(v) * v;
  EXPECT_NEAR(y_sq / n, 1.25, 0.03);
}

TEST(Synthetic, LlamaPresetHasTheReportedStableRank) {
  // LLaMA-class K/V: stable rank about 0.1-0.5 % of the width (DESIGN.md).
  const mk::SyntheticSpec s = mk::parse_synthetic_spec("llama,tokens=2048,dim=2048");
  const double k = mk::stable_rank(mk::generate_synthetic(s, false).view());
  const double v = mk::stable_rank(mk::generate_synthetic(s, true).view());
  std::cout << "stable rank K " << k << " V " << v << " of 2048\n";
  EXPECT_GE(k, 0.001 * 2048);
  EXPECT_LE(k, 0.005 * 2048);
  EXPECT_GE(v, 0.001 * 2048);
  EXPECT_LE(v, 0.005 * 2048);
  EXPECT_LT(k, v);
}

namespace {
double row_dot(const std::vector<float>& m, std::int64_t dim, int i, const std::vector<float>& n, int j) {
  double s = 0;
  for (std::int64_t e = 0; e < dim; ++e) s += static_cast<double>(m[i * dim + e]) * n[j * dim + e];
  return s;
}
}  // namespace

// Several panels of the blocked Gram-Schmidt, a width that is no multiple of the vector lanes, the
// square (full-rank, ill-conditioned) case and a dependent row.
TEST(Synthetic, OrthonormalisesRowsInGramSchmidtOrder) {
  for (const auto& [rank, dim] : {std::pair{70, 203}, std::pair{64, 64}, std::pair{5, 9}}) {
    std::vector<float> b(static_cast<std::size_t>(rank * dim));
    std::uint64_t x = 12345;
    for (float& v : b) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      v = static_cast<float>((x >> 40) & 0xffff) / 65536.0f - 0.5f;
    }
    std::vector<float> q = b;
    mk::orthonormalise_rows(q, rank, dim);
    double worst_orth = 0, worst_order = 0;
    for (int i = 0; i < rank; ++i) {
      for (int j = 0; j <= i; ++j) worst_orth = std::max(worst_orth, std::abs(row_dot(q, dim, i, q, j) - (i == j)));
      // Input row i lies in the span of output rows 0..i: orthogonal to every later one.
      const double norm = std::sqrt(row_dot(b, dim, i, b, i));
      for (int j = i + 1; j < rank; ++j) worst_order = std::max(worst_order, std::abs(row_dot(b, dim, i, q, j)) / norm);
    }
    EXPECT_LT(worst_orth, 2e-5) << rank << " x " << dim;
    EXPECT_LT(worst_order, 2e-5) << rank << " x " << dim;
    std::vector<float> again = b;
    mk::orthonormalise_rows(again, rank, dim);
    EXPECT_EQ(again, q) << "deterministic";
  }
  std::vector<float> dependent = {1, 0, 0, 0, 1, 0, 2, 3, 0};
  mk::orthonormalise_rows(dependent, 3, 3);
  EXPECT_NEAR(std::abs(dependent[0]) + std::abs(dependent[4]), 2.0, 1e-6);
  EXPECT_NEAR(std::abs(dependent[6]) + std::abs(dependent[7]) + std::abs(dependent[8]), 0.0, 1e-6);
  EXPECT_THROW(mk::orthonormalise_rows(dependent, 4, 3), std::invalid_argument);
}
