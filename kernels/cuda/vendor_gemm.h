#pragma once
// cuBLAS behind the codec GEMMs, loaded at run time with dlopen (libcublas.so.13, .12, then
// libcublas.so): the kernels build and run with the CUDA runtime alone, and where the toolkit's cuBLAS
// is installed launch_gemm_bf16 times it against moss's own kernels on each new shape and keeps the
// faster one (codec_launch.h, GemmKernel::automatic). No cuBLAS header is needed: the few entry points
// used are declared by their C prototypes in vendor_gemm.cpp.

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

namespace moss::kernels::cuda {

/// True when cuBLAS is loaded and this thread has a handle on the current device (the library is
/// loaded once per process, a handle created once per thread and device).
bool vendor_gemm_available();

/// The library file that was loaded ("libcublas.so.13"), or "" when none was found.
std::string vendor_gemm_library();

/// launch_gemm_bf16's contract (codec_launch.h) through cublasGemmEx: bf16 A and B, fp32 compute,
/// C bf16 or fp32, row-major, on `stream`. Returns false and launches nothing when cuBLAS is not
/// available or a size or leading dimension exceeds cuBLAS's int range; throws std::runtime_error
/// when cuBLAS refuses the call (with its status).
bool launch_vendor_gemm(const std::uint16_t* a, std::int64_t lda, const std::uint16_t* b, std::int64_t ldb,
                        bool b_transposed, float* c_f32, std::uint16_t* c_bf16, std::int64_t ldc, std::int64_t m,
                        int n, int k, cudaStream_t stream);

}  // namespace moss::kernels::cuda
