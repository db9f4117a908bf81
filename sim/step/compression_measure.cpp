#include "moss/step/compression_measure.h"

#include <map>
#include <mutex>
#include <stdexcept>

#include "moss/core/error.h"
#include "moss/io/activations.h"
#include "moss/kernels/measure.h"

namespace moss::step {

namespace {

kernels::MeasureRequest request_for(const scenario::Scenario& s, double chunk_tokens) {
  const scenario::CompressionSpec& c = s.compression;
  kernels::MeasureRequest req;
  req.params.method = c.method;
  req.params.rank_k = c.rank_k;
  req.params.rank_v = c.rank_v;
  req.params.rotations = c.rotations;
  req.params.subspaces = c.subspaces;
  req.params.routing = c.routing;
  req.params.fraction = c.fraction;
  req.params.bits = c.bits;
  req.chunk_tokens = static_cast<std::int64_t>(chunk_tokens);
  req.kv_dim = s.model.kv_dim();
  req.head_dim = s.model.head_dim();
  req.seed = s.simulation.seed;
  req.activation_source = c.activations;
  req.device = "auto";
  return req;
}

// Activation files are loaded once per process (a sweep reuses them across points).
const io::Activations& load_cached(const std::string& path) {
  static std::mutex mutex;
  static std::map<std::string, io::Activations> cache;
  const std::lock_guard lock(mutex);
  auto it = cache.find(path);
  if (it == cache.end()) it = cache.emplace(path, io::load_activations(path)).first;
  return it->second;
}

kernels::MeasureResult measure(const scenario::Scenario& s, const kernels::MeasureRequest& req) {
  const std::string& source = s.compression.activations;
  try {
    if (source.rfind("synthetic:", 0) == 0) return kernels::measure_kv(req);
    const io::Activations& a = load_cached(source);
    if (!a.is_pair()) {
      throw InputError(source, "", "expected K and V (a [2, tokens, dim] .npy or datasets \"k\" and \"v\"), found one tensor");
    }
    const io::Tensor& k = a.tensors[0];
    const io::Tensor& v = a.tensors[1];
    if (k.dim != req.kv_dim) {
      throw InputError(s.source_file, "/compression/activations",
                       "\"" + source + "\" has width " + std::to_string(k.dim) + "; the model's K/V width is " +
                           std::to_string(req.kv_dim));
    }
    // Every layer of the file together: a sample across depth.
    const kernels::MatrixView kv{k.values.data(), k.layers * k.tokens, k.dim};
    const kernels::MatrixView vv{v.values.data(), v.layers * v.tokens, v.dim};
    return kernels::measure_kv(req, kv, vv);
  } catch (const std::invalid_argument& e) {
    throw InputError(s.source_file, "/compression", std::string("the kernels reject these parameters: ") + e.what());
  }
}

}  // namespace

CompressionFigures compression_figures(const scenario::Scenario& s, bool measure_kernels) {
  const double chunk_tokens = static_cast<double>(s.training.seq_len) / s.parallelism.context;
  CompressionFigures f;
  f.codec.bytes = kv_bytes(s.compression, s.model, chunk_tokens);
  f.codec.per_chunk = codec_time(s.compression, s.model, s.cluster.gpu, chunk_tokens);
  CompressionOutcome& o = f.outcome;
  o.method = s.compression.method;
  o.raw_bytes_per_token = f.codec.bytes.raw_per_token;
  if (!s.compression.compressed()) {
    o.ratio = 1;
    o.sent_bytes_per_token = o.raw_bytes_per_token;
    o.source = "none";
    o.timing_source = "none";
    return f;
  }
  o.timing_source = "roofline estimate for " + s.cluster.gpu.name;
  if (!measure_kernels) {
    o.ratio = f.codec.bytes.ratio(chunk_tokens);
    o.sent_bytes_per_token = f.codec.bytes.chunk_bytes(chunk_tokens) / chunk_tokens;
    o.source = "formula";
    return f;
  }
  const kernels::MeasureResult m = measure(s, request_for(s, chunk_tokens));
  // The kernels count every byte as it travels, theta included: it replaces the formula.
  f.codec.bytes.sent_per_token = m.sent_bytes_per_token;
  f.codec.bytes.per_chunk = 0;
  o.ratio = m.ratio;
  o.sent_bytes_per_token = m.sent_bytes_per_token;
  o.relative_error = m.relative_error;
  o.relative_error_k = m.relative_error_k;
  o.relative_error_v = m.relative_error_v;
  o.source = "kernels on " + s.compression.activations + " (" + m.device + ")";
  const bool on_gpu = m.throughput_measured && m.device.find("cpu") == std::string::npos;
  if (on_gpu && m.encode_input_bytes_per_s > 0 && m.decode_output_bytes_per_s > 0) {
    const double raw = chunk_tokens * f.codec.bytes.raw_per_token;
    f.codec.per_chunk.encode_s = raw / m.encode_input_bytes_per_s;
    f.codec.per_chunk.decode_s = raw / m.decode_output_bytes_per_s;
    o.timing_source = "measured on " + m.device;
  }
  return f;
}

}  // namespace moss::step
