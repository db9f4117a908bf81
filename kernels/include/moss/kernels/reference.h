#pragma once

// Plain C++ reference of encode/decode (no Eigen): the obviously correct loops the CPU (Eigen) and
// CUDA implementations are checked against. Used by the kernels tests and by moss_gpu_check, which
// must not link Eigen. Slow: for tests and checks only.

#include <cstdint>
#include <span>
#include <vector>

#include "moss/kernels/codec.h"
#include "moss/kernels/matrix.h"

namespace moss::kernels::reference {

/// Encodes like kernels::encode. For mos, theta is fitted per block exactly as the CPU implementation
/// does unless `theta` is given (rotations x blocks values), in which case it is used as is.
Encoded encode(const CodecState& state, MatrixView x, std::span<const float> theta = {});
/// Decodes like kernels::decode into `out` (tokens x dim).
void decode(const CodecState& state, const Encoded& encoded, float* out);

/// C = A (m x k) * B (k x n), row-major, fp32 accumulation in a fixed order.
void gemm(const float* a, const float* b, float* c, std::int64_t m, std::int64_t k, std::int64_t n);

/// Appends `bits` low bits of `value` to the LSB-first bit stream `out` at bit offset `bit`.
void pack_bits(std::vector<std::uint8_t>& out, std::uint64_t bit, int bits, std::uint32_t value);
/// Reads `bits` bits at bit offset `bit` of the LSB-first stream `in`.
std::uint32_t unpack_bits(std::span<const std::uint8_t> in, std::uint64_t bit, int bits);

}  // namespace moss::kernels::reference
