#pragma once
// The fit's narrow products of a large fp32 matrix, without packing it.

#include "eigen_types.h"

namespace moss::kernels::cpu {

/// Widest narrow operand (columns) the streaming products take; wider ones go to Eigen's GEMM. At
/// T = 4096, d = 2048 they take 0.53-0.71x Eigen's time up to 64 columns, but 1.0-1.6x at 96-128,
/// where the operand no longer stays in L1 against enough rows of X.
inline constexpr Eigen::Index kStreamColumns = 64;

/// X V for row-major X (rows x dim) and V (dim x c), c <= kStreamColumns: X is read once, in
/// blocks of rows, against V in cache. Eigen's GEMM packs all of X on every call, which at the
/// fit's 16-64 columns costs as long as the multiply-adds. Built for AVX-512 (its 32 vector
/// registers hold the accumulators); without it, Eigen's product.
[[nodiscard]] RowMatrixF stream_x_times(MatrixView x, const RowMatrixF& v);

/// X^T Y (dim x c) for row-major X (rows x dim) and Y (rows x c), c <= kStreamColumns: X is read
/// once, in blocks of tokens, each adding its part to the dim x c result.
[[nodiscard]] RowMatrixF stream_xt_times(MatrixView x, const RowMatrixF& y);

}  // namespace moss::kernels::cpu
