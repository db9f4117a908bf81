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
#include "wire_product.h"

namespace moss::kernels {

namespace {
using cpu::ConstMapF;
using cpu::MapF;
using cpu::RowMatrixF;

void round_in_place(float* p, std::int64_t n, int value_bytes) {
  if (value_bytes == 2) round_bf16_finite(p, n);
}

/// Whether decode's products run as bf16 dot products (cpu/bf16_dot.h): the wire carries bf16 and
/// the CPU's policy takes dots for decoder products.
bool bf16_decode_dots(int value_bytes, std::int64_t columns) { return value_bytes == 2 && cpu::bf16_dots_for(columns, true); }

/// z (rows of x, row-major, rhs.columns() wide) = wire(x) * B, panel by panel.
void project_wire(MatrixView x, const cpu::WireProduct& rhs, float* z, int value_bytes) {
  cpu::PanelNeeds needs;
  needs.add(rhs);
  const std::int64_t cols = rhs.columns();
  cpu::for_wire_panels(x, 1, value_bytes, needs, [&](std::int64_t i0, const cpu::WirePanel& p) {
    rhs.apply(p, nullptr, p.rows, z + i0 * cols, nullptr, cols);
  });
}

/// The same for b (x.cols x cols, row-major).
void project_wire(MatrixView x, const float* b, std::int64_t cols, float* z, int value_bytes) {
  project_wire(x, cpu::WireProduct(b, x.cols, cols, value_bytes), z, value_bytes);
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

/// The column blocks of [Ubar W_1 .. W_m] (dim x rank each): the sample's products for theta, one
/// product per panel. On the diagonal path only W_1 is needed.
std::vector<const float*> theta_operand(const CodecState& s, bool diagonal) {
  const std::int64_t d = s.dim, r = s.config.rank, m = diagonal ? 1 : s.config.rotations;
  std::vector<const float*> blocks{s.basis.data()};
  for (std::int64_t i = 0; i < m; ++i) blocks.push_back(s.directions.data() + i * d * r);
  return blocks;
}

/// Theta of one block from its evenly strided sample, P = S [Ubar W_1..W_m] (`sample` runs the
/// product); M(theta) into `m_theta` on the general path.
std::vector<float> mos_block_theta(const CodecState& s, MatrixView block, bool diagonal, const Eigen::ArrayXd& lambda,
                                   const cpu::WireProduct& sample, cpu::RowMatrixD& m_theta) {
  const std::int64_t r = s.config.rank, m = s.config.rotations, cols = sample.columns();
  if (m == 0) return {};  // U(theta) is Ubar: nothing to fit
  const std::int64_t stride = theta_sample_stride(block.rows, static_cast<int>(m), static_cast<int>(r));
  const std::int64_t ns = theta_sample_count(block.rows, static_cast<int>(m), static_cast<int>(r));
  cpu::PanelNeeds needs;
  needs.add(sample);
  if (diagonal) {  // only the column statistics of S Ubar and S W_1 are needed
    cpu::ColumnStats stats(static_cast<int>(r));
    RowMatrixF p;
    cpu::for_wire_panels(block, stride, s.config.value_bytes, needs, [&](std::int64_t, const cpu::WirePanel& panel) {
      p.resize(panel.rows, cols);
      sample.apply(panel, nullptr, panel.rows, p.data(), nullptr, cols);
      stats.add(p.leftCols(r), p.rightCols(r));
    });
    return {cpu::fit_theta_diagonal(stats, lambda)};
  }
  RowMatrixF p(ns, cols);
  cpu::for_wire_panels(block, stride, s.config.value_bytes, needs, [&](std::int64_t i0, const cpu::WirePanel& panel) {
    sample.apply(panel, nullptr, panel.rows, p.row(i0).data(), nullptr, cols);
  });
  return cpu::fit_block_theta(p.data(), ns, s.direction_gram, static_cast<int>(m), static_cast<int>(r), &m_theta);
}

void encode_mos(const CodecState& s, MatrixView x, Encoded& e) {
  const CodecConfig& c = s.config;
  const std::int64_t t = x.rows, r = c.rank;
  const std::int64_t bl = block_len(c.theta_block_tokens, t);
  const bool diagonal = cpu::diagonal_rotation(s);
  const Eigen::ArrayXd lambda = diagonal ? cpu::direction_eigenvalues(s) : Eigen::ArrayXd();
  const cpu::WireProduct sample(theta_operand(s, diagonal), s.dim, r, c.value_bytes);
  e.values.resize(static_cast<std::size_t>(t * r));
  RowMatrixF u;
  cpu::RowMatrixD m_theta;
  for (std::int64_t t0 = 0; t0 < t; t0 += bl) {
    const std::int64_t n = std::min(bl, t - t0);
    const std::vector<float> theta = mos_block_theta(s, x.slice_rows(t0, n), diagonal, lambda, sample, m_theta);
    e.theta.insert(e.theta.end(), theta.begin(), theta.end());
    mos_basis(s, theta.data(), diagonal, lambda, u, diagonal ? nullptr : &m_theta);
    project_wire(x.slice_rows(t0, n), u.data(), r, e.values.data() + t0 * r, c.value_bytes);
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
  std::vector<const float*> basis_at;
  for (std::int64_t j = 0; j < k; ++j) basis_at.push_back(s.basis.data() + j * d * r);
  RowMatrixF p(t, k * r);
  project_wire(x, cpu::WireProduct(basis_at, d, r, c.value_bytes), p.data(), c.value_bytes);
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
/// each basis (a T x d x K s product) picks the basis of each block, then the tokens of each basis are
/// projected on it alone (K products of T x d x r in all), read in place from the panel. Per-token
/// routing (the default block of 1) does both in the same cache-resident panel; longer blocks route
/// in a first pass.
void encode_mos_k_sketch(const CodecState& s, MatrixView x, Encoded& e) {
  const CodecConfig& c = s.config;
  const std::int64_t t = x.rows, d = s.dim, r = c.rank, k = c.subspaces;
  const std::int64_t sc = route_sketch_columns(c.rank);
  std::vector<const float*> basis_at;
  for (std::int64_t j = 0; j < k; ++j) basis_at.push_back(s.basis.data() + j * d * r);
  const cpu::WireProduct sketch(basis_at, d, sc, c.value_bytes, r);  // the leading sc columns of each basis
  std::vector<cpu::WireProduct> bases;
  bases.reserve(static_cast<std::size_t>(k));
  for (const float* b : basis_at) bases.emplace_back(b, d, r, c.value_bytes);
  cpu::PanelNeeds needs;
  needs.add(sketch);
  needs.add(bases.front());
  const std::int64_t bl = block_len(c.route_block_tokens, t);
  const std::int64_t blocks = t == 0 ? 0 : (t + bl - 1) / bl;
  std::vector<std::int32_t> route(static_cast<std::size_t>(blocks));
  // Block energies in the sketch columns, accumulated in token order (as the reference does).
  std::vector<float> energy(static_cast<std::size_t>(blocks * k), 0.0f), ps;
  auto add_energies = [&](std::int64_t i0, const cpu::WirePanel& panel) {
    ps.resize(static_cast<std::size_t>(panel.rows * k * sc));
    sketch.apply(panel, nullptr, panel.rows, ps.data(), nullptr, k * sc);
    for (std::int64_t i = 0; i < panel.rows; ++i)
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
    cpu::for_wire_panels(x, 1, c.value_bytes, needs, add_energies);
    choose(0, blocks);
  }
  e.values.resize(static_cast<std::size_t>(t * r));
  std::vector<std::int64_t> rows;
  cpu::for_wire_panels(x, 1, c.value_bytes, needs, [&](std::int64_t i0, const cpu::WirePanel& panel) {
    if (bl == 1) {
      add_energies(i0, panel);
      choose(i0, i0 + panel.rows);
    }
    for (std::int64_t j = 0; j < k; ++j) {
      rows.clear();
      for (std::int64_t i = 0; i < panel.rows; ++i)
        if (route[static_cast<std::size_t>((i0 + i) / bl)] == j) rows.push_back(i);
      if (!rows.empty())
        bases[static_cast<std::size_t>(j)].apply(panel, rows.data(), static_cast<std::int64_t>(rows.size()), e.values.data() + i0 * r, rows.data(), r);
    }
  });
  pack_routes(route, static_cast<int>(k), e);
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
    project_wire(x, s.basis.data(), c.rank, e.values.data(), c.value_bytes);
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
  const bool dots = bf16_decode_dots(c.value_bytes, d);
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
