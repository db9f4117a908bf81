#include "moss/scenario/catalog.h"

#include <fstream>
#include <mutex>

#include <nlohmann/json.hpp>

#include "moss/core/error.h"
#include "moss/scenario/loader.h"
#include "moss/scenario/units.h"

namespace moss::scenario {

namespace {

nlohmann::json read(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw RuntimeFailure(path + ": cannot open the moss data file (set MOSS_DATA_DIR?)");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw RuntimeFailure(path + ": " + e.what());
  }
}

double need(std::optional<double> v, const std::string& file, const std::string& what) {
  if (!v) throw RuntimeFailure(file + ": bad or missing " + what);
  return *v;
}

model::Efficiency efficiency(const nlohmann::json& j, model::Efficiency e) {
  e.gemm = j.value("gemm", e.gemm);
  e.attention_fwd = j.value("attention_fwd", e.attention_fwd);
  e.attention_bwd = j.value("attention_bwd", e.attention_bwd);
  e.memory = j.value("memory", e.memory);
  return e;
}

}  // namespace

Catalog load_catalog(const std::string& dir) {
  Catalog c;
  const std::string hw_file = dir + "/hardware.json";
  const nlohmann::json hw = read(hw_file);
  try {
    const model::Efficiency eff = efficiency(hw.at("default_efficiency"), {});
    for (const auto& [name, g] : hw.at("gpus").items()) {
      model::GpuSpec spec;
      spec.name = name;
      spec.peak_bf16_flops = g.at("peak_bf16_tflops").get<double>() * 1e12;
      spec.hbm_bytes_per_s = need(parse_rate_bps(g.at("hbm_bandwidth").get<std::string>()), hw_file, name + " hbm_bandwidth") / 8.0;
      spec.memory_bytes = need(parse_size_bytes(g.at("memory").get<std::string>()), hw_file, name + " memory");
      spec.intra_node_bps = need(parse_rate_bps(g.at("intra_node_bandwidth").get<std::string>()), hw_file, name + " intra_node_bandwidth");
      spec.intra_node_latency_s = need(parse_duration_s(g.at("intra_node_latency").get<std::string>()), hw_file, name + " intra_node_latency");
      spec.efficiency = efficiency(g.value("efficiency", nlohmann::json::object()), eff);
      spec.device_names = g.value("device_names", std::vector<std::string>{});
      c.gpus.emplace(name, spec);
    }
    const std::string models_file = dir + "/models.json";
    const nlohmann::json models = read(models_file);
    for (const auto& [name, m] : models.at("models").items()) {
      model::TransformerConfig cfg;
      cfg.name = name;
      cfg.layers = m.at("layers").get<int>();
      cfg.d_model = m.at("d_model").get<int>();
      cfg.heads = m.at("heads").get<int>();
      cfg.kv_heads = m.at("kv_heads").get<int>();
      cfg.ffn_hidden = m.at("ffn_hidden").get<int>();
      cfg.vocab = m.at("vocab").get<std::int64_t>();
      cfg.tied_embeddings = m.at("tied_embeddings").get<bool>();
      c.models.emplace(name, cfg);
    }
  } catch (const nlohmann::json::exception& e) {
    throw RuntimeFailure(dir + ": malformed catalog: " + e.what());
  }
  return c;
}

const Catalog& catalog() {
  static std::once_flag once;
  static Catalog cached;
  std::call_once(once, [] { cached = load_catalog(data_dir()); });
  return cached;
}

const model::GpuSpec* catalog_gpu_by_device_name(const std::string& device_name) {
  for (const auto& [name, gpu] : catalog().gpus)
    for (const std::string& d : gpu.device_names)
      if (d == device_name) return &gpu;
  return nullptr;
}

}  // namespace moss::scenario
