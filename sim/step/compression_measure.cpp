#include "moss/step/compression_measure.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "measurement_store.h"
#include "moss/core/error.h"
#include "moss/core/file_io.h"
#include "moss/io/activations.h"
#include "moss/kernels/codec.h"
#include "moss/kernels/evaluate.h"
#include "moss/kernels/gpu_codec.h"
#include "moss/kernels/synthetic.h"
#include "moss/kernels/measure.h"
#include "moss/scenario/catalog.h"
#include "moss/scenario/compression_params.h"
#include "moss_measurement_identity.h"

namespace moss::step {

namespace {

kernels::MeasureRequest request_for(const scenario::Scenario& s, double chunk_tokens) {
  const scenario::CompressionSpec& c = s.compression;
  kernels::MeasureRequest req;
  req.params = scenario::kernel_params(c);
  req.chunk_tokens = static_cast<std::int64_t>(chunk_tokens);
  req.warmup_tokens = c.warmup_tokens;
  req.kv_dim = s.model.kv_dim();
  req.head_dim = s.model.head_dim();
  req.seed = s.simulation.seed;
  // A file by its canonical path: the same file reached from another directory, or through a
  // symbolic link, is the same source. A synthetic spec by every field at this K/V width, so that
  // specs that generate the same data ("llama", "llama,seed=1") are one measurement (and one entry).
  std::error_code ec;
  if (c.activations.rfind("synthetic:", 0) == 0) {
    req.activation_source = c.activations;
    try {
      kernels::SyntheticSpec spec = kernels::parse_synthetic_spec(std::string_view(c.activations).substr(10));
      spec.dim = req.kv_dim;
      spec.tokens = 1;  // measure_kv sets warm-up + sample
      req.activation_source = "synthetic:" + kernels::to_string(spec);
    } catch (const std::invalid_argument&) {
      // validated before; the measurement reports it
    }
  } else {
    req.activation_source = std::filesystem::weakly_canonical(c.activations, ec).string();
    if (ec) req.activation_source = std::filesystem::absolute(c.activations).lexically_normal().string();
  }
  req.device = "auto";
  return req;
}

}  // namespace

// A synthetic spec names its data; a file is named by where it is and its inode's size, modification
// and status-change times (as make and ccache do, plus the change time, which no copy tool can set):
// a rewritten file is a new source. nullopt when the file cannot be examined: then nothing is cached
// and the measurement reports what is wrong with it.
std::optional<std::string> source_identity(const std::string& source) {
  if (source.rfind("synthetic:", 0) == 0) return source;
  std::error_code ec;
  const std::filesystem::path path = std::filesystem::weakly_canonical(source, ec);
  struct stat st {};
  if (ec || ::stat(path.c_str(), &st) != 0) return std::nullopt;
  const std::optional<std::string> version = file_version(path.string());
  if (!version) return std::nullopt;
  return "file " + path.string() + " device " + std::to_string(st.st_dev) + " " + *version;
}

namespace {

// The HDF5 datasets the scenario chose (empty: the file's own rules).
io::DatasetChoice datasets_of(const scenario::CompressionSpec& c) { return {"", c.dataset_k, c.dataset_v}; }

// What names a scenario's activations: its source's identity and, for a file, the datasets chosen.
std::optional<std::string> activations_identity(const std::string& source, const io::DatasetChoice& datasets) {
  std::optional<std::string> id = source_identity(source);
  if (id && !datasets.empty()) *id += datasets.describe();
  return id;
}

/// An activation file as loaded, and which version of it (activations_identity).
struct LoadedFile {
  std::string identity;
  std::shared_ptr<const io::Activations> data;
};

/// A version of a file as last loaded: its data, or the problems that refused it.
struct LoadSlot {
  LoadedFile file;
  std::vector<Problem> problems;
};

// Activation files are loaded once per process and version, and so are their refusals: a sweep
// reuses them across points, and a file rewritten in between is loaded again.
LoadedFile load_cached(const std::string& path, const io::DatasetChoice& datasets) {
  static std::mutex mutex;
  static std::map<std::string, LoadSlot> cache;
  const std::lock_guard lock(mutex);
  LoadSlot& slot = cache[path + datasets.describe()];
  // The identity before and after the read must agree, or the data is of no known version (the file
  // was being written): one more try, then give up rather than name the data wrongly.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const std::optional<std::string> before = activations_identity(path, datasets);
    if (before && slot.file.identity == *before) {
      if (!slot.problems.empty()) throw InputError(slot.problems);
      if (slot.file.data) return slot.file;
    }
    std::shared_ptr<const io::Activations> data;
    std::vector<Problem> problems;
    try {
      data = std::make_shared<const io::Activations>(io::load_activations(path, datasets));
    } catch (const InputError& e) {
      problems = e.problems();
    }
    if (activations_identity(path, datasets) == before) {
      // A file that cannot be examined (nullopt) is not remembered: nothing names its version.
      slot = before ? LoadSlot{{*before, data}, problems} : LoadSlot{};
      if (!problems.empty()) throw InputError(std::move(problems));
      return {before.value_or(path), std::move(data)};
    }
  }
  throw std::runtime_error(path + " changed while it was read (is it being written?)");
}

constexpr const char* kActivationsPointer = "/compression/activations";

// Loads the activation file `path` that `scenario_file` names; its own problems (format, NaN/Inf)
// are reported under the scenario's file and the path that named it.
LoadedFile load_named(const std::string& path, const io::DatasetChoice& datasets, const std::string& scenario_file) {
  try {
    return load_cached(path, datasets);
  } catch (const InputError& e) {
    std::vector<Problem> problems;
    for (const Problem& p : e.problems())
      problems.push_back({scenario_file, kActivationsPointer, "\"" + path + "\": " + (p.pointer.empty() ? "" : p.pointer + ": ") + p.message});
    throw InputError(std::move(problems));
  }
}

// The scenario's activation file as the kernels take it, checked (see check_activations).
LoadedFile checked_activations(const scenario::Scenario& s) {
  const std::string& source = s.compression.activations;
  const std::string at = kActivationsPointer;
  const LoadedFile file = load_named(source, datasets_of(s.compression), s.source_file);
  const io::Activations& a = *file.data;
  if (!a.is_pair()) {
    throw InputError(s.source_file, at, "\"" + source + "\" holds one tensor: expected K and V (a [2, tokens, dim] or [2, layers, tokens, dim] .npy; in HDF5, datasets \"k\" and \"v\", those /compression/datasets names, or one dataset of shape [2, layers, tokens, dim])");
  }
  const io::Tensor& k = a.tensors[0];
  if (k.dim != s.model.kv_dim()) {
    throw InputError(s.source_file, at,
                     "\"" + source + "\" has width " + std::to_string(k.dim) + "; the model's K/V width is " + std::to_string(s.model.kv_dim()));
  }
  if (k.tokens < 2) {
    throw InputError(s.source_file, at, "\"" + source + "\" has " + std::to_string(k.tokens) + " token per layer: expected >= 2 (half fit, half measured)");
  }
  // The bases are fitted on the first half of each layer's tokens (at most warmup_tokens).
  const scenario::CompressionSpec& c = s.compression;
  const std::int64_t warm = std::min(k.tokens / 2, c.warmup_tokens);
  if (const auto above = c.ranks_above(warm); !above.empty()) {
    const auto& [ptr, rank] = above.front();
    throw InputError(s.source_file, ptr, "= " + std::to_string(rank) + ": exceeds the " + std::to_string(warm) + " tokens the bases are fitted on (half of each layer of \"" +
                                             source + "\", at most warmup_tokens): a longer file, or a lower rank");
  }
  return file;
}

// Measures the scenario's source; `measured` is set to the version of it measured (activations_identity).
kernels::MeasureResult measure(const scenario::Scenario& s, const kernels::MeasureRequest& req, std::string& measured) {
  const std::string& source = s.compression.activations;
  try {
    if (source.rfind("synthetic:", 0) == 0) {
      measured = req.activation_source;  // the spec as the request names it (every field)
      return kernels::measure_kv(req);
    }
    const LoadedFile file = checked_activations(s);
    measured = file.identity;
    const io::Tensor& k = file.data->tensors[0];
    const io::Tensor& v = file.data->tensors[1];
    // Each layer on its own (measure.h samples up to kMaxSampleLayers of them over depth).
    std::vector<kernels::MatrixView> kl, vl;
    for (std::int64_t l = 0; l < k.layers; ++l) {
      kl.push_back({k.layer(l), k.tokens, k.dim});
      vl.push_back({v.layer(l), v.tokens, v.dim});
    }
    // The kernels' in-process cache knows a file by this name: a rewritten file is a new one.
    kernels::MeasureRequest version = req;
    version.activation_source = file.identity;
    return kernels::measure_kv(version, kl, vl);
  } catch (const std::invalid_argument& e) {
    throw InputError(s.source_file, "/compression", std::string("the kernels reject these parameters: ") + e.what());
  }
}

// ", layers 0, 5, 10, 15 of 16" where a multi-layer file was sampled over depth.
std::string layers_text(const kernels::MeasureResult& m) {
  if (m.layers_in_source <= 1) return "";
  std::string text = ", layers ";
  const std::vector<std::size_t> sampled = kernels::sampled_layers(static_cast<std::size_t>(m.layers_in_source));
  for (std::size_t i = 0; i < sampled.size(); ++i) text += (i ? ", " : "") + std::to_string(sampled[i]);
  return text + " of " + std::to_string(m.layers_in_source);
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
  }
  return "an unnamed CPU";
}

// The device a request with device "auto" measures on, known before measuring: the measured
// throughputs are that device's, and the switches that choose among kernel variants
// (kernels/README.md) are part of it. Fixed for the life of the process.
const std::string& device_identity() {
  static const std::string id = [] {
    std::string text = kernels::gpu_available() ? "gpu " + kernels::gpu_device_name() + "; host " : "";
    text += kernels::cpu_device_name() + " on " + cpu_model();
    // What the switches do, not how they were spelt: MOSS_KERNELS_SIMD is off at "0" only (unset, "1"
    // and "" measured alike and were three entries); the GPU switches count where a GPU measures.
    if (const char* v = std::getenv("MOSS_KERNELS_SIMD"); v != nullptr && std::string_view(v) == "0") text += "; MOSS_KERNELS_SIMD=0";
    if (kernels::gpu_available())
      for (const char* name : {"MOSS_GPU_GEMM", "MOSS_GPU_THETA_FIT"})
        if (const char* v = std::getenv(name); v != nullptr && *v != '\0') text += std::string("; ") + name + "=" + v;
    return text;
  }();
  return id;
}

// The key as printable ASCII (a path need not be UTF-8, and the entry is JSON): other bytes as \xHH.
std::string printable(const std::string& key) {
  std::string out;
  for (const unsigned char c : key) {
    if (c == '\n' || (c >= 0x20 && c < 0x7f && c != '\\')) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

// Whether a stored result can be the measurement of `req` on this host: its bytes are the request's
// wire format's (closed form) and agree with its ratio, its errors are finite and the total lies
// between K's and V's, its throughputs are finite, and a host without a GPU cannot have measured on
// one. An entry edited by hand or by another program is measured again rather than trusted.
bool plausible(const kernels::MeasureResult& m, const kernels::MeasureRequest& req) {
  const double raw = 4.0 * static_cast<double>(req.kv_dim);  // K and V, bf16
  const auto chunk = std::max<std::int64_t>(1, req.chunk_tokens);
  double sent = 0;
  try {
    for (const bool is_v : {false, true})
      sent += static_cast<double>(kernels::encoded_bytes(kernels::codec_config(req.params, is_v), chunk, req.kv_dim));
  } catch (const std::exception&) {
    return false;
  }
  sent /= static_cast<double>(chunk);
  const auto finite_in = [](double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; };
  const auto near = [](double a, double b) { return std::abs(a - b) <= 1e-9 * std::max(1.0, std::abs(b)); };
  const double lo = std::min(m.relative_error_k, m.relative_error_v), hi = std::max(m.relative_error_k, m.relative_error_v);
  return m.raw_bytes_per_token == raw && near(m.sent_bytes_per_token, sent) && near(m.ratio, m.sent_bytes_per_token / raw) &&
         finite_in(m.relative_error_k, 0, 10) && finite_in(m.relative_error_v, 0, 10) &&
         finite_in(m.relative_error, lo * (1 - 1e-9) - 1e-12, hi * (1 + 1e-9) + 1e-12) &&
         finite_in(m.encode_input_bytes_per_s, 0, 1e16) && finite_in(m.decode_output_bytes_per_s, 0, 1e16) &&
         (kernels::gpu_available() || m.device.rfind("cpu", 0) == 0);
}

// The on-disk cache in front of measure(): a hit skips the kernels and the file; a miss measures and
// stores. The outcome says which (CompressionOutcome::cache, cache_note).
kernels::MeasureResult measure_cached(const scenario::Scenario& s, const kernels::MeasureRequest& req,
                                      const std::optional<std::filesystem::path>& dir, CompressionOutcome& o) {
  const std::optional<std::string> source = dir ? activations_identity(req.activation_source, datasets_of(s.compression)) : std::nullopt;
  std::string measured;
  if (!source) {
    o.cache = CacheUse::kOff;
    return measure(s, req, measured);
  }
  const std::string key = printable("moss measurement\nkernels " + kernels::measure_key(req) + "\nsource " + *source +
                                    "\ndevice " + device_identity() + "\nbuild " + MOSS_MEASUREMENT_IDENTITY);
  std::optional<detail::StoredMeasurement> hit = detail::load_measurement(*dir, key);
  if (hit && !plausible(hit->result, req)) hit.reset();  // replaced by the measurement below
  if (hit) {
    o.cache = CacheUse::kHit;
    char took[32];
    std::snprintf(took, sizeof took, "%.2f s", hit->measure_s);
    o.cache_note = "measured " + hit->measured_at + " in " + took + "; " + detail::entry_path(*dir, key).string();
    return hit->result;
  }
  const auto start = std::chrono::steady_clock::now();
  const kernels::MeasureResult m = measure(s, req, measured);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // A result this process measured for another scenario is stored again (the same entry: it repairs one
  // lost or damaged since) but counted as shared, so that a sweep counts each measurement once.
  const std::string why = measured != *source ? "the file changed while it was measured"
                                              : detail::store_measurement(*dir, key, {m, detail::utc_now(), seconds});
  o.cache = !why.empty() ? CacheUse::kUnstored : m.shared ? CacheUse::kShared : CacheUse::kMiss;
  o.cache_note = why.empty() ? (m.shared ? "measured earlier in this process for an identical request; " : "") + std::string("stored in ") +
                                   detail::entry_path(*dir, key).string()
                             : why;
  return m;
}

}  // namespace

void check_activations(const scenario::Scenario& s) {
  const std::string& source = s.compression.activations;
  if (!s.compression.compressed() || !s.simulation.measure_compression || source.empty() || source.rfind("synthetic:", 0) == 0) return;
  (void)checked_activations(s);
}

std::vector<Problem> activation_file_problems(const std::string& path, const std::string& scenario_file,
                                             const std::string& dataset_k, const std::string& dataset_v) {
  try {
    (void)load_named(path, {"", dataset_k, dataset_v}, scenario_file);
  } catch (const InputError& e) {
    return e.problems();
  }
  return {};
}

MeasuredCodecTime measured_codec_time(const scenario::Scenario& s, double chunk_tokens, const std::string& gpu_name,
                                      double encode_bytes_per_s, double decode_bytes_per_s) {
  const model::GpuSpec& target = s.cluster.gpu;
  const double raw = chunk_tokens * kv_bytes(s.compression, s.model).raw_per_token;
  const CodecTime measured{raw / encode_bytes_per_s, raw / decode_bytes_per_s};
  // The kernels name their device "NVIDIA H200 (CUDA, GEMMs: ...)": the CUDA name is before " (".
  const model::GpuSpec* ran_on = scenario::catalog_gpu_by_device_name(gpu_name.substr(0, gpu_name.find(" (")));
  if (ran_on && ran_on->name == target.name) return {measured, "measured on " + gpu_name};
  const CodecTime roofline = codec_time(s.compression, s.model, target, chunk_tokens);
  if (!ran_on)
    return {roofline, "roofline estimate for " + target.name + " (the kernels ran on " + gpu_name +
                          ", which the hardware catalog does not name in any GPU's device_names)"};
  // Another GPU of the catalog: its measured times, scaled by the ratio of the two GPUs' rooflines
  // (memory-bound at low rank, compute-bound at high: the roofline knows which).
  const CodecTime there = codec_time(s.compression, s.model, *ran_on, chunk_tokens);
  if (!(there.encode_s > 0) || !(there.decode_s > 0)) return {roofline, "roofline estimate for " + target.name};
  return {{measured.encode_s * roofline.encode_s / there.encode_s, measured.decode_s * roofline.decode_s / there.decode_s},
          "measured on " + gpu_name + " (" + ran_on->name + "), scaled to " + target.name + " by the ratio of their rooflines"};
}

CompressionFigures compression_figures(const scenario::Scenario& s, bool measure_kernels,
                                       const std::optional<std::filesystem::path>& cache_dir) {
  const double chunk_tokens = static_cast<double>(s.training.seq_len) / s.parallelism.context;
  CompressionFigures f;
  f.codec.bytes = kv_bytes(s.compression, s.model);
  f.codec.per_chunk = codec_time(s.compression, s.model, s.cluster.gpu, chunk_tokens);
  CompressionOutcome& o = f.outcome;
  o.method = s.compression.method;
  o.raw_bytes_per_token = f.codec.bytes.raw_per_token;
  if (!s.compression.compressed()) {
    o.ratio = 1;
    o.relative_error = o.relative_error_k = o.relative_error_v = 0.0;  // bf16 K/V sent as they are
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
  const kernels::MeasureResult m = measure_cached(s, request_for(s, chunk_tokens), cache_dir, o);
  // The kernels count every byte as it travels, theta included: it replaces the formula.
  f.codec.bytes.sent_per_token = m.sent_bytes_per_token;
  f.codec.bytes.per_chunk = 0;
  o.ratio = m.ratio;
  o.sent_bytes_per_token = m.sent_bytes_per_token;
  o.relative_error = m.relative_error;
  o.relative_error_k = m.relative_error_k;
  o.relative_error_v = m.relative_error_v;
  if (m.warmup_tokens > 0) o.warmup_tokens = m.warmup_tokens;
  o.source = "kernels on " + s.compression.activations + datasets_of(s.compression).describe() + layers_text(m) + " (" + m.device + ")";
  const bool on_gpu = m.throughput_measured && m.device.find("cpu") == std::string::npos;
  if (on_gpu && m.encode_input_bytes_per_s > 0 && m.decode_output_bytes_per_s > 0) {
    const MeasuredCodecTime t = measured_codec_time(s, chunk_tokens, m.device, m.encode_input_bytes_per_s, m.decode_output_bytes_per_s);
    f.codec.per_chunk = t.per_chunk;
    o.timing_source = t.source;
  }
  return f;
}

}  // namespace moss::step
