#pragma once

// The CUDA implementation behind the codec interface. The one-time fit on the warm-up runs its
// subspace products on the device and the rest on the host (gpu_fit_codec);
// encode and decode run on the device with the kernels of kernels/cuda/; the projection GEMMs run
// moss's kernels or cuBLAS (loaded at run time when installed), whichever is faster for the shape
// (MOSS_GPU_GEMM=auto|moss|simple|cublas forces one; kernels/README.md). Without a CUDA build or
// without a device, gpu_available() is false and gpu_roundtrip throws std::runtime_error.

#include <cstdint>
#include <string>

#include "moss/kernels/codec.h"

namespace moss::kernels {

/// Device times of one GPU round trip (CUDA events; host transfers excluded).
struct GpuTiming {
  double encode_s = 0;
  double decode_s = 0;
};

/// True when moss was built with CUDA and a device is usable.
bool gpu_available();
/// Name of device 0 and the GEMMs in use, e.g. "NVIDIA H200 (CUDA, GEMMs: moss or libcublas.so.13,
/// the faster per shape)" ("" when no device).
std::string gpu_device_name();

/// fit_codec (codec.h) with the products of its randomised subspace iterations on the GPU (pca and
/// mos: Ubar; mos-k: its seeds, refits and routing energies): each matrix iterated on is uploaded once
/// as bf16 (the warm-up is the bf16 wire copy, so exactly; mos-k also uploads its seed blocks and
/// each cluster's tokens), and every X V and X^T Y is a bf16 GEMM with fp32 accumulation whose fp32
/// operand goes as bf16 hi + lo parts (~16 bits). The small factorisations (QR and the Rayleigh-Ritz
/// eigenproblem of p = rank + clamp(rank / 2, 8, 64) columns) and mos's generator directions stay on the host. On data with
/// a gap at the rank the fitted spans are fit_codec's up to bf16 rounding; without one the weakest
/// directions may differ while the reconstruction errors agree (tests/kernels/fit_products_test.cpp).
/// value_bytes must be 2; throws std::runtime_error without a GPU.
CodecState gpu_fit_codec(const CodecConfig& config, MatrixView warmup, std::uint64_t seed);

/// Uploads x as bf16, encodes and decodes it on the GPU (value_bytes must be 2), writes the decoded
/// tokens to x_hat (x.rows x x.cols floats) and returns what was encoded. `repeats` timed runs, the
/// fastest kept.
Encoded gpu_roundtrip(const CodecState& state, MatrixView x, float* x_hat, GpuTiming& timing, int repeats = 3);

}  // namespace moss::kernels
