// moss_kernels_bench: Google Benchmark of every method's CPU encode/decode at T = 4096,
// d in {2048, 4096}, r in {16, 64, 256}. Every case times its baseline in the same iteration, on the
// same data, interleaved with the codec (so machine noise hits both alike), by thread CPU time:
//   pca, mos encode   an Eigen GEMM of the encode's shape (T x d times d x r)       counter x_gemm
//   mos-k encode      the same, and K such GEMMs (exhaustive routing projects on K bases) x_gemm, x_kgemm
//   subspace encode, on a CPU with AVX512-BF16: also the bf16 dot-product GEMM the encoder itself uses
//                     (cpu/bf16_dot.h) of the same shape, on X already in bf16             x_bf16gemm
//   subspace decode   an Eigen GEMM of the decode's shape (T x r times r x d)       x_gemm
//   none/topk/quant   a memcpy of the fp32 tensor the codec reads (encode) or writes (decode)  x_copy
// The counters are median(codec) / median(baseline) over the iterations of a run; base_ms is the
// baseline's median. Bytes processed = bf16 input bytes (2 T d) for every case.
// Encode writes into one Encoded reused across iterations (mk::encode's buffer-reusing overload), as
// the GEMM baseline writes into one preallocated matrix.
// gpu_host/*: the host work per theta block of the GPU mos encode off the diagonal path
// (MosBlockMixer::fit and the bf16 hi/lo split of S), on the sample projections of the chunk; no
// baseline, the time is the figure. (The diagonal path, one rotation on a fitted state, has none.)
#include <benchmark/benchmark.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <optional>

#include "bf16_dot.h"
#include "moss/kernels/bf16.h"
#include "moss/kernels/codec.h"
#include "moss/kernels/mos_block_mixer.h"
#include "moss/kernels/synthetic.h"

namespace mk = moss::kernels;

namespace {
constexpr std::int64_t kTokens = 4096;
constexpr int kSubspaces = 4;
using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMatrix>;

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

mk::MatrixView chunk(std::int64_t dim) { return data(dim).view().slice_rows(kTokens, kTokens); }

mk::CodecState fitted(mk::Method m, std::int64_t dim, int rank, int rotations, mk::Routing routing) {
  mk::CodecConfig c;
  c.method = m, c.rank = rank, c.rotations = rotations, c.subspaces = kSubspaces, c.fraction = 0.1, c.bits = 8;
  c.routing = routing;
  return mk::fit_codec(c, data(dim).view().slice_rows(0, 1024), 1);
}

double thread_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

/// Runs `op` under the benchmark's timer and each baseline outside it, interleaved, and records the
/// ratio counters `names[i]` = median(op) / median(baseline i).
void run_against(benchmark::State& state, const std::function<void()>& op,
                 const std::vector<std::pair<const char*, std::function<void()>>>& baselines) {
  std::vector<double> op_ms;
  std::vector<std::vector<double>> base_ms(baselines.size());
  for (auto _ : state) {
    state.PauseTiming();
    for (std::size_t i = 0; i < baselines.size(); ++i) {
      const double t0 = thread_ms();
      baselines[i].second();
      base_ms[i].push_back(thread_ms() - t0);
    }
    state.ResumeTiming();
    const double t0 = thread_ms();
    op();
    op_ms.push_back(thread_ms() - t0);
  }
  const double m = median(op_ms);
  for (std::size_t i = 0; i < baselines.size(); ++i) {
    const double b = median(base_ms[i]);
    state.counters[baselines[i].first] = b > 0 ? m / b : 0;
    if (i == 0) state.counters["base_ms"] = b;
  }
}

/// Eigen GEMM z = a * b with b (k x n) random: the baseline a user would write instead.
struct Gemm {
  RowMatrix b, z;
  ConstMap a;
  Gemm(mk::MatrixView x, std::int64_t n) : b(RowMatrix::Random(x.cols, n)), z(x.rows, n), a(x.data, x.rows, x.cols) {}
  void operator()() {
    z.noalias() = a * b;
    benchmark::DoNotOptimize(z.data());
  }
};

/// The encoder's own bf16 dot-product GEMM, z = x b, with x and b already bf16 bits: the floor of a
/// projection once the bf16 rounding of X (which the encoder does panel by panel) is left out.
struct Bf16Gemm {
  std::vector<std::uint16_t> x, bt;
  std::vector<float> z;
  std::int64_t rows, depth, cols;
  Bf16Gemm(mk::MatrixView a, std::int64_t n)
      : x(static_cast<std::size_t>(a.size())), bt(static_cast<std::size_t>(n * a.cols)), z(static_cast<std::size_t>(a.rows * n)), rows(a.rows),
        depth(a.cols), cols(n) {
    mk::cpu::to_bf16_bits(a.data, a.size(), x.data());
    const RowMatrix b = RowMatrix::Random(n, a.cols);
    mk::cpu::to_bf16_bits(b.data(), b.size(), bt.data());
  }
  void operator()() {
    mk::cpu::bf16_gemm_nt(x.data(), nullptr, rows, depth, bt.data(), cols, z.data(), nullptr, cols);
    benchmark::DoNotOptimize(z.data());
  }
};

void encode_bench(benchmark::State& state, mk::Method m, int rotations, mk::Routing routing = mk::Routing::exhaustive) {
  const std::int64_t d = state.range(0);
  const int r = static_cast<int>(state.range(1));
  const mk::CodecState s = fitted(m, d, r, rotations, routing);
  const mk::MatrixView x = chunk(d);
  mk::Encoded out;  // reused, as the GEMM baseline's output is: the steady state of a training loop
  auto op = [&] {
    mk::encode(s, x, out);
    benchmark::DoNotOptimize(out.values.data());
  };
  if (mk::uses_basis(m)) {
    Gemm one(x, r);
    std::vector<std::pair<const char*, std::function<void()>>> base{{"x_gemm", std::ref(one)}};
    if (m == mk::Method::mos_k)
      base.emplace_back("x_kgemm", [&] {
        for (int k = 0; k < kSubspaces; ++k) one();
      });
    std::optional<Bf16Gemm> dots;
    if (mk::cpu::bf16_dot_enabled()) base.emplace_back("x_bf16gemm", std::ref(dots.emplace(x, r)));
    run_against(state, op, base);
  } else {  // memory-bound: a copy of the fp32 tensor the encoder reads
    std::vector<float> dst(static_cast<std::size_t>(x.size()));
    run_against(state, op, {{"x_copy", [&] {
                               std::memcpy(dst.data(), x.data, dst.size() * sizeof(float));
                               benchmark::ClobberMemory();
                             }}});
  }
  state.SetBytesProcessed(state.iterations() * kTokens * d * 2);
}

void decode_bench(benchmark::State& state, mk::Method m, int rotations) {
  const std::int64_t d = state.range(0);
  const int r = static_cast<int>(state.range(1));
  const mk::CodecState s = fitted(m, d, r, rotations, mk::Routing::exhaustive);
  const mk::Encoded e = mk::encode(s, chunk(d));
  std::vector<float> out(static_cast<std::size_t>(kTokens * d));
  auto op = [&] {
    mk::decode(s, e, out.data());
    benchmark::ClobberMemory();
  };
  if (mk::uses_basis(m)) {
    const RowMatrix z = RowMatrix::Random(kTokens, r);
    Gemm g({z.data(), kTokens, r}, d);
    run_against(state, op, {{"x_gemm", std::ref(g)}});
  } else {  // a copy of the fp32 tensor the decoder writes
    const mk::MatrixView x = chunk(d);
    run_against(state, op, {{"x_copy", [&] {
                               std::memcpy(out.data(), x.data, out.size() * sizeof(float));
                               benchmark::ClobberMemory();
                             }}});
  }
  state.SetBytesProcessed(state.iterations() * kTokens * d * 2);
}

/// `s` (mos) with Ubar and every W_i turned by one random orthogonal r x r Q within their span, and the
/// Gram blocks to match: the same subspaces, but W_1^T W_1 no longer diagonal, so that one rotation
/// takes the general path (what the GPU host did for every state before the diagonal path).
mk::CodecState turned(const mk::CodecState& s) {
  const std::int64_t d = s.dim, r = s.config.rank, m = s.config.rotations;
  using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::MatrixXd q = Eigen::HouseholderQR<Eigen::MatrixXd>(Eigen::MatrixXd::Random(r, r)).householderQ();
  const RowMatrix qf = q.cast<float>();
  mk::CodecState o = s;
  Eigen::Map<RowMatrix>(o.basis.data(), d, r) = ConstMap(s.basis.data(), d, r) * qf;
  for (std::int64_t i = 0; i < m; ++i)
    Eigen::Map<RowMatrix>(o.directions.data() + i * d * r, d, r) = ConstMap(s.directions.data() + i * d * r, d, r) * qf;
  RowMatrixD dg = Eigen::Map<const RowMatrix>(s.direction_gram.data(), m * r, m * r).cast<double>();
  RowMatrixD bg = Eigen::Map<const RowMatrixD>(s.basis_gram.data(), r, (m + 1) * r);
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < m; ++j) dg.block(i * r, j * r, r, r) = q.transpose() * dg.block(i * r, j * r, r, r) * q;
  for (std::int64_t j = 0; j <= m; ++j) bg.block(0, j * r, r, r) = q.transpose() * bg.block(0, j * r, r, r) * q;
  Eigen::Map<RowMatrix>(o.direction_gram.data(), m * r, m * r) = dg.cast<float>();
  Eigen::Map<RowMatrixD>(o.basis_gram.data(), r, (m + 1) * r) = bg;
  return o;
}

void gpu_host_bench(benchmark::State& state, int rotations, bool turn) {
  const std::int64_t d = state.range(0);
  const int r = static_cast<int>(state.range(1));
  const mk::CodecState fit = fitted(mk::Method::mos, d, r, rotations, mk::Routing::exhaustive);
  const mk::CodecState s = turn ? turned(fit) : fit;
  const mk::MosBlockMixer mixer(s);
  if (!mixer.available()) {
    state.SkipWithError("state without the fitted forms");
    return;
  }
  // The sample the GPU projects: every stride-th token of the chunk, bf16-rounded, times [Ubar W..].
  const std::int64_t w = (rotations + 1) * static_cast<std::int64_t>(r);
  const std::int64_t stride = mk::theta_sample_stride(kTokens, rotations, r), n = mk::theta_sample_count(kTokens, rotations, r);
  RowMatrix wide(d, w), sample(n, d);
  wide.leftCols(r) = ConstMap(s.basis.data(), d, r);
  for (int i = 0; i < rotations; ++i) wide.middleCols((i + 1) * r, r) = ConstMap(s.directions.data() + i * d * r, d, r);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j) sample(i, j) = mk::round_bf16(chunk(d).row(i * stride)[j]);
  const RowMatrix p = sample * wide;
  std::vector<float> theta, mix;
  for (auto _ : state) {
    mixer.fit(p.data(), n, theta, mix);
    benchmark::DoNotOptimize(mk::to_bf16_hi_lo(mix.data(), mix.size()));
  }
}

void eigen_gemm(benchmark::State& state) {
  const std::int64_t d = state.range(0), r = state.range(1);
  Gemm g(chunk(d), r);
  for (auto _ : state) g();
  state.SetBytesProcessed(state.iterations() * kTokens * d * 2);
}

void copy_fp32(benchmark::State& state) {
  const mk::MatrixView x = chunk(state.range(0));
  std::vector<float> dst(static_cast<std::size_t>(x.size()));
  for (auto _ : state) {
    std::memcpy(dst.data(), x.data, dst.size() * sizeof(float));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * x.size() * 2);
}

// The synthetic generator at wide K/V (`moss compress --synthetic llama,dim=...`): its cost is the
// orthonormalisation of the bases (rank dim/64 for K), O(rank^2 dim).
void synthetic_llama_k(benchmark::State& state) {
  const mk::SyntheticSpec s = mk::parse_synthetic_spec("llama,tokens=4,dim=" + std::to_string(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(mk::generate_synthetic(s, false).data.data());
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
BENCHMARK(copy_fp32)->Apply(widths);
BENCHMARK(synthetic_llama_k)->Arg(4096)->Arg(16384)->Unit(benchmark::kSecond)->Iterations(1)->Repetitions(3);
BENCHMARK_CAPTURE(encode_bench, pca, mk::Method::pca, 1)->Apply(shapes);
BENCHMARK_CAPTURE(decode_bench, pca, mk::Method::pca, 1)->Apply(shapes);
BENCHMARK_CAPTURE(encode_bench, mos, mk::Method::mos, 1)->Apply(shapes);
BENCHMARK_CAPTURE(decode_bench, mos, mk::Method::mos, 1)->Apply(shapes);
// Several generators: the general (non-diagonal) U(theta) path, O(m d r + d r^2) per block, a Newton
// theta fit of O(r^3) per step on a sample of 512 / m tokens.
BENCHMARK_CAPTURE(encode_bench, mos_m2, mk::Method::mos, 2)->Apply(shapes);
BENCHMARK_CAPTURE(encode_bench, mos_m4, mk::Method::mos, 4)->Apply(shapes);
BENCHMARK_CAPTURE(encode_bench, mos_m8, mk::Method::mos, 8)->Apply(shapes);
BENCHMARK_CAPTURE(encode_bench, mos_k, mk::Method::mos_k, 1)->Apply(shapes);
// Route then project: sketch routing on the first max(1, r/8) columns of each basis.
BENCHMARK_CAPTURE(encode_bench, mos_k_sketch, mk::Method::mos_k, 1, mk::Routing::sketch)->Apply(shapes);
BENCHMARK_CAPTURE(decode_bench, mos_k, mk::Method::mos_k, 1)->Apply(shapes);
BENCHMARK_CAPTURE(encode_bench, none, mk::Method::none, 1)->Apply(widths);
BENCHMARK_CAPTURE(encode_bench, topk, mk::Method::topk, 1)->Apply(widths);
BENCHMARK_CAPTURE(decode_bench, topk, mk::Method::topk, 1)->Apply(widths);
BENCHMARK_CAPTURE(encode_bench, quant, mk::Method::quant, 1)->Apply(widths);
BENCHMARK_CAPTURE(decode_bench, quant, mk::Method::quant, 1)->Apply(widths);
// The GPU encode's host work per mos theta block off the diagonal path: one rotation on a state
// turned within its span (not diagonal), two and four rotations.
BENCHMARK_CAPTURE(gpu_host_bench, mos_general, 1, true)->Apply(shapes);
BENCHMARK_CAPTURE(gpu_host_bench, mos_m2, 2, false)->Apply(shapes);
BENCHMARK_CAPTURE(gpu_host_bench, mos_m4, 4, false)->Apply(shapes);
BENCHMARK_MAIN();
