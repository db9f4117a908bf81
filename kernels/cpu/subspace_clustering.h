#pragma once
// mos-k's bases: k-subspaces clustering of the warm-up sample (fit_codec.cpp calls it; kept apart
// because the clustering, its seedings and its refinement are most of the fit's code).
#include <cstdint>
#include <vector>

#include "eigen_types.h"

namespace moss::kernels::cpu {

/// `k` bases (each dim x `r`, orthonormal columns) of the warm-up `x` (tokens x dim) by k-subspaces
/// clustering: each token, or each routing block of `route_block` tokens (<= 0: the whole sample), is
/// routed to the basis that captures most of its energy, and each basis is refitted on its tokens.
/// The best of several seedings is kept. Deterministic in `seed`; `products` as fit_codec_with's.
std::vector<RowMatrixF> fit_subspaces(MatrixView x, int k, int r, int route_block, std::uint64_t seed,
                                      const ProductsFor& products);

}  // namespace moss::kernels::cpu
