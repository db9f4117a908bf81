#pragma once

// One tensor through one codec: fit on a warm-up sample, encode/decode a chunk, count, time, score.

#include <cstdint>
#include <string>

#include "moss/kernels/codec.h"
#include "moss/kernels/metrics.h"

namespace moss::kernels {

/// Where encode/decode run.
enum class Device { cpu, gpu };

/// Bytes, error and speed of one tensor (K or V) compressed as one chunk.
struct TensorReport {
  std::int64_t tokens = 0;
  std::int64_t dim = 0;
  std::uint64_t raw_bytes = 0;       ///< tokens x dim x 2 (bf16)
  std::uint64_t sent_bytes = 0;      ///< Encoded::wire_bytes() of the chunk
  std::uint64_t one_time_bytes = 0;  ///< basis exchange (not in sent_bytes)
  double ratio = 1;                  ///< sent_bytes / raw_bytes
  ReconstructionError error;
  double encode_s = 0;               ///< fastest timed encode of the chunk
  double decode_s = 0;
  double encode_input_bytes_per_s = 0;   ///< raw_bytes / encode_s
  double decode_output_bytes_per_s = 0;  ///< raw_bytes / decode_s
  std::string device;                    ///< cpu_device_name() or the GPU's name
  double fit_s = 0;  ///< the one-time fit on the warm-up, wall seconds (its products on the GPU when device is gpu)
};

/// Fits `config` on `warmup` (fit_codec; gpu_fit_codec when device is gpu), then encodes and decodes
/// `x` on `device` (`repeats` timed runs, fastest kept). On a GPU with `timed_tokens` > x.rows the
/// times are those of `timed_tokens` rows (x repeated; at most kMaxTimedValues values), scaled to
/// x.rows: a short sample's launches and per-block fits would understate the rate of a whole chunk.
/// Throws std::invalid_argument for an invalid config, std::runtime_error when device is gpu and
/// none is usable.
TensorReport evaluate_tensor(const CodecConfig& config, MatrixView warmup, MatrixView x, Device device,
                             std::uint64_t seed, int repeats = 1, std::int64_t timed_tokens = 0);
/// Most values (tokens x dim) evaluate_tensor times on a GPU: 512 MiB of fp32 on the host.
inline constexpr std::int64_t kMaxTimedValues = std::int64_t{1} << 27;

/// Name of the CPU implementation as reports print it: "cpu (Eigen, 1 thread)", with the encoder
/// products that run beside Eigen's GEMM on this CPU named, e.g. "cpu (Eigen + AVX512-BF16 dot
/// products for encoder products of up to 16 columns + AVX-512 streaming products for encoder
/// products of up to 64 columns, 1 thread)".
std::string cpu_device_name();
/// The same for a measurement of `config`: the products are named only where its encoder uses them
/// (pca, mos, mos-k; the dot products with bf16 values only).
std::string cpu_device_name(const CodecConfig& config);

}  // namespace moss::kernels
