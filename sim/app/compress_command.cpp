// `moss compress`: the kernels alone on synthetic or real activations. Fitting uses a warm-up sample
// (synthetic: `warmup` tokens generated before the measured ones; files: the first half of each
// layer's tokens), measurement the rest, so errors are out-of-sample.
#include "compress_command.h"

#include "output.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <nlohmann/json.hpp>
#include <ostream>
#include <stdexcept>
#include <vector>

#include "moss/core/error.h"
#include "moss/io/activations.h"
#include "moss/io/dataset_path.h"
#include "moss/kernels/evaluate.h"
#include "moss/kernels/gpu_codec.h"
#include "moss/kernels/synthetic.h"

namespace moss::app {

namespace {
namespace mk = moss::kernels;

/// One layer's errors (each layer of a file is fitted and measured on its own).
struct LayerErrors {
  double relative = 0, worst_token = 0;
};

/// One tensor's totals over its layers.
struct TensorTotals {
  std::string name;
  std::int64_t layers = 0, tokens = 0, dim = 0;
  std::uint64_t raw_bytes = 0, sent_bytes = 0, one_time_bytes = 0;
  double error_sq = 0, norm_sq = 0, worst_token = 0, encode_s = 0, decode_s = 0, fit_s = 0;
  std::string device;
  std::vector<LayerErrors> per_layer;

  void add(const mk::TensorReport& r) {
    ++layers;
    per_layer.push_back({r.error.relative, r.error.worst_token});
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
    nlohmann::json j = {{"name", name}, {"raw_bytes", raw_bytes}, {"sent_bytes", sent_bytes}, {"ratio", ratio()},
                        {"relative_error", relative_error()}, {"worst_token_error", worst_token},
                        {"encode_gbps", encode_gbps()}, {"decode_gbps", decode_gbps()}, {"one_time_bytes", one_time_bytes},
                        {"layers", layers}, {"tokens", tokens}, {"dim", dim}, {"fit_s", fit_s}};
    if (per_layer.size() > 1) {
      j["per_layer"] = nlohmann::json::array();
      for (std::size_t l = 0; l < per_layer.size(); ++l)
        j["per_layer"].push_back({{"layer", l}, {"relative_error", per_layer[l].relative}, {"worst_token_error", per_layer[l].worst_token}});
    }
    return j;
  }
};

bool given(const CompressOptions& o, const char* flag) { return o.given.count(flag) > 0; }

// Rank of K (`is_v` false) or V: its own flag when given, else --rank (0 when neither: not checked here).
int rank_of(const CompressOptions& o, bool is_v) {
  return given(o, is_v ? "--rank-v" : "--rank-k") ? (is_v ? o.rank_v : o.rank_k) : o.rank;
}
const char* rank_flag(const CompressOptions& o, bool is_v, bool pair) {
  if (!pair) return given(o, "--rank-k") ? "--rank-k" : "--rank";
  return given(o, is_v ? "--rank-v" : "--rank-k") || !given(o, "--rank") ? (is_v ? "--rank-v" : "--rank-k") : "--rank";
}

mk::CompressionParams params_of(const CompressOptions& o) {
  mk::CompressionParams p;
  p.method = o.method;
  p.rank_k = rank_of(o, false);
  p.rank_v = rank_of(o, true);
  p.rotations = o.rotations, p.subspaces = o.subspaces, p.fraction = o.fraction, p.bits = o.bits;
  p.theta_block_tokens = o.theta_block, p.route_block_tokens = o.route_block;
  p.routing = o.routing;
  return p;
}

// A flag that the method or the source never reads: a note (stderr, and "notes" in --json), not an
// error, so that a script giving one set of flags to every method keeps running (CONTRACT.md: the
// flags are optional and independent).
std::vector<std::string> unused_flag_notes(const CompressOptions& o, mk::Method m) {
  const bool synthetic = !o.synthetic.empty();
  const struct {
    const char* flag;
    bool applies;
    const char* scope;
  } scopes[] = {{"--rank", mk::uses_basis(m), "--method pca, mos or mos-k"},
                {"--rank-k", mk::uses_basis(m), "--method pca, mos or mos-k"},
                {"--rank-v", mk::uses_basis(m), "--method pca, mos or mos-k"},
                {"--fraction", m == mk::Method::topk, "--method topk"},
                {"--bits", m == mk::Method::quant, "--method quant"},
                {"--rotations", m == mk::Method::mos, "--method mos"},
                {"--theta-block", m == mk::Method::mos, "--method mos"},
                {"--subspaces", m == mk::Method::mos_k, "--method mos-k"},
                {"--route-block", m == mk::Method::mos_k, "--method mos-k"},
                {"--routing", m == mk::Method::mos_k, "--method mos-k"},
                {"--tokens", synthetic, "--synthetic"},
                {"--dim", synthetic, "--synthetic"},
                {"--warmup", synthetic, "--synthetic"},
                {"--per-layer", !synthetic, "--activations"}};
  // --dataset, --dataset-k and --dataset-v are refused on --synthetic (datasets_of): they choose the data.
  std::vector<std::string> notes;
  for (const auto& s : scopes)
    if (given(o, s.flag) && !s.applies)
      notes.push_back(std::string(s.flag) + ": applies to " + s.scope + " only (got --method " + o.method +
                      (synthetic ? " on --synthetic" : " on --activations") + "): ignored");
  if (mk::uses_basis(m) && given(o, "--rank") && given(o, "--rank-k") && given(o, "--rank-v"))
    notes.push_back("--rank: --rank-k and --rank-v are both given: ignored");
  return notes;
}

// Each method flag's value checked alone (validate_config on an otherwise valid configuration), so
// that an error names the flag that carries the bad value.
void check_method_values(const CompressOptions& o, mk::Method m) {
  mk::CodecConfig base;
  base.method = m;
  base.rank = 1;
  const auto check = [&](const char* flag, auto set) {
    mk::CodecConfig c = base;
    set(c);
    try {
      mk::validate_config(c, std::numeric_limits<std::int64_t>::max());
    } catch (const std::invalid_argument& e) {
      throw InputError("", flag, e.what());
    }
  };
  check("--rotations", [&](mk::CodecConfig& c) { c.rotations = o.rotations; });
  check("--theta-block", [&](mk::CodecConfig& c) { c.theta_block_tokens = o.theta_block; });
  check("--subspaces", [&](mk::CodecConfig& c) { c.subspaces = o.subspaces; });
  check("--route-block", [&](mk::CodecConfig& c) { c.route_block_tokens = o.route_block; });
  check("--fraction", [&](mk::CodecConfig& c) { c.fraction = o.fraction; });
  check("--bits", [&](mk::CodecConfig& c) { c.bits = o.bits; });
}

/// What a subspace method's bases are fitted on: `tokens` tokens, described by `what`.
struct FitSample {
  std::int64_t tokens = 0;
  std::string what;
};

// Ranks of a subspace method on tensors `dim` wide; `pair`: K and V (else one tensor, --rank only).
// A rank above the fit's tokens is refused, as a scenario's is: such a basis has directions no token
// gave it, and its coefficients would be counted as sent.
void check_ranks(const CompressOptions& o, mk::Method m, bool pair, std::int64_t dim, const std::string& source, const FitSample& fit) {
  if (!mk::uses_basis(m)) return;
  for (const bool is_v : {false, true}) {
    if (!pair && is_v) break;
    const char* flag = rank_flag(o, is_v, pair);
    if (!given(o, flag))
      throw InputError("", flag, "--method " + o.method + " needs a rank" +
                                     (pair ? std::string(" for ") + (is_v ? "V" : "K") + ": --rank R (both) or --rank-k R --rank-v R"
                                           : ": --rank R"));
    const int r = rank_of(o, is_v);
    if (r < 1 || r > dim)
      throw InputError("", flag, std::to_string(r) + ": expected a rank in [1, " + std::to_string(dim) +
                                     "] (the feature width of " + source + ")");
    if (r > fit.tokens)
      throw InputError("", flag, std::to_string(r) + ": exceeds the " + std::to_string(fit.tokens) + " warm-up token" +
                                     (fit.tokens == 1 ? "" : "s") + " the bases are fitted on (" + fit.what +
                                     "): a basis fitted on that many tokens has no more directions");
  }
}

// One tensor (a file without K/V) takes --rank-k as its rank when given (as it always did) and
// never reads --rank-v.
std::vector<std::string> single_tensor_notes(const CompressOptions& o, mk::Method m, std::int64_t layers) {
  std::vector<std::string> notes;
  const std::string ext = std::filesystem::path(o.activations).extension().string();
  // .npy reads [2, tokens, dim] as K and V; HDF5 reads it as 2 layers: say which reading was taken.
  if (layers == 2 && (ext == ".h5" || ext == ".hdf5"))
    notes.push_back("the HDF5 dataset is [2, tokens, dim], read as one tensor of 2 layers; if it holds K and V, give them as "
                    "datasets \"k\" and \"v\", --dataset-k/--dataset-v, or one dataset of shape [2, layers, tokens, dim]");
  if (mk::uses_basis(m) && given(o, "--rank-v")) notes.push_back("--rank-v: the file holds one tensor (no V): ignored");
  return notes;
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

// The fit's seed of layer `layer` of K (or V): the scenario's measurement (kernels/cpu/measure.cpp)
// seeds them so, and `moss compress --seed S` must give the figures of a scenario with seed S.
std::uint64_t fit_seed(const CompressOptions& o, std::int64_t layer, bool is_v) {
  return o.seed + 2 * static_cast<std::uint64_t>(layer) + (is_v ? 1 : 0);
}

// The flags and ranks were checked before; what the kernels still reject is a problem of the data.
mk::TensorReport evaluate(const mk::CodecConfig& c, mk::MatrixView warm, mk::MatrixView x, mk::Device d,
                          const CompressOptions& o, std::uint64_t seed, const std::string& source) {
  try {
    return mk::evaluate_tensor(c, warm, x, d, seed, o.repeats);
  } catch (const std::invalid_argument& e) {
    throw InputError(source, "", e.what());
  }
}

constexpr std::int64_t kMaxValues = std::int64_t{1} << 31;   // per generated tensor: 8 GiB of float32
constexpr int kMaxRepeats = 1000;  // timed runs: the fastest of a thousand is as good as it gets

void check_size(const CompressOptions& o, const char* flag, std::int64_t value, std::int64_t max) {
  if (given(o, flag) && (value < 1 || value > max))
    throw InputError("", flag, std::to_string(value) + ": expected an integer in [1, " + std::to_string(max) + "]");
}

/// The synthetic sizes actually used: the spec's, with --tokens / --dim / --warmup applied.
struct SyntheticSizes {
  mk::SyntheticSpec spec;     ///< tokens = warm-up + measured
  std::int64_t warm = 0, measured = 0;
  std::string text;           ///< the spec string with the overridden sizes, for the report
};

// `text` with key=value replaced (or appended when absent).
std::string with_key(const std::string& text, const std::string& key, std::int64_t value) {
  std::string out;
  bool found = false;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    const std::size_t end = std::min(text.find(',', begin), text.size());
    std::string item = text.substr(begin, end - begin);
    const std::size_t k = item.find_first_not_of(' ');
    if (k != std::string::npos && item.compare(k, key.size() + 1, key + "=") == 0)
      item = key + "=" + std::to_string(value), found = true;
    out += (begin ? "," : "") + item;
    begin = end + 1;
  }
  return found ? out : out + (out.empty() ? "" : ",") + key + "=" + std::to_string(value);
}

SyntheticSizes synthetic_sizes(const CompressOptions& o) {
  SyntheticSizes s;
  try {
    s.spec = mk::parse_synthetic_spec(o.synthetic);
  } catch (const std::invalid_argument& e) {
    throw InputError("", "--synthetic", e.what());
  }
  check_size(o, "--tokens", o.tokens, mk::kMaxSyntheticTokens);
  check_size(o, "--dim", o.dim, mk::kMaxSyntheticDim);
  check_size(o, "--warmup", o.warmup, mk::kMaxSyntheticTokens);
  s.text = o.synthetic;
  if (given(o, "--tokens")) s.spec.tokens = o.tokens, s.text = with_key(s.text, "tokens", o.tokens);
  if (given(o, "--dim")) s.spec.dim = o.dim, s.text = with_key(s.text, "dim", o.dim);
  s.measured = s.spec.tokens;
  s.warm = given(o, "--warmup") ? o.warmup : s.measured;
  const std::int64_t values = (s.warm + s.measured) * s.spec.dim;
  if (values > kMaxValues) {
    const char* flag = given(o, "--tokens") ? "--tokens" : given(o, "--dim") ? "--dim" : given(o, "--warmup") ? "--warmup" : "--synthetic";
    throw InputError("", flag, "(warm-up " + std::to_string(s.warm) + " + measured " + std::to_string(s.measured) +
                                   " tokens) x dim " + std::to_string(s.spec.dim) + " = " + std::to_string(values) +
                                   " values per tensor: expected at most " + std::to_string(kMaxValues) +
                                   " (8 GiB of float32)");
  }
  s.spec.tokens = s.warm + s.measured;
  s.spec.seed = s.spec.seed * 1000003u + o.seed;
  try {
    mk::check_synthetic_cost(s.spec);  // with the flags' sizes and the warm-up
  } catch (const std::invalid_argument& e) {
    const char* flag = given(o, "--dim") ? "--dim" : given(o, "--tokens") ? "--tokens" : given(o, "--warmup") ? "--warmup" : "--synthetic";
    throw InputError("", flag, std::string(e.what()) + " (with warm-up " + std::to_string(s.warm) + " + measured " +
                                   std::to_string(s.measured) + " tokens, dim " + std::to_string(s.spec.dim) + ")");
  }
  return s;
}

std::vector<TensorTotals> run_synthetic(const CompressOptions& o, mk::Method method, const SyntheticSizes& s, mk::Device device) {
  check_ranks(o, method, true, s.spec.dim, "--synthetic " + s.text,
              {s.warm, given(o, "--warmup") ? "--warmup; raise it" : "by default as many as are measured; raise --warmup"});
  std::vector<TensorTotals> out;
  for (int v = 0; v < 2; ++v) {
    const mk::Matrix x = mk::generate_synthetic(s.spec, v == 1);
    const mk::CodecConfig c = mk::codec_config(params_of(o), v == 1);
    TensorTotals t;
    t.name = v == 0 ? "K" : "V";
    t.add(evaluate(c, x.view().slice_rows(0, s.warm), x.view().slice_rows(s.warm, s.measured), device, o,
                   fit_seed(o, 0, v == 1), "synthetic:" + s.text));
    out.push_back(t);
  }
  return out;
}

// The HDF5 datasets the flags choose; exit 2 naming the flag when they do not make a choice.
io::DatasetChoice datasets_of(const CompressOptions& o) {
  const io::DatasetChoice choice{o.dataset, o.dataset_k, o.dataset_v};
  for (const char* flag : {"--dataset", "--dataset-k", "--dataset-v"}) {
    if (!given(o, flag)) continue;
    if (!o.synthetic.empty()) throw InputError("", flag, "chooses datasets of an HDF5 --activations file, not of --synthetic data");
    const std::string& name = flag == std::string("--dataset") ? o.dataset : flag == std::string("--dataset-k") ? o.dataset_k : o.dataset_v;
    if (const std::string problem = io::dataset_name_problem(name); !problem.empty())
      throw InputError("", flag, "\"" + name + "\": " + problem);
  }
  if (const std::string problem = io::dataset_choice_problem(choice); !problem.empty())
    throw InputError("", given(o, "--dataset") ? "--dataset" : given(o, "--dataset-k") ? "--dataset-v" : "--dataset-k",
                     problem + " (--dataset NAME, or --dataset-k K --dataset-v V)");
  return choice;
}

std::vector<TensorTotals> run_file(const CompressOptions& o, mk::Method method, mk::Device device) {
  const io::Activations a = io::load_activations(o.activations, datasets_of(o));
  const io::Tensor& first = a.tensors.front();  // K and V have one shape
  if (first.tokens < 2) throw InputError(o.activations, "", "needs >= 2 tokens (half fit, half measured)");
  check_ranks(o, method, a.is_pair(), first.dim, o.activations, {first.tokens / 2, "the first half of each layer's tokens"});
  std::vector<TensorTotals> out;
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    const io::Tensor& tensor = a.tensors[i];
    const bool is_v = a.is_pair() && i == 1;
    const mk::CodecConfig c = mk::codec_config(params_of(o), is_v);
    TensorTotals t;
    t.name = a.is_pair() ? (is_v ? "V" : "K") : "X";
    const std::int64_t warm = tensor.tokens / 2;
    for (std::int64_t l = 0; l < tensor.layers; ++l) {
      const mk::MatrixView all{tensor.layer(l), tensor.tokens, tensor.dim};
      t.add(evaluate(c, all.slice_rows(0, warm), all.slice_rows(warm, tensor.tokens - warm), device, o,
                     fit_seed(o, l, is_v), o.activations));
    }
    out.push_back(t);
  }
  return out;
}

void print_table(std::ostream& out, const CompressOptions& o, const std::string& source,
                 const std::vector<TensorTotals>& rows, const TensorTotals& total) {
  out << "moss compress: method " << o.method << " on " << source << "\ndevice: " << total.device << "\n\n";
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
  for (const auto& r : rows) {
    line(r.name, r);
    if (!o.per_layer || r.per_layer.size() < 2) continue;
    for (std::size_t l = 0; l < r.per_layer.size(); ++l)  // errors only: bytes and speed are the same per layer
      out << std::left << std::setw(7) << ("  L" + std::to_string(l)) << std::right << std::setw(38) << "" << std::setw(12)
          << std::setprecision(5) << std::fixed << r.per_layer[l].relative << std::setw(13) << r.per_layer[l].worst_token << '\n';
    out.unsetf(std::ios::fixed);
  }
  if (rows.size() > 1) line("total", total);
  // raw_bytes counts the measured tokens only: say so, with the shape of each tensor (once if shared).
  const auto shape = [](const TensorTotals& t) {
    return std::to_string(t.layers) + (t.layers == 1 ? " layer x " : " layers x ") + std::to_string(t.tokens) +
           (t.tokens == 1 ? " token x " : " tokens x ") + std::to_string(t.dim);
  };
  const bool shared = std::all_of(rows.begin(), rows.end(), [&](const TensorTotals& t) { return shape(t) == shape(rows.front()); });
  out << "\nraw_bytes: the measured tokens in bf16 (the warm-up is not counted): ";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (shared) {
      out << shape(rows[i]) << (rows.size() > 1 ? " per tensor" : "");
      break;
    }
    out << (i ? ", " : "") << rows[i].name << " " << shape(rows[i]);
  }
  out << "\none-time basis exchange: " << total.one_time_bytes << " bytes (not in sent_bytes)\n";
  out << "one-time fit on the warm-up: " << std::setprecision(3) << total.fit_s << " s (wall, all tensors"
      << (o.device == "gpu" ? "; products on the GPU" : "") << ")\n";
}
}  // namespace

void add_compress_options(CLI::App& sub, CompressOptions& o) {
  sub.add_option("--activations", o.activations, "activation file (.npy or .h5): [tokens, dim], [layers, tokens, dim] or a K/V pair")
      ->check(non_empty("a .npy or .h5 file"));
  sub.add_option("--dataset", o.dataset, "HDF5: read one tensor from this dataset (a path such as cache/layer3/x)");
  sub.add_option("--dataset-k", o.dataset_k, "HDF5: read K from this dataset (with --dataset-v)");
  sub.add_option("--dataset-v", o.dataset_v, "HDF5: read V from this dataset (with --dataset-k)");
  sub.add_option("--synthetic", o.synthetic, "synthetic activation spec, e.g. llama,tokens=4096,dim=2048")
      ->check(non_empty("a spec such as llama or llama,dim=4096"));
  sub.add_option("--method", o.method, "none | pca | mos | mos-k | topk | quant")->required();
  sub.add_option("--rank", o.rank, "pca, mos, mos-k: rank of a single tensor (and of K and V unless given separately)");
  sub.add_option("--rank-k", o.rank_k, "pca, mos, mos-k: rank for K");
  sub.add_option("--rank-v", o.rank_v, "pca, mos, mos-k: rank for V");
  sub.add_option("--fraction", o.fraction, "topk: fraction of entries kept per token, in (0, 1]")->capture_default_str();
  sub.add_option("--bits", o.bits, "quant: 8 or 4")->capture_default_str();
  sub.add_flag("--json", o.json, "print one JSON object");
  sub.add_option("--tokens", o.tokens, "synthetic: measured tokens, in [1, 16777216] (overrides the spec)");
  sub.add_option("--dim", o.dim, "synthetic: feature width, in [1, 65536] (overrides the spec)");
  sub.add_option("--warmup", o.warmup, "synthetic: warm-up tokens for fitting (default: the measured tokens)");
  // CLI11 reads "-1" into an unsigned integer as 2^64 - 1, and saturates one too large: refuse both.
  sub.add_option("--seed", o.seed, "seed of the synthetic data and the fit")->capture_default_str()->check(CLI::Validator(
      [](const std::string& text) -> std::string {
        std::uint64_t v = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        return ec == std::errc() && end == text.data() + text.size() ? "" : text + ": expected an integer in [0, 18446744073709551615]";
      },
      "", ""));
  sub.add_option("--rotations", o.rotations, "mos: number of rotation generators, in [0, 16]")->capture_default_str();
  sub.add_option("--subspaces", o.subspaces, "mos-k: number of bases, in [1, 256]")->capture_default_str();
  sub.add_option("--theta-block", o.theta_block, "mos: tokens per theta (0 = one per chunk)")->capture_default_str();
  sub.add_option("--route-block", o.route_block, "mos-k: tokens per basis index (0 = one per chunk)")->capture_default_str();
  sub.add_option("--routing", o.routing, "mos-k: exhaustive (every basis tried) | sketch (cheap router)")->capture_default_str();
  sub.add_option("--repeats", o.repeats, "timed runs, fastest kept (1 to 1000)")->capture_default_str();
  sub.add_option("--device", o.device, "cpu | gpu")->capture_default_str();
  sub.add_flag("--per-layer", o.per_layer, "a file of several layers: a row of errors per layer under each tensor");
  sub.callback([&sub, &o] {
    for (const CLI::Option* opt : sub.get_options())
      if (opt->count() > 0) o.given.insert(opt->get_name());
  });
}

int run_compress(const CompressOptions& o, std::ostream& out, std::ostream& err) {
  if (o.activations.empty() == o.synthetic.empty())
    throw InputError("", "--activations", "give exactly one of --activations FILE or --synthetic SPEC");
  mk::Method method{};
  try {
    method = mk::parse_method(o.method);
  } catch (const std::invalid_argument& e) {
    throw InputError("", "--method", e.what());
  }
  try {
    (void)mk::parse_routing(o.routing);
  } catch (const std::invalid_argument& e) {
    throw InputError("", "--routing", e.what());
  }
  std::vector<std::string> notes = unused_flag_notes(o, method);
  check_method_values(o, method);
  if (o.repeats < 1 || o.repeats > kMaxRepeats)
    throw InputError("", "--repeats", std::to_string(o.repeats) + ": expected an integer in [1, " + std::to_string(kMaxRepeats) + "]");
  const mk::Device device = device_of(o);
  std::vector<TensorTotals> rows;
  std::string source = o.activations + datasets_of(o).describe();
  std::int64_t warmup = 0;
  if (o.synthetic.empty()) {
    rows = run_file(o, method, device);
    if (rows.size() == 1)
      for (std::string& n : single_tensor_notes(o, method, rows[0].layers)) notes.push_back(std::move(n));
  } else {
    const SyntheticSizes sizes = synthetic_sizes(o);
    source = "synthetic:" + sizes.text, warmup = sizes.warm;
    rows = run_synthetic(o, method, sizes, device);
  }
  for (const std::string& n : notes) err << "moss compress: note: " << n << '\n';
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
    j["source"] = source;
    j["seed"] = o.seed;
    if (warmup > 0) j["warmup_tokens"] = warmup;
    if (!notes.empty()) j["notes"] = notes;
    j["tensors"] = nlohmann::json::array();
    for (const auto& r : rows) j["tensors"].push_back(r.to_json());
    out << j.dump(2) << '\n';
  } else {
    print_table(out, o, warmup > 0 ? source + " (warm-up " + std::to_string(warmup) + (warmup == 1 ? " token)" : " tokens)") : source, rows, total);
  }
  return 0;
}

}  // namespace moss::app
