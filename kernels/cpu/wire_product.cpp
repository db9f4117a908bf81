#include "wire_product.h"

#include <algorithm>
#include <stdexcept>

#include "bf16_dot.h"
#include "moss/kernels/bf16.h"
#include "stream_products.h"

namespace moss::kernels::cpu {

namespace {

/// Rows per panel: the wire rounding happens panel by panel into a cache-resident buffer instead of
/// a full copy of X, so a projection costs one product plus a streaming pass. Tall panels (see
/// PanelNeeds) leave the second-level cache but pack B a quarter as often.
constexpr std::int64_t kPanelRows = 128, kTallPanelRows = 512;

WireProductKind kind_for(std::int64_t columns, int value_bytes) {
  if (value_bytes == 2 && bf16_dots_for(columns, false)) return WireProductKind::dots;
  // One column is a matrix-vector product, which Eigen does without packing.
  if (kStreamVectorised && columns >= 2 && columns <= kStreamColumns) return WireProductKind::stream;
  return WireProductKind::eigen;
}

}  // namespace

WireProduct::WireProduct(const float* b, std::int64_t dim, std::int64_t columns, int value_bytes)
    : WireProduct(b, dim, columns, value_bytes, kind_for(columns, value_bytes)) {}

WireProduct::WireProduct(const float* b, std::int64_t dim, std::int64_t columns, int value_bytes, WireProductKind kind)
    : kind_(kind), dim_(dim), columns_(columns) {
  if (kind == WireProductKind::dots && (value_bytes != 2 || !bf16_dot_supported()))
    throw std::logic_error("WireProduct: dot products need a bf16 wire and AVX512-BF16");
  if (kind == WireProductKind::stream && (columns < 1 || columns > kStreamColumns))
    throw std::logic_error("WireProduct: streaming products take 1 to kStreamColumns columns");
  const ConstMapF bm(b, dim, columns);
  switch (kind_) {
    case WireProductKind::dots: {
      const RowMatrixF bt = bm.transpose();
      bt_.resize(static_cast<std::size_t>(dim * columns));
      to_bf16_bits(bt.data(), dim * columns, bt_.data());
      break;
    }
    case WireProductKind::stream: b_ = stream_operand(bm); break;
    case WireProductKind::eigen: b_ = bm; break;
  }
}

void WireProduct::apply(const WirePanel& p, const std::int64_t* rows, std::int64_t n, float* z, const std::int64_t* z_rows,
                        std::int64_t ldz) const {
  if (p.dim != dim_) throw std::logic_error("WireProduct: panel width differs from B's rows");
  auto z_row = [&](std::int64_t i) { return z + (z_rows != nullptr ? z_rows[i] : i) * ldz; };
  switch (kind_) {
    case WireProductKind::dots:
      if (p.bits == nullptr) throw std::logic_error("WireProduct: a dot product needs the panel's bits");
      bf16_gemm_nt(p.bits, rows, n, dim_, bt_.data(), columns_, z, z_rows, ldz);
      return;
    case WireProductKind::stream:
      if (z_rows == nullptr && ldz == b_.cols()) {  // straight into z
        stream_rows_times(p.values, rows, n, dim_, b_, z);
        return;
      }
      out_.resize(n, b_.cols());
      stream_rows_times(p.values, rows, n, dim_, b_, out_.data());
      break;
    case WireProductKind::eigen:
      if (rows == nullptr && z_rows == nullptr && ldz == columns_) {
        MapF(z, n, columns_).noalias() = map(p.values, n, dim_) * b_;
        return;
      }
      if (rows == nullptr) {
        out_.noalias() = map(p.values, n, dim_) * b_;
      } else {
        scratch_.resize(n, dim_);
        for (std::int64_t i = 0; i < n; ++i) scratch_.row(i) = map(p.values + rows[i] * dim_, 1, dim_);
        out_.noalias() = scratch_ * b_;
      }
      break;
  }
  for (std::int64_t i = 0; i < n; ++i) std::copy_n(out_.row(i).data(), columns_, z_row(i));
}

void for_wire_panels(MatrixView x, std::int64_t stride, int value_bytes, PanelNeeds needs,
                     const std::function<void(std::int64_t, const WirePanel&)>& f) {
  const std::int64_t rows = (x.rows + stride - 1) / stride;
  const std::int64_t panel_rows = needs.tall ? kTallPanelRows : kPanelRows;
  const bool in_place = value_bytes != 2 && stride == 1;  // the fp32 wire carries X as it is
  RowMatrixF values(needs.values && !in_place ? std::min(panel_rows, rows) : 0, x.cols);
  std::vector<std::uint16_t> bits(needs.bits ? static_cast<std::size_t>(std::min(panel_rows, rows) * x.cols) : 0);
  for (std::int64_t i0 = 0; i0 < rows; i0 += panel_rows) {
    const std::int64_t n = std::min(panel_rows, rows - i0);
    WirePanel p{nullptr, nullptr, n, x.cols};
    if (needs.values) {
      if (in_place) {
        p.values = x.row(i0);
      } else {
        for (std::int64_t i = 0; i < n; ++i) std::copy_n(x.row((i0 + i) * stride), x.cols, values.row(i).data());
        if (value_bytes == 2) round_bf16_finite(values.data(), n * x.cols);
        p.values = values.data();
      }
    }
    if (needs.bits) {
      if (needs.values) {  // the rounded values' bits: exact
        to_bf16_bits(p.values, n * x.cols, bits.data());
      } else {
        for (std::int64_t i = 0; i < n; ++i) to_bf16_bits(x.row((i0 + i) * stride), x.cols, bits.data() + i * x.cols);
      }
      p.bits = bits.data();
    }
    f(i0, p);
  }
}

}  // namespace moss::kernels::cpu
