#pragma once

// MosBlockMixer: the host side of the GPU mos encode for one theta block, in plain CPU code (built
// with or without CUDA) so that the CPU tests and benchmark check it; kernels/cuda/gpu_codec.cpp uses it.

#include <cstdint>
#include <vector>

#include "moss/kernels/codec.h"

namespace moss::kernels {

/// From a block's sample projections p = X_sample [Ubar W_1 .. W_m] (n x (m+1) rank, fp32,
/// row-major; the sample of theta_sample_tokens), fit() returns the theta the CPU encoder chooses and
/// the mixing matrix S ((m+1) rank x rank, row-major) with U(theta) = [Ubar W_1 .. W_m] S, the U the
/// CPU encoder forms before its bf16 rounding, for the device to form with one product. One rotation
/// with a diagonal W_1^T W_1 (states from fit_codec, kernels/cpu/eigen_types.h) takes the diagonal
/// path: S = [diag(a); diag(b)] after an O(n rank) fit. Otherwise S = [K C; theta_1 C; ..; theta_m C]
/// from the r x r factors of the general path (O(n rank^2 + rank^3) per block).
class MosBlockMixer {
 public:
  /// `s` must outlive the mixer.
  explicit MosBlockMixer(const CodecState& s);
  MosBlockMixer(CodecState&&) = delete;  // would dangle
  /// False when `s` is not mos, or holds neither the diagonal form nor the Gram blocks of fit_codec:
  /// U(theta) must then be formed whole (rotation.h).
  bool available() const { return diagonal_ || grams_; }
  /// True on the diagonal path.
  bool diagonal() const { return diagonal_; }
  /// Theta (m values) and S of the block whose sample projections are p (n rows).
  void fit(const float* p, std::int64_t n, std::vector<float>& theta, std::vector<float>& mix) const;

 private:
  const CodecState& s_;
  bool diagonal_ = false, grams_ = false;
  std::vector<double> lambda_;  ///< diag(W_1^T W_1) on the diagonal path
};

}  // namespace moss::kernels
