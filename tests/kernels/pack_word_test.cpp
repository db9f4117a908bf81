// The device's bit packing (kernels/cuda/pack_word.h: one 32-bit word per thread) against
// reference::pack_bits, the wire format every decoder reads: every width 1..32, stream lengths that
// end inside a word and on a word boundary, int32 indices and negative int8 codes.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "moss/kernels/reference.h"
#include "pack_word.h"

namespace mk = moss::kernels;

namespace {
template <typename T>
void expect_same_stream(const std::vector<T>& values, int bits) {
  const auto count = static_cast<std::int64_t>(values.size());
  std::vector<std::uint8_t> ref(static_cast<std::size_t>((count * bits + 7) / 8), 0);
  const std::uint32_t mask = bits >= 32 ? 0xffffffffu : (1u << bits) - 1u;
  for (std::int64_t i = 0; i < count; ++i)
    mk::reference::pack_bits(ref, static_cast<std::uint64_t>(i * bits), bits, static_cast<std::uint32_t>(values[static_cast<std::size_t>(i)]) & mask);
  const std::int64_t words = mk::cuda::packed_words(count, bits);
  std::vector<std::uint8_t> got(static_cast<std::size_t>(words * 4));
  for (std::int64_t w = 0; w < words; ++w) {
    const std::uint32_t word = mk::cuda::packed_word(values.data(), count, bits, w);
    for (int b = 0; b < 4; ++b) got[static_cast<std::size_t>(w * 4 + b)] = static_cast<std::uint8_t>(word >> (8 * b));
  }
  ASSERT_GE(got.size(), ref.size());
  for (std::size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(got[i], ref[i]) << "byte " << i << " of " << count << " values at " << bits << " bits";
  for (std::size_t i = ref.size(); i < got.size(); ++i) EXPECT_EQ(got[i], 0) << "padding byte " << i;
}
}  // namespace

TEST(PackWord, Int32IndicesAtEveryWidthMatchTheReferenceStream) {
  std::mt19937_64 rng(3);
  for (int bits = 1; bits <= 32; ++bits)
    for (std::int64_t count : {1, 2, 3, 31, 32, 33, 64, 257, 1000}) {
      std::vector<std::int32_t> v(static_cast<std::size_t>(count));
      for (auto& x : v) x = static_cast<std::int32_t>(rng() & (bits >= 31 ? 0x7fffffffu : (1u << bits) - 1u));
      expect_same_stream(v, bits);
    }
}

TEST(PackWord, NegativeInt8CodesKeepTheirLowBits) {
  std::mt19937_64 rng(4);
  for (int bits : {4, 8})
    for (std::int64_t count : {1, 7, 8, 9, 4096, 4099}) {
      std::vector<std::int8_t> v(static_cast<std::size_t>(count));
      const int qmax = bits == 8 ? 127 : 7;
      for (auto& x : v) x = static_cast<std::int8_t>(static_cast<int>(rng() % static_cast<unsigned>(2 * qmax + 1)) - qmax);
      expect_same_stream(v, bits);
    }
}
