#include "moss/step/compression_measure.h"

#include <map>
#include <mutex>
#include <stdexcept>
#include <vector>

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
  req.warmup_tokens = c.warmup_tokens;
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

// The scenario's activation file as the kernels take it, checked (see check_activations).
const io::Activations& checked_activations(const scenario::Scenario& s) {
  const std::string& source = s.compression.activations;
  const io::Activations& a = load_cached(source);
  const std::string at = "/compression/activations";
  if (!a.is_pair()) {
    throw InputError(s.source_file, at, "\"" + source + "\" holds one tensor: expected K and V (a [2, tokens, dim] or [2, layers, tokens, dim] .npy, or datasets \"k\" and \"v\")");
  }
  const io::Tensor& k = a.tensors[0];
  if (k.dim != s.model.kv_dim()) {
    throw InputError(s.source_file, at,
                     "\"" + source + "\" has width " + std::to_string(k.dim) + "; the model's K/V width is " + std::to_string(s.model.kv_dim()));
  }
  if (k.tokens < 2) {
    throw InputError(s.source_file, at, "\"" + source + "\" has " + std::to_string(k.tokens) + " token per layer: expected >= 2 (half fit, half measured)");
  }
  return a;
}

kernels::MeasureResult measure(const scenario::Scenario& s, const kernels::MeasureRequest& req) {
  const std::string& source = s.compression.activations;
  try {
    if (source.rfind("synthetic:", 0) == 0) return kernels::measure_kv(req);
    const io::Activations& a = checked_activations(s);
    const io::Tensor& k = a.tensors[0];
    const io::Tensor& v = a.tensors[1];
    // Each layer on its own (measure.h samples up to kMaxSampleLayers of them over depth).
    std::vector<kernels::MatrixView> kl, vl;
    for (std::int64_t l = 0; l < k.layers; ++l) {
      kl.push_back({k.layer(l), k.tokens, k.dim});
      vl.push_back({v.layer(l), v.tokens, v.dim});
    }
    return kernels::measure_kv(req, kl, vl);
  } catch (const std::invalid_argument& e) {
    throw InputError(s.source_file, "/compression", std::string("the kernels reject these parameters: ") + e.what());
  }
}

// ", layers 0, 5, 10, 15 of 16" where a multi-layer file was sampled over depth.
std::string layers_text(const scenario::Scenario& s, const kernels::MeasureResult& m) {
  const std::string& source = s.compression.activations;
  if (m.layers_measured <= 1 || source.rfind("synthetic:", 0) == 0) return "";
  const std::int64_t layers = load_cached(source).tensors[0].layers;
  std::string text = ", layers ";
  const std::vector<std::size_t> sampled = kernels::sampled_layers(static_cast<std::size_t>(layers));
  for (std::size_t i = 0; i < sampled.size(); ++i) text += (i ? ", " : "") + std::to_string(sampled[i]);
  return text + " of " + std::to_string(layers);
}

}  // namespace

void check_activations(const scenario::Scenario& s) {
  const std::string& source = s.compression.activations;
  if (!s.compression.compressed() || source.empty() || source.rfind("synthetic:", 0) == 0) return;
  (void)checked_activations(s);
}

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
  if (m.warmup_tokens > 0) o.warmup_tokens = m.warmup_tokens;
  o.source = "kernels on " + s.compression.activations + layers_text(s, m) + " (" + m.device + ")";
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
