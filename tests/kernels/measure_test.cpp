// The measure_kv facade: closed-form byte counts, caching, the time budget, errors.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <latch>
#include <random>
#include <span>
#include <thread>
#include <vector>

#include "moss/kernels/evaluate.h"
#include "moss/kernels/measure.h"
#include "moss/kernels/synthetic.h"

namespace mk = moss::kernels;

namespace {
mk::MeasureRequest request(const std::string& method, int kv_dim) {
  mk::MeasureRequest r;
  r.params.method = method;
  r.params.rank_k = 40;
  r.params.rank_v = 100;
  r.chunk_tokens = 16384;
  r.kv_dim = kv_dim;
  r.warmup_tokens = 1024;  // a quarter of the default: these tests check accounting, not fit quality
  return r;
}
}  // namespace

TEST(MeasureKv, PcaBytesAreTheClosedForm) {
  const mk::MeasureResult m = mk::measure_kv(request("pca", 1024));
  EXPECT_DOUBLE_EQ(m.raw_bytes_per_token, 2.0 * 1024 * 2);
  EXPECT_DOUBLE_EQ(m.sent_bytes_per_token, 2.0 * (40 + 100));
  EXPECT_DOUBLE_EQ(m.ratio, 140.0 / 2048.0);
  EXPECT_DOUBLE_EQ(m.one_time_bytes, 2.0 * 1024 * (40 + 100));
  EXPECT_GT(m.relative_error, 0.0);
  EXPECT_LT(m.relative_error, 1.0);
  EXPECT_TRUE(m.throughput_measured);
  EXPECT_GT(m.encode_input_bytes_per_s, 0.0);
  EXPECT_EQ(m.device.rfind("cpu (Eigen", 0), 0u) << m.device;
}

TEST(MeasureKv, MosCountsThetaPerChunk) {
  mk::MeasureRequest r = request("mos", 1024);
  r.params.rotations = 2;
  const mk::MeasureResult m = mk::measure_kv(r);
  // K and V each: r coefficients bf16 per token + 2 fp32 theta per 16384-token chunk.
  EXPECT_DOUBLE_EQ(m.sent_bytes_per_token, 2.0 * 140 + 2.0 * 2 * 4 / 16384.0);
  EXPECT_DOUBLE_EQ(m.one_time_bytes, 2.0 * 1024 * 140 * 3);
}

TEST(MeasureKv, IsCachedAtKvDim2048) {
  for (const char* method : {"none", "pca", "mos", "mos-k", "topk", "quant"}) {
    mk::MeasureRequest r = request(method, 2048);
    r.seed = 77;
    const auto t0 = std::chrono::steady_clock::now();
    const mk::MeasureResult a = mk::measure_kv(r);
    const auto t1 = std::chrono::steady_clock::now();
    const mk::MeasureResult b = mk::measure_kv(r);
    const auto t2 = std::chrono::steady_clock::now();
    const double first_s = std::chrono::duration<double>(t1 - t0).count();
    const double cached_s = std::chrono::duration<double>(t2 - t1).count();
    std::cout << method << ": ratio " << a.ratio << " error K " << a.relative_error_k << " V "
              << a.relative_error_v << " encode " << a.encode_input_bytes_per_s / 1e9 << " GB/s decode "
              << a.decode_output_bytes_per_s / 1e9 << " GB/s, first call " << first_s << " s\n";
    EXPECT_EQ(a.ratio, b.ratio);
    EXPECT_EQ(a.encode_input_bytes_per_s, b.encode_input_bytes_per_s);  // the cached measurement
    (void)cached_s;  // timings are printed for information only: speed is checked by benchmarks
  }
}

TEST(MeasureKv, LlamaPresetCompressesKBetterThanV) {
  mk::MeasureRequest r = request("pca", 2048);
  r.params.rank_v = r.params.rank_k;
  const mk::MeasureResult m = mk::measure_kv(r);
  EXPECT_LT(m.relative_error_k, m.relative_error_v);  // equal ranks: V has the flatter spectrum
}

TEST(MeasureKv, RejectsInvalidRequests) {
  EXPECT_THROW(mk::measure_kv(request("svd", 1024)), std::invalid_argument);
  mk::MeasureRequest r = request("pca", 1024);
  r.params.rank_k = 0;
  EXPECT_THROW(mk::measure_kv(r), std::invalid_argument);
  r = request("pca", 1024);
  r.chunk_tokens = 0;
  EXPECT_THROW(mk::measure_kv(r), std::invalid_argument);
  r = request("pca", 1024);
  r.activation_source = "file.npy";
  EXPECT_THROW(mk::measure_kv(r), std::invalid_argument);
}

TEST(MeasureKv, ConcurrentRequestsOfOneKeyMeasureOnce) {
  // A sweep's points under --jobs N ask for the same key at once: one measures, the others wait.
  mk::MeasureRequest r = request("pca", 512);
  r.seed = 4242;
  const std::uint64_t before = mk::measurements_run();
  std::latch start(4);
  std::vector<mk::MeasureResult> results(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[static_cast<std::size_t>(i)] = mk::measure_kv(r);
    });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mk::measurements_run() - before, 1u);
  for (const mk::MeasureResult& m : results) {
    EXPECT_EQ(m.relative_error, results[0].relative_error);
    EXPECT_EQ(m.encode_input_bytes_per_s, results[0].encode_input_bytes_per_s);
  }
}

TEST(MeasureKv, SampledLayersSpanTheDepth) {
  using V = std::vector<std::size_t>;
  EXPECT_EQ(mk::sampled_layers(1), (V{0}));
  EXPECT_EQ(mk::sampled_layers(3), (V{0, 1, 2}));
  EXPECT_EQ(mk::sampled_layers(4), (V{0, 1, 2, 3}));
  EXPECT_EQ(mk::sampled_layers(8), (V{0, 2, 4, 7}));
  EXPECT_EQ(mk::sampled_layers(32), (V{0, 10, 20, 31}));
}

TEST(MeasureKv, EachLayerIsFittedOnItsOwnWarmup) {
  // Three layers, each exactly rank 4 in its own subspace of d = 64: pca at rank 8 reconstructs
  // every layer to bf16 rounding when each layer gets its own basis. One basis fitted on layer 0 and
  // measured on layer 1 (the layers stacked into one matrix) lost nearly everything (error ~0.98).
  const int d = 64, tokens = 512, layers = 3;
  std::vector<mk::Matrix> k, v;
  std::mt19937_64 rng(5);
  std::normal_distribution<float> n;
  auto rank4 = [&] {
    mk::Matrix a(tokens, 4), b(4, d), x(tokens, d);
    for (float& e : a.data) e = n(rng);
    for (float& e : b.data) e = n(rng);
    for (int t = 0; t < tokens; ++t)
      for (int j = 0; j < d; ++j)
        for (int q = 0; q < 4; ++q) x(t, j) += a(t, q) * b(q, j);
    return x;
  };
  for (int l = 0; l < layers; ++l) k.push_back(rank4()), v.push_back(rank4());
  std::vector<mk::MatrixView> kv, vv;
  for (int l = 0; l < layers; ++l) kv.push_back(k[static_cast<std::size_t>(l)].view()), vv.push_back(v[static_cast<std::size_t>(l)].view());
  mk::MeasureRequest r = request("pca", d);
  r.params.rank_k = r.params.rank_v = 8;
  r.chunk_tokens = 256;
  r.activation_source = "three rank-4 layers";
  const mk::MeasureResult m = mk::measure_kv(r, kv, vv);
  EXPECT_EQ(m.layers_measured, 3);
  EXPECT_LT(m.relative_error, 1e-2);  // bf16 rounding of the data and the basis: ~4e-3
  EXPECT_GT(m.relative_error, 0.0);
  // Every layer alone gives the same order of error; layer 1's own measurement is one of the three.
  r.activation_source = "layer 1 alone";
  const mk::MeasureResult one = mk::measure_kv(r, kv[1], vv[1]);
  EXPECT_LT(one.relative_error, 1e-2);
  EXPECT_THROW(mk::measure_kv(r, std::span<const mk::MatrixView>(kv), std::span<const mk::MatrixView>(vv).first(2)), std::invalid_argument);
}
