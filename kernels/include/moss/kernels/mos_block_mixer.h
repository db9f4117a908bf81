#pragma once

// MosBlockMixer: the host side of the GPU mos encode for one theta block of a state off the diagonal
// path (several rotations; the diagonal path runs on the device, kernels/cuda/mos_kernels.cu), in
// plain CPU code (built with or without CUDA) so that the CPU tests and benchmark check it;
// kernels/cuda/gpu_codec.cpp uses it.

#include <cstdint>
#include <vector>

#include "moss/kernels/codec.h"

namespace moss::kernels {

/// From a block's sample projections p = X_sample [Ubar W_1 .. W_m] (n x (m+1) rank, fp32,
/// row-major; the sample of theta_sample_tokens), fit() returns the theta of the CPU encoder's general
/// path and the mixing matrix S ((m+1) rank x rank, row-major) with U(theta) = [Ubar W_1 .. W_m] S,
/// the U the CPU encoder forms before its bf16 rounding, for the device to form with one product:
/// S = [K C; theta_1 C; ..; theta_m C] from the r x r factors of the general path (O(n rank^2 +
/// rank^3) per block).
class MosBlockMixer {
 public:
  /// `s` must outlive the mixer.
  explicit MosBlockMixer(const CodecState& s);
  MosBlockMixer(CodecState&&) = delete;  // would dangle
  /// False when `s` is not mos or lacks the Gram blocks of fit_codec: U(theta) must then be formed
  /// whole (rotation.h).
  bool available() const { return grams_; }
  /// Theta (m values) and S of the block whose sample projections are p (n rows).
  void fit(const float* p, std::int64_t n, std::vector<float>& theta, std::vector<float>& mix) const;
  /// S for a theta fitted elsewhere (the device's fit of the same objective: device_theta_fit.h).
  void mix(const std::vector<float>& theta, std::vector<float>& mix) const;

 private:
  const CodecState& s_;
  bool grams_ = false;
};

}  // namespace moss::kernels
