#pragma once

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
/// Thread-safe; results are cached per (method, parameters, source, shape, seed).
[[nodiscard]] CompressionFigures compression_figures(const scenario::Scenario& s, bool measure);

}  // namespace moss::step
