#pragma once
// The kernels of mos's theta off the diagonal path (several rotations): the steps of the CPU
// encoder's general objective (cpu/theta_fit.cpp, GeneralObjective) in double on the device, so that
// the sample projections P = X_s [Ubar W_1 .. W_m] stay there and the r x r algebra of each
// evaluation runs over the device rather than on one host core. The line search itself stays the
// CPU encoder's (maximise_theta_newton, driven by cpu/device_theta_fit.cpp): it reads one objective,
// one gradient or the Hessian at zero per step. Compiled by nvcc (mos_kernels.cu launches them through
// LaunchedThetaSteps) and,
// for tests/kernels/theta_general_test.cpp, by the host compiler under the CPU emulation of
// tests/kernels/warp_emulation.h. In an anonymous namespace: one copy per translation unit.
#include <cstdint>

#ifdef __CUDACC__
#include "bf16_device.h"
#endif
#include "theta_general_steps.h"

namespace moss::kernels::cuda {

namespace {
constexpr int kFitThreads = 256, kFitTile = 16;

__device__ __forceinline__ double fit_load(const FitOperand& o, std::int64_t i, std::int64_t j) {
  const std::int64_t at = o.offset + (o.transposed ? j * o.ld + i : i * o.ld + j);
  return o.f32 ? static_cast<double>(static_cast<const float*>(o.data)[at]) : static_cast<const double*>(o.data)[at];
}

// C (rows x cols, ldc) = alpha op(A) op(B) + beta C (beta = 0: C is not read), op(A) rows x depth,
// op(B) depth x cols; 16 x 16 tiles of C per block of 256 threads, depth in steps of 16 through shared
// memory. Each element sums its depth in order. For the fit's r x r and n x r products: small next
// to the projections, so a plain tiled kernel. c may share an allocation with a and b, not elements.
__global__ void __launch_bounds__(kFitThreads) fit_gemm_kernel(int rows, int cols, int depth, double alpha, FitOperand a,
                                                               FitOperand b, double beta, double* __restrict__ c, std::int64_t ldc) {
  __shared__ double as[kFitTile][kFitTile + 1], bs[kFitTile][kFitTile + 1];
  const int tx = static_cast<int>(threadIdx.x) % kFitTile, ty = static_cast<int>(threadIdx.x) / kFitTile;
  const int i = static_cast<int>(blockIdx.y) * kFitTile + ty, j = static_cast<int>(blockIdx.x) * kFitTile + tx;
  double acc = 0;
  for (int l0 = 0; l0 < depth; l0 += kFitTile) {
    const int al = l0 + tx, bl = l0 + ty;
    as[ty][tx] = i < rows && al < depth ? fit_load(a, i, al) : 0.0;
    bs[ty][tx] = bl < depth && j < cols ? fit_load(b, bl, j) : 0.0;
    __syncthreads();
    const int steps = depth - l0 < kFitTile ? depth - l0 : kFitTile;
    for (int l = 0; l < steps; ++l) acc += as[ty][l] * bs[l][tx];
    __syncthreads();  // read before the next step overwrites
  }
  if (i < rows && j < cols) {
    double* out = c + static_cast<std::int64_t>(i) * ldc + j;
    *out = beta == 0.0 ? alpha * acc : alpha * acc + beta * *out;
  }
}

// The Frobenius products of FrobeniusPairs: one block per pair, each thread a strided share of the
// elements in row-major order, then a fixed tree over the block (the same sum on every run).
__global__ void __launch_bounds__(kFitThreads) fit_frobenius_kernel(FrobeniusPairs f, double* __restrict__ out) {
  __shared__ double partial[kFitThreads];
  const int tid = static_cast<int>(threadIdx.x);
  int i = 0, j = static_cast<int>(blockIdx.x);
  if (f.upper) {  // blockIdx.x -> (i, j), i <= j, row by row
    while (j >= f.count - i) j -= f.count - i, ++i;
    j += i;
  }
  FitOperand a = f.a, b = f.b;
  a.offset += i * f.a_i + j * f.a_j;
  b.offset += i * f.b_i + j * f.b_j;
  double s = 0;
  const std::int64_t total = static_cast<std::int64_t>(f.rows) * f.cols;
  for (std::int64_t e = tid; e < total; e += kFitThreads) {
    const std::int64_t p = e / f.cols, q = e % f.cols;
    s += fit_load(a, p, q) * fit_load(b, p, q);
  }
  partial[tid] = s;
  __syncthreads();
  for (int half = kFitThreads / 2; half > 0; half /= 2) {
    if (tid < half) partial[tid] += partial[tid + half];
    __syncthreads();
  }
  if (tid == 0) out[blockIdx.x] = partial[0];
}

// M = sum_i theta_i^2 D_ii + S + S^T, S = sum_{i < j} theta_i theta_j D_ij (r x r), from the direction
// Gram matrix D (m r square, fp32; D_ij its block (i, j)), as direction_gram_sum. One thread per
// element of M.
__global__ void __launch_bounds__(kFitThreads) fit_direction_sum_kernel(const float* __restrict__ d, int m, int r, FitTheta theta,
                                                                        double* __restrict__ mm) {
  const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * kFitThreads + threadIdx.x;
  if (e >= static_cast<std::int64_t>(r) * r) return;
  const std::int64_t p = e / r, q = e % r, ld = static_cast<std::int64_t>(m) * r;
  double diag = 0, upper = 0;
  for (int i = 0; i < m; ++i) {
    if (theta.v[i] == 0.0f) continue;
    for (int j = i; j < m; ++j) {
      const double c = static_cast<double>(theta.v[i]) * theta.v[j];
      if (c == 0.0) continue;
      const float* block = d + static_cast<std::int64_t>(i) * r * ld + static_cast<std::int64_t>(j) * r;
      if (j == i) diag += c * block[p * ld + q];
      else upper += c * (static_cast<double>(block[p * ld + q]) + block[q * ld + p]);
    }
  }
  mm[e] = diag + upper;
}

// Y = P_0 + sum_k theta_k P_k (n x r, double) from the sample projections P = [P_0 .. P_m] (fp32, n x
// (m + 1) r), adding in k order as GeneralObjective does; Q = I (r x r) on the side, which the next
// product then updates. One thread per element.
__global__ void __launch_bounds__(kFitThreads) fit_combine_kernel(const float* __restrict__ p, std::int64_t rows, int m, int r,
                                                                  FitTheta theta, double* __restrict__ y, double* __restrict__ q) {
  const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * kFitThreads + threadIdx.x;
  const std::int64_t rr = static_cast<std::int64_t>(r) * r;
  if (e < rr) q[e] = e / r == e % r ? 1.0 : 0.0;
  if (e >= rows * r) return;
  const std::int64_t i = e / r, c = e % r, ld = static_cast<std::int64_t>(m + 1) * r;
  double v = p[i * ld + c];
  for (int k = 0; k < m; ++k)
    if (theta.v[k] != 0.0f) v += static_cast<double>(theta.v[k]) * p[i * ld + static_cast<std::int64_t>(k + 1) * r + c];
  y[e] = v;
}

// One panel of the lower Cholesky factor L of the symmetric positive definite q (n x n, ld; its
// lower triangle is read), in place: columns [j0, j0 + width) of rows j0 .. n - 1, whose earlier
// columns' contributions fit_cholesky's panel update (a fit_gemm_kernel over the device) has already
// subtracted. One block, column by column: the pivot, the column below it, the rest of the panel's
// lower triangle; three barriers a column. A non-positive pivot leaves NaN, which the objective then
// carries (the line search rejects a NaN trial).
__global__ void __launch_bounds__(kFitThreads) fit_cholesky_panel_kernel(double* q, int n, std::int64_t ld, int j0, int width) {
  __shared__ double pivot;
  const int tid = static_cast<int>(threadIdx.x);
  const int end = j0 + width < n ? j0 + width : n;
  for (int j = j0; j < end; ++j) {
    if (tid == 0) {
      const double dj = q[static_cast<std::int64_t>(j) * ld + j];
      pivot = dj > 0 ? sqrt(dj) : dj == 0 ? 0.0 : sqrt(-1.0);
      q[static_cast<std::int64_t>(j) * ld + j] = pivot;
    }
    __syncthreads();
    const double pj = pivot;
    for (int i = j + 1 + tid; i < n; i += kFitThreads) q[static_cast<std::int64_t>(i) * ld + j] /= pj;
    __syncthreads();
    const int rows = n - j - 1, cols = end - j - 1;
    for (std::int64_t e = tid; cols > 0 && e < static_cast<std::int64_t>(rows) * cols; e += kFitThreads) {
      const std::int64_t i = j + 1 + e / cols, k = j + 1 + e % cols;
      if (k <= i) q[i * ld + k] -= q[i * ld + j] * q[k * ld + j];
    }
    __syncthreads();  // the rest of the panel is the next column's input
  }
}

// Each row y of Y (rows x r, ldy) against the lower triangular L (r x r, ldl): z = L^-1 y
// (`transposed` false: Z = Y L^-T, the rows of (L^-1 Y^T)^T) or z = L^-T y (`transposed`: Z = Y L^-1).
// One warp per row; lane l keeps the elements q = l, l + 32, ... (counted from the end when
// `transposed`) of z, which only it writes and reads: the partial sums meet through shuffles only.
__global__ void __launch_bounds__(kFitThreads) fit_triangular_rows_kernel(const double* __restrict__ l, std::int64_t ldl, int r,
                                                                          const double* __restrict__ y, std::int64_t ldy, double* __restrict__ z,
                                                                          std::int64_t ldz, std::int64_t rows, bool transposed) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * (kFitThreads / 32) + static_cast<int>(threadIdx.x) / 32;
  if (row >= rows) return;  // the whole warp
  const double* yr = y + row * ldy;
  double* zr = z + row * ldz;
  for (int s = 0; s < r; ++s) {
    const int p = transposed ? r - 1 - s : s;
    double part = 0;
    if (!transposed)
      for (int q = lane; q < p; q += 32) part += l[static_cast<std::int64_t>(p) * ldl + q] * zr[q];
    else
      for (int q = r - 1 - lane; q > p; q -= 32) part += l[static_cast<std::int64_t>(q) * ldl + p] * zr[q];
    for (int o = 16; o > 0; o /= 2) part += __shfl_down_sync(0xffffffffu, part, o);
    part = __shfl_sync(0xffffffffu, part, 0);
    if (lane == (transposed ? r - 1 - p : p) % 32) zr[p] = (yr[p] - part) / l[static_cast<std::int64_t>(p) * ldl + p];
  }
}

// V = V0 + V0^T + (MC + MC^T) / 2 (r x r), in place in v0, from MC: the gradient's symmetric factor.
// The two triangles are formed from the originals, so each thread takes an (i, j), i <= j, pair.
__global__ void __launch_bounds__(kFitThreads) fit_symmetrise_kernel(double* v, const double* __restrict__ mc, int r) {
  const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * kFitThreads + threadIdx.x;
  if (e >= static_cast<std::int64_t>(r) * r) return;
  const std::int64_t i = e / r, j = e % r;
  if (j < i) return;
  const double s = v[i * r + j] + v[j * r + i] + 0.5 * (mc[i * r + j] + mc[j * r + i]);
  v[i * r + j] = s;
  v[j * r + i] = s;
}
// The mixing matrix S = [K C; theta_1 C; ..; theta_m C] of U(theta) = [Ubar W_1 .. W_m] S from the r x r
// factors of rotation_factors (cpu/subspace.cpp), in double where the host forms them in fp32. Step
// 1: K = I - M/2 and F = sum_i theta_i B_i, from the basis Gram blocks bg = [Ubar^T Ubar | Ubar^T W_1
// | ..] (r x (m + 1) r, double). One thread per element.
__global__ void __launch_bounds__(kFitThreads) fit_factors_kernel(const double* __restrict__ mm, const double* __restrict__ bg, int m, int r,
                                                                  FitTheta theta, double* __restrict__ k, double* __restrict__ f) {
  const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * kFitThreads + threadIdx.x;
  if (e >= static_cast<std::int64_t>(r) * r) return;
  const std::int64_t p = e / r, q = e % r, ld = static_cast<std::int64_t>(m + 1) * r;
  k[e] = (p == q ? 1.0 : 0.0) - 0.5 * mm[e];
  double v = 0;
  for (int i = 0; i < m; ++i)
    if (theta.v[i] != 0.0f) v += static_cast<double>(theta.v[i]) * bg[p * ld + static_cast<std::int64_t>(i + 1) * r + q];
  f[e] = v;
}

// Step 2: Delta = G - I = M - I + KY + (KY)^T, G the Gram matrix of U2 = Ubar K + W_theta.
__global__ void __launch_bounds__(kFitThreads) fit_delta_kernel(const double* __restrict__ mm, const double* __restrict__ ky, int r,
                                                                double* __restrict__ delta) {
  const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * kFitThreads + threadIdx.x;
  if (e >= static_cast<std::int64_t>(r) * r) return;
  const std::int64_t p = e / r, q = e % r;
  delta[e] = mm[e] - (p == q ? 1.0 : 0.0) + ky[e] + ky[q * r + p];
}

// Step 3: inner = 3/8 I - 5/16 Delta + 1/16 Delta^2 and C = I - Delta / 2, to which the next product
// adds Delta^2 inner (the two Newton-Schulz steps as a polynomial in Delta).
__global__ void __launch_bounds__(kFitThreads) fit_inner_kernel(const double* __restrict__ delta, const double* __restrict__ d2, int r,
                                                                double* __restrict__ inner, double* __restrict__ c) {
  const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * kFitThreads + threadIdx.x;
  if (e >= static_cast<std::int64_t>(r) * r) return;
  const double id = e / r == e % r ? 1.0 : 0.0;
  inner[e] = 0.375 * id - 0.3125 * delta[e] + 0.0625 * d2[e];
  c[e] = id - 0.5 * delta[e];
}

// Step 4: S ((m + 1) r x r) from KC = K C and C, as bf16 hi and lo bits in to_bf16_hi_lo's layout
// (every hi, then every lo: hi = bf16(s), lo = bf16(s - hi)), the operand the device's U = [W W]
// [S_hi; S_lo] product takes. s in fp32 as the host forms it: theta_i C with C rounded to fp32.
__global__ void __launch_bounds__(kFitThreads) fit_mix_bits_kernel(const double* __restrict__ kc, const double* __restrict__ c, int m, int r,
                                                                   FitTheta theta, std::uint16_t* __restrict__ bits) {
  const std::int64_t rr = static_cast<std::int64_t>(r) * r, n = (m + 1) * rr;
  const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * kFitThreads + threadIdx.x;
  if (e >= n) return;
  const int blk = static_cast<int>(e / rr);
  const std::int64_t at = e % rr;
  const float v = blk == 0 ? static_cast<float>(kc[at]) : theta.v[blk - 1] * static_cast<float>(c[at]);
  const std::uint16_t hi = float_to_bits(v);
  bits[e] = hi;
  bits[n + e] = float_to_bits(v - bits_to_float(hi));
}
/// Blocks of kFitThreads for `items` elements, one thread each.
inline unsigned fit_blocks(std::int64_t items, int per_block = kFitThreads) { return static_cast<unsigned>((items + per_block - 1) / per_block); }

/// The steps as launches of the kernels above, one copy of each step's launch geometry for the CUDA
/// launcher (mos_kernels.cu) and the tests' emulation: launch(grid, kernel, args...) runs `kernel` on
/// `grid` blocks of kFitThreads threads; copy(host, device, count) reads back once the launches
/// before it are done.
template <typename Launch, typename Copy>
class LaunchedThetaSteps final : public ThetaGeneralSteps {
 public:
  LaunchedThetaSteps(Launch launch, Copy copy) : launch_(launch), copy_(copy) {}

  void gemm(int rows, int cols, int depth, double alpha, const FitOperand& a, const FitOperand& b, double beta, double* c,
            std::int64_t ldc) override {
    if (rows <= 0 || cols <= 0) return;
    launch_(dim3{fit_blocks(cols, kFitTile), fit_blocks(rows, kFitTile), 1}, fit_gemm_kernel, rows, cols, depth, alpha, a, b, beta, c, ldc);
  }
  void frobenius(const FrobeniusPairs& f, double* out) override {
    launch_(dim3{static_cast<unsigned>(frobenius_pair_count(f)), 1, 1}, fit_frobenius_kernel, f, out);
  }
  void direction_sum(const float* d, int m, int r, const FitTheta& theta, double* mm) override {
    launch_(square_grid(r), fit_direction_sum_kernel, d, m, r, theta, mm);
  }
  void combine(const float* p, std::int64_t rows, int m, int r, const FitTheta& theta, double* y, double* q) override {
    const std::int64_t items = rows * r > static_cast<std::int64_t>(r) * r ? rows * r : static_cast<std::int64_t>(r) * r;
    launch_(dim3{fit_blocks(items), 1, 1}, fit_combine_kernel, p, rows, m, r, theta, y, q);
  }
  void cholesky_panel(double* q, int r, int j0, int width) override {
    launch_(dim3{1, 1, 1}, fit_cholesky_panel_kernel, q, r, static_cast<std::int64_t>(r), j0, width);
  }
  void triangular_rows(const double* l, int r, const double* y, double* z, std::int64_t rows, bool transposed) override {
    if (rows <= 0) return;
    const auto ld = static_cast<std::int64_t>(r);
    launch_(dim3{fit_blocks(rows, kFitThreads / 32), 1, 1}, fit_triangular_rows_kernel, l, ld, r, y, ld, z, ld, rows, transposed);
  }
  void symmetrise(double* v, const double* mc, int r) override { launch_(square_grid(r), fit_symmetrise_kernel, v, mc, r); }
  void factors(const double* mm, const double* bg, int m, int r, const FitTheta& theta, double* k, double* f) override {
    launch_(square_grid(r), fit_factors_kernel, mm, bg, m, r, theta, k, f);
  }
  void delta(const double* mm, const double* ky, int r, double* delta) override { launch_(square_grid(r), fit_delta_kernel, mm, ky, r, delta); }
  void inner(const double* delta, const double* d2, int r, double* inner, double* c) override {
    launch_(square_grid(r), fit_inner_kernel, delta, d2, r, inner, c);
  }
  void mix_bits(const double* kc, const double* c, int m, int r, const FitTheta& theta, std::uint16_t* bits) override {
    launch_(dim3{fit_blocks(static_cast<std::int64_t>(m + 1) * r * r), 1, 1}, fit_mix_bits_kernel, kc, c, m, r, theta, bits);
  }
  void download(double* host, const double* device, std::size_t count) override { copy_(host, device, count); }

 private:
  static dim3 square_grid(int r) { return dim3{fit_blocks(static_cast<std::int64_t>(r) * r), 1, 1}; }
  Launch launch_;
  Copy copy_;
};
}  // namespace
}  // namespace moss::kernels::cuda
