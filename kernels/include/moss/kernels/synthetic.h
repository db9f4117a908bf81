#pragma once

// Seeded, deterministic K/V-like activations: a mixture of low-rank subspaces with a power-law
// singular-value spectrum and a noise floor.
//
// Model. S bases B_s (dim x rank, orthonormal) are drawn around a common basis B_0:
// B_s = orth(B_0 + spread * G_s), G_s Gaussian / sqrt(dim) (spread 0: one subspace). Tokens come in
// segments of `segment` consecutive tokens; each segment picks one subspace uniformly at random (a
// context's topic), and every token of it is
//     x_t = B_s diag(sigma) g_t + noise_std * n_t,  sigma_j = j^(-decay), g_t ~ N(0, I), n_t ~ unit-variance noise
// (Irwin-Hall sum of 4 uniforms, close to Gaussian)
// with noise_std = noise * sqrt(sum_j sigma_j^2 / dim), i.e. `noise` is the noise-to-signal ratio of
// Frobenius norms. V uses `decay_v` (V is less compressible than K in real models).
//
// Spec string (`moss compress --synthetic`): comma-separated key=value pairs, optionally starting with a
// preset name whose values the pairs then override:
//     llama,tokens=4096,dim=2048
//     tokens=4096,dim=2048,subspaces=4,rank=32,decay=1.0,decay_v=0.6,noise=1e-3,spread=0.5,segment=512,seed=1
// Keys: tokens, dim, subspaces, rank, decay, decay_v, noise, spread, segment, seed. A key given without
// preset falls back to the "llama" defaults.
// Presets:
//   llama    structure reported for LLaMA-class K/V (stable rank ~0.1-0.5 % of dim): subspaces=4,
//            rank=max(4, dim/64) for K and twice that for V, decay=0.8 (K), decay_v=0.5, noise=0.02,
//            spread=0.25,
//            segment=512, tokens=4096, dim=2048
//   lowrank  one exact rank-`rank` subspace, no noise (closed-form checks): subspaces=1, noise=0
//   isotropic  full-rank Gaussian (worst case for subspace methods): rank=dim (any rank above dim is clamped), decay=0, subspaces=1
//            (generated as N(0, I) plus noise: with full rank and no decay any orthonormal basis gives that distribution)

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "moss/kernels/matrix.h"

namespace moss::kernels {

/// Largest `tokens` and `dim` of a spec (parse_synthetic_spec).
inline constexpr std::int64_t kMaxSyntheticTokens = std::int64_t{1} << 24;
inline constexpr std::int64_t kMaxSyntheticDim = 65536;

/// Largest noise, spread, decay and decay_v (larger values only overflow the data).
inline constexpr double kMaxSyntheticParameter = 1e6;
/// Largest subspaces x rank x dim of a spec's bases (1 GiB of floats).
inline constexpr double kMaxSyntheticBasisValues = double(std::int64_t{1} << 28);
/// Largest work of the generator, subspaces x rank^2 x dim + tokens x rank x dim multiply-adds
/// (about a minute on one core). A full-rank spec without decay costs neither (any basis will do).
inline constexpr double kMaxSyntheticWork = double(std::int64_t{1} << 37);

/// Parameters of the synthetic generator (see the file comment).
struct SyntheticSpec {
  std::int64_t tokens = 4096;
  std::int64_t dim = 2048;
  int subspaces = 4;
  int rank = 0;  ///< 0: preset default max(4, dim / 64) for K, twice that for V
  double decay = 0.8;
  double decay_v = 0.5;
  double noise = 0.02;
  double spread = 0.25;
  std::int64_t segment = 512;
  std::uint64_t seed = 1;
};

/// Parses a spec string; throws std::invalid_argument naming the bad key or value.
SyntheticSpec parse_synthetic_spec(std::string_view spec);
/// Throws std::invalid_argument when generating `spec` would exceed kMaxSyntheticBasisValues or
/// kMaxSyntheticWork (parse_synthetic_spec and generate_synthetic call it; a caller that changes
/// tokens or dim after parsing may call it first for an early error).
void check_synthetic_cost(const SyntheticSpec& spec);
/// Canonical spec string (every key), usable as a cache key and by parse_synthetic_spec.
std::string to_string(const SyntheticSpec& spec);
/// Rank actually used for K (`is_v` false) or V: spec.rank, or the preset default when 0, clamped to
/// [1, dim].
int effective_rank(const SyntheticSpec& spec, bool is_v = false);

/// Generates `spec.tokens` tokens of K (`is_v` false) or V. Tokens [a, b) of a call with tokens = n
/// equal rows [a, b) of any call with more tokens and the same other fields (prefix-stable).
Matrix generate_synthetic(const SyntheticSpec& spec, bool is_v);

/// Makes the `rank` rows of `b` (rank x dim, row-major) orthonormal in place, in Gram-Schmidt order
/// (row i spans the input's rows 0..i; a row exactly dependent on the earlier ones becomes zero). For the
/// generator's bases; exposed for tests. Throws std::invalid_argument when b holds fewer than rank x dim
/// values.
void orthonormalise_rows(std::span<float> b, int rank, std::int64_t dim);

/// Stable rank ||X||_F^2 / ||X||_2^2 of x (power iteration; for tests and reports).
double stable_rank(MatrixView x);

}  // namespace moss::kernels
