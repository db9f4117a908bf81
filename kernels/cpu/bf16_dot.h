#pragma once
// bf16 dot products on the CPU (AVX512-BF16's VDPBF16PS) for wire data that is bf16 already.
//
// When the wire carries bf16 (value_bytes == 2) the encoder's inputs are bf16 values: the tokens
// after wire rounding and the bases the fit rounded. The product of two bf16 numbers is exact in
// fp32, so a bf16 x bf16 dot product with fp32 sums computes the same numbers as the fp32 GEMM on
// the rounded values, up to the order of the sums (and bf16 denormals, flushed to zero), as the
// GPU's tensor cores do. It reads half the bytes and does twice the multiply-adds per instruction
// of an fp32 FMA. Used only where the CPU has the instruction; MOSS_KERNELS_SIMD=0 turns it off (the
// Eigen fp32 path then runs, as on other CPUs).
//
// Where it pays depends on the core (bf16_dot_policy): AMD Zen 4 runs a 512-bit FMA as two 256-bit
// halves but VDPBF16PS at full width, so the dots do twice the multiply-adds of Eigen's fp32 GEMM and
// every product runs as dots. Intel's server cores (Sapphire Rapids: two 512-bit FMA ports, VDPBF16PS
// on one) do as many either way, and Eigen's GEMM, better blocked, wins once the product is compute
// bound: there only narrow encoder products (at most kNarrowDotColumns output columns, memory bound,
// where reading half the bytes pays) run as dots (measured: kernels/README.md, "Which CPUs use the
// bf16 dot products").

#include <cstdint>
#include <vector>

namespace moss::kernels::cpu {

/// Whether this CPU has the instructions bf16_gemm_nt needs (AVX512-BF16, -BW, -VL). Checked once.
bool bf16_dot_supported();

/// Whether the environment variable MOSS_KERNELS_SIMD is not "0": the switch that turns the codecs'
/// own AVX-512 paths off (read on every call, so that a test can switch it).
bool simd_switch_on();

/// Whether the encoder uses bf16_gemm_nt: bf16_dot_supported() and the environment variable
/// MOSS_KERNELS_SIMD is not "0" (the switch that also turns off the element-wise AVX-512 loops,
/// which read it once per process). Read on every call, so that a test can switch it; the encoder
/// reads it once per projection.
bool bf16_dot_enabled();

/// Where the codecs use the dot products.
enum class Bf16Dots {
  off,     ///< nowhere (not bf16_dot_enabled())
  narrow,  ///< encoder products of at most kNarrowDotColumns output columns
  all,     ///< every encoder and decoder product
};

/// The widest encoder product (output columns) that runs as dots under Bf16Dots::narrow.
inline constexpr std::int64_t kNarrowDotColumns = 16;

/// This CPU's policy: off unless bf16_dot_enabled(); else MOSS_KERNELS_BF16 when it is "all",
/// "narrow" or "off" (any other value counts as unset: the device line says which policy ran); else
/// all on AMD CPUs and narrow on others. Read on every call, as bf16_dot_enabled().
Bf16Dots bf16_dot_policy();

/// Whether a product of the codecs runs as dots under bf16_dot_policy(): an encoder product with
/// `columns` output columns, or a decoder product (`decode`).
bool bf16_dots_for(std::int64_t columns, bool decode);

/// Wire bits of n floats: bf16 rounded to nearest even (moss::kernels::round_bf16's value). Finite
/// inputs only (activations are validated before they get here).
void to_bf16_bits(const float* x, std::int64_t n, std::uint16_t* out);

/// C = A B^T in fp32: A is n x d bf16 (row i at a + arow(i) * d), Bt is q x d bf16 (row-major, the
/// transposed right-hand side), C row i at c + crow(i) * ldc, where arow(i) = a_rows ? a_rows[i] : i
/// and crow likewise. Each C element is written (not accumulated). Throws std::logic_error unless
/// bf16_dot_supported(). bf16 denormal inputs count as zero and denormal sums are flushed to zero.
void bf16_gemm_nt(const std::uint16_t* a, const std::int64_t* a_rows, std::int64_t n, std::int64_t d, const std::uint16_t* bt,
                  std::int64_t q, float* c, const std::int64_t* c_rows, std::int64_t ldc);

/// B in pairs for bf16_gemm_pairs, from Bt (q x depth bf16, row-major: B^T): the 32-bit words
/// (B[2p][j], B[2p+1][j]) = (Bt[j][2p], Bt[j][2p+1]), low half first, p-major: ceil(depth / 2) rows
/// of q words, an odd depth's last pair completed with a zero, and 16 words of zero padding after.
std::vector<std::uint32_t> bf16_pack_pairs(const std::uint16_t* bt, std::int64_t q, std::int64_t depth);

/// C = A B in fp32, B given by bf16_pack_pairs (q columns): A is n x depth bf16 (row i at
/// a + arow(i) * depth), C row i at c + crow(i) * ldc, indices as for bf16_gemm_nt. The output's
/// columns are the vector lanes (no horizontal sums), so it suits a short depth and a wide C:
/// decode's Z U^T. Each element written. Throws std::logic_error unless bf16_dot_supported().
void bf16_gemm_pairs(const std::uint16_t* a, const std::int64_t* a_rows, std::int64_t n, std::int64_t depth, const std::uint32_t* bp,
                     std::int64_t q, float* c, const std::int64_t* c_rows, std::int64_t ldc);

}  // namespace moss::kernels::cpu
