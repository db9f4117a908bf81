#include "stream_products.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <type_traits>

namespace moss::kernels::cpu {

#if defined(__AVX512F__)
namespace {

// Sixteen floats operated on element-wise (GCC/Clang vector extension: one AVX-512 register, two
// AVX ones). The narrow operand is padded to whole vectors of columns.
using Floats16 = float __attribute__((vector_size(64)));
constexpr std::int64_t kLanes = 16;
// X V: the operand's rows per pass over the rows of X take this many bytes (256 KiB, a quarter of a
// 1-2 MiB L2): at T = 4096, d = 2048 whole rows against a 512 KiB operand ran in 0.70x the time of
// 256-column chunks at 64 columns and 0.67x at 16 (long runs along each row suit the prefetcher
// better than an operand in L1); the sums run in the same order at any chunk.
constexpr std::int64_t kOperandBytes = std::int64_t{1} << 18;
constexpr std::int64_t kTokenBlock = 32;   // X^T Y: tokens per pass over the dim x c result

Floats16 load16(const float* p) {
  Floats16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
void store16(float* p, Floats16 v) { std::memcpy(p, &v, sizeof v); }

// Rows (or features) handled together: as many accumulators as the registers hold beside the
// operand's C16 vectors.
constexpr int group_of(int c16) { return c16 <= 2 ? 8 : 4; }

// y[R rows, cp] += x[R rows, columns k0..k1) v[k0..k1, cp], row r of x at xr[r].
template <int C16, int R>
void rows_times(const float* const* xr, std::int64_t k0, std::int64_t k1, const float* v, float* y) {
  constexpr std::int64_t cp = kLanes * C16;
  Floats16 acc[R][C16];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < C16; ++j) acc[r][j] = load16(y + r * cp + kLanes * j);
  for (std::int64_t i = k0; i < k1; ++i) {
    Floats16 b[C16];
    for (int j = 0; j < C16; ++j) b[j] = load16(v + i * cp + kLanes * j);
    for (int r = 0; r < R; ++r) {
      const float s = xr[r][i];
      for (int j = 0; j < C16; ++j) acc[r][j] += s * b[j];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < C16; ++j) store16(y + r * cp + kLanes * j, acc[r][j]);
}

// z[F features from i0, cp] += sum over tokens t0..t1 of x_t[i0..i0+F)^T y[t, cp], x_t = row(t).
template <int C16, int F, typename Row>
void features_times(Row&& row, std::int64_t t0, std::int64_t t1, std::int64_t i0, const float* y, float* z) {
  constexpr std::int64_t cp = kLanes * C16;
  Floats16 acc[F][C16];
  for (int f = 0; f < F; ++f)
    for (int j = 0; j < C16; ++j) acc[f][j] = load16(z + (i0 + f) * cp + kLanes * j);
  for (std::int64_t t = t0; t < t1; ++t) {
    Floats16 b[C16];
    for (int j = 0; j < C16; ++j) b[j] = load16(y + t * cp + kLanes * j);
    const float* xr = row(t) + i0;
    for (int f = 0; f < F; ++f) {
      const float s = xr[f];
      for (int j = 0; j < C16; ++j) acc[f][j] += s * b[j];
    }
  }
  for (int f = 0; f < F; ++f)
    for (int j = 0; j < C16; ++j) store16(z + (i0 + f) * cp + kLanes * j, acc[f][j]);
}

// Calls fn with C16 (1..4) as a compile-time constant.
template <typename Fn>
void with_vectors(std::int64_t c16, Fn&& fn) {
  switch (c16) {
    case 1: fn(std::integral_constant<int, 1>{}); break;
    case 2: fn(std::integral_constant<int, 2>{}); break;
    case 3: fn(std::integral_constant<int, 3>{}); break;
    case 4: fn(std::integral_constant<int, 4>{}); break;
    default: throw std::logic_error("streaming products take at most kStreamColumns columns");
  }
}

// `m` with its columns padded with zeros to whole vectors.
RowMatrixF padded(const Eigen::Ref<const RowMatrixF>& m, std::int64_t cp) {
  RowMatrixF out = RowMatrixF::Zero(m.rows(), cp);
  out.leftCols(m.cols()) = m;
  return out;
}

std::int64_t padded_columns(Eigen::Index c) {
  if (c < 1 || c > kStreamColumns) throw std::logic_error("streaming products take 1 to kStreamColumns columns");
  return (c + kLanes - 1) / kLanes * kLanes;
}

// y (n x cp, zeroed) = rows of x (row i at x + (rows ? rows[i] : i) * dim) times vp (dim x cp), in
// chunks of columns of x whose rows of vp take kOperandBytes, so that they stay in cache against every
// row group.
template <int C16>
void rows_times_all(const float* x, const std::int64_t* rows, std::int64_t n, std::int64_t dim, const float* vp, float* y) {
  constexpr int R = group_of(C16);
  constexpr std::int64_t cp = kLanes * C16;
  auto row = [&](std::int64_t i) { return x + (rows != nullptr ? rows[i] : i) * dim; };
  constexpr std::int64_t chunk = kOperandBytes / static_cast<std::int64_t>(sizeof(float) * cp);
  for (std::int64_t k0 = 0; k0 < dim; k0 += chunk) {
    const std::int64_t k1 = std::min(dim, k0 + chunk);
    std::int64_t r0 = 0;
    for (; r0 + R <= n; r0 += R) {
      const float* xr[R];
      for (int r = 0; r < R; ++r) xr[r] = row(r0 + r);
      rows_times<C16, R>(xr, k0, k1, vp, y + r0 * cp);
    }
    for (; r0 < n; ++r0) {
      const float* xr[1] = {row(r0)};
      rows_times<C16, 1>(xr, k0, k1, vp, y + r0 * cp);
    }
  }
}

// z (dim x cp, zeroed) = sum over the n rows of x (row i at x + (rows ? rows[i] : i) * dim) of
// x_i^T y_i, yp n x cp: blocks of kTokenBlock rows, each adding its part to z (in cache).
template <int C16>
void rows_xt_all(const float* x, const std::int64_t* rows, std::int64_t n, std::int64_t dim, const float* yp, float* z) {
  constexpr int F = group_of(C16);
  auto row = [&](std::int64_t i) { return x + (rows != nullptr ? rows[i] : i) * dim; };
  for (std::int64_t t0 = 0; t0 < n; t0 += kTokenBlock) {
    const std::int64_t t1 = std::min(n, t0 + kTokenBlock);
    std::int64_t i0 = 0;
    for (; i0 + F <= dim; i0 += F) features_times<C16, F>(row, t0, t1, i0, yp, z);
    for (; i0 < dim; ++i0) features_times<C16, 1>(row, t0, t1, i0, yp, z);
  }
}

}  // namespace

RowMatrixF stream_x_times(MatrixView x, const RowMatrixF& v) {
  if (v.rows() != x.cols) throw std::logic_error("X V needs V with X's columns as rows");
  const RowMatrixF vp = stream_operand(v);
  const std::int64_t cp = vp.cols();
  RowMatrixF y = RowMatrixF::Zero(x.rows, cp);
  with_vectors(cp / kLanes, [&](auto c16) { rows_times_all<decltype(c16)::value>(x.data, nullptr, x.rows, x.cols, vp.data(), y.data()); });
  if (cp == v.cols()) return y;
  return y.leftCols(v.cols());
}

RowMatrixF stream_operand(const Eigen::Ref<const RowMatrixF>& v) { return padded(v, padded_columns(v.cols())); }

void stream_rows_times(const float* x, const std::int64_t* rows, std::int64_t n, std::int64_t dim, const RowMatrixF& vp, float* y) {
  if (vp.rows() != dim || vp.cols() % kLanes != 0) throw std::logic_error("stream_rows_times needs an operand from stream_operand");
  std::fill(y, y + n * vp.cols(), 0.0f);
  with_vectors(vp.cols() / kLanes, [&](auto c16) { rows_times_all<decltype(c16)::value>(x, rows, n, dim, vp.data(), y); });
}

RowMatrixF stream_xt_times(MatrixView x, const RowMatrixF& y) {
  if (y.rows() != x.rows) throw std::logic_error("X^T Y needs Y with X's rows");
  const std::int64_t cp = padded_columns(y.cols());
  const RowMatrixF yp = cp == y.cols() ? y : padded(y, cp);
  RowMatrixF z = RowMatrixF::Zero(x.cols, cp);
  with_vectors(cp / kLanes, [&](auto c16) { rows_xt_all<decltype(c16)::value>(x.data, nullptr, x.rows, x.cols, yp.data(), z.data()); });
  if (cp == y.cols()) return z;
  return z.leftCols(y.cols());
}

void stream_rows_xt_times(const float* x, const std::int64_t* rows, std::int64_t n, std::int64_t dim, const RowMatrixF& yp, float* z) {
  if (yp.rows() != n || yp.cols() % kLanes != 0) throw std::logic_error("stream_rows_xt_times needs an operand from stream_operand");
  std::fill(z, z + dim * yp.cols(), 0.0f);
  with_vectors(yp.cols() / kLanes, [&](auto c16) { rows_xt_all<decltype(c16)::value>(x, rows, n, dim, yp.data(), z); });
}

#else
// Sixteen-float accumulators need AVX-512's 32 vector registers: with AVX2 (16 registers of 8) they
// spill, and the streaming loops measured 3-28x slower than Eigen's GEMM. Elsewhere these are Eigen's.
namespace {
// The same preconditions as the AVX-512 loops, so that a caller behaves alike on every build.
void check_stream_columns(Eigen::Index c) {
  if (c < 1 || c > kStreamColumns) throw std::logic_error("streaming products take 1 to kStreamColumns columns");
}
}  // namespace

RowMatrixF stream_x_times(MatrixView x, const RowMatrixF& v) {
  if (v.rows() != x.cols) throw std::logic_error("X V needs V with X's columns as rows");
  check_stream_columns(v.cols());
  return map(x) * v;
}

RowMatrixF stream_xt_times(MatrixView x, const RowMatrixF& y) {
  if (y.rows() != x.rows) throw std::logic_error("X^T Y needs Y with X's rows");
  check_stream_columns(y.cols());
  return map(x).transpose() * y;
}

RowMatrixF stream_operand(const Eigen::Ref<const RowMatrixF>& v) {
  check_stream_columns(v.cols());
  return v;
}

void stream_rows_times(const float* x, const std::int64_t* rows, std::int64_t n, std::int64_t dim, const RowMatrixF& vp, float* y) {
  if (vp.rows() != dim) throw std::logic_error("stream_rows_times needs an operand from stream_operand");
  for (std::int64_t i = 0; i < n; ++i)
    MapF(y + i * vp.cols(), 1, vp.cols()).noalias() = ConstMapF(x + (rows != nullptr ? rows[i] : i) * dim, 1, dim) * vp;
}

void stream_rows_xt_times(const float* x, const std::int64_t* rows, std::int64_t n, std::int64_t dim, const RowMatrixF& yp, float* z) {
  if (yp.rows() != n) throw std::logic_error("stream_rows_xt_times needs an operand from stream_operand");
  MapF zm(z, dim, yp.cols());
  zm.setZero();
  for (std::int64_t i = 0; i < n; ++i)
    zm.noalias() += ConstMapF(x + (rows != nullptr ? rows[i] : i) * dim, 1, dim).transpose() * yp.row(i);
}
#endif

// A slice of at most kStreamColumns columns at a time; each slice padded once (stream_operand).
RowMatrixF RowsProducts::x_times(const RowMatrixF& v) const {
  if (v.rows() != x_.cols) throw std::logic_error("X V needs V with X's columns as rows");
  const auto n = static_cast<std::int64_t>(rows_.size());
  RowMatrixF y(n, v.cols()), part;
  for (Eigen::Index c0 = 0; c0 < v.cols(); c0 += kStreamColumns) {
    const Eigen::Index w = std::min(kStreamColumns, v.cols() - c0);
    const RowMatrixF vp = stream_operand(v.middleCols(c0, w));
    part.resize(n, vp.cols());
    stream_rows_times(x_.data, rows_.data(), n, x_.cols, vp, part.data());
    y.middleCols(c0, w) = part.leftCols(w);
  }
  return y;
}

RowMatrixF RowsProducts::xt_times(const RowMatrixF& y) const {
  const auto n = static_cast<std::int64_t>(rows_.size());
  if (y.rows() != n) throw std::logic_error("X^T Y needs Y with X's rows");
  RowMatrixF z(x_.cols, y.cols()), part;
  for (Eigen::Index c0 = 0; c0 < y.cols(); c0 += kStreamColumns) {
    const Eigen::Index w = std::min(kStreamColumns, y.cols() - c0);
    const RowMatrixF yp = stream_operand(y.middleCols(c0, w));
    part.resize(x_.cols, yp.cols());
    stream_rows_xt_times(x_.data, rows_.data(), n, x_.cols, yp, part.data());
    z.middleCols(c0, w) = part.leftCols(w);
  }
  return z;
}

// One column is a matrix-vector product, which Eigen does without packing (3x the streaming time).
RowMatrixF CpuProducts::x_times(const RowMatrixF& v) const {
  if (v.cols() >= 2 && v.cols() <= kStreamColumns) return stream_x_times(x_, v);
  return map(x_) * v;
}

RowMatrixF CpuProducts::xt_times(const RowMatrixF& y) const {
  if (y.cols() >= 2 && y.cols() <= kStreamColumns) return stream_xt_times(x_, y);
  return map(x_).transpose() * y;
}

}  // namespace moss::kernels::cpu
