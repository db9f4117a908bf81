#pragma once
// The encoder's products: tokens as the wire carries them (bf16-rounded when value_bytes == 2), one
// cache-resident panel of rows at a time, times a fixed right-hand side B (dim x columns). Each B
// runs the way that is fastest for its width on this CPU (measured: kernels/README.md, "Which
// product the encoder runs"):
//   dots    bf16 dot products (bf16_dot.h) on the panel's wire bits, where bf16_dots_for says so;
//   stream  the streaming fp32 products (stream_products.h) on the rounded panel, up to
//           kStreamColumns columns where they are built with AVX-512: they read the panel's rows in
//           place (a gathered subset costs no copy) against B in cache;
//   eigen   Eigen's GEMM on the rounded panel (a gathered subset copied first).
// The three compute the same products of the same (bf16-exact) values; only the order of the fp32
// sums differs.

#include <cstdint>
#include <functional>
#include <vector>

#include "eigen_types.h"

namespace moss::kernels::cpu {

/// Rows of X as the wire carries them: the fp32 values and, when a product asked for them, their
/// bf16 bits (both rows x dim, row-major).
struct WirePanel {
  const float* values = nullptr;
  const std::uint16_t* bits = nullptr;
  std::int64_t rows = 0;
  std::int64_t dim = 0;
};

enum class WireProductKind { dots, stream, eigen };

/// Whether the encoder chooses the streaming products: built with AVX-512 (kStreamVectorised) and
/// MOSS_KERNELS_SIMD is not "0" (read on every call, as bf16_dot_enabled()).
bool stream_products_enabled();

class WireProduct {
 public:
  /// B = b (dim x columns, row-major; bf16 values when value_bytes == 2, as the codecs' bases are)
  /// for a wire of value_bytes per value. Eigen's product reads b in place: it must outlive this.
  WireProduct(const float* b, std::int64_t dim, std::int64_t columns, int value_bytes);
  /// B = [B_0 B_1 ...] from column blocks, each dim x block_columns row-major at blocks[j] with rows
  /// block_stride floats apart (0: block_columns; a block may be the leading columns of a wider
  /// matrix). Eigen's product reads them in place, one product per block: no combined copy of a wide B.
  WireProduct(std::vector<const float*> blocks, std::int64_t dim, std::int64_t block_columns, int value_bytes, std::int64_t block_stride = 0);
  /// The same with the product chosen by the caller (tests): dots need value_bytes == 2 and
  /// bf16_dot_supported(), stream at most kStreamColumns columns; else std::logic_error.
  WireProduct(std::vector<const float*> blocks, std::int64_t dim, std::int64_t block_columns, int value_bytes, std::int64_t block_stride,
              WireProductKind kind);

  [[nodiscard]] WireProductKind kind() const { return kind_; }
  [[nodiscard]] std::int64_t columns() const { return columns_; }

  /// Row (z_rows ? z_rows[i] : i) of z (row stride ldz), first columns() entries, = row
  /// (rows ? rows[i] : i) of the panel times B, for i < n. The panel carries what needs() says.
  void apply(const WirePanel& p, const std::int64_t* rows, std::int64_t n, float* z, const std::int64_t* z_rows, std::int64_t ldz) const;

 private:
  using BlockMap = Eigen::Map<const RowMatrixF, 0, Eigen::OuterStride<>>;
  [[nodiscard]] BlockMap block(std::size_t j) const;
  void apply_eigen(const WirePanel& p, const std::int64_t* rows, std::int64_t n, float* z, const std::int64_t* z_rows, std::int64_t ldz) const;

  WireProductKind kind_;
  std::int64_t dim_, block_columns_, block_stride_, columns_;
  std::vector<const float*> blocks_;  // eigen: B's blocks, read in place
  std::vector<std::uint16_t> bt_;     // dots: B^T as bf16 bits
  RowMatrixF padded_;                 // stream: B padded (stream_operand)
  mutable RowMatrixF scratch_, out_;
};

/// What panels must carry for a set of products: values unless every product runs as dots, bits
/// when one does; and how tall they are: Eigen packs B again for every panel, so a wide product
/// takes 512-row panels (at 256 columns, d = 2048: 1.26x Eigen's own GEMM on 128-row panels, 1.18x
/// on 512-row ones; kernels/README.md, "Which product the encoder runs").
struct PanelNeeds {
  bool values = false;
  bool bits = false;
  bool tall = false;
  void add(const WireProduct& p) {
    (p.kind() == WireProductKind::dots ? bits : values) = true;
    tall = tall || (p.kind() == WireProductKind::eigen && p.columns() >= kTallPanelColumns);
  }
  /// The narrowest Eigen product that takes tall panels.
  static constexpr std::int64_t kTallPanelColumns = 128;
};

/// Calls f(first, panel) for consecutive panels of the rows x[0], x[stride], x[2 stride], ... as the
/// wire carries them; `first` counts taken rows. On an fp32 wire with stride 1 the values are X's
/// own rows (no copy).
void for_wire_panels(MatrixView x, std::int64_t stride, int value_bytes, PanelNeeds needs,
                     const std::function<void(std::int64_t, const WirePanel&)>& f);

}  // namespace moss::kernels::cpu
