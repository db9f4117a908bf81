// Synthetic K/V generator (synthetic.h). Counter-based randomness (splitmix64 of seed, stream, index)
// makes every token independent of how many are generated, so runs are prefix-stable and deterministic.
#include "moss/kernels/synthetic.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <numbers>
#include <span>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace moss::kernels {

namespace {
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// Stream of standard normals keyed by (seed, stream, index).
class NormalStream {
 public:
  NormalStream(std::uint64_t seed, std::uint64_t stream, std::uint64_t index)
      : state_(splitmix64(splitmix64(seed ^ 0x5bd1e995u) ^ splitmix64(stream + 0x1234567u) ^ (index * 0x9e3779b97f4a7c15ull))) {}

  double uniform() {  // in (0, 1)
    state_ = splitmix64(state_);
    return (static_cast<double>(state_ >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  }
  std::uint64_t bits() { return state_ = splitmix64(state_); }
  /// Cheap approximately normal value (Irwin-Hall sum of four 16-bit uniforms, unit variance); used
  /// for the noise floor, where the exact tail shape does not matter and speed does.
  float approx_normal() {
    const std::uint64_t b = bits();
    const auto sum = static_cast<float>((b & 0xffff) + ((b >> 16) & 0xffff) + ((b >> 32) & 0xffff) + (b >> 48));
    return (sum * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
  }
  float normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    const double a = 2.0 * std::numbers::pi * uniform();
    spare_ = static_cast<float>(r * std::sin(a));
    has_spare_ = true;
    return static_cast<float>(r * std::cos(a));
  }

 private:
  std::uint64_t state_;
  float spare_ = 0;
  bool has_spare_ = false;
};

// Orthonormalisation (orthonormalise_rows): block classical Gram-Schmidt. Rows are taken in panels of
// kPanel; each panel is projected against all finished rows at once (C = P Q^T, P -= C Q) and then
// orthonormalised within itself by modified Gram-Schmidt; the whole step runs a second time when a
// row lost more than half its norm (Kahan's "twice is enough": the cancellation that costs classical
// Gram-Schmidt its orthogonality). The projections stream each finished row once per panel and
// chunk of features instead of once per row, and every loop is vectorisable: the old row-by-row
// modified Gram-Schmidt with one scalar double dot product at a time took ~70 s at dim 16384.
// Sums run in fixed order (float lanes summed in double per chunk), so the result is deterministic.
constexpr std::int64_t kChunk = 1024;    // features per block: a tile of finished rows stays in L1, float sums short
constexpr int kPanel = 32;               // rows orthonormalised together
constexpr int kTile = 8;                 // finished rows per step of the projection kernels

// Eight floats operated on element-wise (GCC/Clang vector extension: one AVX register, two SSE ones);
// plain loops left the dot products' accumulators on the stack. Element-wise, so no reassociation.
using Floats8 = float __attribute__((vector_size(32)));
constexpr std::int64_t kLanes = 8;
Floats8 load8(const float* p) {
  Floats8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
void store8(float* p, Floats8 v) { std::memcpy(p, &v, sizeof v); }

// out[t] += <p, q_t> over [0, len) for the T rows q_t = q + t * stride.
template <int T>
void dot_rows(const float* p, const float* q, std::int64_t stride, std::int64_t len, double* out) {
  Floats8 acc[T] = {};
  std::int64_t e = 0;
  for (; e + kLanes <= len; e += kLanes) {
    const Floats8 pv = load8(p + e);
    for (int t = 0; t < T; ++t) acc[t] += pv * load8(q + t * stride + e);
  }
  for (int t = 0; t < T; ++t) {
    double s = 0;
    for (int l = 0; l < kLanes; ++l) s += acc[t][l];
    for (std::int64_t f = e; f < len; ++f) s += static_cast<double>(p[f]) * q[t * stride + f];
    out[t] += s;
  }
}

// p -= sum_t c[t] q_t over [0, len) for the T rows q_t = q + t * stride.
template <int T>
void subtract_rows(float* p, const float* q, std::int64_t stride, const float* c, std::int64_t len) {
  std::int64_t e = 0;
  for (; e + kLanes <= len; e += kLanes) {
    Floats8 v = load8(p + e);
    for (int t = 0; t < T; ++t) v -= c[t] * load8(q + t * stride + e);
    store8(p + e, v);
  }
  for (; e < len; ++e) {
    float v = p[e];
    for (int t = 0; t < T; ++t) v -= c[t] * q[t * stride + e];
    p[e] = v;
  }
}

double dot(const float* a, const float* b, std::int64_t dim) {
  double s = 0;
  for (std::int64_t e0 = 0; e0 < dim; e0 += kChunk) dot_rows<1>(a + e0, b + e0, 0, std::min(kChunk, dim - e0), &s);
  return s;
}

// Rows [0, n) of `p` minus their projections on the `done` orthonormal rows of `q` (all dim wide).
void project_out(const float* q, std::int64_t done, float* p, int n, std::int64_t dim) {
  std::vector<double> c(static_cast<std::size_t>(n * done), 0.0);  // c[i * done + j] = <p_i, q_j>
  for (std::int64_t e0 = 0; e0 < dim; e0 += kChunk) {
    const std::int64_t len = std::min(kChunk, dim - e0);
    for (std::int64_t j = 0; j < done; j += kTile)
      for (int i = 0; i < n; ++i) {
        const float* pi = p + i * dim + e0;
        double* ci = c.data() + i * done + j;
        if (j + kTile <= done) {
          dot_rows<kTile>(pi, q + j * dim + e0, dim, len, ci);
        } else {
          for (std::int64_t t = j; t < done; ++t) dot_rows<1>(pi, q + t * dim + e0, 0, len, ci + (t - j));
        }
      }
  }
  std::vector<float> cf(c.begin(), c.end());
  for (std::int64_t e0 = 0; e0 < dim; e0 += kChunk) {
    const std::int64_t len = std::min(kChunk, dim - e0);
    for (std::int64_t j = 0; j < done; j += kTile)
      for (int i = 0; i < n; ++i) {
        float* pi = p + i * dim + e0;
        const float* ci = cf.data() + i * done + j;
        if (j + kTile <= done) {
          subtract_rows<kTile>(pi, q + j * dim + e0, dim, ci, len);
        } else {
          for (std::int64_t t = j; t < done; ++t) subtract_rows<1>(pi, q + t * dim + e0, 0, ci + (t - j), len);
        }
      }
  }
}

constexpr std::uint64_t kStreamBase = 1, kStreamSubspace = 2, kStreamSegment = 3, kStreamToken = 4;

template <typename T>
T parse_number(std::string_view key, std::string_view value) {
  T out{};
  if constexpr (std::is_floating_point_v<T>) {
    try {
      std::size_t used = 0;
      const std::string s(value);
      out = static_cast<T>(std::stod(s, &used));
      if (used != s.size()) throw std::invalid_argument("");
    } catch (const std::exception&) {
      throw std::invalid_argument("synthetic spec: " + std::string(key) + "=" + std::string(value) +
                                  ": expected a number");
    }
  } else {
    const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
    if (ec != std::errc() || ptr != value.data() + value.size())
      throw std::invalid_argument("synthetic spec: " + std::string(key) + "=" + std::string(value) +
                                  ": expected an integer");
  }
  return out;
}
}  // namespace

void orthonormalise_rows(std::span<float> b, int rank, std::int64_t dim) {
  if (rank < 1 || dim < 1 || static_cast<std::int64_t>(b.size()) < rank * dim)
    throw std::invalid_argument("orthonormalise_rows: needs rank, dim >= 1 and rank x dim values");
  float* rows = b.data();
  std::vector<double> before(kPanel);
  for (int s = 0; s < rank; s += kPanel) {
    const int n = std::min(kPanel, rank - s);
    float* p = rows + static_cast<std::int64_t>(s) * dim;
    // One block step: project the panel off the finished rows, then modified Gram-Schmidt within it.
    // A row that lost over half its norm on the way carries amplified rounding along the finished
    // rows: the step is then run again on its output (twice is enough).
    for (int step = 0; step < 2; ++step) {
      for (int i = 0; i < n; ++i) before[i] = dot(p + i * dim, p + i * dim, dim);
      if (s > 0) project_out(rows, s, p, n, dim);
      bool cancelled = false;
      for (int i = 0; i < n; ++i) {
        float* pi = p + static_cast<std::int64_t>(i) * dim;
        for (int j = 0; j < i; ++j) {
          const float* pj = p + static_cast<std::int64_t>(j) * dim;
          const auto c = static_cast<float>(dot(pi, pj, dim));
          subtract_rows<1>(pi, pj, 0, &c, dim);
        }
        const double norm_sq = dot(pi, pi, dim);
        cancelled = cancelled || norm_sq < 0.25 * before[i];
        const float inv = norm_sq > 0 ? static_cast<float>(1.0 / std::sqrt(norm_sq)) : 0.0f;
        for (std::int64_t e = 0; e < dim; ++e) pi[e] *= inv;
      }
      if (!cancelled) break;
    }
  }
}

int effective_rank(const SyntheticSpec& s, bool is_v) {
  std::int64_t r = s.rank > 0 ? s.rank : std::max<std::int64_t>(4, s.dim / 64) * (is_v ? 2 : 1);
  return static_cast<int>(std::clamp<std::int64_t>(r, 1, std::max<std::int64_t>(1, s.dim)));
}

namespace {

// Full rank without decay: every orthonormal basis gives the same distribution (N(0, I) per token,
// plus the noise), so the generator skips the O(dim^3) orthonormalisation and the O(dim^2) rows.
bool identity_basis(const SyntheticSpec& s, bool is_v) {
  return effective_rank(s, is_v) == s.dim && (is_v ? s.decay_v : s.decay) == 0;
}

Matrix generate_isotropic(const SyntheticSpec& s, std::uint64_t seed) {
  // The same draws as the general path: the token's coefficients, then its noise.
  const auto noise_std = static_cast<float>(s.noise);  // energy = dim when every sigma is 1
  Matrix x(s.tokens, s.dim);
  for (std::int64_t t = 0; t < s.tokens; ++t) {
    NormalStream ns(seed, kStreamToken, static_cast<std::uint64_t>(t));
    float* row = x.row(t);
    for (std::int64_t e = 0; e < s.dim; ++e) row[e] = ns.normal();
    if (noise_std > 0)
      for (std::int64_t e = 0; e < s.dim; ++e) row[e] += noise_std * ns.approx_normal();
  }
  return x;
}

}  // namespace

void check_synthetic_cost(const SyntheticSpec& s) {
  for (const bool is_v : {false, true}) {
    if (identity_basis(s, is_v)) continue;
    const double r = effective_rank(s, is_v), d = static_cast<double>(s.dim), k = s.subspaces;
    if (k * r * d > kMaxSyntheticBasisValues)
      throw std::invalid_argument("synthetic spec: subspaces x rank x dim = " + std::to_string(static_cast<std::int64_t>(k * r * d)) +
                                  " basis values" + (is_v ? " (V)" : "") + ": at most 2^28 (1 GiB); lower subspaces, rank or dim");
    if (k * r * r * d + static_cast<double>(s.tokens) * r * d > kMaxSyntheticWork)
      throw std::invalid_argument("synthetic spec: generating it takes subspaces x rank^2 x dim + tokens x rank x dim = " +
                                  std::to_string(static_cast<std::int64_t>(k * r * r * d + static_cast<double>(s.tokens) * r * d)) +
                                  " multiply-adds" + (is_v ? " (V)" : "") + ": at most 2^37 (about a minute); lower rank, subspaces, tokens or dim");
  }
}

SyntheticSpec parse_synthetic_spec(std::string_view text) {
  SyntheticSpec s;
  bool first = true;
  std::vector<std::string_view> seen;
  while (!text.empty()) {
    const auto comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      if (!first) throw std::invalid_argument("synthetic spec: \"" + std::string(item) + "\": expected key=value (a preset name may only come first)");
      if (item == "llama") {
      } else if (item == "lowrank") {
        s.subspaces = 1, s.noise = 0, s.rank = 16, s.decay = 0.5, s.decay_v = 0.5;
      } else if (item == "isotropic") {
        s.subspaces = 1, s.noise = 0, s.rank = 1 << 30, s.decay = 0, s.decay_v = 0;
      } else {
        throw std::invalid_argument("synthetic spec: unknown preset \"" + std::string(item) + "\": expected llama, lowrank or isotropic");
      }
      first = false;
      continue;
    }
    first = false;
    const std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
    // A key given twice says two things; neither is taken silently.
    if (std::find(seen.begin(), seen.end(), key) != seen.end())
      throw std::invalid_argument("synthetic spec: key \"" + std::string(key) + "\" is given twice: give it once");
    seen.push_back(key);
    if (key == "tokens") s.tokens = parse_number<std::int64_t>(key, value);
    else if (key == "dim") s.dim = parse_number<std::int64_t>(key, value);
    else if (key == "subspaces") s.subspaces = parse_number<int>(key, value);
    else if (key == "rank") s.rank = parse_number<int>(key, value);
    else if (key == "decay") s.decay = parse_number<double>(key, value);
    else if (key == "decay_v") s.decay_v = parse_number<double>(key, value);
    else if (key == "noise") s.noise = parse_number<double>(key, value);
    else if (key == "spread") s.spread = parse_number<double>(key, value);
    else if (key == "segment") s.segment = parse_number<std::int64_t>(key, value);
    else if (key == "seed") s.seed = parse_number<std::uint64_t>(key, value);
    else
      throw std::invalid_argument("synthetic spec: unknown key \"" + std::string(key) +
                                  "\": expected tokens, dim, subspaces, rank, decay, decay_v, noise, spread, segment or seed");
  }
  if (first) throw std::invalid_argument("synthetic spec is empty: expected a spec after it, such as llama or llama,dim=4096");
  if (s.tokens < 1 || s.tokens > kMaxSyntheticTokens)
    throw std::invalid_argument("synthetic spec: tokens must be in [1, " + std::to_string(kMaxSyntheticTokens) + "]");
  if (s.dim < 1 || s.dim > kMaxSyntheticDim)
    throw std::invalid_argument("synthetic spec: dim must be in [1, " + std::to_string(kMaxSyntheticDim) + "]");
  if (s.tokens * s.dim > (std::int64_t{1} << 31)) throw std::invalid_argument("synthetic spec: tokens x dim must be <= 2^31 values");
  if (s.subspaces < 1 || s.subspaces > 1024) throw std::invalid_argument("synthetic spec: subspaces must be in [1, 1024]");
  if (s.rank < 0) throw std::invalid_argument("synthetic spec: rank must be >= 0 (0: preset default)");
  if (s.segment < 1) throw std::invalid_argument("synthetic spec: segment must be >= 1 token");
  for (const auto& [name, value] : {std::pair{"noise", s.noise}, std::pair{"spread", s.spread}, std::pair{"decay", s.decay},
                                    std::pair{"decay_v", s.decay_v}})
    if (!(value >= 0) || !(value <= kMaxSyntheticParameter))
      throw std::invalid_argument(std::string("synthetic spec: ") + name + " must be a finite number in [0, 1e6]");
  check_synthetic_cost(s);
  return s;
}

std::string to_string(const SyntheticSpec& s) {
  std::ostringstream os;
  os.precision(17);
  os << "tokens=" << s.tokens << ",dim=" << s.dim << ",subspaces=" << s.subspaces
     << ",rank=" << s.rank << ",decay=" << s.decay << ",decay_v=" << s.decay_v
     << ",noise=" << s.noise << ",spread=" << s.spread << ",segment=" << s.segment << ",seed=" << s.seed;
  return os.str();
}

Matrix generate_synthetic(const SyntheticSpec& s, bool is_v) {
  check_synthetic_cost(s);
  const int r = effective_rank(s, is_v);
  const std::int64_t d = s.dim;
  const std::uint64_t seed = s.seed * 2 + (is_v ? 1 : 0);
  if (identity_basis(s, is_v)) return generate_isotropic(s, seed);
  // Common basis B_0 and the subspaces around it, stored transposed (rank x dim rows).
  std::vector<float> b0(static_cast<std::size_t>(r * d));
  for (int i = 0; i < r; ++i) {
    NormalStream ns(seed, kStreamBase, static_cast<std::uint64_t>(i));
    for (std::int64_t e = 0; e < d; ++e) b0[static_cast<std::size_t>(i * d + e)] = ns.normal();
  }
  orthonormalise_rows(b0, r, d);
  std::vector<std::vector<float>> bases(static_cast<std::size_t>(s.subspaces), b0);
  const float g_scale = static_cast<float>(s.spread / std::sqrt(static_cast<double>(d)));
  for (int k = 1; k < s.subspaces && s.spread > 0; ++k) {
    auto& b = bases[static_cast<std::size_t>(k)];
    for (int i = 0; i < r; ++i) {
      NormalStream ns(seed, kStreamSubspace, static_cast<std::uint64_t>(k) * 65536u + static_cast<std::uint64_t>(i));
      for (std::int64_t e = 0; e < d; ++e) b[static_cast<std::size_t>(i * d + e)] += g_scale * ns.normal();
    }
    orthonormalise_rows(b, r, d);
  }
  const double decay = is_v ? s.decay_v : s.decay;
  std::vector<float> sigma(static_cast<std::size_t>(r));
  double energy = 0;
  for (int j = 0; j < r; ++j) {
    sigma[static_cast<std::size_t>(j)] = static_cast<float>(std::pow(j + 1.0, -decay));
    energy += static_cast<double>(sigma[static_cast<std::size_t>(j)]) * sigma[static_cast<std::size_t>(j)];
  }
  const auto noise_std = static_cast<float>(s.noise * std::sqrt(energy / static_cast<double>(d)));

  Matrix x(s.tokens, d);
  std::vector<float> g(static_cast<std::size_t>(r));
  for (std::int64_t t = 0; t < s.tokens; ++t) {
    const std::int64_t segment = t / s.segment;
    NormalStream pick(seed, kStreamSegment, static_cast<std::uint64_t>(segment));
    const auto k = static_cast<std::size_t>(pick.bits() % static_cast<std::uint64_t>(s.subspaces));
    const auto& b = bases[k];
    NormalStream ns(seed, kStreamToken, static_cast<std::uint64_t>(t));
    float* row = x.row(t);
    for (int j = 0; j < r; ++j) g[static_cast<std::size_t>(j)] = sigma[static_cast<std::size_t>(j)] * ns.normal();
    for (int j = 0; j < r; ++j) {
      const float c = g[static_cast<std::size_t>(j)];
      const float* bj = b.data() + static_cast<std::int64_t>(j) * d;
      for (std::int64_t e = 0; e < d; ++e) row[e] += c * bj[e];
    }
    if (noise_std > 0)
      for (std::int64_t e = 0; e < d; ++e) row[e] += noise_std * ns.approx_normal();
  }
  return x;
}

double stable_rank(MatrixView x) {
  std::vector<double> v(static_cast<std::size_t>(x.cols), 1.0), w(static_cast<std::size_t>(x.cols));
  std::vector<double> xv(static_cast<std::size_t>(x.rows));
  double fro = 0, lambda = 0;
  for (std::int64_t i = 0; i < x.size(); ++i) fro += static_cast<double>(x.data[i]) * x.data[i];
  for (int it = 0; it < 50; ++it) {
    for (std::int64_t t = 0; t < x.rows; ++t) {
      double acc = 0;
      for (std::int64_t e = 0; e < x.cols; ++e) acc += x.row(t)[e] * v[static_cast<std::size_t>(e)];
      xv[static_cast<std::size_t>(t)] = acc;
    }
    std::fill(w.begin(), w.end(), 0.0);
    for (std::int64_t t = 0; t < x.rows; ++t)
      for (std::int64_t e = 0; e < x.cols; ++e) w[static_cast<std::size_t>(e)] += x.row(t)[e] * xv[static_cast<std::size_t>(t)];
    double n = 0, vw = 0;
    for (std::size_t e = 0; e < w.size(); ++e) n += w[e] * w[e], vw += v[e] * w[e];
    double vv = 0;
    for (double a : v) vv += a * a;
    lambda = vv > 0 ? vw / vv : 0;  // Rayleigh quotient of X^T X
    n = std::sqrt(n);
    if (n == 0) return 0;
    for (std::size_t e = 0; e < w.size(); ++e) v[e] = w[e] / n;
  }
  return lambda > 0 ? fro / lambda : 0;
}

}  // namespace moss::kernels
