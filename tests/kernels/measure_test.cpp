// The measure_kv facade: closed-form byte counts, caching, the time budget, errors.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>

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
