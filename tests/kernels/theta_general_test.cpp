// mos's general theta fit on the device (several rotations): the kernels of
// kernels/cuda/theta_general.h, their own source under the CPU emulation of warp_emulation.h, driven
// by cpu/device_theta_fit.cpp. Against independent truths: rotation.h's theta_objective (the same
// function formed from the Gram blocks with r x r products and an LDLT, not the sample projections),
// its finite differences, and the CPU encoder's theta (fit_block_theta, Eigen, through
// MosBlockMixer).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "warp_emulation.h"
// warp_emulation.h first: it defines what the kernels' source takes from CUDA.
#include "codec_test_support.h"
#include "device_theta_fit.h"
#include "moss/kernels/bf16.h"
#include "moss/kernels/mos_block_mixer.h"
#include "moss/kernels/rotation.h"
#include "theta_general.h"

namespace {
namespace cu = moss::kernels::cuda;
namespace emu = moss::kernels::emulation;
namespace mk = moss::kernels;

/// The steps (LaunchedThetaSteps: the launch geometry of mos_kernels.cu), each a launch under the
/// emulation; "device" memory is host memory. `downloads` counts the read-backs.
auto emulated_steps(int& downloads) {
  return cu::LaunchedThetaSteps(
      [](dim3 grid, auto kernel, auto... args) { emu::launch_blocks(grid, dim3{cu::kFitThreads, 1, 1}, kernel, args...); },
      [&downloads](double* host, const double* device, std::size_t count) {
        std::copy(device, device + count, host);
        ++downloads;
      });
}

/// P^T P ((m + 1) r square, double): theta_objective's Gram blocks.
std::vector<double> gram_of(const std::vector<float>& p, std::int64_t n, std::int64_t w) {
  std::vector<double> g(static_cast<std::size_t>(w * w), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t a = 0; a < w; ++a)
      for (std::int64_t b = 0; b < w; ++b) g[a * w + b] += static_cast<double>(p[i * w + a]) * p[i * w + b];
  return g;
}

TEST(ThetaGeneral, ObjectiveGradientAndHessianAreTheGeneralObjectives) {
  // Random sample projections P (n x (m + 1) r) and a positive semi-definite direction Gram matrix
  // D = G^T G: the objective is the same function of P and D whatever they came from. Shapes: a
  // partial 16 x 16 tile, a rank above a warp, rows in two blocks of rows, one row.
  struct Shape {
    std::int64_t n;
    int m, r;
  };
  const Shape all_shapes[] = {{13, 2, 6}, {6, 3, 33}, {1, 2, 17}};
  const Shape race_shapes[] = {{4, 2, 33}};  // under ThreadSanitizer: every step once, lanes past 32
  const auto shapes = emu::kRacecheck ? std::span<const Shape>(race_shapes) : std::span<const Shape>(all_shapes);
  for (const Shape& sh : shapes) {
    SCOPED_TRACE("n " + std::to_string(sh.n) + " m " + std::to_string(sh.m) + " r " + std::to_string(sh.r));
    const int m = sh.m, r = sh.r;
    const std::int64_t w = static_cast<std::int64_t>(m + 1) * r, nd = static_cast<std::int64_t>(m) * r;
    std::mt19937_64 rng(static_cast<std::uint64_t>(sh.n * 131 + m * 17 + r));
    std::normal_distribution<float> g;
    std::vector<float> p(static_cast<std::size_t>(sh.n * w));
    for (std::int64_t i = 0; i < sh.n; ++i)
      for (std::int64_t c = 0; c < w; ++c) p[i * w + c] = g(rng) * (c < r ? 1.0f : 0.3f) / std::sqrt(1.0f + static_cast<float>(c % r));
    const std::int64_t depth = nd + 5;
    std::vector<float> gen(static_cast<std::size_t>(depth * nd));
    for (float& v : gen) v = 0.2f * g(rng);
    std::vector<float> d(static_cast<std::size_t>(nd * nd));
    std::vector<double> d64(d.size());
    for (std::int64_t a = 0; a < nd; ++a)
      for (std::int64_t b = 0; b < nd; ++b) {
        double s = 0;
        for (std::int64_t k = 0; k < depth; ++k) s += static_cast<double>(gen[k * nd + a]) * gen[k * nd + b];
        d[a * nd + b] = static_cast<float>(s);
      }
    for (std::size_t i = 0; i < d.size(); ++i) d64[i] = d[i];
    const std::vector<double> gram = gram_of(p, sh.n, w);
    auto truth = [&](const std::vector<float>& t) { return mk::theta_objective(gram, d64, t, m, r); };

    int downloads = 0;
    auto steps = emulated_steps(downloads);
    std::vector<double> scratch(static_cast<std::size_t>(mk::cpu::device_theta_scratch(sh.n, m, r)), -1.0);
    mk::cpu::DeviceGeneralObjective obj(steps, p.data(), sh.n, d.data(), m, r, scratch.data());
    std::vector<std::vector<float>> thetas = {std::vector<float>(static_cast<std::size_t>(m), 0.0f)};
    for (float scale : {0.05f, 0.4f}) {
      if (emu::kRacecheck && scale != 0.4f) continue;
      std::vector<float> t(static_cast<std::size_t>(m));
      for (float& v : t) v = scale * g(rng);
      thetas.push_back(t);
    }
    for (const auto& t : thetas) {
      const double want = truth(t), got = obj.value(t);
      EXPECT_NEAR(got, want, 1e-11 * std::abs(want)) << "objective at theta[0] = " << t[0];
      // The gradient against central differences of theta_objective (truncation ~h^2).
      std::vector<double> grad(static_cast<std::size_t>(m));
      obj.gradient(t, grad);
      double scale = 0;
      for (double v : grad) scale = std::max(scale, std::abs(v));
      for (int k = 0; k < m; ++k) {
        auto tp = t, tm = t;
        tp[static_cast<std::size_t>(k)] += 1e-3f;
        tm[static_cast<std::size_t>(k)] -= 1e-3f;
        const double h = static_cast<double>(tp[static_cast<std::size_t>(k)]) - tm[static_cast<std::size_t>(k)];
        EXPECT_NEAR(grad[static_cast<std::size_t>(k)], (truth(tp) - truth(tm)) / h, 1e-4 * scale + 1e-9 * std::abs(want))
            << "gradient " << k << " at theta[0] = " << t[0];
      }
    }
    // The Hessian at zero against second differences (the odd terms cancel; quartic ones ~h^2).
    const std::vector<double> hess = obj.hessian_at_zero();
    double hmax = 0;
    for (int i = 0; i < m; ++i) hmax = std::max(hmax, std::abs(hess[static_cast<std::size_t>(i * m + i)]));
    const float hs = 1e-2f;
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < m; ++j) {
        auto at = [&](float si, float sj) {
          std::vector<float> t(static_cast<std::size_t>(m), 0.0f);
          t[static_cast<std::size_t>(i)] += si * hs;
          t[static_cast<std::size_t>(j)] += sj * hs;
          return truth(t);
        };
        const double fd = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4.0 * hs * hs);
        EXPECT_NEAR(hess[static_cast<std::size_t>(i * m + j)], fd, 1e-3 * hmax + 1e-9) << "Hessian " << i << ", " << j;
      }
    EXPECT_GT(downloads, 0);
  }
}

TEST(ThetaGeneral, DeviceFitGivesTheEncodersTheta) {
  // fit_codec states with 2 and 3 rotations on K-like mixtures; a block's sample projections as the
  // encoder forms them (the wire-rounded tokens times [Ubar W_1 .. W_m]); the device's theta against
  // fit_block_theta's. The sums run in another order (tiles, trees, a column-wise Cholesky), so theta
  // must be the encoder's or, where a rounding flips a comparison of the line search, no worse by
  // 1e-9 of the objective.
  struct Case {
    int m, r;
    std::int64_t dim, n;
    double spread;
  };
  // Under ThreadSanitizer the test above launches every step; this one would only repeat them.
  if (emu::kRacecheck) GTEST_SKIP() << "the race check runs every step in ObjectiveGradientAndHessianAreTheGeneralObjectives";
  const Case cases[] = {{2, 6, 72, 24, 0.8}, {3, 18, 128, 10, 0.1}};
  int same = 0, moved = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE("m " + std::to_string(c.m) + " r " + std::to_string(c.r) + " n " + std::to_string(c.n));
    const mk::Matrix warm = mk::test::mixture(1024, c.dim, 3, c.r, c.spread, 100, 61 + c.r);
    mk::Matrix x = mk::test::mixture(c.n, c.dim, 3, c.r, c.spread, 100, 63 + c.r);
    mk::CodecConfig cfg = mk::test::config(mk::Method::mos, c.r);
    cfg.rotations = c.m;
    const mk::CodecState s = mk::fit_codec(cfg, warm.view(), 2);
    mk::round_bf16_finite(x.data.data(), static_cast<std::int64_t>(x.data.size()));
    const mk::Matrix p = mk::test::product(x, mk::test::mos_blocks(s));
    std::vector<float> want, mix;  // MosBlockMixer: fit_block_theta, what the GPU encode ran on the host
    mk::MosBlockMixer(s).fit(p.data.data(), c.n, want, mix);

    int downloads = 0;
    auto steps = emulated_steps(downloads);
    std::vector<double> scratch(static_cast<std::size_t>(mk::cpu::device_theta_scratch(c.n, c.m, c.r)), -1.0);
    const std::vector<float> got =
        mk::cpu::fit_block_theta_on_device(steps, p.data.data(), c.n, s.direction_gram.data(), c.m, c.r, scratch.data(),
                                           mk::cpu::theta_traces(s.direction_gram, c.m, c.r));
    ASSERT_EQ(got.size(), want.size());
    const std::vector<double> gram = gram_of(p.data, c.n, static_cast<std::int64_t>(c.m + 1) * c.r);
    const std::vector<double> d64(s.direction_gram.begin(), s.direction_gram.end());
    const double f_want = mk::theta_objective(gram, d64, want, c.m, c.r), f_got = mk::theta_objective(gram, d64, got, c.m, c.r);
    same += got == want;
    moved += std::any_of(want.begin(), want.end(), [](float v) { return v != 0.0f; });
    EXPECT_GE(f_got, f_want - 1e-9 * std::abs(f_want)) << "theta[0] " << got[0] << " against " << want[0];
    for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-3 + 1e-2 * std::abs(want[i])) << "theta " << i;
  }
  // The cases exercise the search (theta moves from zero) and mostly agree bit for bit.
  EXPECT_EQ(moved, static_cast<int>(std::size(cases)));
  EXPECT_GE(2 * same, static_cast<int>(std::size(cases)));
}

TEST(ThetaGeneral, MixingMatrixOnTheDeviceIsTheMixers) {
  // S = [K C; theta_i C] formed on the device (double) against MosBlockMixer::mix (the host's fp32
  // rotation_factors), both as the bf16 hi + lo parts the device's U = [W W] [S_hi; S_lo] product
  // takes: hi + lo keeps ~16 bits, so the two may differ by a unit of lo (2^-16 of an entry) where the
  // fp32 and double factors round apart. Ranks of one and three 16 x 16 tiles; a theta of the
  // search's size and one at the clamp.
  struct Case {
    int m, r;
    std::vector<float> theta;
  };
  const Case all_cases[] = {{2, 6, {0.3f, -0.2f}}, {3, 33, {0.05f, 0.75f, -0.4f}}};
  const Case race_cases[] = {{2, 17, {0.05f, -0.75f}}};
  const auto cases = emu::kRacecheck ? std::span<const Case>(race_cases) : std::span<const Case>(all_cases);
  for (const Case& c : cases) {
    SCOPED_TRACE("m " + std::to_string(c.m) + " r " + std::to_string(c.r));
    const mk::Matrix warm = mk::test::mixture(512, 96, 3, c.r, 0.5, 100, 71 + c.r);
    mk::CodecConfig cfg = mk::test::config(mk::Method::mos, c.r);
    cfg.rotations = c.m;
    const mk::CodecState s = mk::fit_codec(cfg, warm.view(), 2);
    std::vector<float> mix;
    mk::MosBlockMixer(s).mix(c.theta, mix);
    const std::vector<std::uint16_t> want = mk::to_bf16_hi_lo(mix.data(), mix.size());

    int downloads = 0;
    auto steps = emulated_steps(downloads);
    std::vector<double> scratch(static_cast<std::size_t>(mk::cpu::device_theta_scratch(1, c.m, c.r)), -1.0);
    std::vector<std::uint16_t> got(want.size(), 0xffff);
    mk::cpu::mixing_bits_on_device(steps, c.theta, s.direction_gram.data(), s.basis_gram.data(), c.m, c.r, scratch.data(), got.data());
    const std::size_t n = mix.size();
    double scale = 0, worst = 0;
    for (float v : mix) scale = std::max(scale, static_cast<double>(std::abs(v)));
    for (std::size_t i = 0; i < n; ++i) {
      const double a = static_cast<double>(mk::bf16_bits_to_float(got[i])) + mk::bf16_bits_to_float(got[n + i]);
      const double b = static_cast<double>(mk::bf16_bits_to_float(want[i])) + mk::bf16_bits_to_float(want[n + i]);
      worst = std::max(worst, std::abs(a - b));
    }
    EXPECT_LE(worst, 3e-5 * scale) << "largest |S| " << scale;
    EXPECT_EQ(downloads, 0);  // stream-ordered: nothing waits for the host
  }
}

TEST(ThetaGeneral, RefusesMoreRotationsThanTheLaunchCarries) {
  int downloads = 0;
  auto steps = emulated_steps(downloads);
  std::vector<float> p(4), d(4);
  std::vector<double> scratch(64);
  const std::vector<double> traces(static_cast<std::size_t>(cu::kDeviceThetaRotations + 1) * (cu::kDeviceThetaRotations + 1), 0.0);
  EXPECT_THROW(mk::cpu::fit_block_theta_on_device(steps, p.data(), 1, d.data(), cu::kDeviceThetaRotations + 1, 1, scratch.data(), traces),
               std::invalid_argument);
  EXPECT_THROW(mk::cpu::fit_block_theta_on_device(steps, p.data(), 1, d.data(), 0, 1, scratch.data(), traces), std::invalid_argument);
  EXPECT_EQ(downloads, 0);
}
}  // namespace
