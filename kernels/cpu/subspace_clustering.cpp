// k-subspaces clustering of a warm-up sample: mos-k's bases (subspace_clustering.h), Eigen CPU implementation.
#include "subspace_clustering.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "stream_products.h"

namespace moss::kernels {

namespace {
using cpu::kPowerIterations;
using cpu::products_of;
using cpu::RowMatrixF;

// mos-k's k-subspaces clustering has local optima (two subspaces shared by one basis, one split over
// two): kStarts seedings, each refined until settled (kSettled) or for kClusterRounds rounds, and the
// one that leaves the least warm-up energy uncaptured is kept. Seeded from blocks alone, 2 of 18 fits
// on data drawn from 6-8 subspaces ended 1.5-19x the error of the true subspaces with one start, and
// with 3 starts 6 of 35 reviewed files with flat spectra and a switch at every token 20-75x; with one
// start from blocks and two from neighbourhoods, 1.05-1.2x on those.
constexpr int kStarts = 3;
constexpr int kClusterRounds = 12;
// The kept start, where kClusterRounds stopped it before it settled, refines for up to this many more
// rounds: where subspaces share most of their directions, the bases find their own directions one at
// a time (on one such warm-up the start that found them all left 9x the energy after round 12 that it
// left settled after round 16), and the kept start is the one worth the rounds.
constexpr int kKeptRounds = 24;
constexpr double kSettled = 1e-3;  ///< a round that captures less than this share of what is left ends it
constexpr Eigen::Index kEnergyColumns = 512;  ///< widest product of the warm-up with bases side by side
constexpr Eigen::Index kEnergyValues = Eigen::Index{1} << 24;  ///< and at most this many values (64 MiB)

// The best basis of each token by its energies ||x_t U_k||^2 (t x K), summed per routing block (every
// token of a block gets the block's choice).
std::vector<int> route(const Eigen::MatrixXf& energy, std::int64_t block) {
  const std::int64_t t = energy.rows();
  std::vector<int> best(static_cast<std::size_t>(t), 0);
  const std::int64_t bl = block <= 0 ? t : block;
  for (std::int64_t t0 = 0; t0 < t; t0 += bl) {
    const std::int64_t n = std::min(bl, t - t0);
    Eigen::Index k = 0;
    energy.middleRows(t0, n).colwise().sum().maxCoeff(&k);
    std::fill(best.begin() + t0, best.begin() + t0 + n, static_cast<int>(k));
  }
  return best;
}

// Warm-up energy no basis captures: each routing block's ||x_t||^2 less its best basis's ||x_t U_k||^2,
// summed in double (a float sum over thousands of tokens errs by more than a settled round gains).
double uncaptured(const Eigen::VectorXf& norms, const Eigen::MatrixXf& energy, std::int64_t block) {
  const std::int64_t t = energy.rows(), bl = block <= 0 ? t : block;
  double left = 0;
  for (std::int64_t t0 = 0; t0 < t; t0 += bl) {
    const std::int64_t n = std::min(bl, t - t0);
    left += norms.segment(t0, n).cast<double>().sum() - energy.middleRows(t0, n).cast<double>().colwise().sum().maxCoeff();
  }
  return left;
}

// k-subspaces clustering of x: refine() alternates routing (each token, or routing block, to the
// basis that captures most of it) and a refit of each basis on its tokens.
class SubspaceClustering {
 public:
  SubspaceClustering(MatrixView x, int r, int route_block, const cpu::ProductsFor& products)
      : x_(x), r_(r), route_block_(route_block), products_(products), all_(products_of(products, x)),
        norms_(cpu::map(x).rowwise().squaredNorm()), total_(norms_.cast<double>().sum()) {}

  // Top-r subspace of `part` (rows of x), `iterations` passes, warm-started from `start` if given.
  RowMatrixF subspace_of(MatrixView part, int iterations, std::uint64_t seed, const RowMatrixF* start) const {
    const std::unique_ptr<cpu::SubspaceProducts> prod = products_of(products_, part);
    return cpu::top_subspace(part, r_, iterations, seed, start, prod.get());
  }

  // ||x_t U_k||^2 of every token (rows) and basis (columns); `xu`, where given, receives the products
  // X [U_1 .. U_K] themselves (rows x K r). The bases go side by side into products of up to
  // kEnergyColumns columns and kEnergyValues values (one basis at least): the warm-up is read (and
  // packed by the GEMM) once per product, not once per basis.
  [[nodiscard]] Eigen::MatrixXf energies(const std::vector<RowMatrixF>& bases, RowMatrixF* xu = nullptr) const {
    const auto k = static_cast<Eigen::Index>(bases.size());
    Eigen::MatrixXf energy(x_.rows, k);
    if (xu != nullptr) xu->resize(x_.rows, k * r_);
    const Eigen::Index columns = std::min(kEnergyColumns, kEnergyValues / std::max<Eigen::Index>(1, x_.rows));
    const Eigen::Index per = std::max<Eigen::Index>(1, columns / r_);
    for (Eigen::Index k0 = 0; k0 < k; k0 += per) {
      const Eigen::Index n = std::min(per, k - k0);
      RowMatrixF side(x_.cols, n * r_);
      for (Eigen::Index i = 0; i < n; ++i) side.middleCols(i * r_, r_) = bases[static_cast<std::size_t>(k0 + i)];
      const RowMatrixF y = all_->x_times(side);
      for (Eigen::Index i = 0; i < n; ++i) energy.col(k0 + i) = y.middleCols(i * r_, r_).rowwise().squaredNorm();
      if (xu != nullptr) xu->middleCols(k0 * r_, n * r_) = y;
    }
    return energy;
  }
  [[nodiscard]] const Eigen::VectorXf& norms() const { return norms_; }
  /// Top-r subspace of the whole warm-up after `iterations` passes, through the fit's own products.
  [[nodiscard]] RowMatrixF top_of_all(int iterations, std::uint64_t seed) const {
    return cpu::top_subspace(x_, r_, iterations, seed, nullptr, all_.get());
  }
  /// x V, through the fit's products.
  [[nodiscard]] RowMatrixF x_times(const RowMatrixF& v) const { return all_->x_times(v); }

  // Whether `left` improves on `before` by a clear margin: kSettled of it, and never less than 1e-6 of
  // the warm-up's energy (where the bases capture nearly all of it, what is left is rounding).
  [[nodiscard]] bool clearly_less(double left, double before) const {
    return std::isinf(before) ? left < before : left < before - kSettled * std::max(before, 1e-6 * total_);
  }

  /// Refined bases' uncaptured warm-up energy, their energies and products (energies()).
  struct Refined {
    double left = 0;
    Eigen::MatrixXf energy;
    /// Row t: x_t U_k for the basis k that route(energy) gives token t (T x r; empty where X [U_1 ..
    /// U_K] exceeds kEnergyValues): refit's first pass reuses it.
    RowMatrixF own;
    bool settled = true;  ///< false where the round limit stopped it
  };

  // The bases' energies and each token's products on its own basis (Refined's left not yet set). The
  // products of all K bases are held only for this, and only up to kEnergyValues.
  [[nodiscard]] Refined projected(const std::vector<RowMatrixF>& bases) const {
    Refined out;
    const bool keep = x_.rows * static_cast<std::int64_t>(bases.size()) * r_ <= kEnergyValues;
    RowMatrixF xu;
    out.energy = energies(bases, keep ? &xu : nullptr);
    if (!keep) return out;
    const std::vector<int> assign = route(out.energy, route_block_);
    out.own.resize(x_.rows, r_);
    for (std::int64_t t = 0; t < x_.rows; ++t) out.own.row(t) = xu.block(t, assign[static_cast<std::size_t>(t)] * r_, 1, r_);
    return out;
  }

  // Refines `bases` until settled or for `iterations` rounds; `from`, where given, is what refine()
  // returned for these bases (taken, not computed again).
  Refined refine(std::vector<RowMatrixF>& bases, int iterations, std::uint64_t seed, Refined* from = nullptr) const {
    std::vector<int> assign;
    std::vector<RowMatrixF> previous;
    Refined before;
    before.left = std::numeric_limits<double>::infinity();
    for (int it = 0;; ++it) {
      Refined now = from != nullptr && it == 0 ? std::move(*from) : projected(bases);
      if (from == nullptr || it > 0) now.left = uncaptured(norms_, now.energy, route_block_);
      now.settled = true;
      // A one-pass refit can lose a little where the previous basis was already near its best: then
      // the bases before it are the result.
      if (now.left > before.left) {
        bases = std::move(previous);
        return before;
      }
      std::vector<int> next = route(now.energy, route_block_);
      // Settled when no token moves, or when a round captured almost nothing more: near-ties between
      // bases make tokens swap to no effect on noisy data.
      if (next == assign || !clearly_less(now.left, before.left)) return now;
      if (it == iterations) {
        now.settled = false;
        return now;
      }
      assign = std::move(next);
      previous = bases;
      before = std::move(now);
      refit(bases, assign, before.own, 1, seed + 101 * (it + 1));  // one warm-started pass: the previous basis is nearly right
    }
  }

  // Each basis refitted on the tokens routed to it, `passes` passes warm-started from itself (an
  // empty cluster keeps its basis); `own` is Refined::own of these bases and this routing (or empty).
  void refit(std::vector<RowMatrixF>& bases, const std::vector<int>& assign, const RowMatrixF& own, int passes,
             std::uint64_t seed) const {
    std::vector<std::vector<std::int64_t>> members(bases.size());
    for (std::int64_t t = 0; t < x_.rows; ++t) members[static_cast<std::size_t>(assign[static_cast<std::size_t>(t)])].push_back(t);
    for (int c = 0; c < static_cast<int>(bases.size()); ++c) {
      std::vector<std::int64_t>& rows = members[static_cast<std::size_t>(c)];
      if (rows.empty()) continue;
      // The warm start's products are the members' rows of X U_c: the first pass multiplies the
      // members by the random columns only.
      RowMatrixF x_start(own.rows() > 0 ? static_cast<Eigen::Index>(rows.size()) : 0, r_);
      for (Eigen::Index i = 0; i < x_start.rows(); ++i) x_start.row(i) = own.row(rows[static_cast<std::size_t>(i)]);
      const RowMatrixF previous = bases[static_cast<std::size_t>(c)];
      bases[static_cast<std::size_t>(c)] = refit_one(std::move(rows), previous, own.rows() > 0 ? &x_start : nullptr, passes, seed + c);
    }
  }

  // Top-r subspace of the tokens `rows` (token order), warm-started from `previous` with products
  // x_start. On the CPU the products read the rows in place; other products take a matrix of their
  // own, gathered into one buffer kept between rounds (a fresh matrix per basis and round cost more
  // in allocation and zeroing than in copying).
  RowMatrixF refit_one(std::vector<std::int64_t> rows, const RowMatrixF& previous, const RowMatrixF* x_start, int passes,
                       std::uint64_t seed) const {
    const auto n = static_cast<std::int64_t>(rows.size());
    if (!products_ && cpu::kStreamVectorised) {  // without AVX-512, gathering for Eigen's GEMM is faster
      const cpu::RowsProducts prod(x_, std::move(rows));
      return cpu::top_subspace(prod, n, x_.cols, r_, passes, seed, &previous, x_start);
    }
    grouped_.resize(x_.rows, x_.cols);
    for (std::int64_t i = 0; i < n; ++i) std::copy(x_.row(rows[i]), x_.row(rows[i]) + x_.cols, grouped_.row(i).data());
    const std::unique_ptr<cpu::SubspaceProducts> prod = products_of(products_, MatrixView{grouped_.data(), n, x_.cols});
    return cpu::top_subspace(*prod, n, x_.cols, r_, passes, seed, &previous, x_start);
  }

  // The settled clustering's bases (with their energies, as refine() returned them) fitted as pca
  // fits its basis: a round stops once no token moves, when its bases have had one pass since their
  // last change (k = 1 would stop after one in all).
  void polish(std::vector<RowMatrixF>& bases, const Refined& fit, std::uint64_t seed) const {
    refit(bases, route(fit.energy, route_block_), fit.own, kPowerIterations - 1, seed);
  }

 private:
  MatrixView x_;
  int r_, route_block_;
  const cpu::ProductsFor& products_;
  std::unique_ptr<cpu::SubspaceProducts> all_;
  Eigen::VectorXf norms_;
  double total_;
  mutable RowMatrixF grouped_;  ///< refit_one's tokens gathered for products other than the CPU's
};

// Seed bases from blocks of `block` consecutive tokens (where a subspace holds for runs of tokens,
// as in the llama preset): the first block, then each time the block worst explained.
std::vector<RowMatrixF> seed_blocks(const SubspaceClustering& c, MatrixView x, int k, std::int64_t block, std::uint64_t seed) {
  const std::int64_t blocks = (x.rows + block - 1) / block;  // the last one may be partial
  auto block_at = [&](std::int64_t b) { return x.slice_rows(b * block, std::min(block, x.rows - b * block)); };
  std::vector<RowMatrixF> bases;
  bases.push_back(c.subspace_of(block_at(0), kPowerIterations, seed, nullptr));
  std::vector<bool> used(static_cast<std::size_t>(blocks), false);
  used[0] = true;
  Eigen::VectorXf captured = c.energies(bases).col(0);
  while (static_cast<int>(bases.size()) < k) {
    // Each block seeds one basis at most, while there are unused ones (k may exceed the blocks).
    if (std::find(used.begin(), used.end(), false) == used.end()) used.assign(used.size(), false);
    std::vector<double> left(static_cast<std::size_t>(blocks), -std::numeric_limits<double>::infinity());
    for (std::int64_t b = 0; b < blocks; ++b) {
      if (used[static_cast<std::size_t>(b)]) continue;
      const std::int64_t n = std::min(block, x.rows - b * block);
      left[static_cast<std::size_t>(b)] = (c.norms().segment(b * block, n) - captured.segment(b * block, n)).cast<double>().sum();
    }
    const std::int64_t pick = std::max_element(left.begin(), left.end()) - left.begin();
    used[static_cast<std::size_t>(pick)] = true;
    bases.push_back(c.subspace_of(block_at(pick), kPowerIterations, seed + bases.size(), nullptr));
    captured = captured.cwiseMax(c.energies({bases.back()}).col(0));
  }
  return bases;
}

// The `n` tokens nearest to token `pick` by |cos| of their parts off span(common) (all of each token
// where `common` has no columns), gathered: `off_norms` holds those parts' squared norms.
Matrix neighbourhood(const SubspaceClustering& c, MatrixView x, std::int64_t pick, std::int64_t n, const RowMatrixF& common,
                     const Eigen::VectorXf& off_norms) {
  RowMatrixF anchor(x.cols, 1);
  std::copy(x.row(pick), x.row(pick) + x.cols, anchor.data());
  if (common.cols() > 0) anchor -= common * (common.transpose() * anchor);
  // x_t . anchor is x_t's off part's dot with it (anchor is off span(common)); |cos| by the squared
  // form dots^2 / off_norms (the anchor's own norm is common to all).
  const Eigen::VectorXf dots = c.x_times(anchor).col(0);
  std::vector<double> score(static_cast<std::size_t>(x.rows));
  for (std::int64_t t = 0; t < x.rows; ++t)
    score[static_cast<std::size_t>(t)] = off_norms(t) > 0 ? static_cast<double>(dots(t)) * dots(t) / off_norms(t) : 0.0;
  std::vector<std::int64_t> order(static_cast<std::size_t>(x.rows));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  std::partial_sort(order.begin(), order.begin() + n, order.end(), [&](std::int64_t a, std::int64_t b) {
    const double sa = score[static_cast<std::size_t>(a)], sb = score[static_cast<std::size_t>(b)];
    return sa > sb || (sa == sb && a < b);
  });
  Matrix members(n, x.cols);
  for (std::int64_t i = 0; i < n; ++i) {
    const float* row = x.row(order[static_cast<std::size_t>(i)]);
    std::copy(row, row + x.cols, members.row(i));
  }
  return members;
}

// Seed bases of one start, each the top-r subspace of the `neighbours` tokens nearest (by |cos|) to
// a drawn token: tokens of one subspace are far more aligned with each other than with those of
// another when r is small against d, so such a neighbourhood lies mostly in one subspace even where
// every token switches (greedy subspace clustering's seeds; blocks of consecutive tokens are
// mixtures there). Start 1 begins at token 0 and takes the token worst explained next; the others
// draw tokens with probability proportional to the energy left uncaptured (k-means++'s D^2).
// Nearness is judged off span(common) where `common` has columns: where the subspaces share most of
// their directions, those dominate every |cos| and each neighbourhood mixes all subspaces alike.
std::vector<RowMatrixF> seed_bases(const SubspaceClustering& c, MatrixView x, int k, std::int64_t neighbours, int start,
                                   std::uint64_t seed, const RowMatrixF& common) {
  std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ull + 7919 * static_cast<std::uint64_t>(start + 1));
  const Eigen::VectorXf& norms = c.norms();
  const Eigen::VectorXf off_norms =
      common.cols() > 0 ? Eigen::VectorXf((norms - c.x_times(common).rowwise().squaredNorm()).cwiseMax(0.0f)) : norms;
  Eigen::VectorXf captured = Eigen::VectorXf::Zero(x.rows);
  std::vector<RowMatrixF> bases;
  while (static_cast<int>(bases.size()) < k) {
    std::vector<double> left(static_cast<std::size_t>(x.rows));
    double total = 0;
    for (std::int64_t t = 0; t < x.rows; ++t)
      total += left[static_cast<std::size_t>(t)] = std::max(0.0, static_cast<double>(norms(t)) - static_cast<double>(captured(t)));
    std::int64_t pick = 0;
    if (bases.empty() && start == 1) {
      pick = 0;
    } else if (start == 1 || !(total > 0)) {
      pick = std::max_element(left.begin(), left.end()) - left.begin();
    } else {
      double u = cpu::uniform_unit(rng) * total;
      while (pick + 1 < x.rows && u >= left[static_cast<std::size_t>(pick)]) u -= left[static_cast<std::size_t>(pick++)];
    }
    const Matrix members = neighbourhood(c, x, pick, std::min(neighbours, x.rows), common, off_norms);
    bases.push_back(c.subspace_of(members.view(), kPowerIterations, seed + start * 31 + bases.size(), nullptr));
    captured = captured.cwiseMax(c.energies({bases.back()}).col(0));
  }
  return bases;
}
}  // namespace

// k-subspaces clustering from kStarts seedings: start 0 from blocks of consecutive tokens, start 1
// from neighbourhoods, start 2 from neighbourhoods judged off the warm-up's top-r subspace (what tells
// subspaces that share most of their directions apart is what they do not share; on the llama preset
// and on subspaces drawn apart it seldom wins, but on subspaces sharing 15 of 16 directions it is the
// only start that ends near the true subspaces). The best after refinement wins.
std::vector<RowMatrixF> cpu::fit_subspaces(MatrixView x, int k, int r, int route_block, std::uint64_t seed,
                                           const ProductsFor& products) {
  const SubspaceClustering clustering(x, r, route_block, products);
  // Neighbourhoods of r + 8 tokens (at least 16): enough to span r directions through the noise;
  // blocks of as many (at least 32): small enough to lie within one run of a subspace's tokens.
  const std::int64_t neighbours = std::max<std::int64_t>(r + 8, 16);
  const std::int64_t block = std::min<std::int64_t>(x.rows, std::max<std::int64_t>(r + 8, 32));
  std::vector<RowMatrixF> best;
  SubspaceClustering::Refined best_fit;
  const RowMatrixF none(x.cols, 0);
  for (int start = 0; start < (k > 1 ? kStarts : 1); ++start) {
    std::vector<RowMatrixF> bases;
    if (start == 0) {
      bases = seed_blocks(clustering, x, k, block, seed);
    } else {
      // Two passes: the common directions need not be exact, only most of them removed.
      const RowMatrixF common = start == 2 ? clustering.top_of_all(2, seed + 555) : none;
      bases = seed_bases(clustering, x, k, neighbours, start, seed, common);
    }
    SubspaceClustering::Refined fit = clustering.refine(bases, kClusterRounds, seed + 1000 * start);
    // A later start must do clearly better: starts that found the same subspaces (in another order)
    // differ in their last bits, and the choice between them must not follow the products' rounding.
    if (best.empty() || clustering.clearly_less(fit.left, best_fit.left)) best = std::move(bases), best_fit = std::move(fit);
  }
  if (!best_fit.settled) best_fit = clustering.refine(best, kKeptRounds, seed + 5555, &best_fit);
  clustering.polish(best, best_fit, seed + 7777);
  return best;
}

}  // namespace moss::kernels
