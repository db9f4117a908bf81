// GPU codec (gpu_codec.h): device buffers, the kernels of codec_kernels.cu and mos_kernels.cu,
// CUDA-event timing.
// mos with one rotation on a fitted state (the diagonal path, the default) runs wholly on the device:
// per theta block the sample projection, theta and U(theta) (mos_kernels.cu), the projection, with no
// wait for the host. Other fitted mos states (several rotations) fit theta by the CPU encoder's
// general path (Newton steps on r x r factors) from the device projections of a strided sample:
// either on the host (a (m+1)r-wide download per block, MosBlockMixer) or with the objective's steps
// on the device (device_theta_fit.h: the line search reads back a number per step, and the mixing
// matrix S is formed there), whichever MOSS_GPU_THETA_FIT names or, by default, the faster for the
// shape; then the device forms U(theta) = [Ubar W_1..W_m] S.
// The wire's bit streams (mos-k routes, topk indices, quant codes) are packed on the device inside the
// timed encode (pack_word.h), as a sender would before its send.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include "../cpu/device_theta_fit.h"
#include "../cpu/eigen_types.h"
#include "codec_launch.h"
#include "cuda_check.h"
#include "pack_word.h"
#include "vendor_gemm.h"
#include "moss/kernels/bf16.h"
#include "moss/kernels/gpu_codec.h"
#include "moss/kernels/mos_block_mixer.h"

namespace moss::kernels {

namespace {
/// Device allocation freed on scope exit.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    if (n > 0) MOSS_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)));
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (p_ != nullptr) cudaFree(p_);
  }
  T* get() const { return p_; }
  std::size_t size() const { return n_; }
  /// Ordered on `s`; `v` may be a temporary: a copy from pageable host memory returns once the data
  /// is staged (CUDA's API synchronisation rules), before the transfer itself.
  void upload(const std::vector<T>& v, cudaStream_t s) {
    MOSS_CUDA_CHECK(cudaMemcpyAsync(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice, s));
  }
  std::vector<T> download(cudaStream_t s) const {
    std::vector<T> v(n_);
    MOSS_CUDA_CHECK(cudaMemcpyAsync(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost, s));
    MOSS_CUDA_CHECK(cudaStreamSynchronize(s));
    return v;
  }

 private:
  T* p_ = nullptr;
  std::size_t n_;
};

/// Where the general theta fit runs (MOSS_GPU_THETA_FIT): `host` (MosBlockMixer on the downloaded
/// sample projections), `device` (their objective's steps on the device), or `auto` (unset: the faster
/// for the shape, timed on its first block, as fastest_alternative times kernels).
enum class ThetaFitPlace { automatic, host, device };
ThetaFitPlace theta_fit_place() {
  const char* env = std::getenv("MOSS_GPU_THETA_FIT");
  const std::string v = env != nullptr ? env : "auto";
  if (v == "auto" || v.empty()) return ThetaFitPlace::automatic;
  if (v == "host") return ThetaFitPlace::host;
  if (v == "device") return ThetaFitPlace::device;
  throw std::invalid_argument("MOSS_GPU_THETA_FIT: \"" + v + "\" is not a place for the theta fit; expected auto, host or device");
}

// A matrix X of the fit uploaded once as bf16 (exact: the fit runs on the wire copy), with its stream.
struct DeviceMatrix {
  explicit DeviceMatrix(MatrixView x) : rows(x.rows), dim(x.cols), dx(static_cast<std::size_t>(x.rows * x.cols)) {
    dx.upload(to_bf16_bits(x.data, static_cast<std::size_t>(x.size())), stream.get());
  }
  // C (m x n, fp32, downloaded) = X operand (`operand` uploaded as the right factor, k x n) or
  // operand X (`operand` uploaded as the left factor, m x k, when `operand_left`).
  std::vector<float> product(const std::vector<std::uint16_t>& operand, std::int64_t m, std::int64_t n, std::int64_t k,
                             bool operand_left) const {
    DeviceBuffer<std::uint16_t> dop(operand.size());
    DeviceBuffer<float> dc(static_cast<std::size_t>(m * n));
    dop.upload(operand, stream.get());
    const std::uint16_t* a = operand_left ? dop.get() : dx.get();
    const std::uint16_t* b = operand_left ? dx.get() : dop.get();
    cuda::launch_gemm_bf16(a, k, b, n, false, dc.get(), nullptr, n, m, static_cast<int>(n), static_cast<int>(k), stream.get());
    return dc.download(stream.get());  // synchronises: the operand and the buffers outlive the work
  }
  std::int64_t rows, dim;
  cuda::Stream stream;
  DeviceBuffer<std::uint16_t> dx;
};

// The fit's products of X on the device: X uploaded once (DeviceMatrix), each product a launch_gemm_bf16
// with the other operand as bf16 hi + lo parts (Bf16SplitProducts), fp32 out, downloaded.
std::unique_ptr<cpu::SubspaceProducts> device_products(MatrixView x) {
  const auto dev = std::make_shared<const DeviceMatrix>(x);
  // X (rows x dim) times b (dim x cols): rows x cols; a (n x rows) times X (rows x dim): n x dim.
  auto x_times_bits = [dev](const std::vector<std::uint16_t>& b, std::int64_t cols) { return dev->product(b, dev->rows, cols, dev->dim, false); };
  auto bits_times_x = [dev](const std::vector<std::uint16_t>& a, std::int64_t n) { return dev->product(a, n, dev->dim, dev->rows, true); };
  return std::make_unique<cpu::Bf16SplitProducts>(x.rows, x.cols, x_times_bits, bits_times_x);
}

}  // namespace

CodecState gpu_fit_codec(const CodecConfig& config, MatrixView warmup, std::uint64_t seed) {
  if (!gpu_available()) throw std::runtime_error("no usable CUDA device");
  if (config.value_bytes != 2) throw std::invalid_argument("the GPU kernels are bf16 only (value_bytes = 2)");
  const cpu::ProductsFor on_device = [](MatrixView x) -> std::unique_ptr<cpu::SubspaceProducts> {
    if (x.rows < 1 || x.cols < 1) return nullptr;  // nothing to upload: the fit's own checks speak
    return device_products(x);
  };
  return cpu::fit_codec_with(config, warmup, seed, on_device);
}

bool gpu_available() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);  // without a GPU: an error, count untouched
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return count > 0;
}

std::string gpu_device_name() {
  if (!gpu_available()) return "";
  cudaDeviceProp prop{};
  MOSS_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  // Which GEMMs the projections run (codec_launch.h): a figure with cuBLAS is not one of moss's kernels.
  std::string gemm;
  switch (cuda::gemm_kernel()) {
    case cuda::GemmKernel::automatic:
      if (cuda::vendor_gemm_available()) gemm = ", GEMMs: moss or " + cuda::vendor_gemm_library() + ", the faster per shape";
      break;
    case cuda::GemmKernel::moss: gemm = ", GEMMs: moss"; break;
    case cuda::GemmKernel::simple: gemm = ", GEMMs: moss simple"; break;
    case cuda::GemmKernel::cublas:
      gemm = ", GEMMs: " + (cuda::vendor_gemm_library().empty() ? std::string("cuBLAS (not found)") : cuda::vendor_gemm_library());
      break;
  }
  return std::string(prop.name) + " (CUDA" + gemm + ")";
}

Encoded gpu_roundtrip(const CodecState& s, MatrixView x, float* x_hat, GpuTiming& timing, int repeats) {
  if (!gpu_available()) throw std::runtime_error("no usable CUDA device");
  const CodecConfig& c = s.config;
  if (c.value_bytes != 2) throw std::invalid_argument("the GPU kernels are bf16 only (value_bytes = 2)");
  const std::int64_t t = x.rows, d = x.cols, r = c.rank;
  const cuda::Stream owned_stream;
  const cudaStream_t stream = owned_stream.get();
  DeviceBuffer<std::uint16_t> dx(static_cast<std::size_t>(t * d)), dout(static_cast<std::size_t>(t * d));
  dx.upload(to_bf16_bits(x.data, static_cast<std::size_t>(t * d)), stream);
  const std::int64_t bl_theta = c.theta_block_tokens <= 0 ? std::max<std::int64_t>(t, 1) : c.theta_block_tokens;
  const std::int64_t bl_route = c.route_block_tokens <= 0 ? std::max<std::int64_t>(t, 1) : c.route_block_tokens;
  const std::int64_t theta_blocks = (t + bl_theta - 1) / bl_theta, route_blocks = (t + bl_route - 1) / bl_route;
  const std::int64_t k = topk_count(c.fraction, d), m = c.rotations, nk = c.subspaces;
  // Method buffers (sized for the method in use only).
  const bool subspace = uses_basis(c.method);
  std::vector<float> wide;  // basis matrix the projection GEMM reads
  if (c.method == Method::pca) wide = s.basis;
  if (c.method == Method::mos || c.method == Method::mos_k) {
    const std::int64_t blocks = c.method == Method::mos ? m + 1 : nk;
    wide.resize(static_cast<std::size_t>(d * blocks * r));
    for (std::int64_t i = 0; i < d; ++i)
      for (std::int64_t b = 0; b < blocks; ++b) {
        const float* src = c.method == Method::mos ? (b == 0 ? s.basis.data() : s.directions.data() + (b - 1) * d * r)
                                                   : s.basis.data() + b * d * r;
        std::copy(src + i * r, src + (i + 1) * r, wide.begin() + (i * blocks + b) * r);
      }
  }
  DeviceBuffer<std::uint16_t> dwide(wide.size()), dz(subspace ? static_cast<std::size_t>(t * r) : 0);
  if (!wide.empty()) dwide.upload(to_bf16_bits(wide.data(), wide.size()), stream);
  const std::int64_t wide_cols = c.method == Method::mos ? (m + 1) * r : c.method == Method::mos_k ? nk * r : r;
  std::int64_t sample_rows = 0;  // the largest theta sample of any block
  for (std::int64_t t0 = 0; c.method == Method::mos && t0 < t; t0 += bl_theta)
    sample_rows = std::max(sample_rows, theta_sample_count(std::min(bl_theta, t - t0), static_cast<int>(m), static_cast<int>(r)));
  DeviceBuffer<float> dp(c.method == Method::mos_k ? static_cast<std::size_t>(t * wide_cols)
                         : c.method == Method::mos ? static_cast<std::size_t>(sample_rows * wide_cols) : 0);
  DeviceBuffer<std::uint16_t> drot(c.method == Method::mos ? static_cast<std::size_t>(theta_blocks * d * r) : 0);
  // mos on the diagonal path: lambda = diag(W^T W), the theta kernel's scratch, U(theta)'s column
  // scales, theta per block.
  const bool diagonal = c.method == Method::mos && cpu::diagonal_rotation(s);
  DeviceBuffer<double> dlambda(diagonal ? static_cast<std::size_t>(r) : 0), dstats(diagonal ? static_cast<std::size_t>(cuda::theta_diagonal_scratch(static_cast<int>(r))) : 0);
  DeviceBuffer<float> dcolumn_scales(diagonal ? static_cast<std::size_t>(2 * r) : 0), dtheta(diagonal ? static_cast<std::size_t>(theta_blocks) : 0);
  if (diagonal) {
    const Eigen::ArrayXd lambda = cpu::direction_eigenvalues(s);
    dlambda.upload(std::vector<double>(lambda.data(), lambda.data() + lambda.size()), stream);
  }
  // Other mos states from fit_codec: the basis stored twice side by side and S (hi; lo) for U = wide2 S.
  const MosBlockMixer mixer(s);
  const bool mixed = !diagonal && mixer.available();
  DeviceBuffer<std::uint16_t> dwide2(mixed ? 2 * wide.size() : 0), ds(mixed ? static_cast<std::size_t>(2 * (m + 1) * r * r) : 0);
  std::vector<std::uint16_t> s_bits;
  // The general fit's steps on the device: the direction and basis Gram matrices, the scratch.
  const ThetaFitPlace fit_place = mixed ? theta_fit_place() : ThetaFitPlace::host;
  const bool device_fit = mixed && fit_place != ThetaFitPlace::host && m <= cuda::kDeviceThetaRotations;
  DeviceBuffer<float> ddirection_gram(device_fit ? s.direction_gram.size() : 0);
  DeviceBuffer<double> dbasis_gram(device_fit ? s.basis_gram.size() : 0);
  DeviceBuffer<double> dfit(device_fit ? static_cast<std::size_t>(cpu::device_theta_scratch(sample_rows, static_cast<int>(m), static_cast<int>(r))) : 0);
  const std::unique_ptr<cuda::ThetaGeneralSteps> fit_steps = device_fit ? cuda::make_cuda_theta_steps(stream) : nullptr;
  if (device_fit) ddirection_gram.upload(s.direction_gram, stream), dbasis_gram.upload(s.basis_gram, stream);
  const std::vector<double> traces = device_fit ? cpu::theta_traces(s.direction_gram, static_cast<int>(m), static_cast<int>(r)) : std::vector<double>();
  if (mixed) {
    const std::vector<std::uint16_t> wb = to_bf16_bits(wide.data(), wide.size());
    std::vector<std::uint16_t> w2(2 * wide.size());
    for (std::int64_t i = 0; i < d; ++i)
      for (int half = 0; half < 2; ++half)
        std::copy(wb.begin() + i * wide_cols, wb.begin() + (i + 1) * wide_cols, w2.begin() + (2 * i + half) * wide_cols);
    dwide2.upload(w2, stream);
  }
  DeviceBuffer<std::int32_t> droute(c.method == Method::mos_k ? static_cast<std::size_t>(route_blocks) : 0);
  DeviceBuffer<std::uint16_t> dvals(c.method == Method::topk ? static_cast<std::size_t>(t * k) : 0);
  DeviceBuffer<std::int32_t> didx(c.method == Method::topk ? static_cast<std::size_t>(t * k) : 0);
  DeviceBuffer<std::int8_t> dcodes(c.method == Method::quant ? static_cast<std::size_t>(t * d) : 0);
  DeviceBuffer<std::uint16_t> dscales(c.method == Method::quant ? static_cast<std::size_t>(t) : 0);
  // The wire's bit stream, packed on the device as part of the encode: mos-k routes, topk indices or
  // quant codes (pack_word.h; count values of `pack_bits` bits each).
  const std::int64_t pack_count = c.method == Method::mos_k ? route_blocks : c.method == Method::topk ? t * k : c.method == Method::quant ? t * d : 0;
  const int pack_bits = c.method == Method::mos_k ? index_bits(nk) : c.method == Method::topk ? index_bits(d) : c.method == Method::quant ? c.bits : 0;
  DeviceBuffer<std::uint32_t> dpacked(pack_bits > 0 ? static_cast<std::size_t>(cuda::packed_words(pack_count, pack_bits)) : 0);
  std::vector<float> theta;

  auto encode_on_device = [&] {
    theta.clear();
    switch (c.method) {
      case Method::none: break;
      case Method::pca:
        cuda::launch_gemm_bf16(dx.get(), d, dwide.get(), r, false, nullptr, dz.get(), r, t, static_cast<int>(r), static_cast<int>(d), stream);
        break;
      case Method::mos:
        for (std::int64_t b = 0; b < theta_blocks; ++b) {
          const std::int64_t t0 = b * bl_theta, n = std::min(bl_theta, t - t0);
          const std::int64_t ns = theta_sample_count(n, static_cast<int>(m), static_cast<int>(r));
          const std::int64_t stride = theta_sample_stride(n, static_cast<int>(m), static_cast<int>(r));
          cuda::launch_gemm_bf16(dx.get() + t0 * d, stride * d, dwide.get(), wide_cols, false, dp.get(), nullptr, wide_cols, ns,
                                 static_cast<int>(wide_cols), static_cast<int>(d), stream);
          if (diagonal) {  // theta and U(theta) on the device, no wait for the host
            cuda::launch_theta_diagonal(dp.get(), ns, static_cast<int>(r), dlambda.get(), dstats.get(),
                                        static_cast<std::int64_t>(dstats.size()), dtheta.get() + b,
                                        dcolumn_scales.get(), stream);
            cuda::launch_rotate_diagonal(dwide.get(), d, static_cast<int>(r), dcolumn_scales.get(), drot.get() + b * d * r, stream);
          } else if (mixed) {
            // U = [Ubar W_1 .. W_m] S with theta from the CPU encoder's general fit and S from its r x r
            // factors, on the device: S as bf16 hi + lo parts (ds) against the basis stored twice
            // (dwide2), so S keeps ~16 bits and the product accumulates in fp32. On the host
            // (MosBlockMixer, S uploaded) or on the device (theta's objective and S's factors there).
            std::vector<float> th;
            auto on_host = [&] {
              std::vector<float> p = dp.download(stream), mix;  // synchronises: the last block's S upload is done
              mixer.fit(p.data(), ns, th, mix);
              s_bits = to_bf16_hi_lo(mix.data(), mix.size());
              ds.upload(s_bits, stream);
            };
            auto on_device = [&] {
              th = cpu::fit_block_theta_on_device(*fit_steps, dp.get(), ns, ddirection_gram.get(), static_cast<int>(m), static_cast<int>(r),
                                                  dfit.get(), traces);
              cpu::mixing_bits_on_device(*fit_steps, th, ddirection_gram.get(), dbasis_gram.get(), static_cast<int>(m), static_cast<int>(r),
                                         dfit.get(), ds.get());
            };
            if (!device_fit) on_host();
            else if (fit_place == ThetaFitPlace::device) on_device();
            else
              cuda::run_fastest_alternative("mos theta fit m=" + std::to_string(m) + " r=" + std::to_string(r) + " n<=" +
                                                std::to_string(cuda::pow2_bucket(ns)),
                                            {"device", "host"}, {on_device, on_host}, stream);
            theta.insert(theta.end(), th.begin(), th.end());
            cuda::launch_gemm_bf16(dwide2.get(), 2 * wide_cols, ds.get(), r, false, nullptr, drot.get() + b * d * r, r, d,
                                   static_cast<int>(r), static_cast<int>(2 * wide_cols), stream);
          } else {  // states without the Gram blocks: U(theta) on the host as rotation.h defines it
            std::vector<float> p = dp.download(stream);
            p.resize(static_cast<std::size_t>(ns * wide_cols));
            cpu::RowMatrixD m_theta;
            const std::vector<float> th = cpu::fit_block_theta(p.data(), ns, s.direction_gram, static_cast<int>(m), static_cast<int>(r), &m_theta);
            theta.insert(theta.end(), th.begin(), th.end());
            const cpu::RowMatrixF u =
                cpu::rotated_basis_eigen(s.basis.data(), s.directions.data(), th.data(), static_cast<int>(m), d, static_cast<int>(r));
            MOSS_CUDA_CHECK(cudaMemcpyAsync(drot.get() + b * d * r, to_bf16_bits(u.data(), static_cast<std::size_t>(d * r)).data(),
                                            static_cast<std::size_t>(d * r) * 2, cudaMemcpyHostToDevice, stream));  // staged: see upload
          }
          cuda::launch_gemm_bf16(dx.get() + t0 * d, d, drot.get() + b * d * r, r, false, nullptr, dz.get() + t0 * r, r, n,
                                 static_cast<int>(r), static_cast<int>(d), stream);
        }
        break;
      case Method::mos_k:
        cuda::launch_gemm_bf16(dx.get(), d, dwide.get(), wide_cols, false, dp.get(), nullptr, wide_cols, t,
                               static_cast<int>(wide_cols), static_cast<int>(d), stream);
        // Both routings read the full projection here (the sketch one only its first columns): the
        // same routes as the CPU, at the cost of the exhaustive projection.
        cuda::launch_route_select(dp.get(), t, static_cast<int>(r), static_cast<int>(nk),
                                  c.routing == Routing::sketch ? route_sketch_columns(c.rank) : c.rank, c.route_block_tokens,
                                  dz.get(), droute.get(), stream);
        cuda::launch_pack_bits(droute.get(), pack_count, pack_bits, dpacked.get(), stream);
        break;
      case Method::topk:
        cuda::launch_topk_encode(dx.get(), t, static_cast<int>(d), static_cast<int>(k), dvals.get(), didx.get(), stream);
        cuda::launch_pack_bits(didx.get(), pack_count, pack_bits, dpacked.get(), stream);
        break;
      case Method::quant:
        cuda::launch_quant_encode(dx.get(), t, static_cast<int>(d), c.bits, dcodes.get(), dscales.get(), stream);
        cuda::launch_pack_bits(dcodes.get(), pack_count, pack_bits, dpacked.get(), stream);
        break;
    }
  };
  // mos-k decode: the bases one after another for the routed kernel; z spread over all bases' columns
  // for the one-GEMM form (launch_decode_mos_k takes the faster).
  DeviceBuffer<std::uint16_t> dbases(c.method == Method::mos_k ? s.basis.size() : 0);
  const cuda::GemmKernel gemm = cuda::gemm_kernel();
  const bool expanded_decode = c.method == Method::mos_k && (gemm == cuda::GemmKernel::automatic || gemm == cuda::GemmKernel::cublas);
  DeviceBuffer<std::uint16_t> dz_wide(expanded_decode ? static_cast<std::size_t>(t * wide_cols) : 0);
  if (c.method == Method::mos_k) dbases.upload(to_bf16_bits(s.basis.data(), s.basis.size()), stream);
  auto decode_on_device = [&] {
    switch (c.method) {
      case Method::none:
        MOSS_CUDA_CHECK(cudaMemcpyAsync(dout.get(), dx.get(), static_cast<std::size_t>(t * d) * 2, cudaMemcpyDeviceToDevice, stream));
        break;
      case Method::pca:
        cuda::launch_gemm_bf16(dz.get(), r, dwide.get(), r, true, nullptr, dout.get(), d, t, static_cast<int>(d), static_cast<int>(r), stream);
        break;
      case Method::mos:
        for (std::int64_t b = 0; b < theta_blocks; ++b) {
          const std::int64_t t0 = b * bl_theta, n = std::min(bl_theta, t - t0);
          cuda::launch_gemm_bf16(dz.get() + t0 * r, r, drot.get() + b * d * r, r, true, nullptr, dout.get() + t0 * d, d, n,
                                 static_cast<int>(d), static_cast<int>(r), stream);
        }
        break;
      case Method::mos_k:
        cuda::launch_decode_mos_k(dz.get(), dbases.get(), dwide.get(), droute.get(), t, static_cast<int>(d), static_cast<int>(r),
                                  c.route_block_tokens, static_cast<int>(nk), expanded_decode ? dz_wide.get() : nullptr, dout.get(), stream);
        break;
      case Method::topk:
        cuda::launch_topk_decode(dvals.get(), didx.get(), t, static_cast<int>(d), static_cast<int>(k), dout.get(), stream);
        break;
      case Method::quant:
        cuda::launch_quant_decode(dcodes.get(), dscales.get(), t, static_cast<int>(d), dout.get(), stream);
        break;
    }
  };
  const cuda::Event e0, e1, e2;
  timing.encode_s = timing.decode_s = 1e30;
  for (int i = 0; i < std::max(1, repeats) + 1; ++i) {  // first round warms up (module load, caches)
    MOSS_CUDA_CHECK(cudaEventRecord(e0.get(), stream));
    encode_on_device();
    MOSS_CUDA_CHECK(cudaEventRecord(e1.get(), stream));
    decode_on_device();
    MOSS_CUDA_CHECK(cudaEventRecord(e2.get(), stream));
    MOSS_CUDA_CHECK(cudaEventSynchronize(e2.get()));
    float enc_ms = 0, dec_ms = 0;
    MOSS_CUDA_CHECK(cudaEventElapsedTime(&enc_ms, e0.get(), e1.get()));
    MOSS_CUDA_CHECK(cudaEventElapsedTime(&dec_ms, e1.get(), e2.get()));
    if (i > 0 || repeats < 1) {
      timing.encode_s = std::min(timing.encode_s, enc_ms * 1e-3);
      timing.decode_s = std::min(timing.decode_s, dec_ms * 1e-3);
    }
  }
  // What travelled, in the wire layout of codec.h.
  Encoded e;
  e.tokens = t, e.dim = d, e.value_bytes = 2;
  if (c.method == Method::none) e.values = bf16_bits_to_floats(dx.download(stream));
  if (subspace) e.values = bf16_bits_to_floats(dz.download(stream));
  if (c.method == Method::mos) e.theta = diagonal ? dtheta.download(stream) : theta;
  if (c.method == Method::mos_k) e.route = droute.download(stream);
  if (c.method == Method::topk) e.values = bf16_bits_to_floats(dvals.download(stream));
  if (c.method == Method::quant) e.scales = bf16_bits_to_floats(dscales.download(stream));
  if (pack_bits > 0) {  // the words' bytes are the stream (little-endian host), the last word zero-padded
    const std::vector<std::uint32_t> words = dpacked.download(stream);
    e.packed.resize(static_cast<std::size_t>((pack_count * pack_bits + 7) / 8));
    for (std::size_t i = 0; i < e.packed.size(); ++i) e.packed[i] = static_cast<std::uint8_t>(words[i / 4] >> (8 * (i % 4)));
  }  // else index_bits 0 (one basis, or one feature): nothing travels, `packed` stays empty
  const std::vector<std::uint16_t> out = dout.download(stream);
  for (std::size_t i = 0; i < out.size(); ++i) x_hat[i] = bf16_bits_to_float(out[i]);
  return e;
}

}  // namespace moss::kernels
