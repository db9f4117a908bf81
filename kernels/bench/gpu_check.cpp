// moss_gpu_check: self-contained GPU test + benchmark of the codec kernels. Depends only on the CUDA
// runtime (static) and the plain C++ reference (no Eigen, no HDF5, no Debian libraries); cuBLAS is
// loaded at run time with dlopen when the toolkit's libcublas is present (vendor_gemm.h).
//   1. parity: every method on the GPU against reference::encode/decode on the same data and bases,
//      with each GEMM choice (codec_launch.h: moss's tiled kernels, the simple one forced, and where
//      libcublas loads cuBLAS and `automatic`, the fastest per shape, which the codec uses), on sizes
//      that are not multiples of the tiles, one shape the tiled kernels refuse (rank 20: not whole
//      16-byte rows, the simple kernel), rank 256, an odd width (261: the element-wise methods'
//      one-block-per-token kernels instead of the warp-per-token ones) and a width of 40 (rows
//      shorter than a warp's 32 chunks); tolerance |gpu - ref| <= atol + rtol |ref| with atol = 1e-2 x rms(ref),
//      rtol = 2e-2 (bf16 outputs, fp32 accumulation in another order); mos-k (exhaustive and sketch
//      routing, per token and in 16-token blocks; decoded by the routed kernel and, "/1gemm", as one
//      GEMM over all bases, launch_decode_expanded) also needs every routing block routed as the
//      reference's except near ties (reference energies within 2e-3), whose tokens are then compared
//      as the reference's; topk at 10 % and 100 %, quant at 4 and 8 bits; moss's split-k encode
//      against a double product (split_parity); mos's theta and U(theta) on the device (one
//      rotation, the diagonal path) against the same steps on the host (theta_parity).
//   2. bench: encode/decode GB/s of bf16 input (decode: of bf16 output) at T in {8192, 65536},
//      d in {2048, 4096}, r in {16, 64, 256}, with moss's kernels, the simple kernel, cuBLAS
//      cublasGemmEx (bf16 in and out, fp32 compute: the baseline a user would pick instead) and
//      `automatic`, the device-to-device copy bandwidth measured in the same run (read + write bytes
//      per second) and the ratios (auto and cuBLAS timed interleaved); mos-k (K = 4: projection on all bases + routing; decode by the routed
//      kernel under moss and simple, as one GEMM over all bases under cuBLAS, the faster under auto),
//      topk and quant (encode: the row held in registers under moss, the streaming warp kernel under
//      simple, the faster under auto; topk decode: the merging warp kernel under moss, the scattering
//      one under simple, the fastest of those and the block kernel under auto). Each figure is the median of 5 timings of 10 back-to-back launches (CUDA events).
// Options: --parity-only (no bench), --gemm NAME (parity with that GEMM choice only: auto, moss,
// simple or cublas), --quick (bench at T = 8192 only), --profile (no parity, no
// timing: each projection kernel launched once at T = 65536, d = 4096, r in {16, 64, 256}, encode
// then decode with moss's kernels, then the same with cuBLAS, for a profiler such as Nsight Compute:
// scripts/gpu_profile.sh); --profile-rows (likewise, the kernels without a GEMM: at T = 65536,
// d = 2048, topk encode held in registers then streamed, quant encode (8 bit) likewise, the merging
// topk decode; then mos's fixed steps at T = 8192, d = 2048, r = 64: the sample projection, theta,
// the rotation).
// Exit: 0 all passed or no GPU (prints SKIP), 1 a parity failure, 2 a CUDA error.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "codec_launch.h"
#include "cuda_check.h"
#include "moss/kernels/bf16.h"
#include "moss/kernels/reference.h"
#include "moss/kernels/rotation.h"
#include "moss/kernels/synthetic.h"
#include "theta_diagonal.h"
#include "vendor_gemm.h"

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

// mos-k routes of the GPU against the reference's. A routing block routed differently is a near tie
// when the reference energies (double, from the same bf16 bases, over the routing columns) of the two
// bases are within 2e-3 of each other: the GPU projects bf16 tokens, which moves energies by ~1e-3.
// Anything else is a real difference, and the check fails on any.
struct RouteCheck {
  double alike = 1;
  std::size_t near = 0, far = 0;
  std::int64_t block = 1;
  std::vector<bool> differs;  // per routing block
};

RouteCheck check_routes(const mk::CodecState& s, const mk::Matrix& x, const std::vector<std::int32_t>& gpu, const std::vector<std::int32_t>& ref) {
  if (gpu.size() != ref.size()) throw std::logic_error("parity: GPU and reference route counts differ");
  const auto& c = s.config;
  const std::int64_t t = x.rows, d = x.cols, r = c.rank;
  const int cols = c.routing == mk::Routing::sketch ? mk::route_sketch_columns(c.rank) : c.rank;
  RouteCheck rc;
  rc.block = c.route_block_tokens <= 0 ? t : c.route_block_tokens;
  rc.differs.assign(gpu.size(), false);
  auto energy = [&](std::size_t blk, int basis) {
    double e = 0;
    for (std::int64_t tok = static_cast<std::int64_t>(blk) * rc.block; tok < std::min(t, static_cast<std::int64_t>(blk + 1) * rc.block); ++tok)
      for (int q = 0; q < cols; ++q) {
        double z = 0;
        for (std::int64_t i = 0; i < d; ++i) z += static_cast<double>(x(tok, i)) * s.basis[static_cast<std::size_t>((basis * d + i) * r + q)];
        e += z * z;
      }
    return e;
  };
  std::size_t same = 0;
  for (std::size_t b = 0; b < gpu.size(); ++b) {
    if (gpu[b] == ref[b]) {
      ++same;
      continue;
    }
    rc.differs[b] = true;
    const double eg = energy(b, gpu[b]), er = energy(b, ref[b]);
    if (std::fabs(eg - er) <= 2e-3 * std::max(eg, er)) ++rc.near;
    else ++rc.far;
  }
  rc.alike = gpu.empty() ? 1.0 : static_cast<double>(same) / static_cast<double>(gpu.size());
  return rc;
}

// GPU encode+decode of one method for the parity check; returns the decoded tokens (floats), and
// for mos-k the route of each routing block in `route`.
std::vector<float> gpu_roundtrip(const mk::CodecState& s, const mk::Matrix& x, const std::vector<float>& theta,
                                 std::vector<std::int32_t>& route, bool expanded_decode) {
  const auto& c = s.config;
  const std::int64_t t = x.rows, d = x.cols, r = c.rank;
  Dev<std::uint16_t> dx(static_cast<std::size_t>(t * d)), dout(static_cast<std::size_t>(t * d));
  dx.put(mk::to_bf16_bits(x.data));
  route.clear();
  switch (c.method) {
    case mk::Method::none:
      MOSS_CUDA_CHECK(cudaMemcpy(dout.p, dx.p, dx.n * 2, cudaMemcpyDeviceToDevice));
      break;
    case mk::Method::pca:
    case mk::Method::mos: {
      const std::vector<float> u = c.method == mk::Method::pca ? s.basis : mk::rotated_basis(s.basis, s.directions, theta, d, static_cast<int>(r));
      Dev<std::uint16_t> du(u.size()), dz(static_cast<std::size_t>(t * r));
      du.put(mk::to_bf16_bits(u));
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
      const int block = c.route_block_tokens <= 0 ? static_cast<int>(t) : c.route_block_tokens;
      Dev<float> dp(static_cast<std::size_t>(t * k * r));
      Dev<std::int32_t> droute(static_cast<std::size_t>((t + block - 1) / block));
      dw.put(mk::to_bf16_bits(wide));
      db.put(mk::to_bf16_bits(s.basis));
      cu::launch_gemm_bf16(dx.p, d, dw.p, k * r, false, dp.p, nullptr, k * r, t, static_cast<int>(k * r), static_cast<int>(d), nullptr);
      cu::launch_route_select(dp.p, t, static_cast<int>(r), k, c.routing == mk::Routing::sketch ? mk::route_sketch_columns(c.rank) : c.rank,
                              block, dz.p, droute.p, nullptr);
      if (expanded_decode) {  // the one-GEMM form, whatever launch_decode_mos_k would choose
        Dev<std::uint16_t> dzw(static_cast<std::size_t>(t * k * r));
        cu::launch_decode_expanded(dz.p, dw.p, droute.p, t, static_cast<int>(d), static_cast<int>(r), block, k, dzw.p, dout.p, nullptr);
        MOSS_CUDA_CHECK(cudaDeviceSynchronize());  // before dzw is freed
      } else {
        cu::launch_decode_routed(dz.p, db.p, droute.p, t, static_cast<int>(d), static_cast<int>(r), block, dout.p, nullptr, k);
      }
      route = droute.get();
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
  return mk::bf16_bits_to_floats(dout.get());
}

bool parity(std::int64_t t, std::int64_t d, int r, cu::GemmKernel kernel) {
  cu::set_gemm_kernel(kernel);
  const char* kernel_name = cu::gemm_kernel_name(kernel);
  mk::SyntheticSpec spec;
  spec.tokens = t, spec.dim = d, spec.rank = std::max(4, r / 2), spec.seed = 5;
  const mk::Matrix x = mk::generate_synthetic(spec, false);
  bool all_ok = true;
  struct Case {
    mk::Method method;
    mk::Routing routing = mk::Routing::exhaustive;
    int route_block = 1;  // mos-k: tokens per route (1: the warp-per-token selection; more: the block one)
    double fraction = 0.1;  // topk
    int bits = 4;           // quant
    bool expanded = false;  // mos-k: decode as one GEMM over all bases (launch_decode_expanded)
  };
  const Case cases[] = {{mk::Method::none},
                        {mk::Method::pca},
                        {mk::Method::mos},
                        {mk::Method::mos_k},
                        {mk::Method::mos_k, mk::Routing::sketch},
                        {mk::Method::mos_k, mk::Routing::exhaustive, 16},
                        {mk::Method::mos_k, mk::Routing::exhaustive, 1, 0.1, 4, true},
                        {mk::Method::mos_k, mk::Routing::exhaustive, 16, 0.1, 4, true},
                        {mk::Method::topk},
                        {mk::Method::topk, mk::Routing::exhaustive, 1, 1.0},
                        {mk::Method::quant},
                        {mk::Method::quant, mk::Routing::exhaustive, 1, 0.1, 8}};
  for (const auto& [m, routing, route_block, fraction, bits, expanded] : cases) {
    mk::CodecState s;
    s.config.method = m, s.config.rank = r, s.config.rotations = 2, s.config.subspaces = 3, s.config.bits = bits;
    s.config.routing = routing;
    s.config.route_block_tokens = route_block;
    s.config.fraction = fraction;
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
    std::vector<std::int32_t> route;
    std::vector<float> gpu = gpu_roundtrip(s, x, theta, route, expanded);
    RouteCheck routes;
    if (m == mk::Method::mos_k) {
      routes = check_routes(s, x, route, e.route);
      for (std::int64_t tok = 0; tok < t; ++tok)  // tokens routed apart (near ties) compare as the reference
        if (routes.differs[static_cast<std::size_t>(tok / routes.block)])
          std::copy(ref.begin() + tok * d, ref.begin() + (tok + 1) * d, gpu.begin() + tok * d);
    }
    Compare cmp = compare(gpu, ref);
    cmp.ok = cmp.ok && routes.far == 0;
    const double agreement = routes.alike;
    std::string name(mk::method_name(m)), note;
    if (routing == mk::Routing::sketch) name += "/sketch";
    if (route_block > 1) name += "/blk", name += std::to_string(route_block);
    if (expanded) name += "/1gemm";
    if (m == mk::Method::topk && fraction == 1.0) name += "/all";
    if (m == mk::Method::quant) name += "/", name += std::to_string(bits), name += "bit";
    if (m == mk::Method::mos_k) {
      char buf[128];
      std::snprintf(buf, sizeof buf, " routes alike %.4f, %zu near ties, %zu real differences", agreement, routes.near, routes.far);
      note = buf;
    }
    std::printf("parity %-6s %-18s T=%-5lld d=%-5lld r=%-4d worst |gpu-ref| %.3g at %zu (%.2f of tolerance)%s  %s\n", kernel_name, name.c_str(),
                static_cast<long long>(t), static_cast<long long>(d), r, cmp.worst_abs, cmp.worst_index, cmp.worst_excess, note.c_str(),
                cmp.ok ? "ok" : "FAIL");
    all_ok = all_ok && cmp.ok;
  }
  cu::set_gemm_kernel(cu::GemmKernel::automatic);
  return all_ok;
}

// moss's split-k encode (launch_moss_gemm with k split 1, 2 and 4 ways) against a double-precision
// product of the same bf16 inputs: m not a multiple of the tiles, k whose last chunk is a partial
// stage, bf16 and fp32 C, n = 16, 48 and 64 (1, 3 and 4 column fragments); m = 1000 runs 32-row
// tiles, m = 9000 with 4 splits 64-row tiles (on a device of up to 142 SMs). The automatic choice
// may never pick a split form on the shapes of `parity`, so each is checked here directly.
bool split_parity() {
  const int k = 2056;
  bool all_ok = true;
  for (const auto& [m, n] : {std::pair<std::int64_t, int>{1000, 16}, {1000, 64}, {9000, 48}}) {
    std::vector<std::uint16_t> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k) * n);
    std::mt19937_64 rng(7 + n);
    std::normal_distribution<float> g;
    for (auto& v : a) v = mk::float_to_bf16_bits(g(rng));
    for (auto& v : b) v = mk::float_to_bf16_bits(g(rng) / 32);
    std::vector<float> ref(static_cast<std::size_t>(m * n));
    for (std::int64_t i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double acc = 0;
        for (int q = 0; q < k; ++q)
          acc += static_cast<double>(mk::bf16_bits_to_float(a[i * k + q])) * mk::bf16_bits_to_float(b[static_cast<std::size_t>(q) * n + j]);
        ref[i * n + j] = static_cast<float>(acc);
      }
    Dev<std::uint16_t> da(a.size()), db(b.size()), dc16(ref.size());
    Dev<float> dc32(ref.size());
    da.put(a);
    db.put(b);
    const std::vector<int> offered = cu::moss_gemm_k_splits(da.p, k, db.p, n, false, dc16.p, n, m, n, k);
    for (int splits : {1, 2, 4})
      for (bool f32 : {false, true}) {
        cu::launch_moss_gemm(da.p, k, db.p, n, false, f32 ? dc32.p : nullptr, f32 ? nullptr : dc16.p, n, m, n, k, false, splits, nullptr);
        MOSS_CUDA_CHECK(cudaDeviceSynchronize());
        const std::vector<float> gpu = f32 ? dc32.get() : mk::bf16_bits_to_floats(dc16.get());
        const Compare cmp = compare(gpu, ref);
        std::printf("parity split-k %d (%s) m=%lld n=%-3d k=%d %s C: worst |gpu-ref| %.3g at %zu (%.2f of tolerance)  %s\n", splits,
                    splits == 1 || std::find(offered.begin(), offered.end(), splits) != offered.end() ? "offered" : "not offered here",
                    static_cast<long long>(m), n, k, f32 ? "fp32" : "bf16", cmp.worst_abs, cmp.worst_index, cmp.worst_excess, cmp.ok ? "ok" : "FAIL");
        all_ok = all_ok && cmp.ok;
      }
  }
  return all_ok;
}

// mos's diagonal path on the device (launch_theta_diagonal, launch_rotate_diagonal) against the
// same steps on the host (theta_diagonal.h fit_theta_columns with the column sums in row order, as
// the CPU encoder): theta equal, or where the device's other summation order flips a step of the
// line search, an objective no worse than 1e-9 relative; the column scales of the device's theta
// within 1e-6; U(theta) within one bf16 step of the host formula. Ranks below, at and above the
// block's 256 threads, not multiples of 32; rows 0 (theta 0, U = Ubar), 1, 37 and 512.
bool theta_parity() {
  bool all_ok = true;
  for (const auto& [rows, rank] : {std::pair<int, int>{512, 16}, {37, 6}, {1, 40}, {0, 8}, {300, 100}, {512, 256}, {64, 300}, {512, 513}}) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(rows * 1000 + rank));
    std::normal_distribution<float> g;
    std::uniform_real_distribution<double> u(0.05, 1.0);
    const std::int64_t ld = 2 * static_cast<std::int64_t>(rank), dim = 333;
    std::vector<float> p(static_cast<std::size_t>(std::max<std::int64_t>(1, rows * ld)));
    std::vector<double> lambda(static_cast<std::size_t>(rank));
    double total = 0;
    for (double& l : lambda) total += (l = u(rng));
    for (double& l : lambda) l /= total;
    std::vector<float> corr(static_cast<std::size_t>(rank));
    for (float& c : corr) c = g(rng);
    for (std::int64_t i = 0; i < rows; ++i)
      for (int q = 0; q < rank; ++q) {
        const float a = g(rng) / std::sqrt(1.0f + q);
        p[i * ld + q] = a, p[i * ld + rank + q] = corr[q] * a + 0.3f * g(rng) / std::sqrt(1.0f + q);
      }
    std::vector<std::uint16_t> wide(static_cast<std::size_t>(dim * ld));
    for (auto& v : wide) v = mk::float_to_bf16_bits(g(rng) / 16);
    std::vector<cu::ColumnStat> stats(static_cast<std::size_t>(rank), cu::ColumnStat{0, 0, 0});
    for (std::int64_t i = 0; i < rows; ++i)
      for (int q = 0; q < rank; ++q) {
        const double x = p[i * ld + q], y = p[i * ld + rank + q];
        stats[q].g00 += x * x, stats[q].g01 += x * y, stats[q].g11 += y * y;
      }
    const float expect = cu::fit_theta_columns(stats.data(), lambda.data(), rank, mk::kMaxTheta);
    Dev<float> dp(p.size()), dtheta(1), dscales(static_cast<std::size_t>(2 * rank));
    Dev<double> dlambda(lambda.size()), dstats(static_cast<std::size_t>(cu::theta_diagonal_scratch(rank)));
    Dev<std::uint16_t> dwide(wide.size()), du(static_cast<std::size_t>(dim * rank));
    dp.put(p), dlambda.put(lambda), dwide.put(wide);
    cu::launch_theta_diagonal(dp.p, rows, rank, dlambda.p, dstats.p, static_cast<std::int64_t>(dstats.n), dtheta.p, dscales.p, nullptr);
    cu::launch_rotate_diagonal(dwide.p, dim, rank, dscales.p, du.p, nullptr);
    MOSS_CUDA_CHECK(cudaDeviceSynchronize());
    const float theta = dtheta.get()[0];
    const std::vector<float> scales = dscales.get();
    const std::vector<std::uint16_t> ug = du.get();
    auto objective = [&](float th) {
      double f = 0;
      for (int q = 0; q < rank; ++q) f += cu::diagonal_term(stats[q], lambda[q], th);
      return f;
    };
    const double f_gpu = objective(theta), f_host = objective(expect);
    bool ok = theta == expect || f_gpu >= f_host - 1e-9 * std::fabs(f_host);
    double worst_scale = 0;
    int u_far = 0;
    for (int q = 0; q < rank; ++q) {
      const cu::ColumnScale c = cu::diagonal_scale(lambda[q], theta);
      worst_scale = std::max({worst_scale, std::fabs(scales[q] - c.a) / std::max(1e-30, static_cast<double>(std::fabs(c.a))),
                              static_cast<double>(std::fabs(scales[rank + q] - c.b)) / std::max(1e-30, static_cast<double>(std::fabs(c.b)))});
      for (std::int64_t i = 0; i < dim; ++i) {
        const float host = mk::bf16_bits_to_float(wide[i * ld + q]) * c.a + mk::bf16_bits_to_float(wide[i * ld + rank + q]) * c.b;
        const std::uint16_t hb = mk::float_to_bf16_bits(host), gb = ug[i * rank + q];
        u_far += std::abs(static_cast<int>(hb) - static_cast<int>(gb)) > 1;
      }
    }
    ok = ok && worst_scale <= 1e-6 && u_far == 0 && (rows > 0 || theta == 0.0f);
    std::printf("parity mos-theta rows=%-4d r=%-4d theta gpu %.7g host %.7g (objective %.12g vs %.12g), scales worst rel %.2g, U beyond 1 bf16 step %d  %s\n",
                rows, rank, theta, expect, f_gpu, f_host, worst_scale, u_far, ok ? "ok" : "FAIL");
    all_ok = all_ok && ok;
  }
  return all_ok;
}

// Seconds per call of `reps` back-to-back calls of `f`, timed once by CUDA events.
template <typename F>
double time_block(F&& f, int reps) {
  const cu::Event a, b;
  MOSS_CUDA_CHECK(cudaEventRecord(a.get()));
  for (int i = 0; i < reps; ++i) f();
  MOSS_CUDA_CHECK(cudaEventRecord(b.get()));
  MOSS_CUDA_CHECK(cudaEventSynchronize(b.get()));
  float ms = 0;
  MOSS_CUDA_CHECK(cudaEventElapsedTime(&ms, a.get(), b.get()));
  return ms * 1e-3 / reps;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median of 5 timings of `reps` back-to-back calls, seconds per call.
template <typename F>
double time_s(F&& f, int reps = 10) {
  f();
  MOSS_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<double> runs;
  for (int run = 0; run < 5; ++run) runs.push_back(time_block(f, reps));
  return median(runs);
}

// Median seconds per call of `f` under the GEMM choices `a` and `b`, their timings interleaved (a, b,
// a, b, ...) so that a change of clocks during the run weighs on both alike; then back to automatic.
template <typename F>
std::pair<double, double> time_interleaved(cu::GemmKernel a, cu::GemmKernel b, F&& f, int reps = 10) {
  std::vector<double> runs[2];
  for (int round = -1; round < 5; ++round)  // round -1 warms up both (module loading, auto's timing)
    for (int which = 0; which < 2; ++which) {
      cu::set_gemm_kernel(which == 0 ? a : b);
      if (round >= 0) {
        runs[which].push_back(time_block(f, reps));
        continue;
      }
      f();
      MOSS_CUDA_CHECK(cudaDeviceSynchronize());
    }
  cu::set_gemm_kernel(cu::GemmKernel::automatic);
  return {median(runs[0]), median(runs[1])};
}

// Fills n bf16 values with a deterministic pattern of moderate magnitudes (no NaN/Inf, not constant).
void fill(std::uint16_t* p, std::size_t n) {
  std::vector<std::uint16_t> h(std::min<std::size_t>(n, std::size_t{1} << 20));
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = mk::float_to_bf16_bits(static_cast<float>((i * 2654435761u) % 2001) / 1000.0f - 1.0f);
  for (std::size_t off = 0; off < n; off += h.size())
    MOSS_CUDA_CHECK(cudaMemcpy(p + off, h.data(), std::min(h.size(), n - off) * 2, cudaMemcpyHostToDevice));
}

// The projection of the benchmark on one shape: X (T x d) and U (d x r) filled, Z and the decoded
// output; encode/decode through launch_gemm_bf16 with the GEMM choice in force (set_gemm_kernel).
struct Projection {
  std::int64_t t, d;
  int r;
  Dev<std::uint16_t> x, u, z, out;
  Projection(std::int64_t tokens, std::int64_t dim, int rank)
      : t(tokens), d(dim), r(rank), x(static_cast<std::size_t>(t * d)), u(static_cast<std::size_t>(d * r)),
        z(static_cast<std::size_t>(t * r)), out(static_cast<std::size_t>(t * d)) {
    fill(x.p, x.n);
    fill(u.p, u.n);
  }
  void encode() const { cu::launch_gemm_bf16(x.p, d, u.p, r, false, nullptr, z.p, r, t, r, static_cast<int>(d), nullptr); }
  void decode() const { cu::launch_gemm_bf16(z.p, r, u.p, r, true, nullptr, out.p, d, t, static_cast<int>(d), r, nullptr); }
};

// The element-wise codecs on one shape: X (T x d) filled, topk at 10 % (values, indices) and 8-bit
// quant (codes, scales), and the decoded output; each call one launch with the choice in force.
struct RowCodecs {
  std::int64_t t;
  int d, k;
  Dev<std::uint16_t> x, out, values, scales;
  Dev<std::int32_t> indices;
  Dev<std::int8_t> codes;
  RowCodecs(std::int64_t tokens, std::int64_t dim)
      : t(tokens), d(static_cast<int>(dim)), k(static_cast<int>(mk::topk_count(0.1, dim))), x(static_cast<std::size_t>(t * d)),
        out(static_cast<std::size_t>(t * d)), values(static_cast<std::size_t>(t * k)), scales(static_cast<std::size_t>(t)),
        indices(static_cast<std::size_t>(t * k)), codes(static_cast<std::size_t>(t * d)) {
    fill(x.p, x.n);
  }
  void topk_encode() const { cu::launch_topk_encode(x.p, t, d, k, values.p, indices.p, nullptr); }
  void topk_decode() const { cu::launch_topk_decode(values.p, indices.p, t, d, k, out.p, nullptr); }
  void quant_encode() const { cu::launch_quant_encode(x.p, t, d, 8, codes.p, scales.p, nullptr); }
  void quant_decode() const { cu::launch_quant_decode(codes.p, scales.p, t, d, out.p, nullptr); }
};

// The steps of one mos encode with one rotation (the diagonal path, one theta block) on one shape:
// the sample projection (512 strided tokens on [Ubar W], fp32), theta (statistics + fit), U(theta)
// and the block's projection; each call the step's launches with the choice in force.
struct MosSteps {
  std::int64_t t, d;
  int r;
  std::int64_t samples, stride;
  Dev<std::uint16_t> x, wide, u, z;
  Dev<float> p, theta_out, scales;
  Dev<double> lambda, stats;
  MosSteps(std::int64_t tokens, std::int64_t dim, int rank)
      : t(tokens), d(dim), r(rank), samples(mk::theta_sample_count(t, 1, r)), stride(mk::theta_sample_stride(t, 1, r)),
        x(static_cast<std::size_t>(t * d)), wide(static_cast<std::size_t>(d * 2 * r)), u(static_cast<std::size_t>(d * r)),
        z(static_cast<std::size_t>(t * r)), p(static_cast<std::size_t>(samples * 2 * r)), theta_out(1),
        scales(static_cast<std::size_t>(2 * r)), lambda(static_cast<std::size_t>(r)),
        stats(static_cast<std::size_t>(cu::theta_diagonal_scratch(r))) {
    fill(x.p, x.n);
    fill(wide.p, wide.n);
    lambda.put(std::vector<double>(static_cast<std::size_t>(r), 1.0 / r));
  }
  void sample() const { cu::launch_gemm_bf16(x.p, stride * d, wide.p, 2 * r, false, p.p, nullptr, 2 * r, samples, 2 * r, static_cast<int>(d), nullptr); }
  void theta() const {
    cu::launch_theta_diagonal(p.p, samples, r, lambda.p, stats.p, static_cast<std::int64_t>(stats.n), theta_out.p, scales.p, nullptr);
  }
  void rotate() const { cu::launch_rotate_diagonal(wide.p, d, r, scales.p, u.p, nullptr); }
  void project() const { cu::launch_gemm_bf16(x.p, d, u.p, r, false, nullptr, z.p, r, t, r, static_cast<int>(d), nullptr); }
};

/// Median seconds per call of `f` with the GEMM choice `kernel` (then back to automatic).
template <typename F>
double time_with(cu::GemmKernel kernel, F&& f) {
  cu::set_gemm_kernel(kernel);
  const double s = time_s(f);
  cu::set_gemm_kernel(cu::GemmKernel::automatic);
  return s;
}

/// Median seconds per call of `f` with `auto` (what the codec runs) and with cuBLAS, timed interleaved:
/// the comparison the goal asks for. Without cuBLAS: `auto` alone, and 0 for cuBLAS.
template <typename F>
std::pair<double, double> time_auto_and_cublas(bool have_blas, F&& f) {
  if (!have_blas) return {time_with(cu::GemmKernel::automatic, f), 0.0};
  return time_interleaved(cu::GemmKernel::automatic, cu::GemmKernel::cublas, f);
}

/// The token counts the benchmark runs: 8192, and 65536 unless `quick`.
std::vector<std::int64_t> bench_tokens(bool quick) {
  std::vector<std::int64_t> tokens{8192};
  if (!quick) tokens.push_back(65536);
  return tokens;
}

// mos's encode steps (MosSteps), timed one by one with the GEMM choice `automatic`; microseconds per step.
void mos_steps(bool quick) {
  std::printf("\nmos, one rotation, one theta block, steps in us (auto GEMMs): sample = 512 tokens x [Ubar W]; theta = statistics\n"
              "+ fit; rotate = U(theta); project = X U(theta); GB/s = bf16 bytes of X over the sum\n");
  std::printf("%6s %5s %4s | %8s %8s %8s %8s %8s | %8s\n", "T", "d", "r", "sample", "theta", "rotate", "project", "sum", "GB/s");
  for (const std::int64_t t : bench_tokens(quick))
    for (std::int64_t d : {2048, 4096})
      for (int r : {16, 64, 256}) {
        const MosSteps m(t, d, r);
        const double sample_s = time_s([&] { m.sample(); });
        const double theta_s = time_s([&] { m.theta(); });
        const double rotate_s = time_s([&] { m.rotate(); });
        const double project_s = time_s([&] { m.project(); });
        const double sum = sample_s + theta_s + rotate_s + project_s;
        std::printf("%6lld %5lld %4d | %8.1f %8.1f %8.1f %8.1f %8.1f | %8.1f\n", static_cast<long long>(t), static_cast<long long>(d), r,
                    sample_s * 1e6, theta_s * 1e6, rotate_s * 1e6, project_s * 1e6, sum * 1e6, 2.0 * t * d / sum / 1e9);
        std::fflush(stdout);
      }
}

void bench(bool quick) {
  const std::size_t copy_bytes = std::size_t{1} << 30;
  Dev<std::uint8_t> src(copy_bytes), dst(copy_bytes);
  const double copy_s = time_s([&] { MOSS_CUDA_CHECK(cudaMemcpyAsync(dst.p, src.p, copy_bytes, cudaMemcpyDeviceToDevice)); });
  const double copy_gbps = 2.0 * copy_bytes / copy_s / 1e9;  // read + write
  std::printf("\ndevice-to-device copy of 1 GiB: %.1f GB/s (read + write bytes per second)\n", copy_gbps);
  const bool have_blas = cu::vendor_gemm_available();
  if (!have_blas) std::printf("cuBLAS: not found at run time (libcublas.so.13, .12, libcublas.so): baseline skipped, auto = moss\n");
  std::printf("GB/s = bf16 bytes of X (T x d) per second; /copy = that over the copy figure; /blas = cuBLAS time over that\n"
              "(> 1: faster than cuBLAS); moss = moss's default kernels; auto = the fastest per shape of those, their split-k forms\n"
              "and cuBLAS (what the codec runs; its choices are listed at the end); simple = the simple WMMA kernel\n");
  std::printf("copyT = the copy of T x d bf16 timed alone (read + write GB/s); /cT = auto enc and dec over it\n");
  std::printf("%-7s %6s %5s %4s | %8s %5s %5s %7s %8s %8s %5s | %8s %5s %5s %7s %8s %8s %5s | %7s %5s %5s\n", "method", "T", "d", "r",
              "enc_moss", "/copy", "/blas", "simple", "cublas", "enc_auto", "/copy", "dec_moss", "/copy", "/blas", "simple", "cublas", "dec_auto",
              "/copy", "copyT", "enc/cT", "dec/cT");
  for (const std::int64_t t : bench_tokens(quick))
    for (std::int64_t d : {2048, 4096})
      for (int r : {16, 64, 256}) {
        const Projection pr(t, d, r);
        const Dev<std::uint16_t>& dx = pr.x;
        const Dev<std::uint16_t>& dz = pr.z;
        const Dev<std::uint16_t>& dout = pr.out;
        const double raw = 2.0 * t * d;
        auto enc = [&] { pr.encode(); };
        auto dec = [&] { pr.decode(); };
        const double te = time_with(cu::GemmKernel::moss, enc), td = time_with(cu::GemmKernel::moss, dec);
        // The copy at this size (X to the output buffer): short transfers do not reach the 1 GiB rate.
        const double tc = time_s([&] { MOSS_CUDA_CHECK(cudaMemcpyAsync(dout.p, dx.p, dx.n * 2, cudaMemcpyDeviceToDevice)); });
        const double copy_here = 2.0 * raw / tc / 1e9;
        const double se = time_with(cu::GemmKernel::simple, enc), sd = time_with(cu::GemmKernel::simple, dec);
        const auto [ae, be] = time_auto_and_cublas(have_blas, enc);
        const auto [ad, bd] = time_auto_and_cublas(have_blas, dec);
        auto gbps = [&](double sec) { return sec > 0 ? raw / sec / 1e9 : 0.0; };
        std::printf("%-7s %6lld %5lld %4d | %8.1f %5.2f %5.2f %7.1f %8.1f %8.1f %5.2f | %8.1f %5.2f %5.2f %7.1f %8.1f %8.1f %5.2f | %7.1f %5.2f %5.2f\n",
                    "pca", static_cast<long long>(t), static_cast<long long>(d), r, gbps(te), gbps(te) / copy_gbps, be / te, gbps(se), gbps(be),
                    gbps(ae), gbps(ae) / copy_gbps, gbps(td), gbps(td) / copy_gbps, bd / td, gbps(sd), gbps(bd), gbps(ad), gbps(ad) / copy_gbps,
                    copy_here, gbps(ae) / copy_here, gbps(ad) / copy_here);
        std::fflush(stdout);
        if (r > 64 || t > 8192) continue;
        // mos-k, K = 4, exhaustive: projection on all K bases (fp32) + routing; decode.
        const int k = 4;
        Dev<std::uint16_t> dw(static_cast<std::size_t>(d * k * r)), db(static_cast<std::size_t>(k * d * r));
        Dev<float> dp(static_cast<std::size_t>(t * k * r));
        Dev<std::int32_t> droute(static_cast<std::size_t>(t));
        fill(dw.p, dw.n);
        fill(db.p, db.n);
        auto kenc = [&] {
          cu::launch_gemm_bf16(dx.p, d, dw.p, k * r, false, dp.p, nullptr, k * r, t, k * r, static_cast<int>(d), nullptr);
          cu::launch_route_select(dp.p, t, r, k, r, 1, dz.p, droute.p, nullptr);
        };
        // Decode as the codec does (launch_decode_mos_k): moss and simple run the routed kernel, cuBLAS
        // the one GEMM over all bases, auto the faster.
        Dev<std::uint16_t> dzw(static_cast<std::size_t>(t * k * r));
        auto kdec = [&] { cu::launch_decode_mos_k(dz.p, db.p, dw.p, droute.p, t, static_cast<int>(d), r, 1, k, dzw.p, dout.p, nullptr); };
        kenc();
        const double ke = time_with(cu::GemmKernel::moss, kenc), kd = time_with(cu::GemmKernel::moss, kdec);
        const double kse = time_with(cu::GemmKernel::simple, kenc), ksd = time_with(cu::GemmKernel::simple, kdec);
        const auto [kae, kbe] = time_auto_and_cublas(have_blas, kenc);
        const auto [kad, kbd] = time_auto_and_cublas(have_blas, kdec);
        std::printf("%-7s %6lld %5lld %4d | %8.1f %5.2f %5.2f %7.1f %8.1f %8.1f %5.2f | %8.1f %5.2f %5.2f %7.1f %8.1f %8.1f %5.2f\n", "mos-k4",
                    static_cast<long long>(t), static_cast<long long>(d), r, gbps(ke), gbps(ke) / copy_gbps, kbe / ke, gbps(kse), gbps(kbe),
                    gbps(kae), gbps(kae) / copy_gbps, gbps(kd), gbps(kd) / copy_gbps, kbd / kd, gbps(ksd), gbps(kbd), gbps(kad),
                    gbps(kad) / copy_gbps);
      }
  for (std::int64_t d : {2048, 4096}) {  // element-wise methods
    const std::int64_t t = quick ? 8192 : 65536;
    const RowCodecs rc(t, d);
    const double raw = 2.0 * t * d;
    auto topk_enc = [&] { rc.topk_encode(); };
    auto topk_dec = [&] { rc.topk_decode(); };
    auto quant_enc = [&] { rc.quant_encode(); };
    auto quant_dec = [&] { rc.quant_decode(); };
    // No GEMM here: enc_moss is the row-in-registers encode, simple the streaming one, auto the
    // faster (the codec's); topk decode: moss the merging warp kernel, simple the scattering one,
    // auto the fastest of those and the block kernel; quant has one decode.
    struct Timed {
      const char* name;
      double enc_moss, enc_simple, enc_auto, dec_moss, dec_simple, dec_auto;
    };
    auto timed = [&](const char* name, auto&& enc, auto&& dec) {
      enc();
      return Timed{name,
                   time_with(cu::GemmKernel::moss, enc),
                   time_with(cu::GemmKernel::simple, enc),
                   time_with(cu::GemmKernel::automatic, enc),
                   time_with(cu::GemmKernel::moss, dec),
                   time_with(cu::GemmKernel::simple, dec),
                   time_with(cu::GemmKernel::automatic, dec)};
    };
    const Timed rows[] = {timed("topk", topk_enc, topk_dec), timed("quant8", quant_enc, quant_dec)};
    auto gbps = [&](double s) { return raw / s / 1e9; };
    for (const Timed& row : rows)
      std::printf("%-7s %6lld %5lld %4s | %8.1f %5.2f %5s %7.1f %8s %8.1f %5.2f | %8.1f %5.2f %5s %7.1f %8s %8.1f %5.2f\n", row.name,
                  static_cast<long long>(t), static_cast<long long>(d), "-", gbps(row.enc_moss), gbps(row.enc_moss) / copy_gbps, "-",
                  gbps(row.enc_simple), "-", gbps(row.enc_auto), gbps(row.enc_auto) / copy_gbps, gbps(row.dec_moss),
                  gbps(row.dec_moss) / copy_gbps, "-", gbps(row.dec_simple), "-", gbps(row.dec_auto), gbps(row.dec_auto) / copy_gbps);
  }
  mos_steps(quick);
  const std::string choices = cu::gemm_choices();
  std::printf("auto's choices (m's power-of-two bucket, n, k; B^T: transposed B): %s\n", choices.empty() ? "none" : choices.c_str());
}

// One launch of each projection kernel on the benchmark's largest shapes, ours then cuBLAS's, in a
// fixed order the profiler's kernel filters can count on; no timing.
void profile() {
  const std::int64_t t = 65536, d = 4096;
  const bool have_blas = cu::vendor_gemm_available();
  for (int r : {16, 64, 256}) {
    const Projection pr(t, d, r);
    std::printf("profile: T = %lld, d = %lld, r = %d: encode, decode%s\n", static_cast<long long>(t), static_cast<long long>(d), r,
                have_blas ? ", cuBLAS encode, cuBLAS decode" : "");
    cu::set_gemm_kernel(cu::GemmKernel::moss);
    pr.encode();
    pr.decode();
    if (have_blas) {
      cu::set_gemm_kernel(cu::GemmKernel::cublas);
      pr.encode();
      pr.decode();
    }
    cu::set_gemm_kernel(cu::GemmKernel::automatic);
    MOSS_CUDA_CHECK(cudaDeviceSynchronize());
  }
}
// One launch of each kernel without a GEMM (and of mos's fixed steps), in a fixed order; no timing.
void profile_rows() {
  const RowCodecs rc(65536, 2048);
  std::printf("profile: T = %lld, d = %d: topk encode (registers, streaming), quant encode (registers, streaming), topk decode (merged)\n",
              static_cast<long long>(rc.t), rc.d);
  for (const cu::GemmKernel form : {cu::GemmKernel::moss, cu::GemmKernel::simple}) {
    cu::set_gemm_kernel(form);
    rc.topk_encode();
  }
  for (const cu::GemmKernel form : {cu::GemmKernel::moss, cu::GemmKernel::simple}) {
    cu::set_gemm_kernel(form);
    rc.quant_encode();
  }
  cu::set_gemm_kernel(cu::GemmKernel::moss);
  rc.topk_decode();
  MOSS_CUDA_CHECK(cudaDeviceSynchronize());
  const MosSteps m(8192, 2048, 64);
  std::printf("profile: mos, T = %lld, d = %lld, r = %d: sample projection, theta, rotation (moss's kernels)\n", static_cast<long long>(m.t),
              static_cast<long long>(m.d), m.r);
  m.sample();
  m.theta();
  m.rotate();
  cu::set_gemm_kernel(cu::GemmKernel::automatic);
  MOSS_CUDA_CHECK(cudaDeviceSynchronize());
}
}  // namespace

int main(int argc, char** argv) {
  bool parity_only = false, quick = false, profile_only = false, profile_rows_only = false;
  std::vector<cu::GemmKernel> only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--parity-only") parity_only = true;
    else if (a == "--quick") quick = true;
    else if (a == "--profile") profile_only = true;
    else if (a == "--profile-rows") profile_rows_only = true;
    else if (a == "--gemm" && i + 1 < argc) {
      try {
        only.push_back(cu::parse_gemm_kernel(argv[++i], "moss_gpu_check --gemm"));
      } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "moss_gpu_check: %s\n", e.what());
        return 2;
      }
    } else {
      std::fprintf(stderr, "moss_gpu_check: unknown option %s (expected --parity-only, --gemm NAME, --quick, --profile or --profile-rows)\n", argv[i]);
      return 2;
    }
  }
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
    std::printf("moss_gpu_check on %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
    if (profile_only || profile_rows_only) {
      if (profile_only) profile();
      if (profile_rows_only) profile_rows();
      return 0;
    }
    const bool have_blas = cu::vendor_gemm_available();
    std::printf("cuBLAS: %s\n", have_blas ? (cu::vendor_gemm_library() + " loaded").c_str()
                                            : "not found at run time: its parity and baseline are skipped");
    std::vector<cu::GemmKernel> kernels{cu::GemmKernel::moss, cu::GemmKernel::simple};
    if (have_blas) kernels.insert(kernels.end(), {cu::GemmKernel::cublas, cu::GemmKernel::automatic});
    if (!only.empty()) {
      if (!have_blas && std::find(only.begin(), only.end(), cu::GemmKernel::cublas) != only.end()) {
        std::fprintf(stderr, "moss_gpu_check: --gemm cublas, but cuBLAS was not found at run time\n");
        return 2;
      }
      kernels = only;
    }
    bool ok = true;
    for (const cu::GemmKernel kernel : kernels) {
      ok = parity(1000, 520, 24, kernel) && ok;
      ok = parity(333, 256, 64, kernel) && ok;
      ok = parity(200, 264, 20, kernel) && ok;  // rank 20: not whole 16-byte rows (moss: the simple kernel)
      ok = parity(700, 1024, 256, kernel) && ok;
      ok = parity(150, 261, 24, kernel) && ok;  // rows not whole 16-byte chunks: the one-block-per-token and simple kernels
      ok = parity(37, 40, 8, kernel) && ok;     // rows shorter than a warp's 32 chunks: lanes without a chunk
    }
    ok = split_parity() && ok;
    ok = theta_parity() && ok;
    std::fflush(stdout);
    if (!parity_only) bench(quick);
    std::printf("\n%s\n", ok ? "PASS" : "FAIL: GPU and CPU reference differ beyond tolerance");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moss_gpu_check: %s\n", e.what());
    return 2;
  }
}
