// cuBLAS through dlopen (vendor_gemm.h). The prototypes below are cuBLAS's C API (cublas_api.h) with
// its enums as ints: CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUDA_R_32F = 0, CUDA_R_16BF = 14,
// CUBLAS_COMPUTE_32F = 68, CUBLAS_GEMM_DEFAULT = -1; status 0 is CUBLAS_STATUS_SUCCESS.
#include "vendor_gemm.h"

#include <dlfcn.h>

#include <climits>
#include <map>
#include <stdexcept>

namespace moss::kernels::cuda {

namespace {
using Handle = void*;
using CreateFn = int (*)(Handle*);
using SetStreamFn = int (*)(Handle, cudaStream_t);
// cublasGemmEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc,
//              computeType, algo)
using GemmExFn = int (*)(Handle, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                         const void*, void*, int, int, int, int);
constexpr int kOpN = 0, kOpT = 1, kR32F = 0, kR16BF = 14, kCompute32F = 68, kDefaultAlgo = -1;

/// The loaded library, and one handle per thread and device (a handle's stream and workspace are its
/// own, so two threads never share them). Handles live until the process ends, those of finished
/// threads included: destroying one from a static or thread-exit destructor can run after the CUDA
/// runtime has torn its context down.
class Vendor {
 public:
  static Vendor& instance() {
    static Vendor v;
    return v;
  }
  const std::string& library() const { return library_; }
  /// The current device's handle (created on first use), or nullptr when cuBLAS is not usable.
  Handle handle() const {
    if (lib_ == nullptr) return nullptr;
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess) return nullptr;
    thread_local std::map<int, Handle> handles;
    const auto it = handles.find(device);
    if (it != handles.end()) return it->second;
    Handle h = nullptr;
    if (create_(&h) != 0) h = nullptr;
    handles[device] = h;  // a failed creation is remembered too
    return h;
  }
  /// Sets the stream of this thread's handle and enqueues the GEMM.
  int gemm(Handle h, cudaStream_t stream, int transa, int m, int n, int k, const void* a, int lda, const void* b, int ldb,
           void* c, int c_type, int ldc) const {
    const float one = 1, zero = 0;
    const int status = set_stream_(h, stream);
    if (status != 0) return status;
    return gemm_(h, transa, kOpN, m, n, k, &one, a, kR16BF, lda, b, kR16BF, ldb, &zero, c, c_type, ldc, kCompute32F, kDefaultAlgo);
  }

 private:
  Vendor() {
    for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) {
      void* lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (lib == nullptr) continue;
      create_ = reinterpret_cast<CreateFn>(dlsym(lib, "cublasCreate_v2"));
      set_stream_ = reinterpret_cast<SetStreamFn>(dlsym(lib, "cublasSetStream_v2"));
      gemm_ = reinterpret_cast<GemmExFn>(dlsym(lib, "cublasGemmEx"));
      if (create_ != nullptr && set_stream_ != nullptr && gemm_ != nullptr) {
        lib_ = lib, library_ = name;
        return;
      }
      dlclose(lib);
    }
  }
  void* lib_ = nullptr;
  std::string library_;
  CreateFn create_ = nullptr;
  SetStreamFn set_stream_ = nullptr;
  GemmExFn gemm_ = nullptr;
};

bool fits_int(std::int64_t v) { return v >= 0 && v <= INT_MAX; }
}  // namespace

bool vendor_gemm_available() { return Vendor::instance().handle() != nullptr; }

std::string vendor_gemm_library() { return Vendor::instance().library(); }

bool launch_vendor_gemm(const std::uint16_t* a, std::int64_t lda, const std::uint16_t* b, std::int64_t ldb,
                        bool b_transposed, float* c_f32, std::uint16_t* c_bf16, std::int64_t ldc, std::int64_t m,
                        int n, int k, cudaStream_t stream) {
  if ((c_f32 == nullptr) == (c_bf16 == nullptr)) throw std::invalid_argument("launch_vendor_gemm: exactly one output");
  if (!fits_int(m) || !fits_int(lda) || !fits_int(ldb) || !fits_int(ldc) || n < 0 || k < 0) return false;
  const Vendor& v = Vendor::instance();
  const Handle h = v.handle();
  if (h == nullptr) return false;
  // Row-major C (m x n) = A (m x k) B is column-major C^T (n x m) = B^T A^T: cuBLAS's A is our B (n x k
  // after `transa`: B is k x n row-major, i.e. n x k column-major; B^T given n x k row-major is k x n
  // column-major, transposed), its B is our A (k x m column-major), its C our C (n x m column-major).
  void* c = c_f32 != nullptr ? static_cast<void*>(c_f32) : static_cast<void*>(c_bf16);
  const int status = v.gemm(h, stream, b_transposed ? kOpT : kOpN, n, static_cast<int>(m), k, b, static_cast<int>(ldb), a,
                            static_cast<int>(lda), c, c_f32 != nullptr ? kR32F : kR16BF, static_cast<int>(ldc));
  if (status != 0)
    throw std::runtime_error("cublasGemmEx refused a GEMM (status " + std::to_string(status) + ", m = " + std::to_string(m) +
                             ", n = " + std::to_string(n) + ", k = " + std::to_string(k) + ")");
  return true;
}

}  // namespace moss::kernels::cuda
