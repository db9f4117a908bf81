#pragma once
// Launchers of the codec kernels (codec_kernels.cu, mos_kernels.cu). bf16 buffers are passed as std::uint16_t bits;
// all pointers are device pointers, all matrices row-major; every launcher is asynchronous on
// `stream` and checks the launch (throws std::runtime_error with file:line).

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "theta_diagonal.h"  // kThetaStatParts
#include "theta_general_steps.h"

namespace moss::kernels::cuda {

/// Which GEMM launch_gemm_bf16 (and, for `moss` and `simple`, launch_decode_routed) uses:
/// - `moss`: moss's kernels: the tiled cp.async ones whenever rows are whole 16-byte chunks, else the
///   simple WMMA kernel; untimed, so results are reproducible bit for bit;
/// - `simple`: the simple WMMA kernel always;
/// - `cublas`: cublasGemmEx (vendor_gemm.h); throws when cuBLAS is not available;
/// - `automatic` (the default): the fastest, per shape, of moss's kernels, their split-k forms where
///   the small-rank encode leaves the device short of blocks (moss_gemm_k_splits), and cuBLAS when it
///   loads; timed on the first call of a shape on its stream (a few launches of each) and remembered
///   for that shape (sizes with m as its power-of-two bucket, leading dimensions, transposition,
///   output type, alignment, device). Products under 2^24 multiply-adds are not timed (moss's default
///   kernel), nor is anything timed under stream capture (a shape already chosen runs its choice, a split one
///   unsplit, else moss's default kernel). Near-tied candidates can be chosen differently from run to run, so
///   results may differ in the last bits between runs: `moss` for bitwise-reproducible runs.
///   Other operations with several kernels choose among them under `automatic` alike
///   (fastest_alternative: the mos-k decode between moss's routed kernel and one GEMM over all
///   bases, the topk decode between a merging warp, a scattering warp and a block per token, the topk
///   and quant encodes between the row held in registers and the streaming warp kernel), timed
///   whatever their size.
enum class GemmKernel { automatic, moss, simple, cublas };

/// True when `p` is a multiple of `bytes`: the vector loads and stores of the kernels (16-byte bf16
/// chunks, 8-byte int8 code chunks) need it.
inline bool aligned_to(const void* p, std::uintptr_t bytes) { return reinterpret_cast<std::uintptr_t>(p) % bytes == 0; }
/// The power-of-two bucket of a row count (the smallest power of two >= m, 1 for m <= 1): timed
/// choices are remembered per bucket, since a chunk's last block and the fit's products come in many
/// row counts of one shape.
inline std::int64_t pow2_bucket(std::int64_t m) {
  std::int64_t bucket = 1;
  while (bucket < m) bucket *= 2;
  return bucket;
}
void set_gemm_kernel(GemmKernel kernel);
GemmKernel gemm_kernel();
/// "auto", "moss", "simple" or "cublas" to its GemmKernel; anything else throws
/// std::invalid_argument naming `where` (e.g. "MOSS_GPU_GEMM") and the accepted names.
GemmKernel parse_gemm_kernel(const std::string& name, const std::string& where);
/// The name parse_gemm_kernel reads for `kernel`.
const char* gemm_kernel_name(GemmKernel kernel);
/// The choices `automatic` timed so far, per shape, e.g. "m<=8192 n=16 k=2048 bf16: moss/split4;
/// m<=8192 n=2048 k=16 B^T bf16: cublas; mos-k decode m<=8192 d=2048 r=64 K=4: expanded", or "" before any.
std::string gemm_choices();
/// `automatic`'s choice between alternative launch sequences of one operation (same results up to
/// the order of fp32 sums): the index of the fastest for `key` (a shape description; the current
/// device is added), timed on `stream` on the first call (one untimed launch of each, then the best
/// of two rounds of three) and remembered; under stream capture an unchosen key gets 0, untimed and
/// not remembered. `names` (one per alternative) are what gemm_choices lists.
std::size_t fastest_alternative(const std::string& key, const std::vector<std::string>& names,
                                const std::vector<std::function<void()>>& alternatives, cudaStream_t stream);
/// fastest_alternative's choice for `key`, then that alternative run once more (what a launcher with
/// several kernels for one operation does under `automatic`).
void run_fastest_alternative(const std::string& key, const std::vector<std::string>& names,
                             const std::vector<std::function<void()>>& alternatives, cudaStream_t stream);

/// C (m x n) = A (m x k, leading dim lda) * B, fp32 accumulation on tensor cores. B is k x n with
/// leading dim ldb, or when `b_transposed` the n x k matrix whose transpose is B (decode: Z U^T).
/// C is fp32 (`c_f32`) or bf16 (`c_bf16`); exactly one of them is non-null.
void launch_gemm_bf16(const std::uint16_t* a, std::int64_t lda, const std::uint16_t* b, std::int64_t ldb,
                      bool b_transposed, float* c_f32, std::uint16_t* c_bf16, std::int64_t ldc, std::int64_t m,
                      int n, int k, cudaStream_t stream);

/// launch_gemm_bf16 with moss's own kernels only: the tiled ones where the shape allows and
/// `simple_only` is false, else the simple WMMA kernel (what GemmKernel::moss and ::simple run).
/// `k_splits` > 1 splits k of the small-rank tiled encode that many ways (at most; fewer when k is
/// short): fp32 partials in stream-ordered memory, then added into C by a second kernel. Ignored where
/// that encode does not run, where k has fewer 128-wide stages than splits, and on a device without
/// stream-ordered allocation.
void launch_moss_gemm(const std::uint16_t* a, std::int64_t lda, const std::uint16_t* b, std::int64_t ldb,
                      bool b_transposed, float* c_f32, std::uint16_t* c_bf16, std::int64_t ldc, std::int64_t m,
                      int n, int k, bool simple_only, int k_splits, cudaStream_t stream);
/// The split-k counts beyond 1 worth timing for this shape (`c` is C, fp32 or bf16): the small-rank
/// tiled encode (n <= 64, B not transposed, whole 16-byte rows) with fewer 64-row tiles than four per
/// multiprocessor, k of at least four 128-wide stages per split, a device with stream-ordered
/// allocation. Empty otherwise.
std::vector<int> moss_gemm_k_splits(const std::uint16_t* a, std::int64_t lda, const std::uint16_t* b, std::int64_t ldb,
                                    bool b_transposed, const void* c, std::int64_t ldc, std::int64_t m, int n, int k);

/// mos-k encode, second half: from p = X [U_1..U_K] (tokens x K*rank fp32) pick per routing block the
/// basis with the largest energy in its first `route_cols` columns (rank: exhaustive routing;
/// route_sketch_columns(rank): sketch routing; first on ties) and write its coefficients z (tokens x
/// rank, bf16) and route[block]. block_tokens <= 0: one block.
void launch_route_select(const float* p, std::int64_t tokens, int rank, int subspaces, int route_cols, int block_tokens,
                         std::uint16_t* z, std::int32_t* route, cudaStream_t stream);

/// mos-k decode: out_t = z_t U_{route[t / block]}^T, bases bf16 (`subspaces` blocks of dim x rank,
/// route values in [0, subspaces)).
void launch_decode_routed(const std::uint16_t* z, const std::uint16_t* bases, const std::int32_t* route,
                          std::int64_t tokens, int dim, int rank, int block_tokens, std::uint16_t* out,
                          cudaStream_t stream, int subspaces);

/// mos-k decode as one GEMM over all bases: z_wide (tokens x subspaces * rank, bf16 scratch) gets z_t in
/// the columns of its route's block and zeros elsewhere, then out = z_wide [U_1 .. U_K]^T through
/// launch_gemm_bf16 (cuBLAS where that is the faster): K times the routed kernel's multiply-adds at the
/// projection GEMM's speed; with finite bases (as fitted) the added products are exact zeros, so the
/// values are the routed decode's up to the order of the fp32 sums. wide: dim x subspaces * rank bf16, row i = [U_1 row i .. U_K row i].
void launch_decode_expanded(const std::uint16_t* z, const std::uint16_t* wide, const std::int32_t* route, std::int64_t tokens,
                            int dim, int rank, int block_tokens, int subspaces, std::uint16_t* z_wide, std::uint16_t* out,
                            cudaStream_t stream);
/// mos-k decode as the GEMM choice says: `moss` and `simple` the routed kernel (launch_decode_routed,
/// reading `bases`), `cublas` the expanded GEMM (launch_decode_expanded, reading `wide` and z_wide),
/// `automatic` the faster of the two for the shape (fastest_alternative). z_wide may be null (no
/// scratch allocated): the routed kernel.
void launch_decode_mos_k(const std::uint16_t* z, const std::uint16_t* bases, const std::uint16_t* wide,
                         const std::int32_t* route, std::int64_t tokens, int dim, int rank, int block_tokens, int subspaces,
                         std::uint16_t* z_wide, std::uint16_t* out, cudaStream_t stream);

/// Doubles of scratch launch_theta_diagonal needs at `rank`: the partitions' partial statistics and
/// their sums.
constexpr std::int64_t theta_diagonal_scratch(int rank) { return 3 * static_cast<std::int64_t>(kThetaStatParts + 1) * rank; }
/// mos on the diagonal path (one rotation, W^T W = diag(lambda); theta_diagonal.h), one block: from
/// its sample projections p = X_sample [Ubar W] (rows x 2 rank fp32) the theta the CPU encoder
/// chooses (its steps; the sums in another order) into *theta, and the column scales of U(theta) =
/// Ubar diag(a) + W diag(b) into scales (a: [0, rank), b: [rank, 2 rank)). lambda: rank doubles;
/// stats: `stats_doubles` >= theta_diagonal_scratch(rank) doubles of scratch (else throws
/// std::invalid_argument). Two launches (the statistics over the
/// device, then the fit in one block), deterministic for a given p (p itself comes from a GEMM:
/// bitwise reproducible run to run with GemmKernel::moss only).
void launch_theta_diagonal(const float* p, std::int64_t rows, int rank, const double* lambda, double* stats,
                           std::int64_t stats_doubles, float* theta, float* scales, cudaStream_t stream);
/// u (dim x rank bf16) = Ubar diag(a) + W diag(b) from wide = [Ubar | W] (dim x 2 rank bf16) and the
/// scales of launch_theta_diagonal.
void launch_rotate_diagonal(const std::uint16_t* wide, std::int64_t dim, int rank, const float* scales, std::uint16_t* u,
                            cudaStream_t stream);
/// The device steps of mos's general theta fit (theta_general.h), launched on `stream`
/// (cpu/device_theta_fit.h drives them): the fit of a state off the diagonal path without its sample
/// projections leaving the device.
std::unique_ptr<ThetaGeneralSteps> make_cuda_theta_steps(cudaStream_t stream);

/// topk encode: per token the k largest |x| (ties: lowest index first), values bf16 and indices in
/// ascending index order (tokens x k each). Rows of whole 16-byte chunks run a warp per token
/// (warp_row_kernels.h): rows of up to 4096 values held in registers (`moss`, `cublas`) or streamed
/// (`simple`), `automatic` the faster for the shape; other rows a block per token. The same output.
void launch_topk_encode(const std::uint16_t* x, std::int64_t tokens, int dim, int k, std::uint16_t* values,
                        std::int32_t* indices, cudaStream_t stream);
/// topk decode: zeros with the kept values scattered back. Rows of whole 16-byte chunks have three
/// kernels (warp_row_kernels.h and a block per token; the same output when indices ascend per token,
/// as the encoders write them): `automatic` times them per shape (fastest_alternative), `simple`
/// runs the warp one that scatters, `moss` and `cublas` the warp one that merges.
void launch_topk_decode(const std::uint16_t* values, const std::int32_t* indices, std::int64_t tokens, int dim,
                        int k, std::uint16_t* out, cudaStream_t stream);

/// The wire's bit stream of `count` values at `bits` (1..32; 0: nothing) bits each (pack_word.h: the
/// bytes of reference::pack_bits, as little-endian 32-bit words; packed_words(count, bits) of them,
/// the last one zero-padded): topk and mos-k indices (int32), quant codes (int8, low bits).
void launch_pack_bits(const std::int32_t* values, std::int64_t count, int bits, std::uint32_t* words, cudaStream_t stream);
void launch_pack_bits(const std::int8_t* values, std::int64_t count, int bits, std::uint32_t* words, cudaStream_t stream);

/// quant encode: per token scale = bf16(max|x| / qmax), codes = clamp(rint(x / scale)), qmax 127 or 7.
/// Kernels chosen as for launch_topk_encode (codes 8-byte aligned for the warp kernels).
void launch_quant_encode(const std::uint16_t* x, std::int64_t tokens, int dim, int bits, std::int8_t* codes,
                         std::uint16_t* scales, cudaStream_t stream);
/// quant decode: bf16(code * scale).
void launch_quant_decode(const std::int8_t* codes, const std::uint16_t* scales, std::int64_t tokens, int dim,
                         std::uint16_t* out, cudaStream_t stream);

}  // namespace moss::kernels::cuda
