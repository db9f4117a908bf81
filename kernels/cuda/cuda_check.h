#pragma once
// Checked CUDA runtime calls: every call and launch throws std::runtime_error with file:line and the
// CUDA error string; streams and events that cannot leak. Usable from .cu and plain C++ files.

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace moss::kernels::cuda {

inline void check(cudaError_t status, const char* expr, const char* file, int line) {
  if (status == cudaSuccess) return;
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + expr + ": " +
                           cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
}

}  // namespace moss::kernels::cuda

#define MOSS_CUDA_CHECK(expr) ::moss::kernels::cuda::check((expr), #expr, __FILE__, __LINE__)
/// After a kernel launch: the launch error (configuration, missing device code).
#define MOSS_CUDA_CHECK_LAUNCH() ::moss::kernels::cuda::check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

namespace moss::kernels::cuda {

/// A CUDA stream or event, created checked and destroyed on scope exit (a launch that throws
/// mid-way leaks none).
template <typename T, cudaError_t (*kCreate)(T*), cudaError_t (*kDestroy)(T)>
class Owned {
 public:
  Owned() { MOSS_CUDA_CHECK(kCreate(&h_)); }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  ~Owned() { kDestroy(h_); }
  T get() const { return h_; }

 private:
  T h_ = nullptr;
};
using Stream = Owned<cudaStream_t, cudaStreamCreate, cudaStreamDestroy>;
using Event = Owned<cudaEvent_t, cudaEventCreate, cudaEventDestroy>;

}  // namespace moss::kernels::cuda
