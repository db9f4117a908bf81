// The encoder's wire products (kernels/cpu/wire_product.h): every kind (bf16 dots, streaming fp32,
// Eigen) against a double-precision sum of the same wire values, over widths around the 16-lane
// vectors and the 4-row blocks, gathered and scattered rows, strided panels, both wires.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bf16_dot.h"
#include "moss/kernels/bf16.h"
#include "stream_products.h"
#include "wire_product.h"

namespace mk = moss::kernels;
namespace cpu = moss::kernels::cpu;

namespace {

std::vector<float> random_values(std::int64_t n, std::uint32_t seed, bool bf16) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = g(rng);
  if (bf16) mk::round_bf16_finite(v.data(), n);
  return v;
}

std::vector<cpu::WireProductKind> kinds(int value_bytes, std::int64_t columns) {
  std::vector<cpu::WireProductKind> k{cpu::WireProductKind::eigen};
  if (columns <= cpu::kStreamColumns) k.push_back(cpu::WireProductKind::stream);
  if (value_bytes == 2 && cpu::bf16_dot_supported()) k.push_back(cpu::WireProductKind::dots);
  return k;
}

const char* name(cpu::WireProductKind k) {
  return k == cpu::WireProductKind::dots ? "dots" : k == cpu::WireProductKind::stream ? "stream" : "eigen";
}

/// Row `row` of x as the wire carries it (bf16-rounded on a bf16 wire) times column j of b, in
/// double; mag = sum |x b|.
double wire_dot(const std::vector<float>& x, std::int64_t row, std::int64_t dim, const std::vector<float>& b, std::int64_t columns,
                std::int64_t j, int value_bytes, double& mag) {
  double sum = 0.0;
  mag = 0.0;
  for (std::int64_t k = 0; k < dim; ++k) {
    const float xv = value_bytes == 2 ? mk::round_bf16(x[static_cast<std::size_t>(row * dim + k)]) : x[static_cast<std::size_t>(row * dim + k)];
    const double p = static_cast<double>(xv) * b[static_cast<std::size_t>(k * columns + j)];
    sum += p;
    mag += std::abs(p);
  }
  return sum;
}

}  // namespace

TEST(WireProduct, EveryKindGivesTheProductsOfTheWireValues) {
  int checked = 0;
  for (const int value_bytes : {2, 4})
    for (const std::int64_t dim : {37, 300})
      for (const std::int64_t columns : {1, 5, 16, 24, 64, 70})
        for (const std::int64_t stride : {1, 3}) {
          const std::int64_t tokens = 400;  // 134 strided rows: two panels, the second partial
          const std::vector<float> x = random_values(tokens * dim, 7, false);
          const std::vector<float> b = random_values(dim * columns, 8, value_bytes == 2);  // the bases are bf16 values on a bf16 wire
          const mk::MatrixView xv{x.data(), tokens, dim};
          for (const cpu::WireProductKind kind : kinds(value_bytes, columns)) {
            const cpu::WireProduct product({b.data()}, dim, columns, value_bytes, 0, kind);
            cpu::PanelNeeds needs;
            needs.add(product);
            const std::int64_t taken = (tokens + stride - 1) / stride;
            // Untouched entries after each row: 3, or up to the stream operand's padded width.
            const std::int64_t ldz = stride == 1 ? columns + 3 : (columns + 15) / 16 * 16 + (columns % 16 == 0 ? 1 : 0);
            std::vector<float> z(static_cast<std::size_t>(taken * ldz), -7.0f);
            cpu::for_wire_panels(xv, stride, value_bytes, needs, [&](std::int64_t i0, const cpu::WirePanel& p) {
              product.apply(p, nullptr, p.rows, z.data() + i0 * ldz, nullptr, ldz);
            });
            const std::string what = std::string(name(kind)) + " bytes " + std::to_string(value_bytes) + " dim " + std::to_string(dim) +
                                     " columns " + std::to_string(columns) + " stride " + std::to_string(stride);
            double worst = 0.0;
            for (std::int64_t i = 0; i < taken; ++i) {
              for (std::int64_t j = 0; j < columns; ++j) {
                double mag = 0.0;
                const double want = wire_dot(x, i * stride, dim, b, columns, j, value_bytes, mag);
                worst = std::max(worst, std::abs(z[static_cast<std::size_t>(i * ldz + j)] - want) / (mag + 1e-30));
              }
              for (std::int64_t j = columns; j < ldz; ++j) ASSERT_EQ(z[static_cast<std::size_t>(i * ldz + j)], -7.0f) << what << ": padding written";
            }
            EXPECT_LT(worst, 2e-6) << what;  // fp32 sums of exact products: a few units of 2^-24 per term's magnitude
            ++checked;
          }
        }
  EXPECT_GE(checked, 2 * 2 * 6 * 2 * 2);
}

TEST(WireProduct, GathersAndScattersTheListedRows) {
  const std::int64_t dim = 64, columns = 24, tokens = 9;
  const std::vector<float> x = random_values(tokens * dim, 3, false);
  const std::vector<float> b = random_values(dim * columns, 4, true);
  const std::vector<std::int64_t> rows{8, 0, 5, 2, 7}, z_rows{1, 4, 0, 2, 3};
  for (const cpu::WireProductKind kind : kinds(2, columns)) {
    const cpu::WireProduct product({b.data()}, dim, columns, 2, 0, kind);
    cpu::PanelNeeds needs;
    needs.add(product);
    std::vector<float> z(static_cast<std::size_t>(5 * columns), 0.0f);
    cpu::for_wire_panels({x.data(), tokens, dim}, 1, 2, needs, [&](std::int64_t, const cpu::WirePanel& p) {
      product.apply(p, rows.data(), static_cast<std::int64_t>(rows.size()), z.data(), z_rows.data(), columns);
    });
    for (std::size_t i = 0; i < rows.size(); ++i)
      for (std::int64_t j = 0; j < columns; ++j) {
        double mag = 0.0;
        const double want = wire_dot(x, rows[i], dim, b, columns, j, 2, mag);
        EXPECT_NEAR(z[static_cast<std::size_t>(z_rows[i] * columns + j)], want, 2e-6 * mag) << name(kind) << " row " << rows[i];
      }
  }
}

TEST(WireProduct, RefusesAKindThatCannotRun) {
  const std::vector<float> b(static_cast<std::size_t>(8 * 65), 0.5f);
  EXPECT_THROW(cpu::WireProduct({b.data()}, 8, 65, 2, 0, cpu::WireProductKind::stream), std::logic_error);
  EXPECT_THROW(cpu::WireProduct({b.data()}, 8, 4, 4, 0, cpu::WireProductKind::dots), std::logic_error);
  const cpu::WireProduct dots_or_eigen(b.data(), 8, 4, 4);
  EXPECT_NE(dots_or_eigen.kind(), cpu::WireProductKind::dots) << "an fp32 wire has no bf16 bits to take";
}

TEST(WireProduct, ColumnBlocksActAsTheirConcatenation) {
  // Each block is the leading bc columns of a dim x (bc + 5) matrix (rows bc + 5 floats apart).
  const std::int64_t dim = 96, bc = 20, stride = bc + 5, tokens = 11;
  const std::vector<float> x = random_values(tokens * dim, 5, false);
  std::vector<std::vector<float>> blocks;
  for (std::uint32_t j = 0; j < 3; ++j) blocks.push_back(random_values(dim * stride, 20 + j, true));
  std::vector<float> whole(static_cast<std::size_t>(dim * 3 * bc));  // [B_0 B_1 B_2], row-major
  for (std::int64_t k = 0; k < dim; ++k)
    for (std::size_t j = 0; j < 3; ++j)
      std::copy_n(blocks[j].data() + k * stride, bc, whole.data() + k * 3 * bc + static_cast<std::int64_t>(j) * bc);
  const std::vector<std::int64_t> rows{3, 10, 0}, z_rows{2, 0, 1};
  for (const cpu::WireProductKind kind : kinds(2, 3 * bc)) {
    const cpu::WireProduct product({blocks[0].data(), blocks[1].data(), blocks[2].data()}, dim, bc, 2, stride, kind);
    ASSERT_EQ(product.columns(), 3 * bc);
    cpu::PanelNeeds needs;
    needs.add(product);
    for (const bool listed : {false, true}) {
      const std::int64_t n = listed ? 3 : tokens;
      std::vector<float> z(static_cast<std::size_t>(n * 3 * bc), 0.0f);
      cpu::for_wire_panels({x.data(), tokens, dim}, 1, 2, needs, [&](std::int64_t, const cpu::WirePanel& p) {
        product.apply(p, listed ? rows.data() : nullptr, n, z.data(), listed ? z_rows.data() : nullptr, 3 * bc);
      });
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < 3 * bc; ++j) {
          double mag = 0.0;
          const std::int64_t row = listed ? rows[static_cast<std::size_t>(i)] : i, at = listed ? z_rows[static_cast<std::size_t>(i)] : i;
          const double want = wire_dot(x, row, dim, whole, 3 * bc, j, 2, mag);
          EXPECT_NEAR(z[static_cast<std::size_t>(at * 3 * bc + j)], want, 2e-6 * mag) << name(kind) << (listed ? " listed" : "") << " row " << row << " column " << j;
        }
    }
  }
}

TEST(WireProduct, ChoosesTheProductByWidthAndSwitches) {
  const char* saved_simd = std::getenv("MOSS_KERNELS_SIMD");
  const char* saved_policy = std::getenv("MOSS_KERNELS_BF16");
  const std::string simd = saved_simd != nullptr ? saved_simd : "", policy = saved_policy != nullptr ? saved_policy : "";
  const std::vector<float> b(static_cast<std::size_t>(8 * 200), 0.25f);
  auto kind = [&](std::int64_t columns, int value_bytes) { return cpu::WireProduct(b.data(), 8, columns, value_bytes).kind(); };
  ::setenv("MOSS_KERNELS_SIMD", "1", 1);
  ::setenv("MOSS_KERNELS_BF16", "narrow", 1);
  const bool dots = cpu::bf16_dot_supported(), stream = cpu::kStreamVectorised;
  EXPECT_EQ(kind(cpu::kNarrowDotColumns, 2), dots ? cpu::WireProductKind::dots : stream ? cpu::WireProductKind::stream : cpu::WireProductKind::eigen);
  EXPECT_EQ(kind(cpu::kNarrowDotColumns, 4), stream ? cpu::WireProductKind::stream : cpu::WireProductKind::eigen) << "an fp32 wire takes no dots";
  EXPECT_EQ(kind(cpu::kNarrowDotColumns + 1, 2), stream ? cpu::WireProductKind::stream : cpu::WireProductKind::eigen);
  EXPECT_EQ(kind(cpu::kStreamColumns, 2), stream ? cpu::WireProductKind::stream : cpu::WireProductKind::eigen);
  EXPECT_EQ(kind(cpu::kStreamColumns + 1, 2), cpu::WireProductKind::eigen);
  EXPECT_EQ(kind(1, 4), cpu::WireProductKind::eigen) << "one column is Eigen's matrix-vector product";
  ::setenv("MOSS_KERNELS_BF16", "all", 1);
  EXPECT_EQ(kind(cpu::kStreamColumns + 1, 2), dots ? cpu::WireProductKind::dots : cpu::WireProductKind::eigen);
  ::setenv("MOSS_KERNELS_SIMD", "0", 1);  // Eigen's fp32 GEMM everywhere
  for (const std::int64_t c : {4, 32, 64, 128}) EXPECT_EQ(kind(c, 2), cpu::WireProductKind::eigen) << c;
  auto restore = [](const char* name, const char* saved, const std::string& value) {
    if (saved != nullptr)
      ::setenv(name, value.c_str(), 1);
    else
      ::unsetenv(name);
  };
  restore("MOSS_KERNELS_SIMD", saved_simd, simd);
  restore("MOSS_KERNELS_BF16", saved_policy, policy);
}
