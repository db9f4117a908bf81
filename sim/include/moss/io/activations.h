#pragma once

// Loading real K/V activations for `moss compress` and scenarios.
//
// Accepted files (float32, float16 or bfloat16 values, C order):
//   .npy  [tokens, dim]            one tensor
//         [layers, tokens, dim]    one tensor per layer (layers != 2)
//         [2, tokens, dim]         a K/V pair (index 0 = K, 1 = V)
//         [2, layers, tokens, dim] a K/V pair per layer
//         dtypes '<f4', '<f2', and bfloat16 as written by ml_dtypes ('bfloat16' or '<V2')
//   .h5 / .hdf5  datasets "k" and "v" (a pair), each [tokens, dim] or [layers, tokens, dim]; or a
//         single dataset (any name): one tensor [tokens, dim] or [layers, tokens, dim] (so
//         [2, tokens, dim] is 2 layers, unlike .npy), or a K/V pair [2, layers, tokens, dim]. Any
//         HDF5 floating-point type. A DatasetChoice names other datasets, at any depth
//         ("layers/3/k"): one (`single`, read as a single dataset is), or a pair.
// Errors (moss::InputError naming the file, the dataset as "/name", and what was expected): unknown
// extension, bad magic/header, unsupported dtype, Fortran order, wrong rank or zero-sized shape,
// truncated data, NaN/Inf (with its layer, token and feature). Sizes are validated against the file
// size before any data buffer is allocated.

#include <cstdint>
#include <string>
#include <vector>

namespace moss::io {

/// One tensor: `layers` x `tokens` x `dim` float32, row-major.
struct Tensor {
  std::string name;  ///< "k", "v" or "x"
  std::int64_t layers = 1;
  std::int64_t tokens = 0;
  std::int64_t dim = 0;
  std::vector<float> values;

  /// Pointer to the first value of `layer`.
  [[nodiscard]] const float* layer(std::int64_t l) const { return values.data() + l * tokens * dim; }
};

/// What a file held: one tensor, or K and V (is_pair) of equal shapes.
struct Activations {
  std::vector<Tensor> tensors;
  [[nodiscard]] bool is_pair() const { return tensors.size() == 2; }
};

/// Which datasets of an HDF5 file to read, by path from the file's root ("k", "/cache/layer3/k");
/// all empty: the file's own rules (datasets "k" and "v", or its only dataset).
struct DatasetChoice {
  std::string single;  ///< one tensor from this dataset
  std::string k;       ///< with `v`: a K/V pair from these two datasets
  std::string v;
  [[nodiscard]] bool empty() const { return single.empty() && k.empty() && v.empty(); }
  /// "" when empty, else ` (dataset "/x")` or ` (datasets "/k", "/v")` (names from the root without
  /// empty components, quoted: one text per choice), for messages, output and measurement keys.
  [[nodiscard]] std::string describe() const;
};

/// Checks a choice on its own: `single` alone, or `k` and `v` together; names non-empty, without
/// NUL bytes, not "/" alone. Returns the problem ("" when valid), for the caller to place.
[[nodiscard]] std::string dataset_choice_problem(const DatasetChoice& choice);

/// Loads a .npy or .h5/.hdf5 file (see the file comment); throws moss::InputError. A non-empty
/// `datasets` applies to HDF5 files only (a .npy file with one is an InputError).
Activations load_activations(const std::string& path, const DatasetChoice& datasets = {});
/// Loads a .npy file.
Activations load_npy(const std::string& path);
/// Loads an HDF5 file. libhdf5 runs in a forked child process whose memory is capped (256 MiB plus 4x
/// the largest tensor the file may hold): a file that crashes it is reported as InputError ("libhdf5
/// crashed reading this file ..."), one that makes it exceed the cap as InputError ("libhdf5 needed
/// more than N MiB ..."), and moss carries on.
/// A dataset the choice names that the file lacks, or that is a group, is an InputError naming it
/// and listing the file's top-level objects.
Activations load_hdf5(const std::string& path, const DatasetChoice& datasets = {});
/// Loads an HDF5 file in this process. A corrupt file can crash libhdf5 and the process with it; only
/// the fuzzer and the child of load_hdf5 call this directly. Throws std::bad_alloc when libhdf5
/// reports that an allocation failed.
Activations load_hdf5_unisolated(const std::string& path, const DatasetChoice& datasets = {});

}  // namespace moss::io
