// `moss compress`: the kernels alone on synthetic or real activations. Fitting uses a warm-up sample
// (synthetic: `warmup` tokens generated before the measured ones; files: the first half of each
// layer's tokens), measurement the rest, so errors are out-of-sample.
#include "compress_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <stdexcept>

#include "moss/core/error.h"
#include "moss/io/activations.h"
#include "moss/kernels/evaluate.h"
#include "moss/kernels/gpu_codec.h"
#include "moss/kernels/synthetic.h"

namespace moss::app {

namespace {
namespace mk = moss::kernels;

/// One tensor's totals over its layers.
struct TensorTotals {
  std::string name;
  std::int64_t layers = 0, tokens = 0, dim = 0;
  std::uint64_t raw_bytes = 0, sent_bytes = 0, one_time_bytes = 0;
  double error_sq = 0, norm_sq = 0, worst_token = 0, encode_s = 0, decode_s = 0, fit_s = 0;
  std::string device;

  void add(const mk::TensorReport& r) {
    ++layers;
    tokens = r.tokens, dim = r.dim, device = r.device;
    raw_bytes += r.raw_bytes, sent_bytes += r.sent_bytes, one_time_bytes += r.one_time_bytes;
    error_sq += r.error.error_sq, norm_sq += r.error.norm_sq;
    worst_token = std::max(worst_token, r.error.worst_token);
    encode_s += r.encode_s, decode_s += r.decode_s, fit_s += r.fit_s;
  }
  void add(const TensorTotals& t) {
    raw_bytes += t.raw_bytes, sent_bytes += t.sent_bytes, one_time_bytes += t.one_time_bytes;
    error_sq += t.error_sq, norm_sq += t.norm_sq, worst_token = std::max(worst_token, t.worst_token);
    encode_s += t.encode_s, decode_s += t.decode_s, fit_s += t.fit_s, device = t.device;
  }
  [[nodiscard]] double ratio() const { return raw_bytes ? static_cast<double>(sent_bytes) / static_cast<double>(raw_bytes) : 1.0; }
  [[nodiscard]] double relative_error() const { return norm_sq > 0 ? std::sqrt(error_sq / norm_sq) : std::sqrt(error_sq); }
  [[nodiscard]] double encode_gbps() const { return encode_s > 0 ? static_cast<double>(raw_bytes) / encode_s / 1e9 : 0; }
  [[nodiscard]] double decode_gbps() const { return decode_s > 0 ? static_cast<double>(raw_bytes) / decode_s / 1e9 : 0; }
  [[nodiscard]] nlohmann::json to_json() const {
    return {{"name", name}, {"raw_bytes", raw_bytes}, {"sent_bytes", sent_bytes}, {"ratio", ratio()},
            {"relative_error", relative_error()}, {"worst_token_error", worst_token},
            {"encode_gbps", encode_gbps()}, {"decode_gbps", decode_gbps()}, {"one_time_bytes", one_time_bytes},
            {"layers", layers}, {"tokens", tokens}, {"dim", dim}, {"fit_s", fit_s}};
  }
};

mk::CompressionParams params_of(const CompressOptions& o) {
  mk::CompressionParams p;
  p.method = o.method;
  p.rank_k = o.rank_k > 0 ? o.rank_k : o.rank;
  p.rank_v = o.rank_v > 0 ? o.rank_v : o.rank;
  p.rotations = o.rotations, p.subspaces = o.subspaces, p.fraction = o.fraction, p.bits = o.bits;
  p.theta_block_tokens = o.theta_block, p.route_block_tokens = o.route_block;
  p.routing = o.routing;
  return p;
}

mk::Device device_of(const CompressOptions& o) {
  if (o.device == "cpu") return mk::Device::cpu;
  if (o.device == "gpu") {
    if (!mk::gpu_available())
      throw InputError("", "--device", "gpu: no usable CUDA device (or moss built without CUDA): expected cpu");
    return mk::Device::gpu;
  }
  throw InputError("", "--device", "\"" + o.device + "\": expected cpu or gpu");
}

mk::TensorReport evaluate(const mk::CodecConfig& c, mk::MatrixView warm, mk::MatrixView x, mk::Device d,
                          const CompressOptions& o, const std::string& flag) {
  try {
    return mk::evaluate_tensor(c, warm, x, d, o.seed, o.repeats);
  } catch (const std::invalid_argument& e) {
    throw InputError("", flag, e.what());
  }
}

std::vector<TensorTotals> run_synthetic(const CompressOptions& o, mk::Device device) {
  mk::SyntheticSpec spec;
  try {
    spec = mk::parse_synthetic_spec(o.synthetic);
  } catch (const std::invalid_argument& e) {
    throw InputError("", "--synthetic", e.what());
  }
  if (o.tokens > 0) spec.tokens = o.tokens;
  if (o.dim > 0) spec.dim = o.dim;
  spec.seed = spec.seed * 1000003u + o.seed;
  const std::int64_t measured = spec.tokens, warm = o.warmup > 0 ? o.warmup : measured;
  spec.tokens = warm + measured;
  std::vector<TensorTotals> out;
  for (int v = 0; v < 2; ++v) {
    const mk::Matrix x = mk::generate_synthetic(spec, v == 1);
    const mk::CodecConfig c = mk::codec_config(params_of(o), v == 1);
    TensorTotals t;
    t.name = v == 0 ? "K" : "V";
    t.add(evaluate(c, x.view().slice_rows(0, warm), x.view().slice_rows(warm, measured), device, o,
                   v == 0 ? "--rank-k" : "--rank-v"));
    out.push_back(t);
  }
  return out;
}

std::vector<TensorTotals> run_file(const CompressOptions& o, mk::Device device) {
  const io::Activations a = io::load_activations(o.activations);
  std::vector<TensorTotals> out;
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    const io::Tensor& tensor = a.tensors[i];
    if (tensor.tokens < 2) throw InputError(o.activations, "", "needs >= 2 tokens (half fit, half measured)");
    const bool is_v = a.is_pair() && i == 1;
    const mk::CodecConfig c = mk::codec_config(params_of(o), is_v);
    TensorTotals t;
    t.name = a.is_pair() ? (is_v ? "V" : "K") : "X";
    const std::int64_t warm = tensor.tokens / 2;
    for (std::int64_t l = 0; l < tensor.layers; ++l) {
      const mk::MatrixView all{tensor.layer(l), tensor.tokens, tensor.dim};
      t.add(evaluate(c, all.slice_rows(0, warm), all.slice_rows(warm, tensor.tokens - warm), device, o,
                     a.is_pair() ? (is_v ? "--rank-v" : "--rank-k") : "--rank"));
    }
    out.push_back(t);
  }
  return out;
}

void print_table(std::ostream& out, const CompressOptions& o, const std::vector<TensorTotals>& rows,
                 const TensorTotals& total) {
  out << "moss compress: method " << o.method << " on "
      << (o.activations.empty() ? "synthetic " + o.synthetic : o.activations) << "\ndevice: " << total.device << "\n\n";
  out << std::left << std::setw(7) << "tensor" << std::right << std::setw(14) << "raw_bytes" << std::setw(14)
      << "sent_bytes" << std::setw(10) << "ratio" << std::setw(12) << "rel_error" << std::setw(13) << "worst_token"
      << std::setw(12) << "enc_GB/s" << std::setw(12) << "dec_GB/s" << '\n';
  auto line = [&](const std::string& name, const TensorTotals& t) {
    out << std::left << std::setw(7) << name << std::right << std::setw(14) << t.raw_bytes << std::setw(14)
        << t.sent_bytes << std::setw(10) << std::setprecision(4) << std::fixed << t.ratio() << std::setw(12)
        << std::setprecision(5) << t.relative_error() << std::setw(13) << t.worst_token << std::setw(12)
        << std::setprecision(3) << t.encode_gbps() << std::setw(12) << t.decode_gbps() << '\n';
    out.unsetf(std::ios::fixed);
  };
  for (const auto& r : rows) line(r.name, r);
  if (rows.size() > 1) line("total", total);
  out << "\none-time basis exchange: " << total.one_time_bytes << " bytes (not in sent_bytes)\n";
  out << "one-time fit on the warm-up: " << std::setprecision(3) << total.fit_s << " s (wall, all tensors"
      << (o.device == "gpu" ? "; products on the GPU" : "") << ")\n";
}
}  // namespace

void add_compress_options(CLI::App& sub, CompressOptions& o) {
  sub.add_option("--activations", o.activations, "activation file (.npy or .h5): [tokens, dim], [layers, tokens, dim] or a K/V pair");
  sub.add_option("--synthetic", o.synthetic, "synthetic activation spec, e.g. llama,tokens=4096,dim=2048");
  sub.add_option("--method", o.method, "none | pca | mos | mos-k | topk | quant")->required();
  sub.add_option("--rank", o.rank, "rank for a single tensor (and K and V unless given separately)");
  sub.add_option("--rank-k", o.rank_k, "rank for K");
  sub.add_option("--rank-v", o.rank_v, "rank for V");
  sub.add_option("--fraction", o.fraction, "topk: fraction of entries kept per token");
  sub.add_option("--bits", o.bits, "quant: 8 or 4");
  sub.add_flag("--json", o.json, "print one JSON object");
  sub.add_option("--tokens", o.tokens, "synthetic: measured tokens (overrides the spec)");
  sub.add_option("--dim", o.dim, "synthetic: feature width (overrides the spec)");
  sub.add_option("--warmup", o.warmup, "synthetic: warm-up tokens for fitting (default: --tokens)");
  sub.add_option("--seed", o.seed, "seed of the synthetic data and the fit");
  sub.add_option("--rotations", o.rotations, "mos: number of rotation generators");
  sub.add_option("--subspaces", o.subspaces, "mos-k: number of bases");
  sub.add_option("--theta-block", o.theta_block, "mos: tokens per theta (0 = one per chunk)");
  sub.add_option("--route-block", o.route_block, "mos-k: tokens per basis index (0 = one per chunk)");
  sub.add_option("--routing", o.routing, "mos-k: exhaustive (every basis tried) | sketch (cheap router)");
  sub.add_option("--repeats", o.repeats, "timed runs, fastest kept");
  sub.add_option("--device", o.device, "cpu | gpu");
}

int run_compress(const CompressOptions& o, std::ostream& out) {
  if (o.activations.empty() == o.synthetic.empty())
    throw InputError("", "--activations", "give exactly one of --activations FILE or --synthetic SPEC");
  try {
    (void)mk::parse_method(o.method);
  } catch (const std::invalid_argument& e) {
    throw InputError("", "--method", e.what());
  }
  try {
    (void)mk::parse_routing(o.routing);
  } catch (const std::invalid_argument& e) {
    throw InputError("", "--routing", e.what());
  }
  if (o.repeats < 1) throw InputError("", "--repeats", "expected >= 1");
  const mk::Device device = device_of(o);
  const std::vector<TensorTotals> rows = o.synthetic.empty() ? run_file(o, device) : run_synthetic(o, device);
  TensorTotals total;
  total.name = "total";
  for (const auto& r : rows) total.add(r);
  if (o.json) {
    nlohmann::json j = total.to_json();
    j.erase("name");
    j.erase("layers");
    j.erase("tokens");
    j.erase("dim");
    j["method"] = o.method;
    j["device"] = total.device;
    j["source"] = o.activations.empty() ? "synthetic:" + o.synthetic : o.activations;
    j["tensors"] = nlohmann::json::array();
    for (const auto& r : rows) j["tensors"].push_back(r.to_json());
    out << j.dump(2) << '\n';
  } else {
    print_table(out, o, rows, total);
  }
  return 0;
}

}  // namespace moss::app
