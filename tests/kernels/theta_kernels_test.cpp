// mos's theta kernels on the diagonal path (kernels/cuda/theta_kernels.h: the column statistics over
// the device, then the line search in rounds of parallel trials in one block), their own source run
// on the CPU under warp_emulation.h with whole blocks of threads, against the CPU encoder: column
// statistics summed in row order and its serial line search (fit_theta_columns). The kernels add the
// same terms in another order (row partitions, warp trees), so theta must be the encoder's or, where
// a rounding flips a comparison of the line search, no worse by 1e-9 of the objective.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "warp_emulation.h"
// warp_emulation.h first: it defines what the kernels' source takes from CUDA.
#include "moss/kernels/rotation.h"
#include "theta_kernels.h"

namespace {
namespace cu = moss::kernels::cuda;
namespace emu = moss::kernels::emulation;

double objective(const std::vector<cu::ColumnStat>& st, const std::vector<double>& lambda, float theta) {
  double f = 0;
  for (std::size_t q = 0; q < st.size(); ++q) f += cu::diagonal_term(st[q], lambda[q], theta);
  return f;
}

/// What launch_theta_diagonal computes, by its two kernels under the emulation: the column statistics
/// of the sample projections p (rows x [P0 P1], 2 rank wide) in `stats` (3 per column), theta, and the
/// columns' scales a then b.
struct DiagonalRun {
  std::vector<double> scratch;
  const double* stats = nullptr;
  float theta = 99.0f;
  std::vector<float> scales;
};

DiagonalRun run_diagonal(const std::vector<float>& p, std::int64_t rows, int rank, const std::vector<double>& lambda) {
  DiagonalRun r;
  r.scratch.assign(static_cast<std::size_t>(3 * (cu::kThetaStatParts + 1) * rank), -1.0);
  double* partials = r.scratch.data();
  double* stats = partials + static_cast<std::ptrdiff_t>(3 * cu::kThetaStatParts * rank);
  emu::launch_blocks(dim3{static_cast<unsigned>((rank + 31) / 32), cu::kThetaStatParts / cu::kStatThreadsY, 1}, dim3{32, cu::kStatThreadsY, 1},
                     cu::theta_stats_kernel, static_cast<const float*>(p.data()), rows, rank, partials);
  r.scales.assign(static_cast<std::size_t>(2 * rank), -9.0f);
  emu::launch_blocks(dim3{1, 1, 1}, dim3{cu::kThetaThreads, 1, 1}, cu::theta_diagonal_kernel, static_cast<const double*>(partials), rank,
                     static_cast<const double*>(lambda.data()), stats, moss::kernels::kMaxTheta, &r.theta, r.scales.data());
  r.stats = stats;
  return r;
}

TEST(ThetaKernels, StatisticsAndRoundsGiveTheEncodersTheta) {
  int cases = 0, same = 0, moved = 0, interior = 0, deep = 0;
  // Ranks below, at and above a warp and the block's 256 threads; no rows, one row, partial partitions.
  const std::pair<int, int> all_shapes[] = {{512, 16}, {37, 6}, {1, 40}, {0, 8}, {300, 100}, {512, 256}, {64, 300}, {200, 1}};
  // Under ThreadSanitizer: a partial warp of columns, several column blocks, more than 256 columns.
  const std::pair<int, int> race_shapes[] = {{37, 6}, {300, 100}, {64, 300}};
  const auto shapes = emu::kRacecheck ? std::span<const std::pair<int, int>>(race_shapes) : std::span<const std::pair<int, int>>(all_shapes);
  // P1 strongly correlated with P0 and as large: the objective grows with |theta| up to the clamp
  // (few trials per step). P1 = X W small against P0, as on real activations (W's directions carry
  // less energy than Ubar's, ||W_q||^2 = lambda_q) and weakly correlated: an interior maximum
  // (|theta| 0.02 to 0.23 here), reached after halvings of the step: 6 to 13 rounds, trials other
  // than a round's first taken.
  for (const auto& [rows, rank] : shapes)
    for (const bool strong : {true, false}) {
      const float strength = strong ? 1.0f : 0.05f;
      const std::uint64_t seed = strong ? 1 : 2;
      std::mt19937_64 rng(seed * 7919 + static_cast<std::uint64_t>(rows * 1000 + rank));
      std::normal_distribution<float> g;
      std::uniform_real_distribution<double> u(0.05, 1.0);
      const std::int64_t ld = 2 * static_cast<std::int64_t>(rank);
      std::vector<float> p(static_cast<std::size_t>(std::max<std::int64_t>(1, rows * ld)));
      std::vector<double> lambda(static_cast<std::size_t>(rank));
      std::vector<float> corr(static_cast<std::size_t>(rank));
      double total = 0;
      for (int q = 0; q < rank; ++q) corr[q] = strength * g(rng), lambda[q] = u(rng), total += lambda[q];
      for (double& l : lambda) l /= total;
      for (std::int64_t i = 0; i < rows; ++i)
        for (int q = 0; q < rank; ++q) {
          const float a = g(rng) / std::sqrt(1.0f + q);
          const float b = corr[q] * a + 0.3f * g(rng) / std::sqrt(1.0f + q);
          p[i * ld + q] = a, p[i * ld + rank + q] = strong ? b : static_cast<float>(std::sqrt(lambda[q])) * b;
        }
      // The CPU encoder's statistics (row order) and theta.
      std::vector<cu::ColumnStat> ref(static_cast<std::size_t>(rank), cu::ColumnStat{0, 0, 0});
      for (std::int64_t i = 0; i < rows; ++i)
        for (int q = 0; q < rank; ++q) {
          const double x = p[i * ld + q], y = p[i * ld + rank + q];
          ref[q].g00 += x * x, ref[q].g01 += x * y, ref[q].g11 += y * y;
        }
      const float want = cu::fit_theta_columns(ref.data(), lambda.data(), rank, moss::kernels::kMaxTheta);
      int rounds = 0;  // of the search in rounds of 8 on the host, to know what the case exercises
      auto count = [&](const float* trials, int n, cu::ObjectiveTriple* out) {
        ++rounds;
        for (int j = 0; j < n; ++j) {
          const float at = trials[j];
          out[j] = cu::ObjectiveTriple{objective(ref, lambda, at), objective(ref, lambda, at + 1e-3f), objective(ref, lambda, at - 1e-3f)};
        }
      };
      (void)cu::maximise_theta_batched<8>(count, moss::kernels::kMaxTheta);
      interior += want != 0.0f && std::fabs(want) < moss::kernels::kMaxTheta;
      deep += rounds >= 4;

      // The kernels, as launch_theta_diagonal runs them: partials, then their sums after them.
      const DiagonalRun run = run_diagonal(p, rows, rank, lambda);
      const double* stats = run.stats;
      const float theta = run.theta;
      const std::vector<float>& scales = run.scales;

      std::vector<cu::ColumnStat> got(static_cast<std::size_t>(rank));
      for (int q = 0; q < rank; ++q) {
        got[q] = cu::ColumnStat{stats[3 * q], stats[3 * q + 1], stats[3 * q + 2]};
        const double scale = 1e-12 * (1.0 + ref[q].g00 + ref[q].g11);
        EXPECT_NEAR(got[q].g00, ref[q].g00, scale) << "rows " << rows << " rank " << rank << " column " << q;
        EXPECT_NEAR(got[q].g01, ref[q].g01, scale) << "rows " << rows << " rank " << rank << " column " << q;
        EXPECT_NEAR(got[q].g11, ref[q].g11, scale) << "rows " << rows << " rank " << rank << " column " << q;
      }
      const double f_got = objective(ref, lambda, theta), f_want = objective(ref, lambda, want);
      EXPECT_TRUE(theta == want || f_got >= f_want - 1e-9 * std::fabs(f_want))
          << "rows " << rows << " rank " << rank << ": theta " << theta << " against " << want;
      for (int q = 0; q < rank; ++q) {
        const cu::ColumnScale c = cu::diagonal_scale(lambda[q], theta);
        EXPECT_EQ(scales[q], c.a) << "rank " << rank << " column " << q;
        EXPECT_EQ(scales[rank + q], c.b) << "rank " << rank << " column " << q;
      }
      ++cases;
      same += theta == want;
      moved += want != 0.0f;
    }
  std::printf("%d blocks: theta identical in %d, non-zero in %d, not clamped in %d, 4 or more rounds in %d\n", cases, same, moved,
              interior, deep);
  EXPECT_GE(same, cases - 2);  // a flipped comparison is rare
  EXPECT_GT(moved, cases / 2);
  const int at_least = emu::kRacecheck ? 2 : 6;  // of 6 or 16 blocks
  EXPECT_GE(interior, at_least);
  EXPECT_GE(deep, at_least);
}

}  // namespace

namespace {
// A state whose directions are zero (mos at rank = width, or data inside span(Ubar): fit_codec
// zeroes a direction with nothing left off Ubar): every lambda_q and every X W column is 0, the
// objective is flat. The kernels must give the CPU encoder's theta and leave U(theta) = Ubar.
TEST(ThetaKernels, ZeroDirectionsLeaveTheBasisAlone) {
  for (const int rank : {6, 40}) {
    const int rows = 100;
    const std::int64_t ld = 2 * static_cast<std::int64_t>(rank);
    std::mt19937_64 rng(static_cast<std::uint64_t>(rank));
    std::normal_distribution<float> g;
    std::vector<float> p(static_cast<std::size_t>(rows * ld), 0.0f);
    for (int i = 0; i < rows; ++i)
      for (int q = 0; q < rank; ++q) p[static_cast<std::size_t>(i * ld + q)] = g(rng);
    const std::vector<double> lambda(static_cast<std::size_t>(rank), 0.0);
    std::vector<cu::ColumnStat> ref(static_cast<std::size_t>(rank), cu::ColumnStat{0, 0, 0});
    for (int i = 0; i < rows; ++i)
      for (int q = 0; q < rank; ++q) ref[q].g00 += static_cast<double>(p[i * ld + q]) * p[i * ld + q];
    const float want = cu::fit_theta_columns(ref.data(), lambda.data(), rank, moss::kernels::kMaxTheta);
    const DiagonalRun run = run_diagonal(p, rows, rank, lambda);
    const float theta = run.theta;
    const std::vector<float>& scales = run.scales;
    EXPECT_EQ(theta, want) << "rank " << rank;
    for (int q = 0; q < rank; ++q) {
      const cu::ColumnScale c = cu::diagonal_scale(0.0, theta);
      EXPECT_EQ(scales[q], c.a) << "rank " << rank << " column " << q;
      EXPECT_EQ(scales[rank + q], c.b) << "rank " << rank << " column " << q;
      EXPECT_NEAR(scales[q], 1.0f, 1e-6f) << "U(theta) = Ubar a: a must be 1, rank " << rank << " column " << q;
    }
  }
}

TEST(ThetaKernels, RotationGivesTheGeneralUOfTheta) {
  // rotate_diagonal_kernel's U = Ubar diag(a) + W diag(b), with the theta kernel's column scales
  // (diagonal_scale), against rotation.h's general U(theta) (second order, then Newton-Schulz steps):
  // within one bf16 rounding of each value. Ubar and W are columns of a Sylvester Hadamard matrix
  // over sqrt(dim), W's scaled by s_q: exact in bf16, W orthogonal to Ubar and W^T W = diag(s_q^2)
  // exactly. Launched as launch_rotate_diagonal does, with fewer row blocks than rows.
  std::mt19937_64 rng(41);
  int checked = 0;
  for (const auto& [dim, rank] : {std::pair<int, int>{64, 5}, std::pair<int, int>{64, 20}, std::pair<int, int>{256, 100}})
    for (const float theta : {0.3f, -0.6f, 0.0f}) {
      const float unit = 1.0f / std::sqrt(static_cast<float>(dim));  // a power of two
      std::vector<double> lambda(static_cast<std::size_t>(rank));
      std::vector<float> ubar(static_cast<std::size_t>(dim * rank)), w(static_cast<std::size_t>(dim * rank));
      std::vector<std::uint16_t> wide(static_cast<std::size_t>(dim * 2 * rank));
      for (int c = 0; c < rank; ++c) {
        const float s = static_cast<float>(1 + rng() % 8) / 8.0f;  // exact in bf16
        lambda[c] = static_cast<double>(s) * s;
        for (int i = 0; i < dim; ++i) {
          const float h0 = std::popcount(static_cast<unsigned>(i & c)) % 2 == 0 ? unit : -unit;
          const float h1 = std::popcount(static_cast<unsigned>(i & (rank + c))) % 2 == 0 ? unit : -unit;
          ubar[static_cast<std::size_t>(i * rank + c)] = h0, w[static_cast<std::size_t>(i * rank + c)] = s * h1;
          wide[static_cast<std::size_t>(i * 2 * rank + c)] = moss::kernels::float_to_bf16_bits(h0);
          wide[static_cast<std::size_t>(i * 2 * rank + rank + c)] = moss::kernels::float_to_bf16_bits(s * h1);
        }
      }
      std::vector<float> scales(static_cast<std::size_t>(2 * rank));
      for (int c = 0; c < rank; ++c) {
        const cu::ColumnScale s = cu::diagonal_scale(lambda[c], theta);
        scales[c] = s.a, scales[rank + c] = s.b;
      }
      std::vector<std::uint16_t> got(static_cast<std::size_t>(dim * rank + 64), 0xdead);
      const int threads = rank < 128 ? (rank + 31) / 32 * 32 : 128;
      emu::launch_blocks(dim3{static_cast<unsigned>((rank + threads - 1) / threads), 7, 1}, dim3{static_cast<unsigned>(threads), 1, 1},
                         cu::rotate_diagonal_kernel, static_cast<const std::uint16_t*>(wide.data()), static_cast<std::int64_t>(dim), rank,
                         static_cast<const float*>(scales.data()), got.data());
      const std::vector<float> theta_v{theta};
      const std::vector<float> want = moss::kernels::rotated_basis(ubar, w, theta_v, dim, rank);
      for (int i = 0; i < dim * rank; ++i) {
        const float k = moss::kernels::bf16_bits_to_float(got[static_cast<std::size_t>(i)]), r = want[static_cast<std::size_t>(i)];
        ASSERT_LE(std::fabs(k - r), std::ldexp(std::fabs(r), -8) + 1e-6f) << "d " << dim << " r " << rank << " theta " << theta << " entry " << i;
      }
      EXPECT_TRUE(std::all_of(got.end() - 64, got.end(), [](std::uint16_t v) { return v == 0xdead; }));
      ++checked;
    }
  EXPECT_EQ(checked, 9);
}
}  // namespace
