// launch_gemm_bf16's choice of GEMM (codec_launch.h, GemmKernel). `automatic` times its candidates on
// the first call of each shape and remembers the fastest: moss's kernels, their split-k forms where
// moss_gemm_k_splits offers them, and cuBLAS. A choice rests on the best of two rounds of three
// back-to-back launches per candidate (CUDA events on the caller's stream), after one untimed launch
// of each (module loading, cuBLAS's heuristics, the allocator's pool). `moss`, `simple` and `cublas`
// run one kernel, untimed, so that their results do not depend on timing.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <compare>
#include <cstdlib>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "codec_launch.h"
#include "cuda_check.h"
#include "vendor_gemm.h"

namespace moss::kernels::cuda {

namespace {
constexpr int kUnset = -1;
std::atomic<int> g_kernel{kUnset};  // a GemmKernel, or kUnset until MOSS_GPU_GEMM has been read

GemmKernel from_environment() {
  const char* env = std::getenv("MOSS_GPU_GEMM");
  return env == nullptr || *env == '\0' ? GemmKernel::automatic : parse_gemm_kernel(env, "MOSS_GPU_GEMM");
}

/// What the speed of one GEMM call depends on (m as its power-of-two bucket).
struct GemmShape {
  std::int64_t m, lda, ldb, ldc;
  int n, k, device;
  bool transposed, f32, aligned16;
  auto operator<=>(const GemmShape&) const = default;
};

/// One way to run a GEMM: moss's kernels (k split `splits` ways when > 1) or cuBLAS.
struct Candidate {
  bool cublas = false;
  int splits = 1;
  std::string name() const { return cublas ? "cublas" : splits > 1 ? "moss/split" + std::to_string(splits) : "moss"; }
};

std::mutex g_choice_mutex;
std::map<GemmShape, Candidate> g_choice;
std::map<std::string, std::string> g_alternative;  // fastest_alternative's choices: key (with the device) -> name

/// Milliseconds per launch of `launch` (three back to back on `stream`).
template <typename F>
float time_ms(F&& launch, cudaStream_t stream) {
  const Event start, stop;
  MOSS_CUDA_CHECK(cudaEventRecord(start.get(), stream));
  constexpr int kLaunches = 3;
  for (int i = 0; i < kLaunches; ++i) launch();
  MOSS_CUDA_CHECK(cudaEventRecord(stop.get(), stream));
  MOSS_CUDA_CHECK(cudaEventSynchronize(stop.get()));
  float ms = 0;
  MOSS_CUDA_CHECK(cudaEventElapsedTime(&ms, start.get(), stop.get()));
  return ms / kLaunches;
}
}  // namespace

const char* gemm_kernel_name(GemmKernel kernel) {
  switch (kernel) {
    case GemmKernel::automatic: return "auto";
    case GemmKernel::moss: return "moss";
    case GemmKernel::simple: return "simple";
    case GemmKernel::cublas: return "cublas";
  }
  return "?";
}

GemmKernel parse_gemm_kernel(const std::string& name, const std::string& where) {
  for (const GemmKernel kernel : {GemmKernel::automatic, GemmKernel::moss, GemmKernel::simple, GemmKernel::cublas})
    if (name == gemm_kernel_name(kernel)) return kernel;
  throw std::invalid_argument(where + ": \"" + name + "\" is not a GEMM kernel; expected auto, moss, simple or cublas");
}

void set_gemm_kernel(GemmKernel kernel) { g_kernel.store(static_cast<int>(kernel)); }

GemmKernel gemm_kernel() {
  const int v = g_kernel.load();
  if (v != kUnset) return static_cast<GemmKernel>(v);
  int expected = kUnset;
  g_kernel.compare_exchange_strong(expected, static_cast<int>(from_environment()));
  return static_cast<GemmKernel>(g_kernel.load());
}

std::string gemm_choices() {
  const std::lock_guard<std::mutex> lock(g_choice_mutex);
  std::string out;
  for (const auto& [shape, choice] : g_choice) {
    if (!out.empty()) out += "; ";
    out += "m<=" + std::to_string(shape.m) + " n=" + std::to_string(shape.n) + " k=" + std::to_string(shape.k) +
           (shape.transposed ? " B^T" : "") + (shape.f32 ? " fp32" : " bf16") + ": " + choice.name();
  }
  for (const auto& [key, name] : g_alternative) out += (out.empty() ? "" : "; ") + key + ": " + name;
  return out;
}

std::size_t fastest_alternative(const std::string& key, const std::vector<std::string>& names,
                                const std::vector<std::function<void()>>& alternatives, cudaStream_t stream) {
  if (names.size() != alternatives.size() || alternatives.empty())
    throw std::invalid_argument("fastest_alternative: one name per alternative, at least one");
  int device = 0;
  MOSS_CUDA_CHECK(cudaGetDevice(&device));
  // The names are part of the key, so a remembered name is always one of `names`.
  std::string full_key = key + " [";
  for (std::size_t i = 0; i < names.size(); ++i) full_key += (i > 0 ? "|" : "") + names[i];
  full_key += "]" + (device > 0 ? " device " + std::to_string(device) : "");
  auto index_of = [&](const std::string& name) {
    return static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
  };
  {
    const std::lock_guard<std::mutex> lock(g_choice_mutex);
    const auto it = g_alternative.find(full_key);
    if (it != g_alternative.end()) return index_of(it->second);
  }
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  MOSS_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  if (capture != cudaStreamCaptureStatusNone) return 0;  // nothing is timed inside a capture
  // As launch_gemm_bf16's candidates: one untimed launch each (module loading, the GEMMs' own
  // choices inside them), then the best of two rounds. An alternative that throws (a launch the
  // device refuses) is out of the running; the error it left is cleared. All failing: the first's
  // error is rethrown.
  std::vector<float> best(alternatives.size(), std::numeric_limits<float>::infinity());
  std::vector<bool> usable(alternatives.size(), true);
  std::exception_ptr first_error;
  auto attempt = [&](std::size_t i, auto&& f) {
    if (!usable[i]) return;
    try {
      f();
    } catch (const std::runtime_error&) {
      usable[i] = false;
      if (!first_error) first_error = std::current_exception();
      (void)cudaGetLastError();
    }
  };
  for (std::size_t i = 0; i < alternatives.size(); ++i) attempt(i, alternatives[i]);
  for (int round = 0; round < 2; ++round)
    for (std::size_t i = 0; i < alternatives.size(); ++i)
      attempt(i, [&] { best[i] = std::min(best[i], time_ms(alternatives[i], stream)); });
  std::size_t fastest = alternatives.size();
  for (std::size_t i = 0; i < alternatives.size(); ++i)
    if (usable[i] && (fastest == alternatives.size() || best[i] < best[fastest])) fastest = i;
  if (fastest == alternatives.size()) std::rethrow_exception(first_error);
  const std::lock_guard<std::mutex> lock(g_choice_mutex);
  const auto [it, inserted] = g_alternative.emplace(full_key, names[fastest]);  // the first thread's choice stands
  return index_of(it->second);
}

void run_fastest_alternative(const std::string& key, const std::vector<std::string>& names,
                             const std::vector<std::function<void()>>& alternatives, cudaStream_t stream) {
  alternatives[fastest_alternative(key, names, alternatives, stream)]();
}

void launch_gemm_bf16(const std::uint16_t* a, std::int64_t lda, const std::uint16_t* b, std::int64_t ldb,
                      bool b_transposed, float* c_f32, std::uint16_t* c_bf16, std::int64_t ldc, std::int64_t m,
                      int n, int k, cudaStream_t stream) {
  if (m <= 0 || n <= 0) return;
  if ((c_f32 == nullptr) == (c_bf16 == nullptr)) throw std::invalid_argument("launch_gemm_bf16: exactly one output");
  const void* c = c_f32 != nullptr ? static_cast<const void*>(c_f32) : static_cast<const void*>(c_bf16);
  // Runs a candidate; false when cuBLAS cannot take the call (not loaded, sizes beyond int) or refuses it.
  auto run = [&](const Candidate& cand) {
    if (!cand.cublas) {
      launch_moss_gemm(a, lda, b, ldb, b_transposed, c_f32, c_bf16, ldc, m, n, k, false, cand.splits, stream);
      return true;
    }
    try {
      return launch_vendor_gemm(a, lda, b, ldb, b_transposed, c_f32, c_bf16, ldc, m, n, k, stream);
    } catch (const std::runtime_error&) {
      return false;
    }
  };
  switch (gemm_kernel()) {
    case GemmKernel::moss: run(Candidate{}); return;
    case GemmKernel::simple: launch_moss_gemm(a, lda, b, ldb, b_transposed, c_f32, c_bf16, ldc, m, n, k, true, 1, stream); return;
    case GemmKernel::cublas:
      if (!launch_vendor_gemm(a, lda, b, ldb, b_transposed, c_f32, c_bf16, ldc, m, n, k, stream))
        throw std::runtime_error(vendor_gemm_library().empty()
                                     ? "GEMM kernel cublas chosen, but no libcublas.so.13, .12 or libcublas.so was found"
                                     : "GEMM kernel cublas chosen, but " + vendor_gemm_library() +
                                           " has no handle on this device or the sizes exceed its int range");
      return;
    case GemmKernel::automatic: break;
  }
  // Products too small for the choice to matter are not timed: moss's default kernel.
  constexpr double kTimedMacs = 1 << 24;
  if (static_cast<double>(m) * n * k < kTimedMacs) {
    run(Candidate{});
    return;
  }
  GemmShape shape{pow2_bucket(m), lda, ldb, ldc, n, k, 0, b_transposed, c_f32 != nullptr, aligned_to(a, 16) && aligned_to(b, 16) && aligned_to(c, 16)};
  MOSS_CUDA_CHECK(cudaGetDevice(&shape.device));
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  MOSS_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  const bool capturing = capture != cudaStreamCaptureStatusNone;
  {
    const std::lock_guard<std::mutex> lock(g_choice_mutex);
    const auto it = g_choice.find(shape);
    if (it != g_choice.end()) {
      // Under capture a split runs unsplit: its stream-ordered partials would become graph memory nodes.
      const Candidate cand = capturing && it->second.splits > 1 ? Candidate{} : it->second;
      if (!run(cand)) run(Candidate{});  // cuBLAS may refuse a row count its bucket's first did not
      return;
    }
  }
  // Nothing can be timed inside a graph capture, and creating a cuBLAS handle there could break it:
  // moss's default kernel, not remembered.
  if (capturing) {
    run(Candidate{});
    return;
  }
  std::vector<Candidate> candidates{Candidate{}};
  for (const int s : moss_gemm_k_splits(a, lda, b, ldb, b_transposed, c, ldc, m, n, k)) candidates.push_back(Candidate{false, s});
  if (vendor_gemm_available()) candidates.push_back(Candidate{true, 1});
  Candidate pick;
  if (candidates.size() > 1) {  // timed without the lock: another thread may time the same shape meanwhile
    std::vector<float> best(candidates.size(), std::numeric_limits<float>::infinity());
    std::vector<bool> usable(candidates.size(), true);
    for (std::size_t i = 0; i < candidates.size(); ++i) usable[i] = run(candidates[i]);  // untimed first launch
    for (int round = 0; round < 2; ++round)
      for (std::size_t i = 0; i < candidates.size(); ++i)
        if (usable[i]) best[i] = std::min(best[i], time_ms([&] { usable[i] = run(candidates[i]) && usable[i]; }, stream));
    std::size_t fastest = 0;
    for (std::size_t i = 1; i < candidates.size(); ++i)
      if (usable[i] && best[i] < best[fastest]) fastest = i;
    pick = candidates[fastest];
  }
  {
    const std::lock_guard<std::mutex> lock(g_choice_mutex);
    g_choice.emplace(shape, pick);  // the first thread's choice stands
  }
  if (!run(pick)) run(Candidate{});
}

}  // namespace moss::kernels::cuda
