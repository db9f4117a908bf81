// The device's diagonal-path theta fit and column scales (kernels/cuda/theta_diagonal.h, plain C++
// that mos_kernels.cu and the CPU encoder both compile) against independent truths: the general
// objective of rotation.h (r x r matrices, LDLT solve) maximised by the generic line search, and
// rotation.cpp's U(theta) (second order, then Newton-Schulz on the actual U^T U).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "moss/kernels/rotation.h"
#include "theta_diagonal.h"

namespace mk = moss::kernels;
namespace cu = moss::kernels::cuda;

namespace {
// A block's sample projections [P0 | P1] (n x 2r) with P1 correlated to P0 column by column, so that
// rotating towards W captures more energy, and lambda = diag(W^T W) > 0 with sum 1 (||W||_F = 1).
struct Sample {
  std::vector<double> p0, p1, lambda;
};

Sample draw(int n, int r, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g;
  std::uniform_real_distribution<double> u(0.05, 1.0);
  Sample s{std::vector<double>(static_cast<std::size_t>(n * r)), std::vector<double>(static_cast<std::size_t>(n * r)),
           std::vector<double>(static_cast<std::size_t>(r))};
  std::vector<double> scale(static_cast<std::size_t>(r)), corr(static_cast<std::size_t>(r));
  double total = 0;
  for (int q = 0; q < r; ++q) {
    scale[q] = std::pow(q + 1.0, -0.8), corr[q] = g(rng), s.lambda[q] = u(rng);
    total += s.lambda[q];
  }
  for (double& l : s.lambda) l /= total;
  for (int i = 0; i < n; ++i)
    for (int q = 0; q < r; ++q) {
      const double a = scale[q] * g(rng);
      s.p0[i * r + q] = static_cast<float>(a);  // fp32 projections, as the device hands them over
      s.p1[i * r + q] = static_cast<float>(corr[q] * a + 0.3 * scale[q] * g(rng));
    }
  return s;
}

std::vector<cu::ColumnStat> column_stats(const Sample& s, int n, int r) {
  std::vector<cu::ColumnStat> st(static_cast<std::size_t>(r), cu::ColumnStat{0, 0, 0});
  for (int i = 0; i < n; ++i)
    for (int q = 0; q < r; ++q) {
      const double x = s.p0[i * r + q], y = s.p1[i * r + q];
      st[q].g00 += x * x, st[q].g01 += x * y, st[q].g11 += y * y;
    }
  return st;
}
}  // namespace

TEST(ThetaDiagonal, TheSharedStepsFindTheGeneralObjectivesTheta) {
  // With W^T W diagonal, rotation.h's objective tr((U^T U)^-1 U^T X^T X U) reduces to the column
  // terms of theta_diagonal.h. Same line search, so the same theta up to summation order; where a
  // rounding flips a comparison of the line search the two thetas must still be equally good.
  int same = 0, moved = 0, cases = 0;
  for (int r : {1, 6, 16, 40, 100})
    for (int n : {3, 64, 512})
      for (std::uint64_t seed = 1; seed <= 6; ++seed) {
        const Sample s = draw(n, r, seed * 131 + static_cast<std::uint64_t>(r));
        const std::vector<cu::ColumnStat> st = column_stats(s, n, r);
        const float theta = cu::fit_theta_columns(st.data(), s.lambda.data(), r, mk::kMaxTheta);
        const int w = 2 * r;  // the Gram matrix of [P0 | P1] and D = diag(lambda)
        std::vector<double> gram(static_cast<std::size_t>(w * w), 0.0), dg(static_cast<std::size_t>(r * r), 0.0);
        for (int i = 0; i < n; ++i)
          for (int a = 0; a < w; ++a)
            for (int b = 0; b < w; ++b) {
              const double va = a < r ? s.p0[i * r + a] : s.p1[i * r + a - r];
              const double vb = b < r ? s.p0[i * r + b] : s.p1[i * r + b - r];
              gram[a * w + b] += va * vb;
            }
        for (int q = 0; q < r; ++q) dg[q * r + q] = s.lambda[q];
        const float expect = mk::fit_theta(gram, dg, 1, r)[0];
        const double f_ours = mk::theta_objective(gram, dg, std::vector<float>{theta}, 1, r);
        const double f_ref = mk::theta_objective(gram, dg, std::vector<float>{expect}, 1, r);
        const double f_zero = mk::theta_objective(gram, dg, std::vector<float>{0.0f}, 1, r);
        SCOPED_TRACE("r " + std::to_string(r) + " n " + std::to_string(n) + " seed " + std::to_string(seed));
        EXPECT_LE(std::abs(theta), mk::kMaxTheta);
        EXPECT_GE(f_ours, f_ref - 1e-9 * std::abs(f_ref));
        EXPECT_GE(f_ours, f_zero);  // theta = 0 (plain PCA) is never beaten by a worse theta
        // Where summation order flips a step the thetas differ by at most the line search's resolution.
        EXPECT_NEAR(theta, expect, 2e-3);
        same += theta == expect;
        moved += theta != 0.0f;
        ++cases;
      }
  std::cout << cases << " blocks: theta identical in " << same << ", non-zero in " << moved << '\n';
  EXPECT_GE(same, cases * 9 / 10);
  EXPECT_GE(moved, cases / 2) << "the data must make theta move";
}

TEST(ThetaDiagonal, ZeroAndDegenerateSamplesKeepPlainPca) {
  // No rows, or P1 = 0 with every lambda positive: turning only loses energy, theta stays 0 and U = Ubar.
  const double lambda[3] = {0.5, 0.3, 0.2};
  const cu::ColumnStat none[3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
  EXPECT_EQ(cu::fit_theta_columns(none, lambda, 3, mk::kMaxTheta), 0.0f);
  const cu::ColumnStat flat[3] = {{4, 0, 0}, {2, 0, 0}, {1, 0, 0}};
  EXPECT_EQ(cu::fit_theta_columns(flat, lambda, 3, mk::kMaxTheta), 0.0f);
  const cu::ColumnScale c = cu::diagonal_scale(0.5, 0.0f);
  EXPECT_EQ(c.a, 1.0f);
  EXPECT_EQ(c.b, 0.0f);
}

TEST(ThetaDiagonal, ScalesFormTheReferenceRotation) {
  // Ubar (d x r) and W = V diag(sqrt(lambda)) with [Ubar V] orthonormal: W^T W = diag(lambda), Ubar^T W
  // = 0. Ubar diag(a) + W diag(b) must be rotation.cpp's U(theta) for every theta up to kMaxTheta.
  const int d = 48, r = 5;
  std::mt19937_64 rng(17);
  std::normal_distribution<double> g;
  std::vector<double> q(static_cast<std::size_t>(d * 2 * r));
  for (double& v : q) v = g(rng);
  for (int j = 0; j < 2 * r; ++j) {  // Gram-Schmidt, twice for accuracy
    for (int pass = 0; pass < 2; ++pass)
      for (int k = 0; k < j; ++k) {
        double dot = 0;
        for (int i = 0; i < d; ++i) dot += q[i * 2 * r + j] * q[i * 2 * r + k];
        for (int i = 0; i < d; ++i) q[i * 2 * r + j] -= dot * q[i * 2 * r + k];
      }
    double norm = 0;
    for (int i = 0; i < d; ++i) norm += q[i * 2 * r + j] * q[i * 2 * r + j];
    for (int i = 0; i < d; ++i) q[i * 2 * r + j] /= std::sqrt(norm);
  }
  const double lambda[r] = {0.4, 0.25, 0.2, 0.1, 0.05};
  std::vector<float> ubar(static_cast<std::size_t>(d * r)), w(static_cast<std::size_t>(d * r));
  for (int i = 0; i < d; ++i)
    for (int p = 0; p < r; ++p) {
      ubar[i * r + p] = static_cast<float>(q[i * 2 * r + p]);
      w[i * r + p] = static_cast<float>(q[i * 2 * r + r + p] * std::sqrt(lambda[p]));
    }
  for (float theta : {-0.75f, -0.31f, 0.0f, 0.12f, 0.5f, 0.75f}) {
    const std::vector<float> ref = mk::rotated_basis(ubar, w, std::vector<float>{theta}, d, r);
    double num = 0, den = 0;
    for (int p = 0; p < r; ++p) {
      const cu::ColumnScale c = cu::diagonal_scale(lambda[p], theta);
      for (int i = 0; i < d; ++i) {
        const double u = static_cast<double>(ubar[i * r + p]) * c.a + static_cast<double>(w[i * r + p]) * c.b;
        num += std::pow(u - ref[i * r + p], 2);
        den += std::pow(ref[i * r + p], 2);
      }
    }
    EXPECT_LT(std::sqrt(num / den), 2e-6) << "theta " << theta;
  }
}

namespace {
/// theta from maximise_theta_batched<kBatch> over the column terms summed in column order, as
/// fit_theta_columns sums them; also counts the rounds.
template <int kBatch>
float batched_theta(const std::vector<cu::ColumnStat>& st, const double* lambda, float max_theta, int& rounds) {
  rounds = 0;
  auto evaluate = [&](const float* trials, int n, cu::ObjectiveTriple* out) {
    ++rounds;
    for (int j = 0; j < n; ++j) {
      const float at = trials[j], plus = at + 1e-3f, minus = at - 1e-3f;
      out[j] = cu::ObjectiveTriple{0, 0, 0};
      for (std::size_t p = 0; p < st.size(); ++p) {
        out[j].at += cu::diagonal_term(st[p], lambda[p], at);
        out[j].plus += cu::diagonal_term(st[p], lambda[p], plus);
        out[j].minus += cu::diagonal_term(st[p], lambda[p], minus);
      }
    }
  };
  return cu::maximise_theta_batched<kBatch>(evaluate, max_theta);
}
}  // namespace

TEST(ThetaDiagonal, BatchedRoundsTakeTheSerialLineSearchsSteps) {
  // The device's rounds of independent trials (theta_diagonal_kernel) must end where the serial line
  // search of the CPU encoder ends, bit for bit, for any batch size: over random samples, with theta
  // clamped (a small max_theta), with a gradient of zero, and on flat samples.
  int cases = 0, moved = 0, clamped = 0, fewer_rounds = 0;
  for (int r : {1, 6, 16, 40, 100})
    for (int n : {3, 64, 512})
      for (std::uint64_t seed = 1; seed <= 4; ++seed)
        for (float max_theta : {mk::kMaxTheta, 2e-3f}) {
          const Sample s = draw(n, r, seed * 977 + static_cast<std::uint64_t>(r * n));
          const std::vector<cu::ColumnStat> st = column_stats(s, n, r);
          const float serial = cu::fit_theta_columns(st.data(), s.lambda.data(), r, max_theta);
          int rounds1 = 0, rounds3 = 0, rounds8 = 0;
          EXPECT_EQ(batched_theta<1>(st, s.lambda.data(), max_theta, rounds1), serial) << "r " << r << " n " << n << " seed " << seed;
          EXPECT_EQ(batched_theta<3>(st, s.lambda.data(), max_theta, rounds3), serial) << "r " << r << " n " << n << " seed " << seed;
          EXPECT_EQ(batched_theta<8>(st, s.lambda.data(), max_theta, rounds8), serial) << "r " << r << " n " << n << " seed " << seed;
          EXPECT_LE(rounds8, rounds3);
          EXPECT_LE(rounds3, rounds1);
          ++cases;
          moved += serial != 0.0f;
          clamped += std::fabs(serial) == max_theta;
          fewer_rounds += rounds8 < rounds1;
        }
  // The cases exercise what they are meant to: most move theta, some hit the clamp, rounds save depth.
  EXPECT_GT(moved, cases / 2);
  EXPECT_GT(clamped, 0);
  EXPECT_GT(fewer_rounds, cases / 2);
  const double lambda[3] = {0.5, 0.3, 0.2};
  int rounds = 0;
  const std::vector<cu::ColumnStat> none(3, cu::ColumnStat{0, 0, 0}), flat{{4, 0, 0}, {2, 0, 0}, {1, 0, 0}};
  EXPECT_EQ(batched_theta<8>(none, lambda, mk::kMaxTheta, rounds), 0.0f);
  EXPECT_EQ(rounds, 1);  // the gradient at 0 is zero: no trial
  EXPECT_EQ(batched_theta<8>(flat, lambda, mk::kMaxTheta, rounds), 0.0f);
}
