// moss_kernels_bench: Google Benchmark of every method's CPU encode/decode at T = 4096,
// d in {2048, 4096}, r in {16, 64, 256}, with an Eigen GEMM of the encode's shape (T x d times d x r)
// in the same run as the baseline. Bytes processed = bf16 input bytes (2 T d), so the reported
// bytes_per_second is directly comparable with the GEMM's.
#include <benchmark/benchmark.h>

#include <Eigen/Dense>
#include <map>

#include "moss/kernels/codec.h"
#include "moss/kernels/synthetic.h"

namespace mk = moss::kernels;

namespace {
constexpr std::int64_t kTokens = 4096;

const mk::Matrix& data(std::int64_t dim) {
  static std::map<std::int64_t, mk::Matrix> cache;
  auto it = cache.find(dim);
  if (it == cache.end()) {
    mk::SyntheticSpec s = mk::parse_synthetic_spec("llama");
    s.tokens = 2 * kTokens, s.dim = dim;
    it = cache.emplace(dim, mk::generate_synthetic(s, false)).first;
  }
  return it->second;
}

mk::CodecState fitted(mk::Method m, std::int64_t dim, int rank) {
  mk::CodecConfig c;
  c.method = m, c.rank = rank, c.rotations = 1, c.subspaces = 4, c.fraction = 0.1, c.bits = 8;
  return mk::fit_codec(c, data(dim).view().slice_rows(0, 1024), 1);
}

void encode_bench(benchmark::State& state, mk::Method m) {
  const std::int64_t d = state.range(0);
  const int r = static_cast<int>(state.range(1));
  const mk::CodecState s = fitted(m, d, r);
  const mk::MatrixView x = data(d).view().slice_rows(kTokens, kTokens);
  for (auto _ : state) benchmark::DoNotOptimize(mk::encode(s, x));
  state.SetBytesProcessed(state.iterations() * kTokens * d * 2);
}

void decode_bench(benchmark::State& state, mk::Method m) {
  const std::int64_t d = state.range(0);
  const int r = static_cast<int>(state.range(1));
  const mk::CodecState s = fitted(m, d, r);
  const mk::Encoded e = mk::encode(s, data(d).view().slice_rows(kTokens, kTokens));
  std::vector<float> out(static_cast<std::size_t>(kTokens * d));
  for (auto _ : state) {
    mk::decode(s, e, out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kTokens * d * 2);
}

void eigen_gemm(benchmark::State& state) {
  const std::int64_t d = state.range(0), r = state.range(1);
  using M = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const M x = M::Random(kTokens, d), u = M::Random(d, r);
  M z(kTokens, r);
  for (auto _ : state) {
    z.noalias() = x * u;
    benchmark::DoNotOptimize(z.data());
  }
  state.SetBytesProcessed(state.iterations() * kTokens * d * 2);
}

void shapes(benchmark::internal::Benchmark* b) {
  for (int d : {2048, 4096})
    for (int r : {16, 64, 256}) b->Args({d, r});
  b->Unit(benchmark::kMillisecond);
}
void widths(benchmark::internal::Benchmark* b) {
  for (int d : {2048, 4096}) b->Args({d, 0});
  b->Unit(benchmark::kMillisecond);
}
}  // namespace

BENCHMARK(eigen_gemm)->Apply(shapes);
BENCHMARK_CAPTURE(encode_bench, pca, mk::Method::pca)->Apply(shapes);
BENCHMARK_CAPTURE(decode_bench, pca, mk::Method::pca)->Apply(shapes);
BENCHMARK_CAPTURE(encode_bench, mos, mk::Method::mos)->Apply(shapes);
BENCHMARK_CAPTURE(decode_bench, mos, mk::Method::mos)->Apply(shapes);
BENCHMARK_CAPTURE(encode_bench, mos_k, mk::Method::mos_k)->Apply(shapes);
BENCHMARK_CAPTURE(decode_bench, mos_k, mk::Method::mos_k)->Apply(shapes);
BENCHMARK_CAPTURE(encode_bench, none, mk::Method::none)->Apply(widths);
BENCHMARK_CAPTURE(encode_bench, topk, mk::Method::topk)->Apply(widths);
BENCHMARK_CAPTURE(decode_bench, topk, mk::Method::topk)->Apply(widths);
BENCHMARK_CAPTURE(encode_bench, quant, mk::Method::quant)->Apply(widths);
BENCHMARK_CAPTURE(decode_bench, quant, mk::Method::quant)->Apply(widths);
BENCHMARK_MAIN();
