#include "moss/scenario/units.h"

#include <gtest/gtest.h>

namespace moss::scenario {

struct RateCase {
  const char* text;
  double bps;
};

class RateParsing : public ::testing::TestWithParam<RateCase> {};

TEST_P(RateParsing, ParsesToBitsPerSecond) {
  const auto v = parse_rate_bps(GetParam().text);
  ASSERT_TRUE(v.has_value()) << GetParam().text;
  EXPECT_DOUBLE_EQ(*v, GetParam().bps) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(Table, RateParsing,
                         ::testing::Values(RateCase{"300Mbps", 300e6}, RateCase{"37.5MB/s", 300e6},
                                           RateCase{"100Gbps", 100e9}, RateCase{"1.5 Gbps", 1.5e9},
                                           RateCase{"10kbps", 10e3}, RateCase{"1GiB/s", 8.0 * 1024 * 1024 * 1024},
                                           RateCase{"2e9bps", 2e9}, RateCase{" 1Tbps ", 1e12},
                                           RateCase{"125KB/s", 1e6}));

TEST(RateParsing, MbpsAndMegabytesAgree) { EXPECT_EQ(parse_rate_bps("300Mbps"), parse_rate_bps("37.5MB/s")); }

class BadRate : public ::testing::TestWithParam<const char*> {};
TEST_P(BadRate, IsRejected) { EXPECT_FALSE(parse_rate_bps(GetParam()).has_value()) << GetParam(); }
INSTANTIATE_TEST_SUITE_P(Table, BadRate,
                         ::testing::Values("300M", "300", "Mbps", "", "300 parsecs", "300mbps", "1.2.3Gbps",
                                           "300Mbps extra", "nanGbps", "infGbps", "--5Mbps", "5ms"));

struct DurationCase {
  const char* text;
  double s;
};
class DurationParsing : public ::testing::TestWithParam<DurationCase> {};
TEST_P(DurationParsing, ParsesToSeconds) {
  const auto v = parse_duration_s(GetParam().text);
  ASSERT_TRUE(v.has_value()) << GetParam().text;
  EXPECT_DOUBLE_EQ(*v, GetParam().s);
}
INSTANTIATE_TEST_SUITE_P(Table, DurationParsing,
                         ::testing::Values(DurationCase{"5ms", 5e-3}, DurationCase{"1us", 1e-6},
                                           DurationCase{"2.5s", 2.5}, DurationCase{"40 ns", 40e-9},
                                           DurationCase{"2min", 120}, DurationCase{"0s", 0}));

class BadDuration : public ::testing::TestWithParam<const char*> {};
TEST_P(BadDuration, IsRejected) { EXPECT_FALSE(parse_duration_s(GetParam()).has_value()) << GetParam(); }
INSTANTIATE_TEST_SUITE_P(Table, BadDuration, ::testing::Values("5", "5 parsecs", "ms", "5MS", "5 m s", "1e"));

TEST(SizeParsing, BinaryAndDecimalUnits) {
  EXPECT_DOUBLE_EQ(*parse_size_bytes("16MiB"), 16.0 * 1024 * 1024);
  EXPECT_DOUBLE_EQ(*parse_size_bytes("4GB"), 4e9);
  EXPECT_FALSE(parse_size_bytes("16").has_value());
}

}  // namespace moss::scenario
