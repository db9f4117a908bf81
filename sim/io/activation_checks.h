#pragma once
// Shape rules and NaN/Inf/magnitude checks shared by the .npy and HDF5 readers (private to moss_io).

#include <cstdint>
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

/// Layout of `shape` (activations.h rules); `allow_pair` lets a leading 2 mean K/V. Throws InputError.
Layout layout_of(const std::string& file, const std::string& dataset, const std::vector<std::int64_t>& shape,
                 bool allow_pair);

/// Largest |value| accepted: the codecs square activations in fp32 (token energies ||x U||^2 <= d
/// max|x|^2, d up to 65536), which stays finite below about 7e16; 1e15 leaves a margin and is far
/// above any model's K/V.
inline constexpr float kMaxActivation = 1e15f;

/// Splits `values` (layout order) into tensors, checking every value is finite and at most
/// kMaxActivation in magnitude. Throws InputError.
Activations split(const std::string& file, const Layout& layout, std::vector<float> values,
                  const std::vector<std::string>& names = {}, const std::string& dataset = "");

}  // namespace moss::io::detail
