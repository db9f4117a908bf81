// Encode/decode with Eigen (codec.h). The subspace methods are GEMMs; none/topk/quant have no linear
// algebra: their single-pass loops are in elementwise_codec.cpp.
#include <algorithm>
#include <span>
#include <stdexcept>
#include <vector>

#include "bf16_dot.h"
#include "eigen_types.h"
#include "moss/kernels/bf16.h"
#include "moss/kernels/codec.h"
#include "moss/kernels/reference.h"

namespace moss::kernels {

namespace {
using cpu::ConstMapF;
using cpu::MapF;
using cpu::RowMatrixF;

void round_in_place(float* p, std::int64_t n, int value_bytes) {
  if (value_bytes == 2) round_bf16_finite(p, n);
}

/// Rows per panel: the bf16 rounding of the input happens panel by panel into a cache-resident
/// buffer instead of a full copy of X, so encode costs one GEMM plus a streaming pass.
constexpr std::int64_t kPanelRows = 128;

/// Calls f(first, panel) for consecutive panels of the rows x[0], x[stride], x[2 stride], ... as the
/// wire carries them (bf16-rounded when value_bytes == 2); `first` counts taken rows. One buffer.
template <typename F>
void for_wire_panels(MatrixView x, std::int64_t stride, int value_bytes, F&& f) {
  const std::int64_t rows = (x.rows + stride - 1) / stride;
  RowMatrixF panel(std::min(kPanelRows, rows), x.cols);
  for (std::int64_t i0 = 0; i0 < rows; i0 += kPanelRows) {
    const std::int64_t n = std::min(kPanelRows, rows - i0);
    for (std::int64_t i = 0; i < n; ++i)
      std::copy(x.row((i0 + i) * stride), x.row((i0 + i) * stride) + x.cols, panel.row(i).data());
    if (value_bytes == 2) round_bf16_finite(panel.data(), n * x.cols);
    f(i0, panel.topRows(n));
  }
}

/// Whether a GEMM of the codecs runs as bf16 dot products (cpu/bf16_dot.h): the wire carries bf16 and
/// the CPU's policy takes dots for an encoder product of `columns` output columns or a decoder one.
/// The tokens' wire bits and the (bf16-rounded) bases' bits then go in directly.
bool bf16_wire_dots(int value_bytes, std::int64_t columns, bool decode = false) {
  return value_bytes == 2 && cpu::bf16_dots_for(columns, decode);
}

/// Calls f(first, bits, n) for consecutive panels of x's rows as bf16 wire bits (n rows x x.cols).
template <typename F>
void for_bf16_panels(MatrixView x, F&& f) {
  std::vector<std::uint16_t> panel(static_cast<std::size_t>(std::min(kPanelRows, x.rows) * x.cols));
  for (std::int64_t i0 = 0; i0 < x.rows; i0 += kPanelRows) {
    const std::int64_t n = std::min(kPanelRows, x.rows - i0);
    cpu::to_bf16_bits(x.row(i0), n * x.cols, panel.data());
    f(i0, static_cast<const std::uint16_t*>(panel.data()), n);
  }
}

/// The bf16 bits of b^T (b.cols() x b.rows(), row-major): the right-hand side of bf16_gemm_nt.
template <typename B>
std::vector<std::uint16_t> bf16_transposed(const B& b) {
  std::vector<std::uint16_t> bt(static_cast<std::size_t>(b.rows() * b.cols()));
  for (Eigen::Index i = 0; i < b.rows(); ++i)
    for (Eigen::Index j = 0; j < b.cols(); ++j) bt[static_cast<std::size_t>(j * b.rows() + i)] = float_to_bf16_bits(b(i, j));
  return bt;
}

/// Every mos-k basis transposed, one after the other: basis j at j * r * d.
std::vector<std::uint16_t> bf16_transposed_bases(const CodecState& s) {
  const std::int64_t d = s.dim, r = s.config.rank;
  std::vector<std::uint16_t> all;
  all.reserve(static_cast<std::size_t>(s.config.subspaces * r * d));
  for (std::int64_t j = 0; j < s.config.subspaces; ++j) {
    const std::vector<std::uint16_t> bt = bf16_transposed(cpu::map(s.basis.data() + j * d * r, d, r));
    all.insert(all.end(), bt.begin(), bt.end());
  }
  return all;
}

/// z (rows of x) = wire(x) * b, computed panel by panel.
template <typename B>
void project_wire(MatrixView x, const B& b, float* z, int value_bytes) {
  const std::int64_t cols = b.cols();
  if (bf16_wire_dots(value_bytes, cols)) {
    const std::vector<std::uint16_t> bt = bf16_transposed(b);
    for_bf16_panels(x, [&](std::int64_t i0, const std::uint16_t* panel, std::int64_t n) {
      cpu::bf16_gemm_nt(panel, nullptr, n, x.cols, bt.data(), cols, z + i0 * cols, nullptr, cols);
    });
    return;
  }
  if (value_bytes != 2) {
    MapF(z, x.rows, b.cols()).noalias() = cpu::map(x) * b;
    return;
  }
  for_wire_panels(x, 1, value_bytes, [&](std::int64_t i0, const auto& panel) {
    MapF(z + i0 * cols, panel.rows(), cols).noalias() = panel * b;
  });
}

std::int64_t block_len(int block_tokens, std::int64_t tokens) {
  return block_tokens <= 0 ? std::max<std::int64_t>(tokens, 1) : block_tokens;
}

/// U(theta) of one block as both ends use it (wire-rounded): the diagonal path when the state allows
/// it (lambda = diag(W^T W)), else the general second-order formula with Newton-Schulz.
/// `m_theta` (optional): M(theta) from the theta fit.
void mos_basis(const CodecState& s, const float* theta, bool diagonal, const Eigen::ArrayXd& lambda, RowMatrixF& u,
               const cpu::RowMatrixD* m_theta = nullptr) {
  if (diagonal)
    cpu::rotated_basis_diagonal(s.basis.data(), s.directions.data(), lambda, theta[0], s.dim, s.config.rank, u);
  else if (cpu::has_rotation_grams(s))  // fitted: the r x r Gram blocks are known
    cpu::rotated_basis_general(s, theta, u, m_theta);
  else
    u = cpu::rotated_basis_eigen(s.basis.data(), s.directions.data(), theta, s.config.rotations, s.dim, s.config.rank);
  round_in_place(u.data(), u.size(), s.config.value_bytes);
}

/// Theta of one block from its evenly strided sample, P = S [Ubar W_1..W_m] projected panel by panel;
/// M(theta) into `m_theta` on the general path.
std::vector<float> mos_block_theta(const CodecState& s, MatrixView block, bool diagonal, const Eigen::ArrayXd& lambda,
                                   cpu::RowMatrixD& m_theta) {
  const std::int64_t d = s.dim, r = s.config.rank, m = s.config.rotations;
  const std::int64_t stride = theta_sample_stride(block.rows, static_cast<int>(m), static_cast<int>(r));
  const ConstMapF ubar = cpu::map(s.basis.data(), d, r);
  if (diagonal) {  // only the column statistics of S Ubar and S W_1 are needed
    const ConstMapF w = cpu::map(s.directions.data(), d, r);
    cpu::ColumnStats stats(static_cast<int>(r));
    RowMatrixF p0, p1;
    for_wire_panels(block, stride, s.config.value_bytes, [&](std::int64_t, const auto& panel) {
      p0.noalias() = panel * ubar;
      p1.noalias() = panel * w;
      stats.add(p0, p1);
    });
    return {cpu::fit_theta_diagonal(stats, lambda)};
  }
  const std::int64_t ns = theta_sample_count(block.rows, static_cast<int>(m), static_cast<int>(r));
  RowMatrixF p(ns, (m + 1) * r);
  for_wire_panels(block, stride, s.config.value_bytes, [&](std::int64_t i0, const auto& panel) {
    p.block(i0, 0, panel.rows(), r).noalias() = panel * ubar;
    for (std::int64_t i = 0; i < m; ++i)
      p.block(i0, (i + 1) * r, panel.rows(), r).noalias() = panel * cpu::map(s.directions.data() + i * d * r, d, r);
  });
  return cpu::fit_block_theta(p.data(), ns, s.direction_gram, static_cast<int>(m), static_cast<int>(r), &m_theta);
}

void encode_mos(const CodecState& s, MatrixView x, Encoded& e) {
  const CodecConfig& c = s.config;
  const std::int64_t t = x.rows, r = c.rank;
  const std::int64_t bl = block_len(c.theta_block_tokens, t);
  const bool diagonal = cpu::diagonal_rotation(s);
  const Eigen::ArrayXd lambda = diagonal ? cpu::direction_eigenvalues(s) : Eigen::ArrayXd();
  e.values.resize(static_cast<std::size_t>(t * r));
  RowMatrixF u;
  cpu::RowMatrixD m_theta;
  for (std::int64_t t0 = 0; t0 < t; t0 += bl) {
    const std::int64_t n = std::min(bl, t - t0);
    const std::vector<float> theta = mos_block_theta(s, x.slice_rows(t0, n), diagonal, lambda, m_theta);
    e.theta.insert(e.theta.end(), theta.begin(), theta.end());
    mos_basis(s, theta.data(), diagonal, lambda, u, diagonal ? nullptr : &m_theta);
    project_wire(x.slice_rows(t0, n), u, e.values.data() + t0 * r, c.value_bytes);
  }
}

/// Stores the route of every block in e.route and, bit-packed, in e.packed.
void pack_routes(const std::vector<std::int32_t>& route, int subspaces, Encoded& e) {
  const int ib = index_bits(subspaces);
  e.packed.assign(static_cast<std::size_t>((static_cast<std::int64_t>(route.size()) * ib + 7) / 8), 0);
  for (std::size_t b = 0; b < route.size(); ++b)
    reference::pack_bits(e.packed, static_cast<std::uint64_t>(b) * static_cast<std::uint64_t>(ib), ib, static_cast<std::uint32_t>(route[b]));
  e.route = route;
}

/// mos-k, exhaustive routing: every token against every basis (one T x d x K r GEMM), then the
/// coefficients of the best basis of each block are kept.
void encode_mos_k_exhaustive(const CodecState& s, MatrixView x, Encoded& e) {
  const CodecConfig& c = s.config;
  const std::int64_t t = x.rows, d = s.dim, r = c.rank, k = c.subspaces;
  RowMatrixF b(d, k * r);
  for (std::int64_t j = 0; j < k; ++j) b.middleCols(j * r, r) = cpu::map(s.basis.data() + j * d * r, d, r);
  RowMatrixF p(t, k * r);
  project_wire(x, b, p.data(), c.value_bytes);
  const std::int64_t bl = block_len(c.route_block_tokens, t);
  const std::int64_t blocks = t == 0 ? 0 : (t + bl - 1) / bl;
  std::vector<std::int32_t> route(static_cast<std::size_t>(blocks));
  e.values.resize(static_cast<std::size_t>(t * r));
  for (std::int64_t bi = 0; bi < blocks; ++bi) {
    const std::int64_t t0 = bi * bl, n = std::min(bl, t - t0);
    int best = 0;
    float best_energy = -1;
    for (std::int64_t j = 0; j < k; ++j) {
      const float energy = p.block(t0, j * r, n, r).squaredNorm();
      if (energy > best_energy) best_energy = energy, best = static_cast<int>(j);
    }
    route[static_cast<std::size_t>(bi)] = best;
    MapF(e.values.data() + t0 * r, n, r) = p.block(t0, best * r, n, r);
  }
  pack_routes(route, static_cast<int>(k), e);
}

/// mos-k, sketch routing ("route then project"): the energy of every token in the first s columns of
/// each basis (a T x d x K s GEMM) picks the basis of each block, then the tokens of each basis are
/// projected on it alone (K GEMMs of T x d x r in all). Per-token routing (the default block of 1)
/// does both in the same cache-resident panel; longer blocks route in a first pass.
/// `panels(f)` calls f(first, panel, n) per wire panel; `sketch(panel, n, ps)` writes the n x K s
/// sketch products into ps; `project(panel, j, rows, z)` writes the panel rows `rows` times basis j
/// into the rows `rows` of z (n x r, the panel's output).
template <typename Panels, typename Sketch, typename Project>
void route_then_project(const CodecState& s, MatrixView x, Encoded& e, Panels&& panels, Sketch&& sketch, Project&& project) {
  const CodecConfig& c = s.config;
  const std::int64_t t = x.rows, r = c.rank, k = c.subspaces;
  const std::int64_t sc = route_sketch_columns(c.rank);
  const std::int64_t bl = block_len(c.route_block_tokens, t);
  const std::int64_t blocks = t == 0 ? 0 : (t + bl - 1) / bl;
  std::vector<std::int32_t> route(static_cast<std::size_t>(blocks));
  // Block energies in the sketch columns, accumulated in token order (as the reference does).
  std::vector<float> energy(static_cast<std::size_t>(blocks * k), 0.0f), ps;
  auto add_energies = [&](std::int64_t i0, const auto& panel, std::int64_t n) {
    ps.resize(static_cast<std::size_t>(n * k * sc));
    sketch(panel, n, ps.data());
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < k; ++j) {
        float sum = 0.0f;
        for (const float v : std::span(ps).subspan(static_cast<std::size_t>((i * k + j) * sc), static_cast<std::size_t>(sc))) sum += v * v;
        energy[static_cast<std::size_t>(((i0 + i) / bl) * k + j)] += sum;
      }
  };
  auto choose = [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t bi = b0; bi < b1; ++bi) {
      const float* eb = energy.data() + bi * k;
      route[static_cast<std::size_t>(bi)] = static_cast<std::int32_t>(std::max_element(eb, eb + k) - eb);
    }
  };
  if (bl > 1) {  // a block may span panels: route everything first
    panels(add_energies);
    choose(0, blocks);
  }
  e.values.resize(static_cast<std::size_t>(t * r));
  std::vector<std::int64_t> rows;
  panels([&](std::int64_t i0, const auto& panel, std::int64_t n) {
    if (bl == 1) {
      add_energies(i0, panel, n);
      choose(i0, i0 + n);
    }
    for (std::int64_t j = 0; j < k; ++j) {
      rows.clear();
      for (std::int64_t i = 0; i < n; ++i)
        if (route[static_cast<std::size_t>((i0 + i) / bl)] == j) rows.push_back(i);
      if (!rows.empty()) project(panel, j, rows, e.values.data() + i0 * r);
    }
  });
  pack_routes(route, static_cast<int>(k), e);
}

void encode_mos_k_sketch(const CodecState& s, MatrixView x, Encoded& e) {
  const std::int64_t d = s.dim, r = s.config.rank, k = s.config.subspaces;
  const std::int64_t sc = route_sketch_columns(s.config.rank);
  RowMatrixF sketch(d, k * sc);
  for (std::int64_t j = 0; j < k; ++j) sketch.middleCols(j * sc, sc) = cpu::map(s.basis.data() + j * d * r, d, r).leftCols(sc);
  if (bf16_wire_dots(s.config.value_bytes, std::max(k * sc, r))) {  // routing and projections alike
    const std::vector<std::uint16_t> sketch_t = bf16_transposed(sketch), bases_t = bf16_transposed_bases(s);
    route_then_project(
        s, x, e, [&](auto&& f) { for_bf16_panels(x, f); },
        [&](const std::uint16_t* panel, std::int64_t n, float* ps) { cpu::bf16_gemm_nt(panel, nullptr, n, d, sketch_t.data(), k * sc, ps, nullptr, k * sc); },
        [&](const std::uint16_t* panel, std::int64_t j, const std::vector<std::int64_t>& rows, float* z) {
          cpu::bf16_gemm_nt(panel, rows.data(), static_cast<std::int64_t>(rows.size()), d, bases_t.data() + j * r * d, r, z, rows.data(), r);
        });
    return;
  }
  RowMatrixF gathered, zk;
  route_then_project(
      s, x, e, [&](auto&& f) { for_wire_panels(x, 1, s.config.value_bytes, [&](std::int64_t i0, const auto& p) { f(i0, p, p.rows()); }); },
      [&](const auto& panel, std::int64_t n, float* ps) { MapF(ps, n, k * sc).noalias() = panel * sketch; },
      [&](const auto& panel, std::int64_t j, const std::vector<std::int64_t>& rows, float* z) {
        gathered.resize(static_cast<Eigen::Index>(rows.size()), d);
        for (std::size_t i = 0; i < rows.size(); ++i) gathered.row(static_cast<Eigen::Index>(i)) = panel.row(rows[i]);
        zk.noalias() = gathered * cpu::map(s.basis.data() + j * d * r, d, r);
        for (std::size_t i = 0; i < rows.size(); ++i) MapF(z + rows[i] * r, 1, r) = zk.row(static_cast<Eigen::Index>(i));
      });
}

void encode_mos_k(const CodecState& s, MatrixView x, Encoded& e) {
  if (s.config.routing == Routing::sketch)
    encode_mos_k_sketch(s, x, e);
  else
    encode_mos_k_exhaustive(s, x, e);
}
}  // namespace

void encode(const CodecState& s, MatrixView x, Encoded& e) {
  const CodecConfig& c = s.config;
  if (x.cols != s.dim) throw std::invalid_argument("encode: feature width differs from the fitted codec");
  e.tokens = x.rows;
  e.dim = x.cols;
  e.value_bytes = c.value_bytes;
  // values, packed and scales keep their storage: each method resizes what it fills (a same-size
  // resize writes nothing) and writes every element; what the method does not fill is emptied.
  e.theta.clear();
  e.route.clear();
  if (c.method == Method::quant) e.values.clear();
  if (c.method != Method::quant) e.scales.clear();
  if (c.method != Method::topk && c.method != Method::quant && c.method != Method::mos_k) e.packed.clear();
  if (c.method == Method::none || c.method == Method::topk || c.method == Method::quant) {
    cpu::encode_elementwise(s, x, e);
    return;
  }
  if (c.method == Method::pca) {
    e.values.resize(static_cast<std::size_t>(x.rows * c.rank));
    project_wire(x, cpu::map(s.basis.data(), s.dim, c.rank), e.values.data(), c.value_bytes);
  } else if (c.method == Method::mos) {
    encode_mos(s, x, e);
  } else {
    encode_mos_k(s, x, e);
  }
  round_in_place(e.values.data(), static_cast<std::int64_t>(e.values.size()), c.value_bytes);
}

Encoded encode(const CodecState& s, MatrixView x) {
  Encoded e;
  encode(s, x, e);
  return e;
}

void decode(const CodecState& s, const Encoded& e, float* out) {
  const CodecConfig& c = s.config;
  if (c.method == Method::none || c.method == Method::topk || c.method == Method::quant) {
    cpu::decode_elementwise(s, e, out);
    return;
  }
  const std::int64_t t = e.tokens, d = e.dim, r = c.rank;
  const ConstMapF z(e.values.data(), t, r);
  MapF xo(out, t, d);
  // bf16 wire: Z's bits (the values travel as bf16) times U's bits in pairs (cpu/bf16_dot.h).
  const bool dots = bf16_wire_dots(c.value_bytes, d, true);
  std::vector<std::uint16_t> zbits(dots ? static_cast<std::size_t>(t * r) : 0), ubits(dots ? static_cast<std::size_t>(d * r) : 0);
  if (dots) cpu::to_bf16_bits(e.values.data(), t * r, zbits.data());
  RowMatrixF zk;
  // Rows t0..t0+n of X (or the listed rows) = the same rows of Z times u^T, u d x r row-major.
  auto apply = [&](const float* u, std::int64_t t0, std::int64_t n, const std::vector<std::int64_t>* rows) {
    if (dots) {
      cpu::to_bf16_bits(u, d * r, ubits.data());
      const std::vector<std::uint32_t> pairs = cpu::bf16_pack_pairs(ubits.data(), d, r);
      const std::int64_t* list = rows != nullptr ? rows->data() : nullptr;
      cpu::bf16_gemm_pairs(zbits.data() + t0 * r, list, n, r, pairs.data(), d, out + t0 * d, list, d);
    } else if (rows == nullptr) {
      xo.middleRows(t0, n).noalias() = z.middleRows(t0, n) * cpu::map(u, d, r).transpose();
    } else {  // gather the listed rows, one GEMM, scatter back
      zk.resize(n, r);
      for (std::int64_t i = 0; i < n; ++i) zk.row(i) = z.row((*rows)[static_cast<std::size_t>(i)]);
      const RowMatrixF xk = zk * cpu::map(u, d, r).transpose();
      for (std::int64_t i = 0; i < n; ++i) xo.row((*rows)[static_cast<std::size_t>(i)]) = xk.row(i);
    }
  };
  if (c.method == Method::pca) {
    apply(s.basis.data(), 0, t, nullptr);
  } else if (c.method == Method::mos) {
    const std::int64_t bl = block_len(c.theta_block_tokens, t);
    const bool diagonal = cpu::diagonal_rotation(s);
    const Eigen::ArrayXd lambda = diagonal ? cpu::direction_eigenvalues(s) : Eigen::ArrayXd();
    RowMatrixF u;
    for (std::int64_t t0 = 0, bi = 0; t0 < t; t0 += bl, ++bi) {
      mos_basis(s, e.theta.data() + bi * c.rotations, diagonal, lambda, u);
      apply(u.data(), t0, std::min(bl, t - t0), nullptr);
    }
  } else {  // mos-k: the tokens of each basis
    const std::int64_t bl = block_len(c.route_block_tokens, t);
    std::vector<std::int64_t> rows;
    for (int k = 0; k < c.subspaces; ++k) {
      rows.clear();
      for (std::int64_t i = 0; i < t; ++i)
        if (e.route[static_cast<std::size_t>(i / bl)] == k) rows.push_back(i);
      if (!rows.empty()) apply(s.basis.data() + k * d * r, 0, static_cast<std::int64_t>(rows.size()), &rows);
    }
  }
  round_in_place(out, t * d, c.value_bytes);
}

}  // namespace moss::kernels
