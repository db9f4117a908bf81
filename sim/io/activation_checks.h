#pragma once
// Shape rules and NaN/Inf/magnitude checks shared by the .npy and HDF5 readers (private to moss_io).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "moss/io/activations.h"

namespace moss::io::detail {

/// How a shape maps onto tensors.
struct Layout {
  int tensors = 1;  ///< 1, or 2 for a K/V pair
  std::int64_t layers = 1, tokens = 0, dim = 0;
  [[nodiscard]] std::uint64_t count() const {
    return static_cast<std::uint64_t>(tensors) * static_cast<std::uint64_t>(layers) *
           static_cast<std::uint64_t>(tokens) * static_cast<std::uint64_t>(dim);
  }
};

/// Which shapes with a leading 2 are a K/V pair.
enum class PairShapes {
  none,        ///< none: each of HDF5's datasets "k" and "v" is one tensor
  leading_two, ///< .npy: [2, tokens, dim] and [2, layers, tokens, dim]
  four_d,      ///< an HDF5 file's one dataset: [2, layers, tokens, dim] only ([2, tokens, dim] is 2 layers)
};

/// "expected [tokens, dim] or ...": the shapes `pairs` accepts, for messages.
std::string expected_shapes(PairShapes pairs);

/// Layout of `shape` (activations.h rules). Throws InputError.
Layout layout_of(const std::string& file, const std::string& dataset, const std::vector<std::int64_t>& shape,
                 PairShapes pairs);

/// Largest |value| accepted: the codecs square activations in fp32 (token energies ||x U||^2 <= d
/// max|x|^2, d up to 65536), which stays finite below about 7e16; 1e15 leaves a margin and is far
/// above any model's K/V.
inline constexpr float kMaxActivation = 1e15f;

/// The value the file holds at a flat index of `values` (layout order), where reading it as float
/// changed it: a float64 beyond float's range became +-FLT_MAX (.npy) or +-Inf (libhdf5). nullopt when
/// the float is the file's value.
using ValueInFile = std::function<std::optional<long double>(std::size_t index)>;

/// Splits `values` (layout order) into tensors, checking every value is finite and at most
/// kMaxActivation in magnitude; a refused value is quoted as the file holds it (`in_file`, when given).
/// Throws InputError.
Activations split(const std::string& file, const Layout& layout, std::vector<float> values,
                  const std::vector<std::string>& names = {}, const std::string& dataset = "", const ValueInFile& in_file = {});

}  // namespace moss::io::detail
