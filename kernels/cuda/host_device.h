#pragma once
// MOSS_HOST_DEVICE: __host__ __device__ under nvcc, nothing otherwise, for the plain C++ headers that
// the kernels and the CPU code both compile (pack_word.h, theta_diagonal.h).

#ifdef __CUDACC__
#define MOSS_HOST_DEVICE __host__ __device__
#else
#define MOSS_HOST_DEVICE
#endif
