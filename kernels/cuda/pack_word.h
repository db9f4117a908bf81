#pragma once
// One 32-bit word of a bit-packed stream, as the device packs it (codec_kernels.cu pack_bits_kernel)
// and as plain C++ can check it (tests/kernels/pack_word_test.cpp): value i of `count` occupies
// stream bits [i bits, (i + 1) bits), least significant bit first, and stream bit b is bit b % 32 of
// word b / 32 (so the words, stored little-endian, are the bytes of reference::pack_bits). No CUDA
// header needed: the function is __host__ __device__ under nvcc and plain C++ otherwise.

#include <cstdint>

#include "host_device.h"

namespace moss::kernels::cuda {

/// Word `w` of the stream packing values[0..count) at `bits` (1..32) bits each; a value's bits
/// beyond `bits` are dropped (int8 codes sign-extend, then are masked: their two's complement low bits).
template <typename T>
MOSS_HOST_DEVICE inline std::uint32_t packed_word(const T* values, std::int64_t count, int bits, std::int64_t w) {
  const std::int64_t low = w * 32;
  const std::int64_t first = low / bits;
  std::int64_t last = (low + 31) / bits;
  if (last > count - 1) last = count - 1;
  const std::uint32_t mask = bits >= 32 ? 0xffffffffu : (1u << bits) - 1u;
  std::uint32_t word = 0;
  for (std::int64_t i = first; i <= last; ++i) {
    const std::uint32_t v = static_cast<std::uint32_t>(values[i]) & mask;
    const std::int64_t shift = i * bits - low;  // negative: the value began in the previous word
    if (shift >= 0) word |= v << shift;          // shift < 32: i <= last
    else word |= v >> (-shift);                  // -shift < bits <= 32
  }
  return word;
}

/// Words of a stream of `count` values at `bits` bits (the bytes are ceil(count bits / 8) of them).
MOSS_HOST_DEVICE inline std::int64_t packed_words(std::int64_t count, int bits) { return (count * bits + 31) / 32; }

}  // namespace moss::kernels::cuda
