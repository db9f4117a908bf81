// Plain C++ reference codec (reference.h). Loops in a fixed order, fp32 accumulation.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "moss/kernels/bf16.h"
#include "moss/kernels/reference.h"
#include "moss/kernels/rotation.h"

namespace moss::kernels::reference {

namespace {
float wire(float x, int value_bytes) { return value_bytes == 2 ? round_bf16(x) : x; }

std::vector<float> wire_input(MatrixView x, int value_bytes) {
  std::vector<float> out(x.data, x.data + x.size());
  if (value_bytes == 2) round_bf16_finite(out.data(), static_cast<std::int64_t>(out.size()));
  return out;
}

std::int64_t block_len(int block_tokens, std::int64_t tokens) {
  return block_tokens <= 0 ? std::max<std::int64_t>(tokens, 1) : block_tokens;
}

std::vector<float> wire_basis(std::vector<float> u, int value_bytes) {
  if (value_bytes == 2)
    for (float& v : u) v = round_bf16(v);
  return u;
}

int qmax_of(int bits) { return bits == 8 ? 127 : 7; }
}  // namespace

void gemm(const float* a, const float* b, float* c, std::int64_t m, std::int64_t k, std::int64_t n) {
  for (std::int64_t i = 0; i < m; ++i) {
    float* ci = c + i * n;
    std::fill(ci, ci + n, 0.0f);
    for (std::int64_t p = 0; p < k; ++p) {
      const float a_ip = a[i * k + p];
      const float* bp = b + p * n;
      for (std::int64_t j = 0; j < n; ++j) ci[j] += a_ip * bp[j];
    }
  }
}

void pack_bits(std::vector<std::uint8_t>& out, std::uint64_t bit, int bits, std::uint32_t value) {
  // bits <= 32 and the shift < 8: the value spans at most 5 bytes of a 64-bit window.
  const std::uint64_t mask = bits >= 32 ? 0xffffffffull : ((std::uint64_t{1} << bits) - 1);
  const std::uint64_t v = (static_cast<std::uint64_t>(value) & mask) << (bit % 8);
  const std::size_t first = bit / 8, bytes = (bit % 8 + static_cast<std::uint64_t>(bits) + 7) / 8;
  for (std::size_t i = 0; i < bytes; ++i) out[first + i] |= static_cast<std::uint8_t>(v >> (8 * i));
}

std::uint32_t unpack_bits(std::span<const std::uint8_t> in, std::uint64_t bit, int bits) {
  const std::size_t first = bit / 8, bytes = (bit % 8 + static_cast<std::uint64_t>(bits) + 7) / 8;
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(in[first + i]) << (8 * i);
  const std::uint64_t mask = bits >= 32 ? 0xffffffffull : ((std::uint64_t{1} << bits) - 1);
  return static_cast<std::uint32_t>((v >> (bit % 8)) & mask);
}

Encoded encode(const CodecState& s, MatrixView x, std::span<const float> theta) {
  const CodecConfig& c = s.config;
  const int vb = c.value_bytes;
  const std::int64_t t = x.rows, d = x.cols, r = c.rank;
  if (d != s.dim) throw std::invalid_argument("reference::encode: feature width differs from the fit");
  Encoded e;
  e.tokens = t;
  e.dim = d;
  e.value_bytes = vb;
  const std::vector<float> xr = wire_input(x, vb);
  switch (c.method) {
    case Method::none:
      e.values = xr;
      break;
    case Method::pca:
      e.values.resize(static_cast<std::size_t>(t * r));
      gemm(xr.data(), s.basis.data(), e.values.data(), t, d, r);
      for (float& v : e.values) v = wire(v, vb);
      break;
    case Method::mos: {
      const std::int64_t bl = block_len(c.theta_block_tokens, t);
      const std::int64_t blocks = t == 0 ? 0 : (t + bl - 1) / bl;
      if (theta.size() != static_cast<std::size_t>(blocks * c.rotations))
        throw std::invalid_argument("reference::encode: mos needs rotations x blocks theta values");
      e.theta.assign(theta.begin(), theta.end());
      e.values.resize(static_cast<std::size_t>(t * r));
      for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t t0 = b * bl, n = std::min(bl, t - t0);
        const auto u = wire_basis(
            rotated_basis(s.basis, s.directions, theta.subspan(static_cast<std::size_t>(b * c.rotations), static_cast<std::size_t>(c.rotations)), d, c.rank), vb);
        gemm(xr.data() + t0 * d, u.data(), e.values.data() + t0 * r, n, d, r);
      }
      for (float& v : e.values) v = wire(v, vb);
      break;
    }
    case Method::mos_k: {
      const std::int64_t k = c.subspaces, bl = block_len(c.route_block_tokens, t);
      const std::int64_t blocks = t == 0 ? 0 : (t + bl - 1) / bl;
      // Routing energy of every block in every basis: all r columns (exhaustive) or the first
      // route_sketch_columns(r) (sketch), summed token by token.
      const bool sketch = c.routing == Routing::sketch;
      const std::int64_t sc = sketch ? route_sketch_columns(c.rank) : r;
      std::vector<float> energy(static_cast<std::size_t>(blocks * k), 0.0f), row(static_cast<std::size_t>(r));
      for (std::int64_t i = 0; i < t; ++i)
        for (std::int64_t j = 0; j < k; ++j) {
          gemm(xr.data() + i * d, s.basis.data() + j * d * r, row.data(), 1, d, r);
          float e_t = 0.0f;
          for (std::int64_t q = 0; q < sc; ++q) e_t += row[static_cast<std::size_t>(q)] * row[static_cast<std::size_t>(q)];
          energy[static_cast<std::size_t>((i / bl) * k + j)] += e_t;
        }
      const int ib = index_bits(k);
      e.packed.assign(static_cast<std::size_t>((blocks * ib + 7) / 8), 0);
      e.values.resize(static_cast<std::size_t>(t * r));
      for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t t0 = b * bl, n = std::min(bl, t - t0);
        int best = 0;
        float best_energy = -1.0f;
        for (std::int64_t j = 0; j < k; ++j) {
          const float energy_j = energy[static_cast<std::size_t>(b * k + j)];
          if (energy_j > best_energy) best_energy = energy_j, best = static_cast<int>(j);
        }
        e.route.push_back(best);
        pack_bits(e.packed, static_cast<std::uint64_t>(b * ib), ib, static_cast<std::uint32_t>(best));
        gemm(xr.data() + t0 * d, s.basis.data() + best * d * r, e.values.data() + t0 * r, n, d, r);
      }
      for (float& v : e.values) v = wire(v, vb);
      break;
    }
    case Method::topk: {
      const std::int64_t k = topk_count(c.fraction, d);
      const int ib = index_bits(d);
      e.values.reserve(static_cast<std::size_t>(t * k));
      e.packed.assign(static_cast<std::size_t>((t * k * ib + 7) / 8), 0);
      std::vector<float> mag(static_cast<std::size_t>(d)), sorted(static_cast<std::size_t>(d));
      for (std::int64_t i = 0; i < t; ++i) {
        const float* row = xr.data() + i * d;
        for (std::int64_t j = 0; j < d; ++j) mag[j] = std::fabs(row[j]);
        std::copy(mag.begin(), mag.end(), sorted.begin());
        std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<float>());
        const float tau = sorted[static_cast<std::size_t>(k - 1)];
        std::int64_t above = 0;
        for (float m : mag) above += m > tau;
        std::int64_t ties_left = k - above, out = 0;
        for (std::int64_t j = 0; j < d && out < k; ++j) {
          const bool take = mag[j] > tau || (mag[j] == tau && ties_left-- > 0);
          if (!take) continue;
          e.values.push_back(row[j]);
          pack_bits(e.packed, static_cast<std::uint64_t>((i * k + out) * ib), ib, static_cast<std::uint32_t>(j));
          ++out;
        }
      }
      break;
    }
    case Method::quant: {
      const int qmax = qmax_of(c.bits);
      e.packed.assign(static_cast<std::size_t>((t * d * c.bits + 7) / 8), 0);
      e.scales.resize(static_cast<std::size_t>(t));
      const std::uint32_t mask = (1u << c.bits) - 1u;
      for (std::int64_t i = 0; i < t; ++i) {
        const float* row = xr.data() + i * d;
        float amax = 0.0f;
        for (std::int64_t j = 0; j < d; ++j) amax = std::max(amax, std::fabs(row[j]));
        const float scale = round_bf16(amax / static_cast<float>(qmax));
        e.scales[static_cast<std::size_t>(i)] = scale;
        for (std::int64_t j = 0; j < d; ++j) {
          int q = 0;
          if (scale > 0.0f) {
            q = static_cast<int>(std::nearbyint(row[j] / scale));
            q = std::clamp(q, -qmax, qmax);
          }
          pack_bits(e.packed, static_cast<std::uint64_t>((i * d + j) * c.bits), c.bits,
                    static_cast<std::uint32_t>(q) & mask);
        }
      }
      break;
    }
  }
  return e;
}

void decode(const CodecState& s, const Encoded& e, float* out) {
  const CodecConfig& c = s.config;
  const int vb = c.value_bytes;
  const std::int64_t t = e.tokens, d = e.dim, r = c.rank;
  switch (c.method) {
    case Method::none:
      std::copy(e.values.begin(), e.values.end(), out);
      return;
    case Method::pca:
    case Method::mos:
    case Method::mos_k: {
      const std::int64_t bl = block_len(c.method == Method::mos ? c.theta_block_tokens : c.route_block_tokens, t);
      const std::int64_t blocks = t == 0 ? 0 : (t + bl - 1) / bl;
      for (std::int64_t b = 0; b < (c.method == Method::pca ? std::min<std::int64_t>(blocks, 1) : blocks); ++b) {
        const std::int64_t t0 = c.method == Method::pca ? 0 : b * bl;
        const std::int64_t n = c.method == Method::pca ? t : std::min(bl, t - t0);
        std::vector<float> u;
        if (c.method == Method::pca) {
          u = s.basis;
        } else if (c.method == Method::mos) {
          u = wire_basis(rotated_basis(s.basis, s.directions,
                                       std::span<const float>(e.theta).subspan(static_cast<std::size_t>(b * c.rotations), static_cast<std::size_t>(c.rotations)),
                                       d, c.rank), vb);
        } else {
          const auto off = static_cast<std::size_t>(e.route[static_cast<std::size_t>(b)] * d * r);
          u.assign(s.basis.begin() + static_cast<std::ptrdiff_t>(off), s.basis.begin() + static_cast<std::ptrdiff_t>(off + d * r));
        }
        // x_hat = z U^T
        for (std::int64_t i = t0; i < t0 + n; ++i) {
          const float* z = e.values.data() + i * r;
          for (std::int64_t j = 0; j < d; ++j) {
            float acc = 0.0f;
            for (std::int64_t q = 0; q < r; ++q) acc += z[q] * u[static_cast<std::size_t>(j * r + q)];
            out[i * d + j] = wire(acc, vb);
          }
        }
      }
      return;
    }
    case Method::topk: {
      const std::int64_t k = topk_count(c.fraction, d);
      const int ib = index_bits(d);
      std::fill(out, out + t * d, 0.0f);
      for (std::int64_t i = 0; i < t; ++i)
        for (std::int64_t q = 0; q < k; ++q) {
          const auto j = unpack_bits(e.packed, static_cast<std::uint64_t>((i * k + q) * ib), ib);
          out[i * d + j] = e.values[static_cast<std::size_t>(i * k + q)];
        }
      return;
    }
    case Method::quant: {
      const int bits = c.bits;
      for (std::int64_t i = 0; i < t; ++i)
        for (std::int64_t j = 0; j < d; ++j) {
          auto u = unpack_bits(e.packed, static_cast<std::uint64_t>((i * d + j) * bits), bits);
          int q = static_cast<int>(u);
          if (u & (1u << (bits - 1))) q -= (1 << bits);
          out[i * d + j] = wire(static_cast<float>(q) * e.scales[static_cast<std::size_t>(i)], vb);
        }
      return;
    }
  }
}

}  // namespace moss::kernels::reference
