#pragma once
// Private Eigen aliases of the CPU implementation (never included by public headers or .cu files).

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "moss/kernels/codec.h"
#include "moss/kernels/matrix.h"

namespace moss::kernels::cpu {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMapF = Eigen::Map<const RowMatrixF>;
using MapF = Eigen::Map<RowMatrixF>;

inline ConstMapF map(MatrixView x) { return ConstMapF(x.data, x.rows, x.cols); }
inline ConstMapF map(const float* p, std::int64_t rows, std::int64_t cols) { return ConstMapF(p, rows, cols); }

/// Uniform in [0, 1) from the engine's top 53 bits: std's distributions differ between standard
/// libraries, and the fits must draw the same numbers everywhere.
inline double uniform_unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) / 9007199254740992.0; }

/// The two products randomised subspace iteration takes of its rows x dim matrix X: Y = X V
/// (rows x p) and W = X^T Y (dim x p): CpuProducts on the CPU, or another implementation (the
/// GPU's: gpu_codec.cpp).
class SubspaceProducts {
 public:
  virtual ~SubspaceProducts() = default;
  [[nodiscard]] virtual RowMatrixF x_times(const RowMatrixF& v) const = 0;
  [[nodiscard]] virtual RowMatrixF xt_times(const RowMatrixF& y) const = 0;
};

/// The products on the CPU in fp32, of a matrix that must outlive this object: narrow operands
/// (up to kStreamColumns columns, the fit's) by the streaming products of stream_products.h, which
/// read X once; wider ones by Eigen's GEMM.
class CpuProducts : public SubspaceProducts {
 public:
  explicit CpuProducts(MatrixView x) : x_(x) {}
  [[nodiscard]] RowMatrixF x_times(const RowMatrixF& v) const override;
  [[nodiscard]] RowMatrixF xt_times(const RowMatrixF& y) const override;

 private:
  MatrixView x_;
};

/// The products of listed rows of a matrix that must outlive this object, read in place (the rows
/// are never gathered into a copy): the streaming products of stream_products.h, operands wider
/// than kStreamColumns in slices of that many columns, each a pass over the rows (X^T Y so takes
/// about 0.6x Eigen's GEMM at 96 columns, X V about 1.2x; the copy a GEMM needs costs more).
class RowsProducts : public SubspaceProducts {
 public:
  /// Rows `rows` of x, in that order (row i of X is row rows[i] of x).
  RowsProducts(MatrixView x, std::vector<std::int64_t> rows) : x_(x), rows_(std::move(rows)) {}
  [[nodiscard]] RowMatrixF x_times(const RowMatrixF& v) const override;
  [[nodiscard]] RowMatrixF xt_times(const RowMatrixF& y) const override;

 private:
  MatrixView x_;
  std::vector<std::int64_t> rows_;
};

/// Makes the products of one matrix; a fit calls it once for each matrix it iterates on (the warm-up,
/// a block of it, the tokens of one cluster). Empty, or a null result: CpuProducts.
using ProductsFor = std::function<std::unique_ptr<SubspaceProducts>(MatrixView x)>;

/// The products of x: `products`' own, or Eigen's when it makes none.
inline std::unique_ptr<SubspaceProducts> products_of(const ProductsFor& products, MatrixView x) {
  std::unique_ptr<SubspaceProducts> p = products ? products(x) : nullptr;
  if (p == nullptr) p = std::make_unique<CpuProducts>(x);
  return p;
}

/// SubspaceProducts of a matrix X that is exact in bf16 (the fit's wire copy), through a GEMM with
/// bf16 operands and fp32 accumulation (the GPU's). Each fp32 operand A goes as two bf16 parts,
/// hi = bf16(A) and lo = bf16(A - hi), and the two partial products are added in fp32, so the
/// operand keeps ~16 significant bits (bf16 alone keeps 8). The GEMMs are callbacks on bf16 bits:
///   x_times_bits(b, cols): X (rows x dim) times b (dim x cols), fp32 rows x cols;
///   bits_times_x(a, n):    a (n x rows) times X, fp32 n x dim.
class Bf16SplitProducts : public SubspaceProducts {
 public:
  using XTimesBits = std::function<std::vector<float>(const std::vector<std::uint16_t>& b, std::int64_t cols)>;
  using BitsTimesX = std::function<std::vector<float>(const std::vector<std::uint16_t>& a, std::int64_t n)>;
  Bf16SplitProducts(std::int64_t rows, std::int64_t dim, XTimesBits x_times_bits, BitsTimesX bits_times_x)
      : rows_(rows), dim_(dim), x_times_bits_(std::move(x_times_bits)), bits_times_x_(std::move(bits_times_x)) {}
  [[nodiscard]] RowMatrixF x_times(const RowMatrixF& v) const override;
  [[nodiscard]] RowMatrixF xt_times(const RowMatrixF& y) const override;

 private:
  std::int64_t rows_, dim_;
  XTimesBits x_times_bits_;
  BitsTimesX bits_times_x_;
};

/// Top-`rank` right singular subspace of x (rows x dim) as dim x rank orthonormal columns, by
/// randomised subspace iteration (`iterations` passes, oversampling rank/2 clamped to [8, 64]). Deterministic in `seed`.
/// `start` (dim x rank), when given, replaces the first `rank` random columns (a warm start).
/// `products`, when given, computes the products with x (it must be made for x); else CpuProducts.
RowMatrixF top_subspace(MatrixView x, int rank, int iterations, std::uint64_t seed,
                        const RowMatrixF* start = nullptr, const SubspaceProducts* products = nullptr);
/// top_subspace of the `rows` x `dim` matrix X whose products are `products`. `x_start` (rows x
/// start's columns), when given with `start`, is X start, known to the caller: the first pass then
/// multiplies X by the random columns only (the same result up to rounding).
RowMatrixF top_subspace(const SubspaceProducts& products, std::int64_t rows, std::int64_t dim, int rank, int iterations,
                        std::uint64_t seed, const RowMatrixF* start, const RowMatrixF* x_start);
/// Subspace iteration passes of a fit from a random start (subspace.cpp: with oversampling of r/2 the
/// captured energy is within about 0.1 % of the exact top-r subspace's on slowly decaying spectra).
inline constexpr int kPowerIterations = 4;

/// fit_codec (codec.h) with the fit's products over warm-up tokens made by `products` (pca and mos:
/// the subspace iteration for Ubar; mos-k: its seeds, refits and routing). mos's generator
/// directions (per-block products with the r-wide Ubar) stay on the CPU.
CodecState fit_codec_with(const CodecConfig& config, MatrixView warmup, std::uint64_t seed, const ProductsFor& products);

/// Thin Q factor of a (rows x cols, rows >= cols).
RowMatrixF orthonormal_columns(const RowMatrixF& a);

/// U(theta) with Eigen: the same formula as rotation.h's rotated_basis (dim x rank).
RowMatrixF rotated_basis_eigen(const float* ubar, const float* directions, const float* theta,
                               int rotations, std::int64_t dim, int rank);

/// Theta of one block from the projections p = X_sample [Ubar W_1..W_m] (n x (m+1) rank). When
/// `m_at_theta` is given it receives M(theta) = sum_ij theta_i theta_j W_i^T W_j at the result (for
/// rotated_basis_general, which then need not read the direction Gram blocks again).
std::vector<float> fit_block_theta(const float* p, std::int64_t n, std::span<const float> dir_gram,
                                   int rotations, int rank, RowMatrixD* m_at_theta = nullptr);

/// M(theta) = sum_ij theta_i theta_j D_ij (rank x rank) from the rotations x rotations blocks D_ij of
/// `dg` (CodecState::direction_gram), reading the blocks i <= j only (D_ji = D_ij^T).
RowMatrixD direction_gram_sum(const ConstMapF& dg, const float* theta, int rotations, int rank);

/// Calls f(i, j, p, row) for every block D_ij, i <= j, of `dg` (rotations x rotations blocks of
/// rank x rank, fp32) whose block row i passes need(i), with `row` row p of D_ij in double. It walks
/// each block row's upper part row by row, (m - i) rank contiguous floats at a time: block by block,
/// every 1 KB row (rank 256) lies on its own page and the hardware prefetcher (which stops at page
/// boundaries) could not stream it (measured ~4 GB/s at m = 8, rank 256).
template <typename Need, typename F>
void for_upper_rows(const ConstMapF& dg, int rotations, int rank, Need&& need, F&& f) {
  Eigen::RowVectorXd row(static_cast<Eigen::Index>(rotations) * rank);
  for (int i = 0; i < rotations; ++i) {
    if (!need(i)) continue;
    const Eigen::Index len = static_cast<Eigen::Index>(rotations - i) * rank;
    for (int p = 0; p < rank; ++p) {
      row.head(len) = dg.row(static_cast<Eigen::Index>(i) * rank + p).segment(static_cast<Eigen::Index>(i) * rank, len).cast<double>();
      for (int j = i; j < rotations; ++j) f(i, j, p, row.segment(static_cast<Eigen::Index>(j - i) * rank, rank));
    }
  }
}

/// none, topk, quant on the CPU (elementwise_codec.cpp): the bytes of reference::encode, one pass,
/// into the payload fields of `e` (encode() sets the others).
void encode_elementwise(const CodecState& s, MatrixView x, Encoded& e);
/// Decodes none, topk, quant (elementwise_codec.cpp).
void decode_elementwise(const CodecState& s, const Encoded& e, float* out);

/// T_ij = tr(W_i^T W_j) = tr(D_ij) (m x m) of the m x m blocks D_ij (r x r) of a direction Gram
/// matrix whose element (row, col) is at(row, col): theta^T T theta = ||sum_i theta_i W_i||_F^2.
template <typename At>
Eigen::MatrixXd direction_traces(int m, int r, At&& at) {
  Eigen::MatrixXd t = Eigen::MatrixXd::Zero(m, m);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < m; ++j)
      for (int p = 0; p < r; ++p) t(i, j) += at(static_cast<std::int64_t>(i) * r + p, static_cast<std::int64_t>(j) * r + p);
  return t;
}
/// direction_traces of CodecState::direction_gram (m r x m r, row-major).
Eigen::MatrixXd direction_traces(std::span<const float> dir_gram, int m, int r);
/// Whether theta lies in the encoder's trust region (rotation.h kMaxTheta): with two generators or
/// more, ||sum_i theta_i W_i||_F = sqrt(theta^T T theta) <= kMaxTheta, `traces` = T. Each |theta_i|
/// <= kMaxTheta alone would let m generators reach sqrt(m) kMaxTheta together, where U^T U = I + M^2/4
/// is too far from I for the two Newton-Schulz steps (worst-token errors above 100 were measured).
bool admissible_theta(const std::vector<float>& theta, const Eigen::MatrixXd& traces);

/// The line search of fit_theta (rotation.h) on any objective f of the m-vector theta; trials outside
/// the trust region (admissible_theta with `traces`) count as no improvement.
std::vector<float> maximise_theta(const std::function<double(const std::vector<float>&)>& f, const Eigen::MatrixXd& traces, int m);
/// The same line search with the exact gradient `grad` (writes m values) instead of central differences.
std::vector<float> maximise_theta(const std::function<double(const std::vector<float>&)>& f,
                                  const std::function<void(const std::vector<float>&, std::vector<double>&)>& grad,
                                  const Eigen::MatrixXd& traces, int m);
/// Maximises f from theta = 0 by Newton steps with the fixed Hessian `hessian0` (m x m, at theta = 0)
/// and the exact gradient, each halved (down to 1/64) until f improves; at most 16 steps, stops when a
/// full step is below 1e-4 in every entry, or after an accepted full step below 1e-2 (theta is then
/// within O(1e-4) of the fixed point: the objective is quadratic up to O(theta^3));
/// |theta_i| <= kMaxTheta and admissible_theta(theta, traces); theta = 0 kept unless f improves.
/// Falls back to the gradient line search when -hessian0 is not positive definite.
std::vector<float> maximise_theta_newton(const std::function<double(const std::vector<float>&)>& f,
                                         const std::function<void(const std::vector<float>&, std::vector<double>&)>& grad,
                                         const Eigen::MatrixXd& hessian0, const Eigen::MatrixXd& traces, int m);

/// U(theta) (dim x rank) of `s` (mos, any number of generators) without dim x rank x rank Gram
/// products: the Gram matrix of U2 = Ubar (I - M/2) + sum_i theta_i W_i comes from the stored r x r
/// blocks (CodecState::direction_gram, basis_gram), so the two Newton-Schulz steps of
/// rotated_basis_eigen become r x r factors: O(m dim rank + 2 dim rank^2 + rank^3). The same U as
/// rotated_basis_eigen up to summation order. Requires has_rotation_grams(s). `m_theta`, when given,
/// is M(theta) (direction_gram_sum) and saves reading the direction Gram blocks.
void rotated_basis_general(const CodecState& s, const float* theta, RowMatrixF& u, const RowMatrixD* m_theta = nullptr);
/// The r x r factors behind rotated_basis_general: U = Ubar (K C) + W_theta C, with K = I - M/2 and C
/// the two Newton-Schulz steps as a polynomial; `bound` bounds ||W_theta (C - I)||_F. The GPU codec
/// forms U on the device from them as one product [Ubar W_1 .. W_m] [K C; theta_1 C; ..; theta_m C].
struct RotationFactors {
  RowMatrixF k, c;
  double bound = 0;
};
RotationFactors rotation_factors(const CodecState& s, const float* theta, const RowMatrixD* m_theta = nullptr);
/// Largest bound on ||W_theta (C - I)||_F for which rotated_basis_general drops that term: 1/32 of
/// the expected Frobenius norm of the bf16 rounding of U itself (2^-9 sqrt(rank / 3): unit columns,
/// relative rounding error uniform within half an ulp), so 2^-14 sqrt(rank / 3); 0 (never) with fp32
/// values.
inline double skip_tolerance(int value_bytes, int rank) {
  return value_bytes == 2 ? std::ldexp(std::sqrt(rank / 3.0), -14) : 0.0;
}
/// True when `s` has at least one generator and holds the r x r Gram blocks rotated_basis_general
/// needs (states from fit_codec).
bool has_rotation_grams(const CodecState& s);

// The diagonal MoS path (mos_rotation.cpp). fit_codec rotates Ubar and the W_i within their span so
// that D = W_1^T W_1 is diagonal (eigenvalues lambda_p, descending). With one rotation every r x r
// matrix of rotation.h is then diagonal: M = theta^2 diag(lambda), U^T U = diag(1 + theta^4 lambda^2/4),
// so the Newton-Schulz steps are per-column scales and the theta objective needs only the column
// statistics of P = X [Ubar W]: a block costs O(n r) to fit and O(d r) to rotate instead of O(n r^2 +
// r^3 per objective evaluation) and O(d r^2).

/// Relative size ||offdiag(D)||_F / ||D||_F below which the diagonal path is used. Neglecting it moves
/// U(theta) by at most theta^2/2 ||offdiag(D)||_2 <= 0.29 tol ||D||_F <= 0.29 tol (tr D = ||W||_F^2 = 1)
/// in Frobenius norm: with bf16 values (tol 2^-8: about 1.1e-3) that is below the bf16 rounding of U
/// itself (2^-9 per entry, about 1.1e-3 sqrt(r/3)); bf16 rounding of the fitted W leaves about 2^-12.
/// With fp32 values the fitted D is diagonal to float precision and tol is 1e-6.
inline double diagonal_tolerance(int value_bytes) { return value_bytes == 2 ? 1.0 / 256 : 1e-6; }

/// True when `s` is mos with one rotation and ||offdiag(D)||_F <= diagonal_tolerance ||D||_F.
bool diagonal_rotation(const CodecState& s);

/// lambda = diag(W_1^T W_1) of a state on the diagonal path.
Eigen::ArrayXd direction_eigenvalues(const CodecState& s);

/// Column statistics of P0 = S Ubar and P1 = S W (double): sum_t P0^2, sum_t P0 P1, sum_t P1^2.
struct ColumnStats {
  Eigen::ArrayXd g00, g01, g11;
  explicit ColumnStats(int rank) : g00(Eigen::ArrayXd::Zero(rank)), g01(Eigen::ArrayXd::Zero(rank)), g11(Eigen::ArrayXd::Zero(rank)) {}
  /// Adds the rows of p0, p1 (n x rank each).
  void add(const Eigen::Ref<const RowMatrixF>& p0, const Eigen::Ref<const RowMatrixF>& p1);
};

/// Theta of one block on the diagonal path (the same objective and line search as fit_theta).
float fit_theta_diagonal(const ColumnStats& stats, const Eigen::ArrayXd& lambda);

/// The column scales of U(theta) = Ubar diag(a) + W diag(b) on the diagonal path (fp32, as applied).
struct DiagonalFactors {
  Eigen::ArrayXf a, b;
};
DiagonalFactors diagonal_factors(const Eigen::ArrayXd& lambda, float theta);

/// U(theta) on the diagonal path into `u` (dim x rank): Ubar diag(a) + W diag(b), O(dim rank).
void rotated_basis_diagonal(const float* ubar, const float* w, const Eigen::ArrayXd& lambda, float theta,
                            std::int64_t dim, int rank, RowMatrixF& u);

/// Rotates `ubar` and the `rotations` directions (dim x rank each) within their column span so that
/// W_1^T W_1 becomes diagonal with descending eigenvalues (the subspaces are unchanged).
void diagonalise_first_direction(RowMatrixF& ubar, std::vector<float>& directions, int rotations);

}  // namespace moss::kernels::cpu
