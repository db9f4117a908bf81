// Reading the scenario sections other than the cluster (see cluster_section.cpp).
#include <filesystem>
#include <stdexcept>
#include <string_view>

#include "moss/io/dataset_path.h"
#include "moss/kernels/synthetic.h"
#include "moss/scenario/catalog.h"
#include "sections.h"

namespace moss::scenario::detail {

using nlohmann::json;

namespace {

std::vector<std::string> keys_of(const auto& map) {
  std::vector<std::string> out;
  for (const auto& [k, v] : map) out.push_back(k);
  return out;
}

const json* section(JsonReader& r, const json& doc, const char* key, bool required) {
  const json* j = r.member(doc, "", key, required);
  if (j && !r.expect_object(*j, std::string("/") + key)) return nullptr;
  return j;
}

}  // namespace

void read_model(JsonReader& r, const json& doc, Scenario& s) {
  const json* m = section(r, doc, "model", true);
  if (!m) return;
  const std::string p = "/model";
  r.allow_keys(*m, p, {"preset", "layers", "d_model", "heads", "kv_heads", "ffn_hidden", "vocab",
                       "tied_embeddings", "name"});
  model::TransformerConfig& c = s.model;
  const bool has_preset = m->contains("preset");
  if (has_preset) {
    const auto& models = catalog().models;
    if (auto name = r.choice(*m, p, "preset", keys_of(models), true)) c = models.at(*name);
  }
  const bool req = !has_preset;
  if (auto v = r.integer(*m, p, "layers", 1, 1000, req)) c.layers = static_cast<int>(*v);
  if (auto v = r.integer(*m, p, "d_model", 1, 131072, req)) c.d_model = static_cast<int>(*v);
  if (auto v = r.integer(*m, p, "heads", 1, 4096, req)) c.heads = static_cast<int>(*v);
  if (auto v = r.integer(*m, p, "kv_heads", 1, 4096, false)) c.kv_heads = static_cast<int>(*v);
  else if (!has_preset) c.kv_heads = c.heads;
  if (auto v = r.integer(*m, p, "ffn_hidden", 1, 1 << 20, req)) c.ffn_hidden = static_cast<int>(*v);
  if (auto v = r.integer(*m, p, "vocab", 1, 10'000'000, req)) c.vocab = *v;
  if (auto v = r.boolean(*m, p, "tied_embeddings", false)) c.tied_embeddings = *v;
  if (auto v = r.string(*m, p, "name", false)) c.name = *v;
  if (c.name.empty()) c.name = "custom";
  if (!r.ok()) return;
  if (c.d_model % c.heads != 0) {
    r.problem(p + "/heads", "= " + std::to_string(c.heads) + ": must divide d_model = " + std::to_string(c.d_model));
  } else if (c.heads % c.kv_heads != 0 || c.kv_heads > c.heads) {
    r.problem(p + "/kv_heads", "= " + std::to_string(c.kv_heads) + ": must divide heads = " + std::to_string(c.heads));
  }
}

void read_training(JsonReader& r, const json& doc, Scenario& s) {
  const json* t = section(r, doc, "training", true);
  if (!t) return;
  const std::string p = "/training";
  r.allow_keys(*t, p, {"seq_len", "sequences_per_step", "tokens", "target_loss", "weight_sync",
                       "activation_checkpointing"});
  TrainingSpec& tr = s.training;
  if (auto v = r.integer(*t, p, "seq_len", 1, std::int64_t{1} << 32, true)) tr.seq_len = *v;
  if (auto v = r.integer(*t, p, "sequences_per_step", 1, 10'000'000, false)) tr.sequences_per_step = static_cast<int>(*v);
  tr.tokens = r.number(*t, p, "tokens", 1, 1e16, false);  // at least one token: 5e-324 gave a time to target of 0
  tr.target_loss = r.number(*t, p, "target_loss", 0, 100, false, true);
  if (t->contains("tokens") && t->contains("target_loss")) {
    r.problem(p + "/target_loss", "give either \"tokens\" or \"target_loss\", not both");
  }
  if (auto v = r.boolean(*t, p, "activation_checkpointing", false)) tr.activation_checkpointing = *v;
  if (const json* w = r.member(*t, p, "weight_sync", false); w && r.expect_object(*w, p + "/weight_sync")) {
    const std::string wp = p + "/weight_sync";
    r.allow_keys(*w, wp, {"every_steps", "overlap"});
    if (auto v = r.integer(*w, wp, "every_steps", 1, 1'000'000, false)) tr.sync_every_steps = static_cast<int>(*v);
    if (auto v = r.boolean(*w, wp, "overlap", false)) tr.sync_overlap = *v;
  }
}

void read_parallelism(JsonReader& r, const json& doc, Scenario& s) {
  const json* j = section(r, doc, "parallelism", false);
  ParallelismSpec& par = s.parallelism;
  const int gpus = s.cluster.gpus();
  if (!j) {
    par.context = gpus;
    return;
  }
  const std::string p = "/parallelism";
  r.allow_keys(*j, p, {"context", "data", "cp_algorithm", "partition", "zero_stage"});
  if (auto v = r.integer(*j, p, "data", 1, 1'000'000, false)) par.data = static_cast<int>(*v);
  if (auto v = r.integer(*j, p, "context", 1, 1'000'000, false)) par.context = static_cast<int>(*v);
  else par.context = std::max(1, gpus / par.data);
  if (auto v = r.choice(*j, p, "cp_algorithm", {"allgather", "ring"}, false)) {
    par.cp_algorithm = *v == "ring" ? CpAlgorithm::kRing : CpAlgorithm::kAllGather;
  }
  if (auto v = r.choice(*j, p, "partition", {"zigzag", "contiguous"}, false)) {
    par.partition = *v == "zigzag" ? Partition::kZigzag : Partition::kContiguous;
  }
  if (auto v = r.integer(*j, p, "zero_stage", 0, 3, false)) par.zero_stage = static_cast<int>(*v);
}

std::string resolve_under(const std::string& base_dir, const std::string& value) {
  const std::filesystem::path path(value);
  return (path.is_absolute() ? path : std::filesystem::path(base_dir) / path).lexically_normal().string();
}

namespace {

// "datasets": {"k": "cache/k", "v": "cache/v"}, for an HDF5 activation file whose K and V are not
// its datasets "k" and "v" (io::DatasetChoice).
void read_datasets(JsonReader& r, const json& j, const std::string& p, CompressionSpec& c) {
  const json* d = r.member(j, p, "datasets", false);
  if (!d) return;
  const std::string dp = p + "/datasets";
  if (!r.expect_object(*d, dp)) return;
  r.allow_keys(*d, dp, {"k", "v"});
  for (const auto& [key, out] : {std::pair{"k", &c.dataset_k}, std::pair{"v", &c.dataset_v}}) {
    const auto name = r.string(*d, dp, key, true);
    if (!name) continue;
    if (const std::string problem = io::dataset_name_problem(*name); !problem.empty())
      r.problem(dp + "/" + key, "= " + brief(json(*name)) + ": " + problem);
    else *out = *name;
  }
  const std::string ext = std::filesystem::path(c.activations).extension().string();
  if (c.activations.rfind("synthetic:", 0) == 0 || (ext != ".h5" && ext != ".hdf5"))
    r.problem(dp, "names HDF5 datasets, but /compression/activations is not an .h5/.hdf5 file");
}

}  // namespace

void read_compression(JsonReader& r, const json& doc, Scenario& s, const std::string& base_dir) {
  const json* j = section(r, doc, "compression", false);
  if (!j) return;
  const std::string p = "/compression";
  CompressionSpec& c = s.compression;
  auto method = r.choice(*j, p, "method", {"none", "mos", "pca", "mos-k", "topk", "quant"}, true);
  if (!method) return;
  c.method = *method;
  if (c.method == "none") r.allow_keys(*j, p, {"method"});
  else if (c.method == "mos") r.allow_keys(*j, p, {"method", "rank_k", "rank_v", "rotations", "basis_refresh_steps", "activations", "warmup_tokens", "datasets"});
  else if (c.method == "pca") r.allow_keys(*j, p, {"method", "rank_k", "rank_v", "basis_refresh_steps", "activations", "warmup_tokens", "datasets"});
  else if (c.method == "mos-k") r.allow_keys(*j, p, {"method", "rank_k", "rank_v", "subspaces", "routing", "basis_refresh_steps", "activations", "warmup_tokens", "datasets"});
  // topk and quant fit nothing, but skip the warm-up's tokens too (every method is measured after it):
  // warmup_tokens lets a sweep measure them on the fitted methods' tokens.
  else if (c.method == "topk") r.allow_keys(*j, p, {"method", "fraction", "activations", "warmup_tokens", "datasets"});
  else r.allow_keys(*j, p, {"method", "bits", "activations", "warmup_tokens", "datasets"});
  if (auto a = r.string(*j, p, "activations", false)) {
    if (a->rfind("synthetic:", 0) == 0) {
      c.activations = *a;
      try {
        // The generator's own parser: what validates here is what runs (tokens and dim come from the
        // scenario's shapes at run time).
        (void)kernels::parse_synthetic_spec(std::string_view(*a).substr(std::string_view("synthetic:").size()));
      } catch (const std::invalid_argument& e) {
        r.problem(p + "/activations", "= \"" + *a + "\": " + e.what());
      }
    } else {
      c.activations = resolve_under(base_dir, *a);
      std::error_code ec;
      if (!std::filesystem::is_regular_file(c.activations, ec)) {
        r.problem(p + "/activations", "= \"" + *a + "\": expected \"synthetic:<spec>\" or an existing .npy/.h5 file (looked for " +
                                          c.activations + ")");
      }
    }
  }
  read_datasets(r, *j, p, c);
  if (c.fitted()) {
    if (auto v = r.integer(*j, p, "rank_k", 1, 1 << 20, true)) c.rank_k = static_cast<int>(*v);
    if (auto v = r.integer(*j, p, "rank_v", 1, 1 << 20, true)) c.rank_v = static_cast<int>(*v);
    if (auto v = r.integer(*j, p, "basis_refresh_steps", 0, 1'000'000'000, false)) c.basis_refresh_steps = static_cast<int>(*v);
    // The kernels' limit (kernels::kMaxWarmupTokens).
    if (auto v = r.integer(*j, p, "warmup_tokens", 16, 65536, false)) c.warmup_tokens = *v;
  }
  // The kernels' limit (kernels::validate_config): a scenario that validates must also run.
  if (auto v = r.integer(*j, p, "rotations", 0, 16, false)) c.rotations = static_cast<int>(*v);
  if (auto v = r.integer(*j, p, "subspaces", 2, 256, false)) c.subspaces = static_cast<int>(*v);
  if (auto v = r.choice(*j, p, "routing", {"exhaustive", "sketch"}, false)) c.routing = *v;
  if (auto v = r.number(*j, p, "fraction", 0, 1, c.method == "topk", true)) c.fraction = *v;
  if (c.method == "quant") {
    if (const json* b = r.member(*j, p, "bits", true)) {
      if (b->is_number_integer() && (b->get<int>() == 4 || b->get<int>() == 8)) c.bits = b->get<int>();
      else r.problem(p + "/bits", "= " + brief(*b) + ": expected 4 or 8");
    }
  }
}

namespace {

void read_efficiency(JsonReader& r, const json& e, const std::string& p, const char* key,
                     EfficiencySource& out, const std::string& base_dir) {
  const json* j = r.member(e, p, key, false);
  if (!j) return;
  const std::string jp = JsonReader::child(p, key);
  if (!r.expect_object(*j, jp)) return;
  r.allow_keys(*j, jp, {"source", "value", "file"});
  auto src = r.choice(*j, jp, "source", {"assumed", "measured"}, true);
  if (!src) return;
  out.source = *src;
  out.defaulted = false;
  if (*src == "assumed") {
    if (auto v = r.number(*j, jp, "value", 0, 2, true, true)) out.value = *v;
    if (j->contains("file")) r.problem(jp + "/file", "only used with \"source\": \"measured\"");
  } else {
    if (auto f = r.string(*j, jp, "file", true)) {
      out.file = resolve_under(base_dir, *f);
      std::error_code ec;
      if (!std::filesystem::is_regular_file(out.file, ec)) {
        r.problem(jp + "/file", "= \"" + *f + "\": no such calibration file (looked for " + out.file + ")");
      }
    }
    if (j->contains("value")) r.problem(jp + "/value", "only used with \"source\": \"assumed\"");
  }
}

}  // namespace

void read_convergence(JsonReader& r, const json& doc, Scenario& s, const std::string& base_dir) {
  const json* j = section(r, doc, "convergence", false);
  if (!j) return;
  const std::string p = "/convergence";
  r.allow_keys(*j, p, {"loss_law", "efficiency"});
  if (const json* l = r.member(*j, p, "loss_law", false); l && r.expect_object(*l, p + "/loss_law")) {
    const std::string lp = p + "/loss_law";
    r.allow_keys(*l, lp, {"E", "A", "B", "alpha", "beta", "source"});
    LossLaw& law = s.convergence.law;
    if (auto v = r.number(*l, lp, "E", 0, 100, false)) law.e = *v;
    if (auto v = r.number(*l, lp, "A", 0, 1e12, false)) law.a = *v;
    if (auto v = r.number(*l, lp, "B", 0, 1e12, false)) law.b = *v;
    if (auto v = r.number(*l, lp, "alpha", 0, 2, false, true)) law.alpha = *v;
    if (auto v = r.number(*l, lp, "beta", 0, 2, false, true)) law.beta = *v;
    law.source = r.string(*l, lp, "source", false).value_or("scenario override");
  }
  if (const json* e = r.member(*j, p, "efficiency", false); e && r.expect_object(*e, p + "/efficiency")) {
    const std::string ep = p + "/efficiency";
    r.allow_keys(*e, ep, {"compression", "weight_sync"});
    read_efficiency(r, *e, ep, "compression", s.convergence.compression, base_dir);
    read_efficiency(r, *e, ep, "weight_sync", s.convergence.weight_sync, base_dir);
  }
}

void read_cost(JsonReader& r, const json& doc, Scenario& s) {
  const json* j = section(r, doc, "cost", false);
  if (!j) return;
  const std::string p = "/cost";
  r.allow_keys(*j, p, {"gpu_hour_usd", "gbps_month_usd", "transfer_gb_usd"});
  s.cost.gpu_hour_usd = r.number(*j, p, "gpu_hour_usd", 0, 1e6, false);
  s.cost.gbps_month_usd = r.number(*j, p, "gbps_month_usd", 0, 1e9, false);
  s.cost.transfer_gb_usd = r.number(*j, p, "transfer_gb_usd", 0, 1e6, false);
}

void read_simulation(JsonReader& r, const json& doc, Scenario& s) {
  const json* j = section(r, doc, "simulation", false);
  if (!j) return;
  const std::string p = "/simulation";
  r.allow_keys(*j, p, {"backend", "seed", "measure_compression", "packet"});
  if (const json* pk = r.member(*j, p, "packet", false); pk && r.expect_object(*pk, p + "/packet")) {
    r.allow_keys(*pk, p + "/packet", {"memoise", "extrapolate"});
    if (auto v = r.boolean(*pk, p + "/packet", "memoise", false)) s.simulation.packet_memoise = *v;
    if (auto v = r.boolean(*pk, p + "/packet", "extrapolate", false)) s.simulation.packet_extrapolate = *v;
  }
  if (auto v = r.boolean(*j, p, "measure_compression", false)) s.simulation.measure_compression = *v;
  if (auto v = r.choice(*j, p, "backend", {"analytic", "ns3"}, false)) s.simulation.backend = *v;
  if (auto v = r.integer(*j, p, "seed", 0, std::int64_t{1} << 53, false)) s.simulation.seed = static_cast<std::uint64_t>(*v);
}

void read_sweep_shape(JsonReader& r, const json& doc) {
  const json* j = r.member(doc, "", "sweep", false);
  if (!j) return;
  if (!r.expect_object(*j, "/sweep")) return;
  for (const auto& [key, values] : j->items()) {
    if (key == "zip") continue;  // checked by the sweep runner
    if (values.is_array() && values.empty()) r.problem(JsonReader::child("/sweep", key), "expected at least one value");
  }
}

}  // namespace moss::scenario::detail
