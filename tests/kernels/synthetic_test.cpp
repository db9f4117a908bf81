#include <gtest/gtest.h>

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
