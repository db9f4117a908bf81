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

/// Whether the streaming products are the AVX-512 loops (built with AVX-512); else they are Eigen's.
inline constexpr bool kStreamVectorised =
#if defined(__AVX512F__)
    true;
#else
    false;
#endif

/// V (dim x c, c <= kStreamColumns) with its columns padded with zeros to whole vectors of 16: the
/// operand of stream_rows_times, prepared once for many calls.
[[nodiscard]] RowMatrixF stream_operand(const Eigen::Ref<const RowMatrixF>& v);

/// y (n x vp.cols(), row-major, overwritten) = rows of x times V, row i of x at
/// x + (rows ? rows[i] : i) * dim, vp = stream_operand(V): the rows are read in place (a gathered
/// subset costs no copy), in chunks of columns against V in cache.
void stream_rows_times(const float* x, const std::int64_t* rows, std::int64_t n, std::int64_t dim, const RowMatrixF& vp, float* y);

/// z (dim x yp.cols(), row-major, overwritten) = sum over i < n of x_i^T times row i of yp, x_i the
/// row of x at x + (rows ? rows[i] : i) * dim, yp = stream_operand(Y) for Y (n x c): the transposed
/// product of stream_rows_times, on listed rows read in place.
void stream_rows_xt_times(const float* x, const std::int64_t* rows, std::int64_t n, std::int64_t dim, const RowMatrixF& yp, float* z);

/// X^T Y (dim x c) for row-major X (rows x dim) and Y (rows x c), c <= kStreamColumns: X is read
/// once, in blocks of tokens, each adding its part to the dim x c result.
[[nodiscard]] RowMatrixF stream_xt_times(MatrixView x, const RowMatrixF& y);

}  // namespace moss::kernels::cpu
