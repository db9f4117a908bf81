#pragma once

#include <cstdint>
#include <iosfwd>
#include <set>
#include <string>

namespace CLI {
class App;
}

namespace moss::app {

/// Flags of `moss compress` (CONTRACT.md).
struct CompressOptions {
  std::string activations;  ///< .npy / .h5 file (moss::io formats)
  std::string synthetic;    ///< synthetic spec (kernels/synthetic.h), e.g. "llama,dim=2048"
  std::string dataset;      ///< HDF5: one tensor from this dataset (path from the file's root)
  std::string dataset_k;    ///< HDF5: with dataset_v, K and V from these datasets
  std::string dataset_v;
  std::string method;
  int rank = 0;    ///< rank of a single tensor, and of K and V unless --rank-k/--rank-v say otherwise
  int rank_k = 0;
  int rank_v = 0;
  double fraction = 0.1;
  int bits = 8;
  bool json = false;
  std::int64_t tokens = 0;   ///< synthetic: tokens measured (overrides the spec); 0 = spec's
  std::int64_t dim = 0;      ///< synthetic: feature width (overrides the spec); 0 = spec's
  std::int64_t warmup = 0;   ///< synthetic: warm-up tokens fitted before the measured ones; 0 = tokens
  std::uint64_t seed = 1;
  int rotations = 1;
  int subspaces = 4;
  int theta_block = 0;       ///< mos: tokens per theta (0 = one theta per chunk)
  std::string routing = "exhaustive";  ///< mos-k: exhaustive | sketch
  int route_block = 1;       ///< mos-k: tokens per basis index (0 = one per chunk)
  int repeats = 3;           ///< timed runs, fastest kept
  std::string device = "cpu";  ///< cpu | gpu
  bool per_layer = false;      ///< a table row per layer of a multi-layer file (--json always lists them)
  /// Flags the user gave (e.g. "--fraction"), filled by the parser: a flag that does not apply to the
  /// method or source is noted and ignored, and a given value is used (and checked) even where it equals 0.
  std::set<std::string> given;
};

/// Declares the flags of `moss compress` on its subcommand (and records in options.given which ones the
/// command line sets).
void add_compress_options(CLI::App& sub, CompressOptions& options);

/// Runs the kernels on the chosen activations and prints the report to `out`, and to `err` a note for
/// each flag the method or source does not read (ignored). Throws moss::InputError for bad flags or
/// activation files; returns the exit code otherwise.
int run_compress(const CompressOptions& options, std::ostream& out, std::ostream& err);

}  // namespace moss::app
