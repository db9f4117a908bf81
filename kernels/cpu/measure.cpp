#include "moss/kernels/measure.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "moss/kernels/evaluate.h"
#include "moss/kernels/gpu_codec.h"
#include "moss/kernels/synthetic.h"

namespace moss::kernels {

namespace {
std::mutex& cache_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, MeasureResult>& cache() {
  static std::map<std::string, MeasureResult> c;
  return c;
}

std::string cache_key(const MeasureRequest& r) {
  const CompressionParams& p = r.params;
  std::ostringstream os;
  os.precision(17);
  os << p.method << '|' << p.rank_k << '|' << p.rank_v << '|' << p.rotations << '|' << p.subspaces << '|'
     << p.fraction << '|' << p.bits << '|' << p.theta_block_tokens << '|' << p.route_block_tokens << '|' << p.routing << '|'
     << p.value_bytes << '|' << r.chunk_tokens << '|' << r.kv_dim << '|' << r.head_dim << '|' << r.seed
     << '|' << r.device << '|' << r.activation_source;
  return os.str();
}

Device pick_device(const std::string& name) {
  if (name == "cpu") return Device::cpu;
  if (name == "gpu") return Device::gpu;
  if (name == "auto") return gpu_available() ? Device::gpu : Device::cpu;
  throw std::invalid_argument("measure_kv: device \"" + name + "\": expected cpu, gpu or auto");
}

MeasureResult compute(const MeasureRequest& req, MatrixView wk, MatrixView k, MatrixView wv, MatrixView v) {
  const CodecConfig ck = codec_config(req.params, false), cv = codec_config(req.params, true);
  const Device device = pick_device(req.device);
  const int repeats = 2;
  const TensorReport rk = evaluate_tensor(ck, wk, k, device, req.seed, repeats);
  const TensorReport rv = evaluate_tensor(cv, wv, v, device, req.seed + 1, repeats);
  MeasureResult m;
  const auto chunk = req.chunk_tokens;
  const double d = req.kv_dim;
  m.raw_bytes_per_token = 2.0 * d * 2.0;
  m.sent_bytes_per_token = static_cast<double>(encoded_bytes(ck, chunk, req.kv_dim) + encoded_bytes(cv, chunk, req.kv_dim)) /
                           static_cast<double>(chunk);
  m.ratio = m.sent_bytes_per_token / m.raw_bytes_per_token;
  m.relative_error_k = rk.error.relative;
  m.relative_error_v = rv.error.relative;
  const double norm = rk.error.norm_sq + rv.error.norm_sq;
  m.relative_error = norm > 0 ? std::sqrt((rk.error.error_sq + rv.error.error_sq) / norm) : 0.0;
  const double raw = static_cast<double>(rk.raw_bytes + rv.raw_bytes);
  m.encode_input_bytes_per_s = raw / (rk.encode_s + rv.encode_s);
  m.decode_output_bytes_per_s = raw / (rk.decode_s + rv.decode_s);
  m.device = rk.device;
  m.throughput_measured = true;
  m.one_time_bytes = static_cast<double>(rk.one_time_bytes + rv.one_time_bytes);
  return m;
}

void check_request(const MeasureRequest& r) {
  if (r.chunk_tokens < 1) throw std::invalid_argument("measure_kv: chunk_tokens must be >= 1");
  if (r.kv_dim < 1) throw std::invalid_argument("measure_kv: kv_dim must be >= 1");
  const CodecConfig ck = codec_config(r.params, false), cv = codec_config(r.params, true);
  validate_config(ck, r.kv_dim);
  validate_config(cv, r.kv_dim);
}

template <typename F>
MeasureResult cached(const MeasureRequest& req, F&& run) {
  const std::string key = cache_key(req);
  {
    const std::lock_guard lock(cache_mutex());
    if (auto it = cache().find(key); it != cache().end()) return it->second;
  }
  const MeasureResult m = run();  // outside the lock: concurrent distinct keys measure in parallel
  const std::lock_guard lock(cache_mutex());
  return cache().emplace(key, m).first->second;
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
    spec.tokens = kWarmupTokens + sample;
    const Matrix k = generate_synthetic(spec, false), v = generate_synthetic(spec, true);
    return compute(req, k.view().slice_rows(0, kWarmupTokens), k.view().slice_rows(kWarmupTokens, sample),
                   v.view().slice_rows(0, kWarmupTokens), v.view().slice_rows(kWarmupTokens, sample));
  });
}

MeasureResult measure_kv(const MeasureRequest& req, MatrixView k, MatrixView v) {
  check_request(req);
  if (k.cols != req.kv_dim || v.cols != req.kv_dim || k.rows != v.rows || k.rows < 2)
    throw std::invalid_argument("measure_kv: K and V must both be tokens x kv_dim with >= 2 tokens");
  return cached(req, [&] {
    const std::int64_t warm = std::min(k.rows / 2, kWarmupTokens);
    const std::int64_t sample = std::min<std::int64_t>({k.rows - warm, kMaxSampleTokens, req.chunk_tokens});
    return compute(req, k.slice_rows(0, warm), k.slice_rows(warm, sample), v.slice_rows(0, warm),
                   v.slice_rows(warm, sample));
  });
}

}  // namespace moss::kernels
