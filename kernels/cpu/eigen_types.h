#pragma once
// Private Eigen aliases of the CPU implementation (never included by public headers or .cu files).

#include <Eigen/Dense>
#include <cstdint>
#include <span>
#include <vector>

#include "moss/kernels/matrix.h"

namespace moss::kernels::cpu {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMapF = Eigen::Map<const RowMatrixF>;
using MapF = Eigen::Map<RowMatrixF>;

inline ConstMapF map(MatrixView x) { return ConstMapF(x.data, x.rows, x.cols); }
inline ConstMapF map(const float* p, std::int64_t rows, std::int64_t cols) { return ConstMapF(p, rows, cols); }

/// Top-`rank` right singular subspace of x (rows x dim) as dim x rank orthonormal columns, by
/// randomised subspace iteration (`iterations` passes, oversampling 8). Deterministic in `seed`.
/// `start` (dim x rank), when given, replaces the first `rank` random columns (a warm start).
RowMatrixF top_subspace(MatrixView x, int rank, int iterations, std::uint64_t seed,
                        const RowMatrixF* start = nullptr);

/// Thin Q factor of a (rows x cols, rows >= cols).
RowMatrixF orthonormal_columns(const RowMatrixF& a);

/// U(theta) with Eigen: the same formula as rotation.h's rotated_basis (dim x rank).
RowMatrixF rotated_basis_eigen(const float* ubar, const float* directions, const float* theta,
                               int rotations, std::int64_t dim, int rank);

/// Theta of one block from the projections p = X_sample [Ubar W_1..W_m] (n x (m+1) rank).
std::vector<float> fit_block_theta(const float* p, std::int64_t n, std::span<const double> dir_gram,
                                   int rotations, int rank);

}  // namespace moss::kernels::cpu
