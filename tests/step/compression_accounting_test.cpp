#include "moss/step/compression_accounting.h"

#include <gtest/gtest.h>

#include "scenario_fixture.h"

namespace moss::step {

namespace {
KvBytes bytes_for(const std::string& compression) {
  const auto s = testing::parse(testing::mos800m("1Gbps", compression));
  return kv_bytes(s.compression, s.model, 16384);
}
}  // namespace

// kv_dim = 2048 for the 800M model; raw K + V = 2 x 2048 x 2 bytes = 8192 per token.
TEST(CompressionAccounting, NoneSendsRawBf16) {
  const KvBytes b = bytes_for(R"({"method": "none"})");
  EXPECT_DOUBLE_EQ(b.raw_per_token, 8192);
  EXPECT_DOUBLE_EQ(b.ratio(16384), 1.0);
}

TEST(CompressionAccounting, MosCountsCoefficientsAndTheta) {
  const KvBytes b = bytes_for(R"({"method": "mos", "rank_k": 40, "rank_v": 100, "rotations": 1})");
  EXPECT_DOUBLE_EQ(b.sent_per_token, 280);  // 140 bf16 coefficients
  EXPECT_DOUBLE_EQ(b.per_chunk, 8);         // one fp32 angle for K, one for V
  EXPECT_DOUBLE_EQ(b.ratio(16384), (280.0 * 16384 + 8) / (8192.0 * 16384));
  EXPECT_DOUBLE_EQ(b.one_time, 2.0 * 140 * 2048);
}

TEST(CompressionAccounting, MosKAddsTheIndex) {
  const KvBytes b = bytes_for(R"({"method": "mos-k", "rank_k": 40, "rank_v": 100, "subspaces": 4})");
  EXPECT_DOUBLE_EQ(b.sent_per_token, 280 + 2 * 2.0 / 8);  // 2 bits per tensor
}

// Sketch routing reads max(1, r/8) columns of each basis and projects every token once: its encode
// costs more than pca's single projection and less than trying all 16 bases; the bytes are the same.
TEST(CompressionAccounting, MosKSketchRoutingCostsBetweenPcaAndExhaustive) {
  const auto time_of = [](const std::string& compression) {
    const auto s = testing::parse(testing::mos800m("1Gbps", compression));
    return codec_time(s.compression, s.model, s.cluster.gpu, 16384).encode_s;
  };
  const double pca = time_of(R"({"method": "pca", "rank_k": 40, "rank_v": 100})");
  const double sketch = time_of(R"({"method": "mos-k", "rank_k": 40, "rank_v": 100, "subspaces": 16, "routing": "sketch"})");
  const double exhaustive = time_of(R"({"method": "mos-k", "rank_k": 40, "rank_v": 100, "subspaces": 16})");
  EXPECT_LE(pca, sketch);
  EXPECT_LT(sketch, exhaustive);
  EXPECT_EQ(bytes_for(R"({"method": "mos-k", "rank_k": 40, "rank_v": 100, "routing": "sketch"})").sent_per_token,
            bytes_for(R"({"method": "mos-k", "rank_k": 40, "rank_v": 100})").sent_per_token);
}

TEST(CompressionAccounting, TopkCountsValuesAndIndexBits) {
  const KvBytes b = bytes_for(R"({"method": "topk", "fraction": 0.1})");
  // 205 values of 2 bytes + 205 x 11-bit indices (282 bytes) per tensor.
  EXPECT_DOUBLE_EQ(b.sent_per_token, 2 * (410 + 282));
}

TEST(CompressionAccounting, QuantCountsBitsAndScales) {
  EXPECT_DOUBLE_EQ(bytes_for(R"({"method": "quant", "bits": 4})").sent_per_token, 2 * (1024 + 2));
  EXPECT_DOUBLE_EQ(bytes_for(R"({"method": "quant", "bits": 8})").sent_per_token, 2 * (2048 + 2));
}

}  // namespace moss::step
