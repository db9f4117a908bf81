#include "wire_product.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "bf16_dot.h"
#include "moss/kernels/bf16.h"
#include "stream_products.h"

namespace moss::kernels::cpu {

bool stream_products_enabled() { return kStreamVectorised && simd_switch_on(); }

namespace {

/// Rows per panel: the wire rounding happens panel by panel into a cache-resident buffer instead of
/// a full copy of X, so a projection costs one product plus a streaming pass. Tall panels (see
/// PanelNeeds) leave the second-level cache but pack B a quarter as often.
constexpr std::int64_t kPanelRows = 128, kTallPanelRows = 512;

WireProductKind kind_for(std::int64_t columns, int value_bytes) {
  if (value_bytes == 2 && bf16_dots_for(columns, false)) return WireProductKind::dots;
  // One column is a matrix-vector product, which Eigen does without packing. MOSS_KERNELS_SIMD=0
  // leaves Eigen's fp32 GEMM alone, as it does for the dots (bf16_dot_enabled reads the same switch).
  if (stream_products_enabled() && columns >= 2 && columns <= kStreamColumns) return WireProductKind::stream;
  return WireProductKind::eigen;
}

}  // namespace

WireProduct::WireProduct(const float* b, std::int64_t dim, std::int64_t columns, int value_bytes)
    : WireProduct(std::vector<const float*>{b}, dim, columns, value_bytes) {}

WireProduct::BlockMap WireProduct::block(std::size_t j) const {
  return BlockMap(blocks_[j], dim_, block_columns_, Eigen::OuterStride<>(block_stride_));
}

WireProduct::WireProduct(std::vector<const float*> blocks, std::int64_t dim, std::int64_t block_columns, int value_bytes,
                         std::int64_t block_stride)
    : WireProduct(blocks, dim, block_columns, value_bytes, block_stride,
                  kind_for(static_cast<std::int64_t>(blocks.size()) * block_columns, value_bytes)) {}

WireProduct::WireProduct(std::vector<const float*> blocks, std::int64_t dim, std::int64_t block_columns, int value_bytes,
                         std::int64_t block_stride, WireProductKind kind)
    : kind_(kind), dim_(dim), block_columns_(block_columns), block_stride_(block_stride > 0 ? block_stride : block_columns),
      columns_(static_cast<std::int64_t>(blocks.size()) * block_columns), blocks_(std::move(blocks)) {
  if (kind == WireProductKind::dots && (value_bytes != 2 || !bf16_dot_supported()))
    throw std::logic_error("WireProduct: dot products need a bf16 wire and AVX512-BF16");
  if (kind == WireProductKind::stream && (columns_ < 1 || columns_ > kStreamColumns))
    throw std::logic_error("WireProduct: streaming products take 1 to kStreamColumns columns");
  if (kind == WireProductKind::eigen) return;
  RowMatrixF b(dim, columns_);  // narrow (at most kStreamColumns columns unless the policy takes every product as dots)
  for (std::size_t j = 0; j < blocks_.size(); ++j)
    b.middleCols(static_cast<Eigen::Index>(j) * block_columns, block_columns) = block(j);
  if (kind == WireProductKind::stream) {
    padded_ = stream_operand(b);
    return;
  }
  const RowMatrixF bt = b.transpose();
  bt_.resize(static_cast<std::size_t>(dim * columns_));
  to_bf16_bits(bt.data(), dim * columns_, bt_.data());
}

void WireProduct::apply(const WirePanel& p, const std::int64_t* rows, std::int64_t n, float* z, const std::int64_t* z_rows,
                        std::int64_t ldz) const {
  if (p.dim != dim_) throw std::logic_error("WireProduct: panel width differs from B's rows");
  switch (kind_) {
    case WireProductKind::dots:
      if (p.bits == nullptr) throw std::logic_error("WireProduct: a dot product needs the panel's bits");
      bf16_gemm_nt(p.bits, rows, n, dim_, bt_.data(), columns_, z, z_rows, ldz);
      return;
    case WireProductKind::stream:
      if (z_rows == nullptr && ldz == columns_ && columns_ == padded_.cols()) {  // straight into z: no padding to write
        stream_rows_times(p.values, rows, n, dim_, padded_, z);
        return;
      }
      out_.resize(n, padded_.cols());
      stream_rows_times(p.values, rows, n, dim_, padded_, out_.data());
      for (std::int64_t i = 0; i < n; ++i) std::copy_n(out_.row(i).data(), columns_, z + (z_rows != nullptr ? z_rows[i] : i) * ldz);
      return;
    case WireProductKind::eigen: apply_eigen(p, rows, n, z, z_rows, ldz); return;
  }
}

void WireProduct::apply_eigen(const WirePanel& p, const std::int64_t* rows, std::int64_t n, float* z, const std::int64_t* z_rows,
                              std::int64_t ldz) const {
  const float* src = p.values;
  if (rows != nullptr) {  // Eigen packs its operands anyway: gather the listed rows once
    scratch_.resize(n, dim_);
    for (std::int64_t i = 0; i < n; ++i) scratch_.row(i) = map(p.values + rows[i] * dim_, 1, dim_);
    src = scratch_.data();
  }
  const bool direct = z_rows == nullptr;
  if (!direct) out_.resize(n, columns_);
  float* dst = direct ? z : out_.data();
  const std::int64_t ld = direct ? ldz : columns_;
  using StridedMap = Eigen::Map<RowMatrixF, 0, Eigen::OuterStride<>>;
  for (std::size_t j = 0; j < blocks_.size(); ++j)
    StridedMap(dst + static_cast<std::int64_t>(j) * block_columns_, n, block_columns_, Eigen::OuterStride<>(ld)).noalias() =
        map(src, n, dim_) * block(j);
  if (!direct)
    for (std::int64_t i = 0; i < n; ++i) std::copy_n(out_.row(i).data(), columns_, z + z_rows[i] * ldz);
}

namespace {

/// A thread's panel buffers, kept from one encode to the next: a fresh 8 MB panel per call (512 rows
/// at d = 4096) is first-touched page by page, which measured as a third of mos's extra time over
/// pca at d = 4096, r = 256. Calls nested in a panel's callback get buffers of their own.
struct PanelBuffers {
  std::vector<float> values;
  std::vector<std::uint16_t> bits;
  bool busy = false;
};
thread_local PanelBuffers thread_buffers;

class BorrowedBuffers {
 public:
  BorrowedBuffers() : b_(thread_buffers.busy ? own_ : thread_buffers) { b_.busy = true; }
  ~BorrowedBuffers() { b_.busy = false; }
  BorrowedBuffers(const BorrowedBuffers&) = delete;
  BorrowedBuffers& operator=(const BorrowedBuffers&) = delete;
  PanelBuffers& get() { return b_; }

 private:
  PanelBuffers own_;
  PanelBuffers& b_;
};

template <typename T>
T* at_least(std::vector<T>& v, std::int64_t n) {
  if (static_cast<std::int64_t>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
  return v.data();
}

}  // namespace

void for_wire_panels(MatrixView x, std::int64_t stride, int value_bytes, PanelNeeds needs,
                     const std::function<void(std::int64_t, const WirePanel&)>& f) {
  const std::int64_t rows = (x.rows + stride - 1) / stride;
  const std::int64_t panel_rows = needs.tall ? kTallPanelRows : kPanelRows;
  const std::int64_t panel_values = std::min(panel_rows, rows) * x.cols;
  const bool in_place = value_bytes != 2 && stride == 1;  // the fp32 wire carries X as it is
  BorrowedBuffers borrowed;
  float* values = needs.values && !in_place ? at_least(borrowed.get().values, panel_values) : nullptr;
  std::uint16_t* bits = needs.bits ? at_least(borrowed.get().bits, panel_values) : nullptr;
  for (std::int64_t i0 = 0; i0 < rows; i0 += panel_rows) {
    const std::int64_t n = std::min(panel_rows, rows - i0);
    WirePanel p{nullptr, nullptr, n, x.cols};
    if (needs.values) {
      if (in_place) {
        p.values = x.row(i0);
      } else {
        for (std::int64_t i = 0; i < n; ++i) std::copy_n(x.row((i0 + i) * stride), x.cols, values + i * x.cols);
        if (value_bytes == 2) round_bf16_finite(values, n * x.cols);
        p.values = values;
      }
    }
    if (needs.bits) {
      if (needs.values) {  // the rounded values' bits: exact
        to_bf16_bits(p.values, n * x.cols, bits);
      } else {
        for (std::int64_t i = 0; i < n; ++i) to_bf16_bits(x.row((i0 + i) * stride), x.cols, bits + i * x.cols);
      }
      p.bits = bits;
    }
    f(i0, p);
  }
}

}  // namespace moss::kernels::cpu
