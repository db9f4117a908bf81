// moss_gpu_check: self-contained GPU test + benchmark of the codec kernels. Depends only on the CUDA
// runtime (static) and the plain C++ reference (no Eigen, no HDF5, no Debian libraries); cuBLAS, for
// the baseline, is loaded at run time with dlopen when the toolkit's libcublas is present.
//   1. parity: every method on the GPU against reference::encode/decode on the same data and bases,
//      sizes that are not multiples of the 64-token tile; tolerance |gpu - ref| <= atol + rtol |ref|
//      with atol = 1e-2 x rms(ref), rtol = 2e-2 (bf16 outputs, fp32 accumulation in another order);
//      mos-k (exhaustive and sketch routing) also needs >= 99 % of tokens routed alike.
//   2. bench: encode/decode GB/s of bf16 input at T = 8192, d in {2048, 4096}, r in {16, 64, 256},
//      the device-to-device copy bandwidth measured in the same run, their ratio, and cuBLAS
//      cublasGemmEx (bf16 in, fp32 compute) on the same shapes.
// Exit: 0 all passed or no GPU (prints SKIP), 1 a parity failure, 2 a CUDA error.
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "codec_launch.h"
#include "cuda_check.h"
#include "moss/kernels/bf16.h"
#include "moss/kernels/reference.h"
#include "moss/kernels/rotation.h"
#include "moss/kernels/synthetic.h"

namespace mk = moss::kernels;
namespace cu = moss::kernels::cuda;

namespace {
template <typename T>
struct Dev {
  T* p = nullptr;
  std::size_t n = 0;
  explicit Dev(std::size_t count) : n(count) { MOSS_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p), std::max<std::size_t>(1, n) * sizeof(T))); }
  Dev(const Dev&) = delete;
  ~Dev() { cudaFree(p); }
  void put(const std::vector<T>& v) { MOSS_CUDA_CHECK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice)); }
  std::vector<T> get() const {
    std::vector<T> v(n);
    MOSS_CUDA_CHECK(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }
};

std::vector<std::uint16_t> bits(const std::vector<float>& v) {
  std::vector<std::uint16_t> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = mk::float_to_bf16_bits(v[i]);
  return out;
}
std::vector<float> floats(const std::vector<std::uint16_t>& v) {
  std::vector<float> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = mk::bf16_bits_to_float(v[i]);
  return out;
}

// Random orthonormal d x r (row-major) by modified Gram-Schmidt on columns, optionally orthogonal to `against`.
std::vector<float> orthonormal(std::int64_t d, int r, std::uint64_t seed, const std::vector<float>* against = nullptr, int against_r = 0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n;
  std::vector<double> q(static_cast<std::size_t>(d * r));
  for (auto& v : q) v = n(rng);
  for (int j = 0; j < r; ++j) {
    for (int pass = 0; pass < 2; ++pass) {
      if (against)
        for (int a = 0; a < against_r; ++a) {
          double dot = 0;
          for (std::int64_t i = 0; i < d; ++i) dot += q[i * r + j] * (*against)[i * against_r + a];
          for (std::int64_t i = 0; i < d; ++i) q[i * r + j] -= dot * (*against)[i * against_r + a];
        }
      for (int p = 0; p < j; ++p) {
        double dot = 0;
        for (std::int64_t i = 0; i < d; ++i) dot += q[i * r + j] * q[i * r + p];
        for (std::int64_t i = 0; i < d; ++i) q[i * r + j] -= dot * q[i * r + p];
      }
    }
    double norm = 0;
    for (std::int64_t i = 0; i < d; ++i) norm += q[i * r + j] * q[i * r + j];
    for (std::int64_t i = 0; i < d; ++i) q[i * r + j] /= std::sqrt(norm);
  }
  return std::vector<float>(q.begin(), q.end());
}

struct Compare {
  double worst_excess = 0, worst_abs = 0;
  std::size_t worst_index = 0;
  bool ok = true;
};

Compare compare(const std::vector<float>& gpu, const std::vector<float>& ref) {
  double ms = 0;
  for (float v : ref) ms += static_cast<double>(v) * v;
  const double atol = 1e-2 * std::sqrt(ms / std::max<std::size_t>(1, ref.size())), rtol = 2e-2;
  Compare c;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(gpu[i]) - ref[i]);
    const double excess = diff / (atol + rtol * std::fabs(ref[i]));
    if (excess > c.worst_excess) c.worst_excess = excess, c.worst_abs = diff, c.worst_index = i;
  }
  c.ok = c.worst_excess <= 1.0 && gpu.size() == ref.size();
  return c;
}

// GPU encode+decode of one method for the parity check; returns the decoded tokens (floats).
std::vector<float> gpu_roundtrip(const mk::CodecState& s, const mk::Matrix& x, const std::vector<float>& theta,
                                 double& route_agreement, const mk::Encoded& ref) {
  const auto& c = s.config;
  const std::int64_t t = x.rows, d = x.cols, r = c.rank;
  Dev<std::uint16_t> dx(static_cast<std::size_t>(t * d)), dout(static_cast<std::size_t>(t * d));
  dx.put(bits(x.data));
  route_agreement = 1;
  switch (c.method) {
    case mk::Method::none:
      MOSS_CUDA_CHECK(cudaMemcpy(dout.p, dx.p, dx.n * 2, cudaMemcpyDeviceToDevice));
      break;
    case mk::Method::pca:
    case mk::Method::mos: {
      const std::vector<float> u = c.method == mk::Method::pca ? s.basis : mk::rotated_basis(s.basis, s.directions, theta, d, static_cast<int>(r));
      Dev<std::uint16_t> du(u.size()), dz(static_cast<std::size_t>(t * r));
      du.put(bits(u));
      cu::launch_gemm_bf16(dx.p, d, du.p, r, false, nullptr, dz.p, r, t, static_cast<int>(r), static_cast<int>(d), nullptr);
      cu::launch_gemm_bf16(dz.p, r, du.p, r, true, nullptr, dout.p, d, t, static_cast<int>(d), static_cast<int>(r), nullptr);
      break;
    }
    case mk::Method::mos_k: {
      const int k = c.subspaces;
      std::vector<float> wide(static_cast<std::size_t>(d * k * r));
      for (std::int64_t i = 0; i < d; ++i)
        for (int b = 0; b < k; ++b)
          std::copy(s.basis.begin() + (b * d + i) * r, s.basis.begin() + (b * d + i + 1) * r, wide.begin() + (i * k + b) * r);
      Dev<std::uint16_t> dw(wide.size()), dz(static_cast<std::size_t>(t * r)), db(s.basis.size());
      Dev<float> dp(static_cast<std::size_t>(t * k * r));
      Dev<std::int32_t> droute(static_cast<std::size_t>(t));
      dw.put(bits(wide));
      db.put(bits(s.basis));
      cu::launch_gemm_bf16(dx.p, d, dw.p, k * r, false, dp.p, nullptr, k * r, t, static_cast<int>(k * r), static_cast<int>(d), nullptr);
      cu::launch_route_select(dp.p, t, static_cast<int>(r), k, c.routing == mk::Routing::sketch ? mk::route_sketch_columns(c.rank) : c.rank, 1,
                              dz.p, droute.p, nullptr);
      cu::launch_decode_routed(dz.p, db.p, droute.p, t, static_cast<int>(d), static_cast<int>(r), 1, dout.p, nullptr);
      const auto route = droute.get();
      std::size_t same = 0;
      for (std::size_t i = 0; i < route.size(); ++i) same += route[i] == ref.route[i];
      route_agreement = static_cast<double>(same) / static_cast<double>(route.size());
      break;
    }
    case mk::Method::topk: {
      const auto k = mk::topk_count(c.fraction, d);
      Dev<std::uint16_t> dv(static_cast<std::size_t>(t * k));
      Dev<std::int32_t> di(static_cast<std::size_t>(t * k));
      cu::launch_topk_encode(dx.p, t, static_cast<int>(d), static_cast<int>(k), dv.p, di.p, nullptr);
      cu::launch_topk_decode(dv.p, di.p, t, static_cast<int>(d), static_cast<int>(k), dout.p, nullptr);
      break;
    }
    case mk::Method::quant: {
      Dev<std::int8_t> dc(static_cast<std::size_t>(t * d));
      Dev<std::uint16_t> ds(static_cast<std::size_t>(t));
      cu::launch_quant_encode(dx.p, t, static_cast<int>(d), c.bits, dc.p, ds.p, nullptr);
      cu::launch_quant_decode(dc.p, ds.p, t, static_cast<int>(d), dout.p, nullptr);
      break;
    }
  }
  MOSS_CUDA_CHECK(cudaDeviceSynchronize());
  return floats(dout.get());
}

bool parity(std::int64_t t, std::int64_t d, int r) {
  mk::SyntheticSpec spec;
  spec.tokens = t, spec.dim = d, spec.rank = std::max(4, r / 2), spec.seed = 5;
  const mk::Matrix x = mk::generate_synthetic(spec, false);
  bool all_ok = true;
  const std::pair<mk::Method, mk::Routing> cases[] = {
      {mk::Method::none, mk::Routing::exhaustive}, {mk::Method::pca, mk::Routing::exhaustive},
      {mk::Method::mos, mk::Routing::exhaustive},  {mk::Method::mos_k, mk::Routing::exhaustive},
      {mk::Method::mos_k, mk::Routing::sketch},    {mk::Method::topk, mk::Routing::exhaustive},
      {mk::Method::quant, mk::Routing::exhaustive}};
  for (const auto& [m, routing] : cases) {
    mk::CodecState s;
    s.config.method = m, s.config.rank = r, s.config.rotations = 2, s.config.subspaces = 3, s.config.bits = 4;
    s.config.routing = routing;
    s.config.fraction = 0.1;
    s.dim = d;
    std::vector<float> theta;
    if (m == mk::Method::pca || m == mk::Method::mos) s.basis = orthonormal(d, r, 11);
    if (m == mk::Method::mos) {
      for (int i = 0; i < 2; ++i) {
        auto w = orthonormal(d, r, 20 + i, &s.basis, r);
        for (auto& v : w) v /= std::sqrt(static_cast<float>(r));  // unit Frobenius norm
        s.directions.insert(s.directions.end(), w.begin(), w.end());
      }
      theta = {0.3f, -0.2f};
    }
    if (m == mk::Method::mos_k)
      for (int b = 0; b < 3; ++b) {
        const auto u = orthonormal(d, r, 40 + b);
        s.basis.insert(s.basis.end(), u.begin(), u.end());
      }
    for (auto& v : s.basis) v = mk::round_bf16(v);
    for (auto& v : s.directions) v = mk::round_bf16(v);
    const mk::Encoded e = mk::reference::encode(s, x.view(), theta);
    std::vector<float> ref(static_cast<std::size_t>(t * d));
    mk::reference::decode(s, e, ref.data());
    double agreement = 1;
    const std::vector<float> gpu = gpu_roundtrip(s, x, theta, agreement, e);
    Compare cmp = compare(gpu, ref);
    if (m == mk::Method::mos_k) cmp.ok = agreement >= 0.99 && (agreement < 1.0 || cmp.ok);
    std::printf("parity %-13s T=%-5lld d=%-5lld r=%-4d worst |gpu-ref| %.3g at %zu (%.2f of tolerance)%s  %s\n",
                (std::string(mk::method_name(m)) + (routing == mk::Routing::sketch ? "/sketch" : "")).c_str(), static_cast<long long>(t), static_cast<long long>(d), r,
                cmp.worst_abs, cmp.worst_index, cmp.worst_excess,
                m == mk::Method::mos_k ? (" routes alike " + std::to_string(agreement)).c_str() : "", cmp.ok ? "ok" : "FAIL");
    all_ok = all_ok && cmp.ok;
  }
  return all_ok;
}

// cuBLAS via dlopen: the types come from the prototypes below, not from cublas headers.
using cublasHandle = void*;
using CreateFn = int (*)(cublasHandle*);
using DestroyFn = int (*)(cublasHandle);
using GemmExFn = int (*)(cublasHandle, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                         const void*, void*, int, int, int, int);
struct Cublas {
  void* lib = nullptr;
  CreateFn create = nullptr;
  DestroyFn destroy = nullptr;
  GemmExFn gemm = nullptr;
  cublasHandle h = nullptr;
  bool load() {
    for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"})
      if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
    if (lib == nullptr) return false;
    create = reinterpret_cast<CreateFn>(dlsym(lib, "cublasCreate_v2"));
    destroy = reinterpret_cast<DestroyFn>(dlsym(lib, "cublasDestroy_v2"));
    gemm = reinterpret_cast<GemmExFn>(dlsym(lib, "cublasGemmEx"));
    return create && destroy && gemm && create(&h) == 0;
  }
  // Row-major C (m x n) = A (m x k) B (k x n), bf16 in/out, fp32 compute: column-major C^T = B^T A^T.
  int run(const void* a, const void* b, void* c, int m, int n, int k, bool b_transposed) const {
    const float one = 1, zero = 0;
    constexpr int kOpN = 0, kOpT = 1, kBf16 = 14, kCompute32F = 68, kDefaultAlgo = -1;
    return gemm(h, b_transposed ? kOpT : kOpN, kOpN, n, m, k, &one, b, b_transposed ? k : n, kBf16, a, k, kBf16, &zero, c,
                kBf16, n, kCompute32F, kDefaultAlgo);
  }
};

template <typename F>
double time_s(F&& f, int reps = 20) {
  cudaEvent_t a, b;
  MOSS_CUDA_CHECK(cudaEventCreate(&a));
  MOSS_CUDA_CHECK(cudaEventCreate(&b));
  f();
  MOSS_CUDA_CHECK(cudaEventRecord(a));
  for (int i = 0; i < reps; ++i) f();
  MOSS_CUDA_CHECK(cudaEventRecord(b));
  MOSS_CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  MOSS_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms * 1e-3 / reps;
}

void bench() {
  const std::size_t copy_bytes = std::size_t{1} << 30;
  Dev<std::uint8_t> src(copy_bytes), dst(copy_bytes);
  const double copy_s = time_s([&] { MOSS_CUDA_CHECK(cudaMemcpyAsync(dst.p, src.p, copy_bytes, cudaMemcpyDeviceToDevice)); }, 10);
  const double copy_gbps = 2.0 * copy_bytes / copy_s / 1e9;  // read + write
  std::printf("\ndevice-to-device copy: %.1f GB/s (read + write bytes per second)\n", copy_gbps);
  Cublas blas;
  const bool have_blas = blas.load();
  if (!have_blas) std::printf("cuBLAS: not found at run time (libcublas.so.13): baseline skipped\n");
  std::printf("%-6s %6s %5s %4s %12s %12s %10s %12s %12s\n", "method", "T", "d", "r", "enc_GB/s", "dec_GB/s", "enc/copy", "cublas_enc", "cublas_dec");
  const std::int64_t t = 8192;
  for (std::int64_t d : {2048, 4096})
    for (int r : {16, 64, 256}) {
      Dev<std::uint16_t> dx(static_cast<std::size_t>(t * d)), du(static_cast<std::size_t>(d * r)), dz(static_cast<std::size_t>(t * r)),
          dout(static_cast<std::size_t>(t * d));
      MOSS_CUDA_CHECK(cudaMemset(dx.p, 0x3c, dx.n * 2));
      MOSS_CUDA_CHECK(cudaMemset(du.p, 0x3c, du.n * 2));
      const double raw = 2.0 * t * d;
      const double enc = time_s([&] { cu::launch_gemm_bf16(dx.p, d, du.p, r, false, nullptr, dz.p, r, t, r, static_cast<int>(d), nullptr); });
      const double dec = time_s([&] { cu::launch_gemm_bf16(dz.p, r, du.p, r, true, nullptr, dout.p, d, t, static_cast<int>(d), r, nullptr); });
      double benc = 0, bdec = 0;
      if (have_blas) {
        benc = time_s([&] { blas.run(dx.p, du.p, dz.p, static_cast<int>(t), r, static_cast<int>(d), false); });
        bdec = time_s([&] { blas.run(dz.p, du.p, dout.p, static_cast<int>(t), static_cast<int>(d), r, true); });
      }
      std::printf("%-6s %6lld %5lld %4d %12.1f %12.1f %10.2f %12.1f %12.1f\n", "pca", static_cast<long long>(t), static_cast<long long>(d), r,
                  raw / enc / 1e9, raw / dec / 1e9, raw / enc / 1e9 / copy_gbps, have_blas ? raw / benc / 1e9 : 0.0,
                  have_blas ? raw / bdec / 1e9 : 0.0);
    }
  {  // element-wise methods at d = 2048
    const std::int64_t d = 2048;
    Dev<std::uint16_t> dx(static_cast<std::size_t>(t * d)), dout(static_cast<std::size_t>(t * d));
    MOSS_CUDA_CHECK(cudaMemset(dx.p, 0x3c, dx.n * 2));
    const auto k = mk::topk_count(0.1, d);
    Dev<std::uint16_t> dv(static_cast<std::size_t>(t * k)), ds(static_cast<std::size_t>(t));
    Dev<std::int32_t> di(static_cast<std::size_t>(t * k));
    Dev<std::int8_t> dc(static_cast<std::size_t>(t * d));
    const double raw = 2.0 * t * d;
    const double te = time_s([&] { cu::launch_topk_encode(dx.p, t, static_cast<int>(d), static_cast<int>(k), dv.p, di.p, nullptr); });
    const double td = time_s([&] { cu::launch_topk_decode(dv.p, di.p, t, static_cast<int>(d), static_cast<int>(k), dout.p, nullptr); });
    const double qe = time_s([&] { cu::launch_quant_encode(dx.p, t, static_cast<int>(d), 8, dc.p, ds.p, nullptr); });
    const double qd = time_s([&] { cu::launch_quant_decode(dc.p, ds.p, t, static_cast<int>(d), dout.p, nullptr); });
    std::printf("%-6s %6lld %5lld %4s %12.1f %12.1f %10.2f\n", "topk", static_cast<long long>(t), static_cast<long long>(d), "-", raw / te / 1e9, raw / td / 1e9, raw / te / 1e9 / copy_gbps);
    std::printf("%-6s %6lld %5lld %4s %12.1f %12.1f %10.2f\n", "quant", static_cast<long long>(t), static_cast<long long>(d), "-", raw / qe / 1e9, raw / qd / 1e9, raw / qe / 1e9 / copy_gbps);
  }
  if (have_blas) blas.destroy(blas.h);
}
}  // namespace

int main() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);  // without a GPU: an error, count untouched
  if (status != cudaSuccess || count == 0) {
    std::printf("moss_gpu_check: SKIP: no usable CUDA device (cudaGetDeviceCount: %s)\n",
                status != cudaSuccess ? cudaGetErrorString(status) : "0 devices");
    return 0;
  }
  try {
    cudaDeviceProp prop{};
    MOSS_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("moss_gpu_check on %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
    bool ok = parity(1000, 520, 24);
    ok = parity(333, 256, 64) && ok;
    bench();
    std::printf("\n%s\n", ok ? "PASS" : "FAIL: GPU and CPU reference differ beyond tolerance");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moss_gpu_check: %s\n", e.what());
    return 2;
  }
}
