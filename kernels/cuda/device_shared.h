#pragma once
// Dynamic shared memory (a launch's third argument) as an array `name` of T, 128-byte aligned. The
// CPU emulation of the kernels (tests/kernels/warp_emulation.h) defines its own before any kernel
// header.
#ifndef MOSS_DYNAMIC_SHARED
#define MOSS_DYNAMIC_SHARED(T, name) extern __shared__ __align__(128) T name[]
#endif
