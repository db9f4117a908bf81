#pragma once
// bf16 bits <-> float on the device, for the .cu files (the wire's bf16 travels as std::uint16_t).

#include <cuda_bf16.h>

#include <cstdint>

namespace moss::kernels::cuda {

__device__ __forceinline__ __nv_bfloat16 to_bf16(std::uint16_t bits) { return __ushort_as_bfloat16(bits); }
__device__ __forceinline__ float bits_to_float(std::uint16_t bits) { return __bfloat162float(__ushort_as_bfloat16(bits)); }
/// Round to nearest even, as kernels/include/moss/kernels/bf16.h does on the host.
__device__ __forceinline__ std::uint16_t float_to_bits(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }

}  // namespace moss::kernels::cuda
