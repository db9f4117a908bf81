#include "moss/kernels/measure.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "moss/kernels/evaluate.h"
#include "moss/kernels/gpu_codec.h"
#include "moss/kernels/synthetic.h"

namespace moss::kernels {

namespace {
std::atomic<std::uint64_t> g_measurements{0};

std::mutex& cache_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, std::shared_future<MeasureResult>>& cache() {
  static std::map<std::string, std::shared_future<MeasureResult>> c;
  return c;
}

}  // namespace

std::string measure_key(const MeasureRequest& r) {
  const CompressionParams& p = r.params;
  std::ostringstream os;
  os.precision(17);
  os << p.method << '|' << p.rank_k << '|' << p.rank_v << '|' << p.rotations << '|' << p.subspaces << '|'
     << p.fraction << '|' << p.bits << '|' << p.theta_block_tokens << '|' << p.route_block_tokens << '|' << p.routing << '|'
     << p.value_bytes << '|' << r.chunk_tokens << '|' << r.kv_dim << '|' << r.head_dim << '|' << r.seed
     << '|' << r.device << '|' << r.warmup_tokens << '|' << r.activation_source;
  return os.str();
}

namespace {

Device pick_device(const std::string& name) {
  if (name == "cpu") return Device::cpu;
  if (name == "gpu") return Device::gpu;
  if (name == "auto") return gpu_available() ? Device::gpu : Device::cpu;
  throw std::invalid_argument("measure_kv: device \"" + name + "\": expected cpu, gpu or auto");
}

/// One layer's warm-up (fits) and measured sample, K and V.
struct LayerSample {
  MatrixView warm_k, k, warm_v, v;
};

// Each layer is fitted on its own warm-up (its own bases, as every layer of a model has) and
// measured on its own sample; errors, bytes and times add over the layers.
MeasureResult compute(const MeasureRequest& req, const std::vector<LayerSample>& layers) {
  const CodecConfig ck = codec_config(req.params, false), cv = codec_config(req.params, true);
  const Device device = pick_device(req.device);
  const int repeats = 2;
  TensorReport rk, rv;  // the first layer's, then the sums over the layers of errors, bytes and times
  auto add = [](TensorReport& sum, const TensorReport& r) {
    sum.error.error_sq += r.error.error_sq, sum.error.norm_sq += r.error.norm_sq;
    sum.raw_bytes += r.raw_bytes, sum.encode_s += r.encode_s, sum.decode_s += r.decode_s;
  };
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const LayerSample& ls = layers[l];
    const std::uint64_t seed = req.seed + 2 * l;  // layer 0: the single-layer seeds
    // On a GPU the times are a whole chunk's (evaluate_tensor), the errors the sample's.
    const TensorReport lk = evaluate_tensor(ck, ls.warm_k, ls.k, device, seed, repeats, req.chunk_tokens);
    const TensorReport lv = evaluate_tensor(cv, ls.warm_v, ls.v, device, seed + 1, repeats, req.chunk_tokens);
    if (l == 0) {
      rk = lk, rv = lv;
    } else {
      add(rk, lk), add(rv, lv);
    }
  }
  auto relative = [](double error_sq, double norm_sq) { return norm_sq > 0 ? std::sqrt(error_sq / norm_sq) : 0.0; };
  MeasureResult m;
  const auto chunk = req.chunk_tokens;
  const double d = req.kv_dim;
  m.raw_bytes_per_token = 2.0 * d * 2.0;
  m.sent_bytes_per_token = static_cast<double>(encoded_bytes(ck, chunk, req.kv_dim) + encoded_bytes(cv, chunk, req.kv_dim)) /
                           static_cast<double>(chunk);
  m.ratio = m.sent_bytes_per_token / m.raw_bytes_per_token;
  m.relative_error_k = relative(rk.error.error_sq, rk.error.norm_sq);
  m.relative_error_v = relative(rv.error.error_sq, rv.error.norm_sq);
  m.relative_error = relative(rk.error.error_sq + rv.error.error_sq, rk.error.norm_sq + rv.error.norm_sq);
  if (!std::isfinite(m.relative_error))
    throw std::runtime_error("measure_kv: the reconstruction error of " + req.activation_source + " is not finite");
  const double raw = static_cast<double>(rk.raw_bytes + rv.raw_bytes);
  m.encode_input_bytes_per_s = raw / (rk.encode_s + rv.encode_s);
  m.decode_output_bytes_per_s = raw / (rk.decode_s + rv.decode_s);
  m.device = rk.device;
  m.throughput_measured = true;
  m.one_time_bytes = static_cast<double>(rk.one_time_bytes + rv.one_time_bytes);  // one layer's (measure.h)
  m.layers_measured = static_cast<int>(layers.size());
  m.warmup_tokens = uses_basis(ck.method) ? layers.front().warm_k.rows : 0;  // tokens a fit used
  return m;
}

// Tokens set aside for the fit: the request's warm-up, at most `limit`, for every method. The methods
// that fit nothing (none, topk, quant) skip them too, so that every method of a sweep is measured on
// the same tokens (and a scenario on those `moss compress` measures).
std::int64_t warmup_of(const MeasureRequest& r, std::int64_t limit) { return std::min(r.warmup_tokens, limit); }

void check_request(const MeasureRequest& r) {
  if (r.chunk_tokens < 1) throw std::invalid_argument("measure_kv: chunk_tokens must be >= 1");
  if (r.kv_dim < 1) throw std::invalid_argument("measure_kv: kv_dim must be >= 1");
  if (r.warmup_tokens < 1 || r.warmup_tokens > kMaxWarmupTokens)
    throw std::invalid_argument("measure_kv: warmup_tokens must be in [1, " + std::to_string(kMaxWarmupTokens) + "]");
  const CodecConfig ck = codec_config(r.params, false), cv = codec_config(r.params, true);
  validate_config(ck, r.kv_dim);
  validate_config(cv, r.kv_dim);
}

// One measurement per key: the first caller runs it (outside the lock, so distinct keys measure in
// parallel), and concurrent callers of the same key (a sweep's points under --jobs N) wait for its
// result instead of measuring again. A failed measurement is not kept: the next caller retries.
template <typename F>
MeasureResult cached(const MeasureRequest& req, F&& run) {
  const std::string key = measure_key(req);
  std::promise<MeasureResult> promise;
  {
    std::unique_lock lock(cache_mutex());
    if (auto it = cache().find(key); it != cache().end()) {
      const std::shared_future<MeasureResult> pending = it->second;
      lock.unlock();
      MeasureResult m = pending.get();
      m.shared = true;
      return m;
    }
    cache().emplace(key, promise.get_future().share());
  }
  try {
    g_measurements.fetch_add(1);
    const MeasureResult m = run();
    promise.set_value(m);
    return m;
  } catch (...) {
    {
      const std::lock_guard lock(cache_mutex());
      cache().erase(key);
    }
    promise.set_exception(std::current_exception());
    throw;
  }
}
}  // namespace

MeasureResult measure_kv(const MeasureRequest& req) {
  check_request(req);
  const std::string prefix = "synthetic:";
  if (req.activation_source.rfind(prefix, 0) != 0)
    throw std::invalid_argument("measure_kv: activation source \"" + req.activation_source +
                                "\": expected synthetic:<spec> (files are loaded by the caller)");
  return cached(req, [&] {
    SyntheticSpec spec = parse_synthetic_spec(req.activation_source.substr(prefix.size()));
    spec.dim = req.kv_dim;
    spec.seed = spec.seed * 1000003u + req.seed;
    const std::int64_t sample = std::min(req.chunk_tokens, kMaxSampleTokens);
    const std::int64_t warm = warmup_of(req, kMaxWarmupTokens);
    spec.tokens = warm + sample;
    const Matrix k = generate_synthetic(spec, false), v = generate_synthetic(spec, true);
    return compute(req, {{k.view().slice_rows(0, warm), k.view().slice_rows(warm, sample), v.view().slice_rows(0, warm),
                          v.view().slice_rows(warm, sample)}});
  });
}

MeasureResult measure_kv(const MeasureRequest& req, MatrixView k, MatrixView v) {
  const std::vector<MatrixView> ks{k}, vs{v};
  return measure_kv(req, ks, vs);
}

std::uint64_t measurements_run() { return g_measurements.load(); }

std::vector<std::size_t> sampled_layers(std::size_t layers) {
  const std::size_t n = std::min<std::size_t>(layers, kMaxSampleLayers);
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(n == 1 ? 0 : i * (layers - 1) / (n - 1));
  return out;
}

MeasureResult measure_kv(const MeasureRequest& req, std::span<const MatrixView> k_layers, std::span<const MatrixView> v_layers) {
  check_request(req);
  if (k_layers.empty() || k_layers.size() != v_layers.size())
    throw std::invalid_argument("measure_kv: K and V need the same number of layers, at least one");
  for (std::size_t l = 0; l < k_layers.size(); ++l) {
    const MatrixView k = k_layers[l], v = v_layers[l];
    if (k.cols != req.kv_dim || v.cols != req.kv_dim || k.rows != v.rows || k.rows != k_layers[0].rows || k.rows < 2)
      throw std::invalid_argument("measure_kv: every layer's K and V must be tokens x kv_dim, the same tokens, >= 2 tokens");
  }
  return cached(req, [&] {
    const std::int64_t rows = k_layers[0].rows;
    const std::int64_t warm = warmup_of(req, rows / 2);
    const std::int64_t sample = std::min<std::int64_t>({rows - warm, kMaxSampleTokens, req.chunk_tokens});
    std::vector<LayerSample> samples;
    for (const std::size_t l : sampled_layers(k_layers.size())) {
      const MatrixView k = k_layers[l], v = v_layers[l];
      samples.push_back({k.slice_rows(0, warm), k.slice_rows(warm, sample), v.slice_rows(0, warm), v.slice_rows(warm, sample)});
    }
    MeasureResult m = compute(req, samples);
    m.layers_in_source = static_cast<int>(k_layers.size());
    return m;
  });
}

}  // namespace moss::kernels
