// bf16 dot products (kernels/cpu/bf16_dot.h) against a double-precision sum of the same bf16
// values, and the encoder with them against the encoder without them (MOSS_KERNELS_SIMD=0).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bf16_dot.h"
#include "moss/kernels/bf16.h"
#include "moss/kernels/codec.h"
#include "moss/kernels/reference.h"

#include "codec_test_support.h"

namespace mk = moss::kernels;
namespace cpu = moss::kernels::cpu;

namespace {

std::vector<std::uint16_t> random_bf16(std::int64_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<std::uint16_t> v(static_cast<std::size_t>(n));
  for (auto& b : v) b = mk::float_to_bf16_bits(g(rng));
  return v;
}

/// Sets MOSS_KERNELS_SIMD for the scope, restoring what was there.
/// Sets an environment variable for a scope (the switches are read on every call).
class EnvSwitch {
 public:
  EnvSwitch(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) saved_ = old, had_ = true;
    setenv(name, value, 1);
  }
  ~EnvSwitch() {
    if (had_)
      setenv(name_.c_str(), saved_.c_str(), 1);
    else
      unsetenv(name_.c_str());
  }
  EnvSwitch(const EnvSwitch&) = delete;
  EnvSwitch& operator=(const EnvSwitch&) = delete;

 private:
  std::string name_, saved_;
  bool had_ = false;
};

/// MOSS_KERNELS_SIMD as given; with "1", every codec product runs as dots where the CPU has them
/// (MOSS_KERNELS_BF16=all), whatever this CPU's own policy: these tests are about the dots.
class SimdSwitch {
 public:
  explicit SimdSwitch(const char* value) : simd_("MOSS_KERNELS_SIMD", value), policy_("MOSS_KERNELS_BF16", "all") {}

 private:
  EnvSwitch simd_, policy_;
};

/// Row i of A (n x depth) times row j of Bt (q x depth), both bf16, in double; mag = sum |a b|.
double double_dot(const std::vector<std::uint16_t>& a, std::int64_t i, const std::vector<std::uint16_t>& bt, std::int64_t j, std::int64_t depth,
                  double& mag) {
  double sum = 0.0;
  mag = 0.0;
  for (std::int64_t k = 0; k < depth; ++k) {
    const double p = static_cast<double>(mk::bf16_bits_to_float(a[static_cast<std::size_t>(i * depth + k)])) *
                     mk::bf16_bits_to_float(bt[static_cast<std::size_t>(j * depth + k)]);
    sum += p, mag += std::abs(p);
  }
  return sum;
}

/// How many of `got` differ from `ref` by more than one bf16 step: values that go on the wire as bf16
/// may round one step (2^-7 relative at most) apart, plus the two sums' own difference on values
/// that cancel (1e-5 of ref's rms). Same sizes.
std::size_t more_than_a_bf16_step_apart(const std::vector<float>& got, const std::vector<float>& ref) {
  double rms = 0.0;
  for (const float v : ref) rms += static_cast<double>(v) * v;
  rms = std::sqrt(rms / static_cast<double>(std::max<std::size_t>(ref.size(), 1)));
  std::size_t apart = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double a = got[i], b = ref[i];
    apart += std::abs(a - b) > std::ldexp(1.0, -7) * std::max(std::abs(a), std::abs(b)) + 1e-5 * rms;
  }
  return apart;
}

}  // namespace

TEST(Bf16Dot, ToBitsIsTheWireRounding) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<std::uint32_t> bits(0, 0x7f7fffffu);  // finite, both signs below
  std::vector<float> x;
  for (int i = 0; i < 4096; ++i) {
    std::uint32_t u = bits(rng) | (i % 2 == 0 ? 0x80000000u : 0u);
    if (i % 4 == 1) u = (u & 0xffff0000u) | 0x8000u;  // exact ties: nearest even
    float f = 0.0f;
    std::memcpy(&f, &u, sizeof f);
    x.push_back(f);
  }
  std::vector<std::uint16_t> out(x.size());
  cpu::to_bf16_bits(x.data(), static_cast<std::int64_t>(x.size()), out.data());
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(out[i], mk::float_to_bf16_bits(x[i])) << "element " << i;
}

namespace {
// C (n x q, row stride ldc) against the double sum of the same bf16 products, within `additions`
// fp32 roundings of 2^-24 of the sum of |products| each; the gap after each row untouched (-7).
void expect_double_sums(const std::vector<float>& c, std::int64_t ldc, const std::vector<std::uint16_t>& a,
                        const std::vector<std::uint16_t>& bt, std::int64_t n, std::int64_t depth, std::int64_t q,
                        std::int64_t additions) {
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < q; ++j) {
      double mag = 0.0;
      const double ref = double_dot(a, i, bt, j, depth, mag);
      const double bound = static_cast<double>(additions) * std::ldexp(1.0, -24) * mag;
      ASSERT_LE(std::abs(c[static_cast<std::size_t>(i * ldc + j)] - ref), bound + 1e-30)
          << "n " << n << " depth " << depth << " q " << q << " at " << i << "," << j;
    }
    for (std::int64_t j = q; j < ldc; ++j) EXPECT_EQ(c[static_cast<std::size_t>(i * ldc + j)], -7.0f) << "gap written";
  }
}
}  // namespace

TEST(Bf16Dot, GemmMatchesADoubleSumAtEveryTailShape) {
  const SimdSwitch on("1");  // whatever the environment says: these tests are about the dots
  if (!cpu::bf16_dot_enabled()) GTEST_SKIP() << "this CPU has no AVX512-BF16 dot product: the Eigen fp32 path runs";
  // Rows and columns around the 4 x 4 block, depths around the 32-element step.
  for (std::int64_t n : {1, 3, 4, 5, 9})
    for (std::int64_t d : {1, 2, 31, 32, 33, 64, 100, 2050})
      for (std::int64_t q : {1, 3, 4, 6, 17}) {
        const auto a = random_bf16(n * d, static_cast<std::uint32_t>(n * 1000 + d));
        const auto bt = random_bf16(q * d, static_cast<std::uint32_t>(q * 7 + d));
        const std::int64_t ldc = q + 2;  // a row stride wider than q: the gap must stay untouched
        std::vector<float> c(static_cast<std::size_t>(n * ldc), -7.0f);
        cpu::bf16_gemm_nt(a.data(), nullptr, n, d, bt.data(), q, c.data(), nullptr, ldc);
        // Exact products summed in fp32: each of the 16 lanes adds ceil(d / 16) terms in turn, then 4
        // levels join the lanes; every addition rounds by at most 2^-24 of the partial sums' |p|.
        expect_double_sums(c, ldc, a, bt, n, d, q, (d + 15) / 16 + 4);
      }
}

TEST(Bf16Dot, PairGemmMatchesADoubleSumAtEveryTailShape) {
  const SimdSwitch on("1");  // whatever the environment says: these tests are about the dots
  if (!cpu::bf16_dot_supported()) GTEST_SKIP() << "this CPU has no AVX512-BF16 dot product: the Eigen fp32 path runs";
  // Rows around the 4-row block, depths odd and even, columns around the 16- and 64-column blocks.
  for (std::int64_t n : {1, 3, 4, 5})
    for (std::int64_t depth : {1, 2, 3, 16, 17, 64, 255})
      for (std::int64_t q : {1, 15, 16, 17, 63, 64, 65, 130}) {
        const auto a = random_bf16(n * depth, static_cast<std::uint32_t>(n * 100 + depth));
        const auto bt = random_bf16(q * depth, static_cast<std::uint32_t>(q * 3 + depth));  // B^T: q x depth
        const std::vector<std::uint32_t> bp = cpu::bf16_pack_pairs(bt.data(), q, depth);
        const std::int64_t ldc = q + 3;  // the gap after each row must stay untouched
        std::vector<float> c(static_cast<std::size_t>(n * ldc), -7.0f);
        cpu::bf16_gemm_pairs(a.data(), nullptr, n, depth, bp.data(), q, c.data(), nullptr, ldc);
        // One lane per output: ceil(depth / 2) pair steps, each two fp32 additions.
        expect_double_sums(c, ldc, a, bt, n, depth, q, depth + 2);
      }
}

namespace {
// Row from[i] of `full` (q columns) is row to[i] of `moved`, bit for bit (the same sums in the same
// order): what a GEMM through index lists must write.
void expect_rows_moved(const std::vector<float>& moved, const std::vector<float>& full, const std::vector<std::int64_t>& from,
                       const std::vector<std::int64_t>& to, std::int64_t q) {
  for (std::size_t i = 0; i < from.size(); ++i)
    for (std::int64_t j = 0; j < q; ++j)
      EXPECT_EQ(moved[static_cast<std::size_t>(to[i] * q + j)], full[static_cast<std::size_t>(from[i] * q + j)]) << "A row " << from[i];
}
}  // namespace

TEST(Bf16Dot, PairGemmReadsAndWritesTheIndexedRows) {
  const SimdSwitch on("1");
  if (!cpu::bf16_dot_supported()) GTEST_SKIP() << "this CPU has no AVX512-BF16 dot product: the Eigen fp32 path runs";
  const std::int64_t rows = 13, depth = 9, q = 70;
  const auto a = random_bf16(rows * depth, 4), bt = random_bf16(q * depth, 5);
  const std::vector<std::uint32_t> bp = cpu::bf16_pack_pairs(bt.data(), q, depth);
  std::vector<float> full(static_cast<std::size_t>(rows * q)), packed(static_cast<std::size_t>(7 * q), -1.0f);
  cpu::bf16_gemm_pairs(a.data(), nullptr, rows, depth, bp.data(), q, full.data(), nullptr, q);
  const std::vector<std::int64_t> from{12, 3, 7, 0, 5, 9, 1}, to{6, 0, 1, 5, 2, 4, 3};
  cpu::bf16_gemm_pairs(a.data(), from.data(), 7, depth, bp.data(), q, packed.data(), to.data(), q);
  expect_rows_moved(packed, full, from, to, q);
}

TEST(Bf16Dot, GemmReadsAndWritesTheIndexedRows) {
  const SimdSwitch on("1");  // whatever the environment says: these tests are about the dots
  if (!cpu::bf16_dot_enabled()) GTEST_SKIP() << "this CPU has no AVX512-BF16 dot product: the Eigen fp32 path runs";
  const std::int64_t rows = 11, d = 70, q = 5;
  const auto a = random_bf16(rows * d, 1), bt = random_bf16(q * d, 2);
  std::vector<float> full(static_cast<std::size_t>(rows * q));
  cpu::bf16_gemm_nt(a.data(), nullptr, rows, d, bt.data(), q, full.data(), nullptr, q);
  const std::vector<std::int64_t> picked{9, 2, 5, 10, 0, 7};  // 6 rows: a full block and a tail
  std::vector<float> c(static_cast<std::size_t>(rows * q), -1.0f);
  cpu::bf16_gemm_nt(a.data(), picked.data(), static_cast<std::int64_t>(picked.size()), d, bt.data(), q, c.data(), picked.data(), q);
  // Distinct lists: A rows 12, 3, ... into C rows 0..6 of another matrix.
  const std::int64_t more = 13;
  const auto a13 = random_bf16(more * d, 3);
  std::vector<float> full13(static_cast<std::size_t>(more * q)), packed(static_cast<std::size_t>(7 * q), -1.0f);
  cpu::bf16_gemm_nt(a13.data(), nullptr, more, d, bt.data(), q, full13.data(), nullptr, q);
  const std::vector<std::int64_t> from{12, 3, 7, 0, 5, 9, 1}, to{0, 1, 2, 3, 4, 5, 6};
  cpu::bf16_gemm_nt(a13.data(), from.data(), 7, d, bt.data(), q, packed.data(), to.data(), q);
  expect_rows_moved(packed, full13, from, to, q);
  for (std::int64_t i = 0; i < rows; ++i) {
    const bool in = std::find(picked.begin(), picked.end(), i) != picked.end();
    for (std::int64_t j = 0; j < q; ++j) {
      const float got = c[static_cast<std::size_t>(i * q + j)];
      if (in)
        EXPECT_EQ(got, full[static_cast<std::size_t>(i * q + j)]) << "row " << i;  // same block sums, same order
      else
        EXPECT_EQ(got, -1.0f) << "row " << i << " was not picked";
    }
  }
}

// Which products run as dots: MOSS_KERNELS_BF16 chooses all or the narrow encoder products (the
// default on Intel's cores, where Eigen's fp32 GEMM wins once a product is compute bound); decode
// runs as dots under `all` only; MOSS_KERNELS_SIMD=0 turns every one off.
TEST(Bf16Dot, PolicyChoosesWhichProductsRunAsDots) {
  if (!cpu::bf16_dot_supported()) {
    EXPECT_EQ(cpu::bf16_dot_policy(), cpu::Bf16Dots::off);
    EXPECT_FALSE(cpu::bf16_dots_for(1, false));
    return;
  }
  const EnvSwitch simd("MOSS_KERNELS_SIMD", "1");
  {
    const EnvSwitch narrow("MOSS_KERNELS_BF16", "narrow");
    EXPECT_EQ(cpu::bf16_dot_policy(), cpu::Bf16Dots::narrow);
    EXPECT_TRUE(cpu::bf16_dots_for(cpu::kNarrowDotColumns, false));
    EXPECT_FALSE(cpu::bf16_dots_for(cpu::kNarrowDotColumns + 1, false));
    EXPECT_FALSE(cpu::bf16_dots_for(16, true));
  }
  {
    const EnvSwitch all("MOSS_KERNELS_BF16", "all");
    EXPECT_EQ(cpu::bf16_dot_policy(), cpu::Bf16Dots::all);
    EXPECT_TRUE(cpu::bf16_dots_for(4096, false));
    EXPECT_TRUE(cpu::bf16_dots_for(4096, true));
    const EnvSwitch off("MOSS_KERNELS_SIMD", "0");
    EXPECT_EQ(cpu::bf16_dot_policy(), cpu::Bf16Dots::off);
    EXPECT_FALSE(cpu::bf16_dots_for(1, false));
  }
  {
    const EnvSwitch off("MOSS_KERNELS_BF16", "off");
    EXPECT_EQ(cpu::bf16_dot_policy(), cpu::Bf16Dots::off);
  }
  const EnvSwitch automatic("MOSS_KERNELS_BF16", "");  // no value: the CPU's own policy
  EXPECT_EQ(cpu::bf16_dot_policy(), __builtin_cpu_is("amd") ? cpu::Bf16Dots::all : cpu::Bf16Dots::narrow);
}

TEST(Bf16Dot, SwitchedOffByMossKernelsSimd) {
  const SimdSwitch off("0");
  EXPECT_FALSE(cpu::bf16_dot_enabled());
  // The switch is the encoder's choice; the kernel itself only needs the instructions.
  const std::vector<std::uint16_t> one{0x3f80};  // 1.0
  float c = 0.0f;
  if (cpu::bf16_dot_supported()) {
    cpu::bf16_gemm_nt(one.data(), nullptr, 1, 1, one.data(), 1, &c, nullptr, 1);
    EXPECT_EQ(c, 1.0f);
  } else {
    EXPECT_THROW(cpu::bf16_gemm_nt(one.data(), nullptr, 1, 1, one.data(), 1, &c, nullptr, 1), std::logic_error);
  }
}

TEST(Bf16Dot, EncoderGivesTheFp32PathsCoefficientsAndRoutes) {
  const SimdSwitch on("1");  // whatever the environment says: these tests are about the dots
  if (!cpu::bf16_dot_enabled()) GTEST_SKIP() << "this CPU has no AVX512-BF16 dot product: the Eigen fp32 path runs";
  const mk::Matrix warm = mk::test::mixture(1024, 200, 4, 12, 2.0, 50, 11);
  const mk::Matrix x = mk::test::mixture(517, 200, 4, 12, 2.0, 50, 12);
  struct Case {
    mk::Method method;
    int rotations;
    mk::Routing routing;
    int route_block;
  };
  for (const Case& k : {Case{mk::Method::pca, 1, mk::Routing::exhaustive, 1}, Case{mk::Method::mos, 1, mk::Routing::exhaustive, 1},
                        Case{mk::Method::mos, 3, mk::Routing::exhaustive, 1}, Case{mk::Method::mos_k, 1, mk::Routing::exhaustive, 1},
                        Case{mk::Method::mos_k, 1, mk::Routing::sketch, 1}, Case{mk::Method::mos_k, 1, mk::Routing::sketch, 16}}) {
    mk::CodecConfig c = mk::test::config(k.method, 24);
    c.rotations = k.rotations, c.routing = k.routing, c.route_block_tokens = k.route_block, c.subspaces = 4;
    const mk::CodecState s = mk::fit_codec(c, warm.view(), 5);
    mk::Encoded fp32;
    {
      SimdSwitch off("0");
      fp32 = mk::encode(s, x.view());
    }
    const mk::Encoded dots = mk::encode(s, x.view());
    const std::string what = std::string(mk::method_name(k.method)) + " m " + std::to_string(k.rotations) + " block " + std::to_string(k.route_block);
    EXPECT_EQ(dots.route, fp32.route) << what;
    EXPECT_EQ(dots.packed, fp32.packed) << what;
    ASSERT_EQ(dots.theta.size(), fp32.theta.size()) << what;
    // The theta sample's products run as dots too: the same products, summed in another order.
    for (std::size_t i = 0; i < dots.theta.size(); ++i) EXPECT_NEAR(dots.theta[i], fp32.theta[i], 1e-4 * (1 + std::abs(fp32.theta[i]))) << what;
    ASSERT_EQ(dots.values.size(), fp32.values.size()) << what;
    EXPECT_EQ(more_than_a_bf16_step_apart(dots.values, fp32.values), 0u) << what << ": coefficients";
    // Decode of the same encoding with and without the dots: within one bf16 step as well.
    std::vector<float> xd(static_cast<std::size_t>(x.rows * x.cols)), xf(xd.size());
    mk::decode(s, fp32, xd.data());
    {
      SimdSwitch off("0");
      mk::decode(s, fp32, xf.data());
    }
    EXPECT_EQ(more_than_a_bf16_step_apart(xd, xf), 0u) << what << ": decoded values";
    const mk::Encoded ref = mk::reference::encode(s, x.view(), dots.theta);
    EXPECT_EQ(dots.route, ref.route) << what;
    EXPECT_LT(mk::test::relative_difference(dots.values, ref.values), 4e-3) << what;
  }
}
