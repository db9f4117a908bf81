#pragma once

// The facade the step simulator calls for a scenario: run the real kernels on a representative
// sample of K/V of the scenario's shape and report per-token bytes, errors and throughput.
//
// Sample. The codecs are fitted on a warm-up sample of request.warmup_tokens tokens (default
// kWarmupTokens: the bases a run would learn in its warm-up) and evaluated on a *different* sample of min(chunk_tokens, kMaxSampleTokens)
// tokens (after the warm-up for every method, so all methods see the same tokens), K and V separately,
// each with its own rank (and fit seed: seed + 2l for K of sampled layer l, + 1 for V). Synthetic sources generate warm-up + sample from
// one seeded stream (tokens [0, warm-up) fit, the rest is measured). Activations of several layers:
// every layer has its own K/V statistics and a model its own bases per layer, so each sampled layer
// (at most kMaxSampleLayers, evenly spaced over depth, first and last included) is fitted on its own
// warm-up and measured on its own sample; squared errors, norms, bytes and times add over them.
//
// Bytes. sent_bytes_per_token counts K + V exactly as they travel for a chunk of chunk_tokens tokens
// (coefficients, indices, scales, and the theta of every theta-block: with theta_block_tokens = 0 one
// theta per chunk, i.e. 4 * rotations / chunk_tokens bytes per token per tensor). raw is bf16:
// 2 tensors x kv_dim x 2 bytes per token; ratio = sent / raw.
//
// Basis exchange. one_time_bytes is the K + V bases of ONE layer (pca: d r; mos: d r (1 + rotations);
// mos-k: d r K values, bf16) that every receiver must hold. The bases are learned once in warm-up and
// kept (as in the paper: Ubar from the principal components of ~500 warm-up steps), so over a run of S
// steps with L layers and P devices the exchange costs one_time_bytes * L * (P - 1) per device once,
// i.e. one_time_bytes * L * (P - 1) / S per step: negligible for S in the thousands. The caller does
// that amortisation (it knows L, P and the run length); it is NOT folded into sent_bytes_per_token.
//
// Throughput. encode_input_bytes_per_s = bf16 input bytes / encode time of the sample, decode the
// same for bf16 output, measured on `device` (named in the result). Measured on the CPU, it says how
// fast this host runs the kernels, not a GPU: callers that time a GPU step should use a roofline
// estimate for that GPU unless device is a GPU (throughput_measured says a measurement was made).
//
// Cost: about 0.1-0.6 s per layer measured and new (method, params, source, shape, seed, device) on a
// 2-core CPU at kv_dim 2048. Results are cached in the process, so a sweep pays once per distinct key
// (measure_key); concurrent requests of one key (parallel sweep points) wait for one measurement.
// The on-disk cache that `moss run` and `moss sweep` keep across processes is the simulator's
// (moss/step/measurement_cache.h): it adds what this key cannot see (the file's identity, the host,
// the build).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "moss/kernels/codec.h"
#include "moss/kernels/matrix.h"

namespace moss::kernels {

/// Largest measured sample per tensor (tokens).
inline constexpr std::int64_t kMaxSampleTokens = 1024;
/// Default warm-up sample that fits the bases (tokens). The paper's bases come from ~500 warm-up
/// steps, far more data than a measurement can afford; on synthetic:llama the error of mos 40/100
/// falls from 0.192 at 1024 tokens to 0.109 at 4096 and 0.099 at 8192: 4096 is within ~10 % of
/// where it levels off, at about 1.5x the measurement time of 1024 (README.md, "Compression kernels").
inline constexpr std::int64_t kWarmupTokens = 4096;
/// Largest warm-up accepted (tokens): K and V of 65536 tokens at kv_dim 8192 are 4 GiB.
inline constexpr std::int64_t kMaxWarmupTokens = 65536;
/// Most layers of a multi-layer activation source measured (evenly spaced over depth).
inline constexpr std::size_t kMaxSampleLayers = 4;

/// What to measure.
struct MeasureRequest {
  CompressionParams params;
  std::int64_t chunk_tokens = 0;  ///< tokens per device chunk (seq_len / context parallel degree)
  std::int64_t warmup_tokens = kWarmupTokens;  ///< tokens the bases are fitted on and every method skips (files: at most half of each layer)
  int kv_dim = 0;                 ///< kv_heads x head_dim
  int head_dim = 128;             ///< recorded in the cache key; the bases span all heads together
  std::uint64_t seed = 1;
  /// "synthetic:llama" or "synthetic:<spec>" (synthetic.h; dim is set to kv_dim), or any name for
  /// activations passed to the overload below.
  std::string activation_source = "synthetic:llama";
  std::string device = "cpu";  ///< "cpu", "gpu" (throws when none), or "auto" (gpu when available)
};

/// Result per token of a device chunk (see the file comment).
struct MeasureResult {
  double raw_bytes_per_token = 0;
  double sent_bytes_per_token = 0;
  double ratio = 1;
  double relative_error = 0;    ///< K and V together: sqrt((|dK|^2 + |dV|^2) / (|K|^2 + |V|^2))
  double relative_error_k = 0;
  double relative_error_v = 0;
  double encode_input_bytes_per_s = 0;
  double decode_output_bytes_per_s = 0;
  std::string device;
  bool throughput_measured = false;
  double one_time_bytes = 0;  ///< K + V bases of one layer (see the file comment)
  int layers_measured = 1;    ///< layers of the source fitted and measured (see the file comment)
  int layers_in_source = 1;   ///< layers the source holds (sampled_layers(layers_in_source) were measured)
  std::int64_t warmup_tokens = 0;  ///< tokens each fit used (files: min(half the tokens, request.warmup_tokens))
  bool shared = false;  ///< taken from this process's earlier or concurrent measurement of the same request, not measured by this call
};

/// Measures a synthetic source. Thread-safe; cached in-process by (method, params, source, shape,
/// seed, device). Throws std::invalid_argument for invalid params, shapes or source strings.
MeasureResult measure_kv(const MeasureRequest& request);

/// Measures given activations (tokens x kv_dim each, e.g. loaded by moss::io): the first half of the
/// tokens (at most request.warmup_tokens) fits, the rest (at most kMaxSampleTokens) is measured. Cached like
/// measure_kv under request.activation_source, which must name the data.
MeasureResult measure_kv(const MeasureRequest& request, MatrixView k, MatrixView v);

/// Measures activations of several layers (k_layers[l], v_layers[l]: layer l, tokens x kv_dim, the
/// same tokens in every layer): each of sampled_layers(layers) is fitted on its own first half of
/// tokens (at most request.warmup_tokens) and measured on the rest (at most kMaxSampleTokens). Cached like
/// measure_kv.
MeasureResult measure_kv(const MeasureRequest& request, std::span<const MatrixView> k_layers, std::span<const MatrixView> v_layers);

/// The in-process cache's key of a request: method, every parameter, chunk and warm-up tokens,
/// kv_dim, head_dim, seed, device (as requested) and activation_source, in one line.
std::string measure_key(const MeasureRequest& request);

/// Measurements this process has run (cache misses of measure_kv), for tests and logs.
std::uint64_t measurements_run();

/// The layers measured of a source of `layers` layers: min(layers, kMaxSampleLayers) indices evenly
/// spaced, the first and the last included, ascending.
std::vector<std::size_t> sampled_layers(std::size_t layers);

}  // namespace moss::kernels
