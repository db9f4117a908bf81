#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace moss::kernels {

/// bfloat16 bits of `x`, rounded to nearest even (the rounding of __float2bfloat16_rn). NaN stays NaN.
inline std::uint16_t float_to_bf16_bits(float x) {
  std::uint32_t u = 0;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu) != 0) return 0x7fc0;  // quiet NaN
  const std::uint32_t lsb = (u >> 16) & 1u;
  u += 0x7fffu + lsb;
  return static_cast<std::uint16_t>(u >> 16);
}

/// float value of bfloat16 bits (exact).
inline float bf16_bits_to_float(std::uint16_t b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float x = 0;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

/// bfloat16 bits of n floats (float_to_bf16_bits of each).
inline std::vector<std::uint16_t> to_bf16_bits(const float* p, std::size_t n) {
  std::vector<std::uint16_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = float_to_bf16_bits(p[i]);
  return out;
}
inline std::vector<std::uint16_t> to_bf16_bits(const std::vector<float>& v) { return to_bf16_bits(v.data(), v.size()); }

/// float values of bfloat16 bits (exact).
inline std::vector<float> bf16_bits_to_floats(const std::vector<std::uint16_t>& b) {
  std::vector<float> out(b.size());
  for (std::size_t i = 0; i < b.size(); ++i) out[i] = bf16_bits_to_float(b[i]);
  return out;
}

/// The two bfloat16 parts of n floats, hi = bf16(v) then lo = bf16(v - hi) (2n bits, all hi first):
/// hi + lo keeps about 16 significant bits of v, so that a bf16 product against [A A] accumulated in
/// fp32 applies v to ~2^-17 rather than bf16's 2^-9.
inline std::vector<std::uint16_t> to_bf16_hi_lo(const float* p, std::size_t n) {
  std::vector<std::uint16_t> out(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = float_to_bf16_bits(p[i]);
    out[n + i] = float_to_bf16_bits(p[i] - bf16_bits_to_float(out[i]));
  }
  return out;
}

/// `x` rounded to the nearest bfloat16, returned as float.
inline float round_bf16(float x) { return bf16_bits_to_float(float_to_bf16_bits(x)); }

/// The bits of a finite float rounded to the nearest bfloat16 (ties to even), as float bits (the low
/// 16 zero). Branch-free so that loops over it vectorise; a NaN's payload is not preserved.
inline std::uint32_t round_bf16_finite_bits(std::uint32_t u) { return (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u; }

/// Rounds n finite floats to bfloat16 in place (nearest even). Branch-free so that it vectorises;
/// NaN payloads are not preserved (activations are validated finite before they get here).
inline void round_bf16_finite(float* p, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    std::uint32_t u = 0;
    std::memcpy(&u, p + i, sizeof u);
    u = round_bf16_finite_bits(u);
    std::memcpy(p + i, &u, sizeof u);
  }
}

/// float value of IEEE half-precision bits (exact; subnormals, Inf and NaN included).
inline float half_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  std::uint32_t u = 0;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);
  } else if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      u = sign | (static_cast<std::uint32_t>(112 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else {
    u = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float x = 0;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

}  // namespace moss::kernels
