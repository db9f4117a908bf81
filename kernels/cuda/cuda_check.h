#pragma once
// Checked CUDA runtime calls: every call and launch throws std::runtime_error with file:line and the
// CUDA error string; an event that cannot leak. Usable from .cu and plain C++ files.

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

/// A CUDA event destroyed on scope exit (a launch that throws mid-timing leaks none).
class Event {
 public:
  Event() { MOSS_CUDA_CHECK(cudaEventCreate(&e_)); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() { cudaEventDestroy(e_); }
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

}  // namespace moss::kernels::cuda
