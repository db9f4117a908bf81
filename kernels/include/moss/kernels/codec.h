#pragma once

// One compression interface for every method. A codec is *fitted* once on a warm-up sample (the
// bases both ends hold after a one-time exchange), then *encodes* chunks of tokens into what travels
// on the wire and *decodes* them back. The CPU implementation (Eigen, kernels/cpu/) and the CUDA one
// (kernels/cuda/) share CodecState and Encoded and give the same numbers up to summation order.
//
// Wire format per chunk of T tokens x d features (one tensor, K or V):
//   none   T*d bf16 values                                            2*T*d bytes
//   pca    Z = X U, T*r bf16                                          2*T*r bytes
//   mos    Z = X U(theta), T*r bf16, + `rotations` fp32 theta per theta-block
//   mos-k  Z = X U_k, T*r bf16, + ceil(log2 K) bits of basis index per routing block (bit-packed)
//   topk   k = ceil(fraction*d) per token: k bf16 values + k indices of ceil(log2 d) bits (bit-packed)
//   quant  T*d codes of `bits` bits (bit-packed, two's complement) + one bf16 scale per token
// With value_bytes = 4 (closed-form tests only) values and bases are fp32 instead of bf16.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "moss/kernels/matrix.h"

namespace moss::kernels {

/// The compression methods (DESIGN.md "The method being simulated").
enum class Method { none, pca, mos, mos_k, topk, quant };

/// How mos-k chooses the basis of a routing block (the wire format is the same for both):
///   exhaustive  the basis capturing the most energy ||X_block U_k||_F^2: every token is projected on
///               all K bases (a T x d x K r product), then the chosen coefficients are kept;
///   sketch      the basis capturing the most energy in its first route_sketch_columns(rank) columns
///               (the leading principal directions of each cluster: a T x d x K s product), then each
///               token is projected on its chosen basis only (T x d x r in all). Cheaper, and a
///               different choice for some tokens (kernels/README.md measures the error of both).
enum class Routing { exhaustive, sketch };

/// "none", "pca", "mos", "mos-k", "topk" or "quant" -> Method; throws std::invalid_argument naming the
/// accepted names.
Method parse_method(std::string_view name);
/// Inverse of parse_method.
std::string_view method_name(Method method);
/// pca, mos and mos-k: methods that project on a basis of rank r fitted on a warm-up sample.
bool uses_basis(Method method);
/// "exhaustive" or "sketch" -> Routing; throws std::invalid_argument naming the accepted names.
Routing parse_routing(std::string_view name);
/// Inverse of parse_routing.
std::string_view routing_name(Routing routing);
/// Columns of each basis the sketch router reads: max(1, rank / 8).
int route_sketch_columns(int rank);

/// Tokens of a block sampled (evenly strided) to fit its theta: 512 for one generator (the diagonal
/// path needs only column statistics), 256 from rank 64 on, where the sample's rank columns give
/// each statistic more terms than 512 tokens do at rank 16, and projecting 512 tokens on [Ubar W_1]
/// would cost a quarter of the block's projection at T = 4096 (the error moved by at most 1e-4 of
/// itself, kernels/README.md); for m >= 2, 512 / m (at least 64), so that projecting the
/// sample on the m + 1 blocks [Ubar W_1..W_m] costs about 512 (m + 1) / m token-projections, under a
/// sixth of the block's own projection at T = 4096, whatever m is; 256 / m (at least 32) from rank
/// 128 on, where forming U(theta) (two dim x rank x rank products, 2 rank / T of the projection) and
/// the rank^3 theta algebra take the rest of the budget (kernels/README.md measures the error effect).
std::int64_t theta_sample_tokens(int rotations, int rank);
/// Stride of that sample in a block of `block_tokens` tokens: max(1, block_tokens / theta_sample_tokens);
/// the sample is tokens 0, stride, 2 stride, ... of the block (CPU and GPU encoders alike).
std::int64_t theta_sample_stride(std::int64_t block_tokens, int rotations, int rank);
/// Tokens in that sample: ceil(block_tokens / theta_sample_stride).
std::int64_t theta_sample_count(std::int64_t block_tokens, int rotations, int rank);

/// Compression parameters as a scenario states them (CONTRACT.md "compression"), K and V together.
struct CompressionParams {
  std::string method;
  int rank_k = 0;            ///< subspace rank for K (pca, mos, mos-k)
  int rank_v = 0;            ///< subspace rank for V
  int rotations = 1;         ///< mos: number of skew-symmetric generators (theta entries)
  int subspaces = 4;         ///< mos-k: number of bases K
  double fraction = 0.1;     ///< topk: fraction of entries kept per token
  int bits = 8;              ///< quant: 8 or 4
  int theta_block_tokens = 0;  ///< mos: tokens sharing one theta; 0 = one theta per encoded chunk
  int route_block_tokens = 1;  ///< mos-k: tokens sharing one basis index; 0 = one per chunk
  std::string routing = "exhaustive";  ///< mos-k: "exhaustive" or "sketch" (Routing)
  int value_bytes = 2;         ///< 2: bf16 on the wire (real use); 4: fp32 (closed-form tests only)
};

/// Parameters of the codec of one tensor (K or V): CompressionParams with the rank chosen.
struct CodecConfig {
  Method method = Method::none;
  int rank = 0;
  int rotations = 1;
  int subspaces = 4;
  double fraction = 0.1;
  int bits = 8;
  int theta_block_tokens = 0;
  int route_block_tokens = 1;
  Routing routing = Routing::exhaustive;
  int value_bytes = 2;
};

/// CodecConfig of K (`is_v` false) or V; throws std::invalid_argument for an invalid combination
/// (unknown method, rank < 1 for a subspace method, fraction outside (0, 1], bits not 4 or 8, ...).
CodecConfig codec_config(const CompressionParams& params, bool is_v);
/// Throws std::invalid_argument when `config` is not usable on features of width `dim`.
void validate_config(const CodecConfig& config, std::int64_t dim);

/// What both ends hold after the one-time exchange (fitted on a warm-up sample).
struct CodecState {
  CodecConfig config;
  std::int64_t dim = 0;
  /// pca, mos (Ubar): dim x rank row-major; mos-k: `subspaces` such blocks one after the other.
  /// mos: the columns of Ubar (and of every W_i alike) are the basis of the pca subspace in which
  /// W_1^T W_1 is diagonal, so that one rotation costs O(dim rank) per block (kernels/cpu/eigen_types.h).
  /// Rounded to bf16 when value_bytes == 2 (that is what the exchange carries and what kernels read).
  std::vector<float> basis;
  /// mos: `rotations` tangent directions W_i (dim x rank each, Ubar^T W_i = 0). The generators are
  /// A_i = W_i Ubar^T - Ubar W_i^T (skew-symmetric, rank 2r).
  std::vector<float> directions;
  /// mos: W_i^T W_j blocks (rotations*rank square, row-major), filled by fit_codec: computed in
  /// double, stored in fp32 (half the memory traffic of the theta fit, the largest data of mos for
  /// many rotations; kernels/README.md bounds the effect).
  std::vector<float> direction_gram;
  /// mos: Ubar^T [Ubar W_1 .. W_m] (rank x (rotations+1)*rank, row-major, double) of the stored
  /// (wire-rounded) bases, filled by fit_codec: with direction_gram it gives U(theta)^T U(theta) for
  /// the Newton-Schulz steps in O(m r^2 + r^3) instead of O(dim r^2) (kernels/cpu/subspace.cpp).
  std::vector<double> basis_gram;
};

/// One encoded chunk: exactly what travels, held as floats that are exact in the wire type.
struct Encoded {
  std::int64_t tokens = 0;
  std::int64_t dim = 0;
  int value_bytes = 2;
  std::vector<float> values;          ///< coefficients / kept values / none: the bf16 input
  std::vector<std::uint8_t> packed;   ///< bit-packed indices (topk, mos-k) or integer codes (quant)
  std::vector<float> theta;           ///< mos: rotations x theta-blocks, fp32
  std::vector<float> scales;          ///< quant: one bf16 scale per token
  std::vector<std::int32_t> route;    ///< mos-k: basis index per routing block (also in `packed`)

  /// Bytes on the wire: values * value_bytes + packed + 4 * theta + 2 * scales.
  [[nodiscard]] std::uint64_t wire_bytes() const;
};

/// Closed-form wire bytes of a chunk of `tokens` x `dim` (what Encoded::wire_bytes() returns).
std::uint64_t encoded_bytes(const CodecConfig& config, std::int64_t tokens, std::int64_t dim);
/// The wire format of one tensor as rates: what encoded_bytes counts for a chunk of T tokens is
/// per_token_bytes x T + per_chunk_bytes, but for the rounding of the chunk's bit-packed indices and
/// codes up to a whole byte (at most one byte per chunk). mos's theta is per chunk when
/// theta_block_tokens is 0, else per token (amortised over its block); mos-k's index likewise.
struct WireRate {
  double per_token_bytes = 0;
  double per_chunk_bytes = 0;
};
WireRate wire_rate(const CodecConfig& config, std::int64_t dim);
/// Bytes of the one-time basis exchange (0 for none, topk, quant): pca's basis, mos's Ubar and its
/// `rotations` tangent directions (both ends need them to build U(theta)), mos-k's `subspaces` bases.
std::uint64_t one_time_bytes(const CodecConfig& config, std::int64_t dim);
/// Bits of one index into `choices` alternatives: ceil(log2 choices), 0 for choices <= 1.
int index_bits(std::int64_t choices);
/// Entries kept per token by topk: clamp(ceil(fraction * dim), 1, dim).
std::int64_t topk_count(double fraction, std::int64_t dim);

/// Fits the codec on `warmup` (tokens x dim) with the Eigen CPU implementation. Deterministic in
/// `seed`. pca: top-r principal subspace (randomised subspace iteration); mos: Ubar spans the pca
/// subspace, generators from the principal tangent directions of warm-up blocks, both expressed in
/// the basis that diagonalises W_1^T W_1; mos-k: k-subspaces clustering.
CodecState fit_codec(const CodecConfig& config, MatrixView warmup, std::uint64_t seed);

/// Encodes one chunk with the Eigen CPU implementation.
Encoded encode(const CodecState& state, MatrixView x);
/// The same encoding into `out`, reusing its buffers as a training loop reuses its send buffer from one
/// step to the next: once `out` has held a chunk of this shape, its fields are not reallocated (a
/// fresh T x d `values` costs more than the codec itself for none, topk and quant; the methods' own
/// scratch, e.g. mos-k's T x K r projection, is still allocated per call). Every field of `out` is
/// replaced; the result equals encode(state, x). Values must be finite (as the loaders ensure).
void encode(const CodecState& state, MatrixView x, Encoded& out);
/// Decodes one chunk with the Eigen CPU implementation into `out` (tokens x dim, row-major).
void decode(const CodecState& state, const Encoded& encoded, float* out);

}  // namespace moss::kernels
