#include "moss/model/transformer.h"

#include <gtest/gtest.h>

#include "moss/scenario/catalog.h"

namespace moss::model {

namespace {
const TransformerConfig& preset(const std::string& name) { return scenario::catalog().models.at(name); }
}  // namespace

// Published totals: Llama 3 8B has 8.03B parameters, Llama 3 70B 70.6B (Meta model card).
TEST(Transformer, Llama3ParameterCountsMatchPublished) {
  EXPECT_NEAR(parameter_count(preset("llama3-8b")) / 1e9, 8.03, 0.005);
  EXPECT_NEAR(parameter_count(preset("llama3-70b")) / 1e9, 70.55, 0.06);
}

TEST(Transformer, MosPaperModelHas800MParameters) {
  EXPECT_NEAR(parameter_count(preset("mos-800m")) / 1e9, 0.80, 0.01);
}

TEST(Transformer, HandCountedTinyModel) {
  // d=4, heads=2, kv_heads=1 (kv_dim 2), ffn=8, vocab=10, tied, 1 layer:
  // q 16 + k 8 + v 8 + o 16 + mlp 96 + norms 8 = 152; embedding 40; final norm 4.
  const TransformerConfig m{"tiny", 1, 4, 2, 1, 8, 10, true};
  EXPECT_DOUBLE_EQ(layer_parameters(m), 152.0);
  EXPECT_DOUBLE_EQ(parameter_count(m), 196.0);
}

TEST(Transformer, GemmFlopsAreTwoMnk) { EXPECT_DOUBLE_EQ(gemm_flops(128, 256, 512), 2.0 * 128 * 256 * 512); }

TEST(Transformer, CausalPairsMatchBruteForce) {
  const int ranges[][4] = {{0, 8, 0, 8}, {4, 8, 0, 4}, {0, 4, 4, 8}, {3, 11, 2, 7}, {5, 6, 0, 100}, {0, 0, 0, 5}};
  for (const auto& r : ranges) {
    double brute = 0;
    for (int q = r[0]; q < r[1]; ++q) {
      for (int k = r[2]; k < r[3]; ++k) brute += k <= q ? 1 : 0;
    }
    EXPECT_DOUBLE_EQ(causal_pairs(r[0], r[1], r[2], r[3]), brute) << r[0] << ' ' << r[1] << ' ' << r[2] << ' ' << r[3];
  }
}

TEST(Transformer, TrainingFlopsApproachSixNd) {
  // For short sequences attention is negligible: 3 x forward ~ 6 N D without embeddings.
  const TransformerConfig& m = preset("llama3-8b");
  const double d = 1024;
  const double non_embedding = parameter_count(m) - 2.0 * m.vocab * m.d_model;
  const double expected = 6.0 * (non_embedding + m.vocab * m.d_model) * d;  // head GEMM counts once
  EXPECT_NEAR(training_flops_per_sequence(m, d) / expected, 1.0, 0.03);
}

}  // namespace moss::model
