#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "moss/core/error.h"
#include "moss/scenario/scenario.h"
#include "moss/step/evaluate.h"
#include "moss/step/step_simulator.h"

namespace moss::step {

/// Compression figures for a scenario, with where each came from.
struct CompressionFigures {
  CodecInputs codec;
  CompressionOutcome outcome;
};

/// Bytes, errors and codec times of the scenario's compression. With `measure`, the kernels run on
/// the scenario's activations (compression.activations: "synthetic:<spec>" or a .npy/.h5 file) at
/// the scenario's shape: bytes per token and errors are measured; codec times come from the
/// measured throughput when the kernels ran on a GPU, else from the roofline of the scenario's GPU
/// (labelled so). Without `measure`, bytes come from the byte formula and errors are unknown.
/// Thread-safe; results are cached in the process per (method, parameters, source, shape, seed), and
/// on disk in `cache_dir` when given (measurement_cache.h; outcome.cache says hit or miss).
[[nodiscard]] CompressionFigures compression_figures(const scenario::Scenario& s, bool measure,
                                                     const std::optional<std::filesystem::path>& cache_dir = std::nullopt);

/// Checks the scenario's activation file (compression.activations, when a file, the method
/// compresses and simulation.measure_compression is on) as a measured run will use it: it loads (no NaN/Inf, a readable .npy/.h5), holds a
/// K/V pair of the model's K/V width with at least 2 tokens per layer. Throws InputError naming the
/// scenario file and /compression/activations (or the activation file for its own errors); the
/// file stays loaded for the run that follows in this process.
void check_activations(const scenario::Scenario& s);

/// The version of an activation source: a synthetic spec itself; a file's canonical path, device,
/// inode, size, modification and change times (a rewritten file is another version); nullopt when
/// the file cannot be examined.
[[nodiscard]] std::optional<std::string> source_identity(const std::string& source);

/// Encode and decode times per chunk of `s` from its kernels' throughputs (bytes of K/V input per
/// second) measured on the GPU the CUDA runtime names `gpu_name`, and where they come from:
///   the scenario's GPU (catalog device_names)  as measured;
///   another GPU of the catalog                 scaled by the ratio of the two GPUs' rooflines;
///   a GPU the catalog does not name            the scenario GPU's roofline.
struct MeasuredCodecTime {
  CodecTime per_chunk;
  std::string source;  ///< CompressionOutcome::timing_source
};
[[nodiscard]] MeasuredCodecTime measured_codec_time(const scenario::Scenario& s, double chunk_tokens, const std::string& gpu_name,
                                                    double encode_bytes_per_s, double decode_bytes_per_s);

/// The problems of the activation file `path` on its own (it loads: a readable .npy/.h5 without
/// NaN/Inf, with the HDF5 datasets `dataset_k` and `dataset_v` when given), under `scenario_file` and
/// /compression/activations; empty when it loads. For
/// `moss validate`, which reports them beside the scenario's other problems when the scenario itself
/// does not parse (check_activations needs the model's shapes).
[[nodiscard]] std::vector<Problem> activation_file_problems(const std::string& path, const std::string& scenario_file,
                                                           const std::string& dataset_k = "", const std::string& dataset_v = "");

}  // namespace moss::step
