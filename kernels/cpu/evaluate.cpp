#include "moss/kernels/evaluate.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <stdexcept>

#include "bf16_dot.h"
#include "stream_products.h"
#include "wire_product.h"
#include "moss/kernels/gpu_codec.h"

namespace moss::kernels {

namespace {

/// The products the subspace encoders run (cpu/wire_product.h), as the device line names them.
std::string cpu_products(bool bf16_wire) {
  std::string s = "Eigen";
  switch (bf16_wire ? cpu::bf16_dot_policy() : cpu::Bf16Dots::off) {
    case cpu::Bf16Dots::all: s += " + AVX512-BF16 dot products"; break;
    case cpu::Bf16Dots::narrow:
      s += " + AVX512-BF16 dot products for encoder products of up to " + std::to_string(cpu::kNarrowDotColumns) + " columns";
      break;
    case cpu::Bf16Dots::off: break;
  }
  if (cpu::stream_products_enabled() && !(bf16_wire && cpu::bf16_dot_policy() == cpu::Bf16Dots::all))
    s += " + AVX-512 streaming products for encoder products of up to " + std::to_string(cpu::kStreamColumns) + " columns";
  return s;
}

}  // namespace

std::string cpu_device_name() { return "cpu (" + cpu_products(true) + ", 1 thread)"; }

std::string cpu_device_name(const CodecConfig& config) {
  return uses_basis(config.method) ? "cpu (" + cpu_products(config.value_bytes == 2) + ", 1 thread)" : "cpu (Eigen, 1 thread)";
}

TensorReport evaluate_tensor(const CodecConfig& config, MatrixView warmup, MatrixView x, Device device,
                             std::uint64_t seed, int repeats, std::int64_t timed_tokens) {
  validate_config(config, x.cols);
  if (warmup.cols != x.cols) throw std::invalid_argument("warm-up and chunk have different widths");
  using Clock = std::chrono::steady_clock;
  const auto fit_start = Clock::now();
  const CodecState state = device == Device::gpu ? gpu_fit_codec(config, warmup, seed) : fit_codec(config, warmup, seed);
  TensorReport r;
  r.fit_s = std::chrono::duration<double>(Clock::now() - fit_start).count();
  r.tokens = x.rows;
  r.dim = x.cols;
  r.raw_bytes = static_cast<std::uint64_t>(x.rows) * static_cast<std::uint64_t>(x.cols) * 2u;
  r.one_time_bytes = one_time_bytes(config, x.cols);
  Matrix x_hat(x.rows, x.cols);
  Encoded encoded;
  if (device == Device::gpu) {
    GpuTiming timing;
    encoded = gpu_roundtrip(state, x, x_hat.data.data(), timing, std::max(1, repeats));
    r.encode_s = timing.encode_s;
    r.decode_s = timing.decode_s;
    const std::int64_t timed = std::min<std::int64_t>(timed_tokens, kMaxTimedValues / std::max<std::int64_t>(1, x.cols));
    if (timed > x.rows) {
      Matrix chunk(timed, x.cols);
      for (std::int64_t t = 0; t < timed; ++t) std::copy_n(x.row(t % x.rows), x.cols, chunk.row(t));
      std::vector<float> chunk_hat(chunk.data.size());
      GpuTiming whole;
      (void)gpu_roundtrip(state, chunk.view(), chunk_hat.data(), whole, std::max(1, repeats));
      const double share = static_cast<double>(x.rows) / static_cast<double>(timed);
      r.encode_s = whole.encode_s * share;
      r.decode_s = whole.decode_s * share;
    }
    r.device = gpu_device_name();
  } else {
    r.encode_s = r.decode_s = std::numeric_limits<double>::infinity();
    // Steady state: the encoding reuses its buffers from the previous repeat, as a training step reuses
    // its send buffer (the first repeat also pays for allocating them; the fastest repeat is kept).
    for (int i = 0; i < std::max(1, repeats); ++i) {
      const auto t0 = Clock::now();
      encode(state, x, encoded);
      const auto t1 = Clock::now();
      decode(state, encoded, x_hat.data.data());
      const auto t2 = Clock::now();
      r.encode_s = std::min(r.encode_s, std::chrono::duration<double>(t1 - t0).count());
      r.decode_s = std::min(r.decode_s, std::chrono::duration<double>(t2 - t1).count());
    }
    r.device = cpu_device_name(config);
  }
  r.sent_bytes = encoded.wire_bytes();
  if (r.sent_bytes != encoded_bytes(config, x.rows, x.cols))
    throw std::logic_error("encoded size differs from the closed-form wire size");
  r.ratio = r.raw_bytes > 0 ? static_cast<double>(r.sent_bytes) / static_cast<double>(r.raw_bytes) : 1.0;
  r.error = reconstruction_error(x, x_hat.view());
  const auto raw = static_cast<double>(r.raw_bytes);
  r.encode_input_bytes_per_s = r.encode_s > 0 ? raw / r.encode_s : 0;
  r.decode_output_bytes_per_s = r.decode_s > 0 ? raw / r.decode_s : 0;
  return r;
}

}  // namespace moss::kernels
