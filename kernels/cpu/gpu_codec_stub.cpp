// Built when moss has no CUDA: the GPU path reports itself unavailable.
#include <stdexcept>

#include "moss/kernels/gpu_codec.h"

namespace moss::kernels {

bool gpu_available() { return false; }
std::string gpu_device_name() { return ""; }
CodecState gpu_fit_codec(const CodecConfig&, MatrixView, std::uint64_t) {
  throw std::runtime_error("moss was built without CUDA: no GPU implementation of the kernels");
}
Encoded gpu_roundtrip(const CodecState&, MatrixView, float*, GpuTiming&, int) {
  throw std::runtime_error("moss was built without CUDA: no GPU implementation of the kernels");
}

}  // namespace moss::kernels
