#include "moss/step/compression_accounting.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "moss/model/roofline.h"
#include "moss/step/compression_measure.h"

#include "scenario_fixture.h"

namespace moss::step {

namespace {
KvBytes bytes_for(const std::string& compression) {
  const auto s = testing::parse(testing::mos800m("1Gbps", compression));
  return kv_bytes(s.compression, s.model);
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
  // Ubar and the one tangent direction (both ends build U(theta) from them), bf16: the accounting
  // once counted Ubar alone, half the kernels' one-time exchange.
  EXPECT_DOUBLE_EQ(b.one_time, 2.0 * 140 * 2048 * 2);
  EXPECT_DOUBLE_EQ(bytes_for(R"({"method": "mos", "rank_k": 40, "rank_v": 100, "rotations": 3})").one_time, 2.0 * 140 * 2048 * 4);
  EXPECT_DOUBLE_EQ(bytes_for(R"({"method": "pca", "rank_k": 40, "rank_v": 100})").one_time, 2.0 * 140 * 2048);
  EXPECT_DOUBLE_EQ(bytes_for(R"({"method": "mos-k", "rank_k": 40, "rank_v": 100, "subspaces": 4})").one_time, 2.0 * 140 * 2048 * 4);
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

// mos's roofline adds to pca's projection the forming of U(theta) and theta's sample, by hand for the
// 800M model (kv_dim 2048), ranks 64 / 64, one rotation, a chunk of 16384 tokens: the sample is
// 16384 / (16384 / 256) = 256 tokens per tensor (256 from rank 64 on), projected on [Ubar W_1]
// (2 x 64 columns) and read again (256 x 2048 bf16).
TEST(CompressionAccounting, MosRooflineCountsUThetaAndThetasSample) {
  const auto s = testing::parse(testing::mos800m("1Gbps", R"({"method": "mos", "rank_k": 64, "rank_v": 64, "rotations": 1})"));
  const double tokens = 16384, d = 2048, r = 64;
  const double projection = 2 * tokens * d * (r + r);
  const double u_theta = 2 * (2 * d * r * 3 + 2 * 2 * d * r * r);  // both tensors: (1 + m + m^2) d r and two d r r products
  const double sample = 2 * (2 * 256 * d * 2 * r);
  const double raw = tokens * 2 * d * 2, sent = tokens * (r + r) * 2 + 2 * 4, sample_read = 2 * 256 * d * 2;
  const CodecTime t = codec_time(s.compression, s.model, s.cluster.gpu, tokens);
  EXPECT_DOUBLE_EQ(t.encode_s, model::roofline_time_s(s.cluster.gpu, model::OpClass::kGemm, projection + u_theta + sample, raw + sent + sample_read));
  // No rotation: U(theta) is Ubar and nothing is sampled.
  const auto s0 = testing::parse(testing::mos800m("1Gbps", R"({"method": "mos", "rank_k": 64, "rank_v": 64, "rotations": 0})"));
  const double sent0 = tokens * (r + r) * 2;
  EXPECT_DOUBLE_EQ(codec_time(s0.compression, s0.model, s0.cluster.gpu, tokens).encode_s,
                   model::roofline_time_s(s0.cluster.gpu, model::OpClass::kGemm, projection + 2 * (2 * d * r + 2 * 2 * d * r * r), raw + sent0));
}

// The roofline that times compression where no GPU measured it, against a measurement: pca on one
// NVIDIA H200 (results/reference/gpu-h200-23ea756/gpu_check.log, `auto` GEMMs, T = 65536, d = 2048): encode
// 3528 GB/s of bf16 input at r = 64, 2689 at r = 256; decode 3259 and 2178 GB/s of output. The
// catalog's H200 (989 TFLOP/s, 4.8 TB/s) with the default efficiencies (GEMM 0.70, memory 0.80)
// gives 3.72 and 2.70 TB/s: encode within 6 %, decode 14-24 % optimistic (the decode GEMM writes X
// through its epilogue slower than it streams it in).
TEST(CompressionAccounting, RooflineOfThePcaProjectionMatchesAnH200Measurement) {
  const auto rates = [](int rank) {
    auto doc = testing::mos800m("100Gbps", R"({"method": "pca"})");
    doc["cluster"]["gpu"] = "H200";
    doc["compression"]["rank_k"] = rank;
    doc["compression"]["rank_v"] = rank;
    const auto s = testing::parse(doc);
    const double tokens = 65536;
    const CodecTime t = codec_time(s.compression, s.model, s.cluster.gpu, tokens);
    const double raw = tokens * 2 * s.model.kv_dim() * 2;  // K and V, bf16, d = 2048 each
    return std::pair{raw / t.encode_s / 1e9, raw / t.decode_s / 1e9};
  };
  const auto [enc64, dec64] = rates(64);
  const auto [enc256, dec256] = rates(256);
  EXPECT_NEAR(enc64 / 3528.0, 1.0, 0.10);
  EXPECT_NEAR(enc256 / 2689.0, 1.0, 0.10);
  EXPECT_GE(dec64, 3259.0);  // optimistic, by at most a quarter
  EXPECT_LE(dec64, 1.25 * 3259.0);
  EXPECT_GE(dec256, 2178.0);
  EXPECT_LE(dec256, 1.25 * 2178.0);
}

TEST(CompressionAccounting, TopkCountsValuesAndIndexBits) {
  const KvBytes b = bytes_for(R"({"method": "topk", "fraction": 0.1})");
  // 205 values of 2 bytes + 205 x 11-bit indices, bit-packed across the chunk: 281.875 bytes per
  // token and tensor (the formula rounded each token up to 282 bytes, unlike the wire).
  EXPECT_DOUBLE_EQ(b.sent_per_token, 2 * (410 + 281.875));
  // At 0.001 of 2048: 3 values and 33 index bits per tensor, 6 + 4.125 bytes (was 6 + 5: 8 % more).
  EXPECT_DOUBLE_EQ(bytes_for(R"({"method": "topk", "fraction": 0.001})").sent_per_token, 2 * (6 + 4.125));
}

TEST(CompressionAccounting, QuantCountsBitsAndScales) {
  EXPECT_DOUBLE_EQ(bytes_for(R"({"method": "quant", "bits": 4})").sent_per_token, 2 * (1024 + 2));
  EXPECT_DOUBLE_EQ(bytes_for(R"({"method": "quant", "bits": 8})").sent_per_token, 2 * (2048 + 2));
}

// A K/V file of three layers, each exactly rank 4 in its own subspace: every layer of a model has
// its own bases, so pca at rank 8 must reconstruct each to bf16 rounding. The layers were once
// stacked into one matrix whose first 1024 rows (layer 0) fitted and the next (layer 1) were
// measured: error 0.98.
TEST(CompressionMeasure, EachLayerOfAFileIsFittedOnItsOwn) {
  const int layers = 3, tokens = 1024, dim = 64;
  std::mt19937_64 rng(3);
  std::normal_distribution<float> n;
  std::vector<float> values;
  for (int tensor = 0; tensor < 2; ++tensor)
    for (int l = 0; l < layers; ++l) {
      std::vector<float> a(tokens * 4), b(4 * dim);
      for (float& e : a) e = n(rng);
      for (float& e : b) e = n(rng);
      for (int t = 0; t < tokens; ++t)
        for (int j = 0; j < dim; ++j) {
          float x = 0;
          for (int q = 0; q < 4; ++q) x += a[t * 4 + q] * b[q * dim + j];
          values.push_back(x);
        }
    }
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, " + std::to_string(layers) + ", " +
                       std::to_string(tokens) + ", " + std::to_string(dim) + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  const std::filesystem::path file = std::filesystem::temp_directory_path() / ("moss-layers-" + std::to_string(::getpid()) + ".npy");
  {
    std::ofstream out(file, std::ios::binary);
    out << "\x93NUMPY" << '\x01' << '\x00' << static_cast<char>(header.size() & 0xff) << static_cast<char>(header.size() >> 8) << header;
    out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(float)));
  }
  nlohmann::json doc = testing::mos800m("1Gbps", R"({"method": "pca", "rank_k": 8, "rank_v": 8})");
  doc["model"] = nlohmann::json::parse(R"({"layers": 2, "d_model": 256, "heads": 4, "kv_heads": 1, "ffn_hidden": 1024, "vocab": 1000})");
  doc["compression"]["activations"] = file.string();
  const CompressionFigures f = compression_figures(testing::parse(doc), true);
  std::filesystem::remove(file);
  EXPECT_LT(f.outcome.relative_error, 1e-2);  // bf16 rounding of data and basis: ~4e-3
  EXPECT_GT(f.outcome.relative_error, 0.0);
  EXPECT_NE(f.outcome.source.find("layers 0, 1, 2 of 3"), std::string::npos) << f.outcome.source;
}

// The bases are fitted on compression.warmup_tokens tokens (default 4096). synthetic:llama mixes
// subspaces over segments of tokens: a short warm-up sees few of them, so its bases fit the measured
// sample worse (pca 40/100: error 0.196 at 1024 tokens, 0.114 at 4096, 0.102 at 8192).
TEST(CompressionMeasure, ALongerWarmupFitsBetterBases) {
  auto measured = [](const std::string& compression) {
    return compression_figures(testing::parse(testing::mos800m("1Gbps", compression)), true).outcome;
  };
  const CompressionOutcome brief = measured(R"({"method": "pca", "rank_k": 40, "rank_v": 100, "warmup_tokens": 1024})");
  const CompressionOutcome deflt = measured(R"({"method": "pca", "rank_k": 40, "rank_v": 100})");
  ASSERT_TRUE(brief.warmup_tokens && deflt.warmup_tokens && brief.relative_error && deflt.relative_error);
  EXPECT_EQ(*brief.warmup_tokens, 1024);
  EXPECT_EQ(*deflt.warmup_tokens, 4096);
  EXPECT_LT(*deflt.relative_error, 0.8 * *brief.relative_error);
  EXPECT_FALSE(measured(R"({"method": "topk", "fraction": 0.1})").warmup_tokens);  // topk fits nothing
}

}  // namespace moss::step

namespace moss::step {

// Kernel throughputs measured on a GPU become the scenario GPU's times only on that GPU; on another
// GPU of the catalog they are scaled by the two rooflines; on an unknown GPU the roofline stands.
TEST(MeasuredCodecTime, UsesScalesOrIgnoresTheMeasurementByWhichGpuRanIt) {
  const scenario::Scenario s = testing::parse(testing::mos800m("1Gbps", R"({"method": "pca", "rank_k": 16, "rank_v": 16})"));
  ASSERT_EQ(s.cluster.gpu.name, "A100-80GB");
  const double chunk = 16384, raw = chunk * 2 * 2 * s.model.kv_dim();  // K and V, bf16
  const double encode_bps = 1.5e12, decode_bps = 1.2e12;

  // The kernels' device string: the CUDA name, then what ran in parentheses.
  const std::string a100 = "NVIDIA A100-SXM4-80GB (CUDA, GEMMs: moss or libcublas.so.13)";
  const MeasuredCodecTime same = measured_codec_time(s, chunk, a100, encode_bps, decode_bps);
  EXPECT_DOUBLE_EQ(same.per_chunk.encode_s, raw / encode_bps);
  EXPECT_DOUBLE_EQ(same.per_chunk.decode_s, raw / decode_bps);
  EXPECT_EQ(same.source, "measured on " + a100);
  EXPECT_EQ(measured_codec_time(s, chunk, "NVIDIA A100-SXM4-80GB", encode_bps, decode_bps).source, "measured on NVIDIA A100-SXM4-80GB");

  // pca at rank 16 is memory-bound on both GPUs (16 flops per byte, below either's ridge): the
  // A100's time is the H200's times their HBM bandwidths' ratio, 4800 / 2039 GB/s.
  const MeasuredCodecTime other = measured_codec_time(s, chunk, "NVIDIA H200 (CUDA, GEMMs: auto)", encode_bps, decode_bps);
  EXPECT_NEAR(other.per_chunk.encode_s / (raw / encode_bps), 4800.0 / 2039.0, 1e-9);
  EXPECT_NEAR(other.per_chunk.decode_s / (raw / decode_bps), 4800.0 / 2039.0, 1e-9);
  EXPECT_NE(other.source.find("measured on NVIDIA H200 (CUDA, GEMMs: auto) (H200), scaled to A100-80GB"), std::string::npos) << other.source;

  const MeasuredCodecTime unknown = measured_codec_time(s, chunk, "NVIDIA B300", encode_bps, decode_bps);
  const CodecTime roofline = codec_time(s.compression, s.model, s.cluster.gpu, chunk);
  EXPECT_DOUBLE_EQ(unknown.per_chunk.encode_s, roofline.encode_s);
  EXPECT_DOUBLE_EQ(unknown.per_chunk.decode_s, roofline.decode_s);
  EXPECT_EQ(unknown.source.rfind("roofline estimate for A100-80GB (the kernels ran on NVIDIA B300", 0), 0u) << unknown.source;
}

}  // namespace moss::step
