#include "moss/sweep/point_evaluator.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "moss/converge/cost.h"
#include "moss/scenario/loader.h"
#include "moss/sweep/point_check.h"

namespace moss::sweep {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double or_nan(const std::optional<double>& v) { return v ? *v : kNaN; }

converge::CostBreakdown cost_of(const scenario::Scenario& s, const step::RunResult& r) {
  converge::CostBreakdown cost = r.convergence.cost;
  if (cost.transfer_usd || !s.cost.transfer_gb_usd || !r.convergence.reachable) return cost;
  // predict() got no traffic: every byte a device sends counts as inter-node when there are several
  // nodes (an upper bound when gpus_per_node > 1).
  const double per_step = s.cluster.nodes > 1 ? r.comm_bytes_per_step_per_device * s.cluster.gpus() : 0.0;
  return converge::estimate_cost(s, r.convergence.time_to_target_s, s.cluster.gpus(), per_step * r.convergence.steps);
}

// Measured run times of the simulator itself differ run to run, and the packet backend's phase
// cache is process-wide, so how many phases a point simulated rather than reused (and the events
// and extrapolations of those) depends on which points ran before it in the same process. Leaving
// them out (keeping their sum, "phases") makes a resumed, threaded or MPI sweep byte-identical to
// an uninterrupted serial one. `moss run` keeps them in its own summary.json.
nlohmann::json deterministic_summary(const step::RunResult& r) {
  nlohmann::json s = r.to_summary_json();
  if (auto it = s.find("network"); it != s.end() && it->is_object()) {
    auto& n = *it;
    const auto count = [&](const char* k) { return n.contains(k) && n[k].is_number() ? n[k].get<double>() : 0.0; };
    n["phases"] = count("phases_simulated") + count("phases_reused");
    for (const char* k : {"backend_wall_s", "phases_simulated", "phases_reused", "phases_extrapolated", "events",
                          "packet_payload_bytes", "extrapolated_payload_bytes"})
      n.erase(k);
  }
  return s;
}

const step::LinkLoad* busiest_link(const step::RunResult& r) {
  const step::LinkLoad* best = nullptr;
  for (const auto& l : r.links)
    if (!best || l.utilisation > best->utilisation) best = &l;
  return best;
}

}  // namespace

std::string design_label(const scenario::CompressionSpec& c) {
  char buf[96];
  const std::string& m = c.method;
  if (m == "none") return "none";
  if (m == "topk") {
    std::snprintf(buf, sizeof buf, "topk %g%%", c.fraction * 100);
  } else if (m == "quant") {
    std::snprintf(buf, sizeof buf, "quant int%d", c.bits);
  } else if (m == "mos-k") {
    std::snprintf(buf, sizeof buf, "mos-k k%d/v%d x%d", c.rank_k, c.rank_v, c.subspaces);
  } else {
    std::snprintf(buf, sizeof buf, "%s k%d/v%d", m.c_str(), c.rank_k, c.rank_v);
  }
  return buf;
}

PointEvaluator::PointEvaluator(nlohmann::json base, std::string file, std::optional<std::string> backend,
                               std::optional<std::filesystem::path> measurement_cache)
    : base_(std::move(base)),
      file_(std::move(file)),
      backend_(std::move(backend)),
      measurement_cache_(std::move(measurement_cache)) {}

PointRecord PointEvaluator::operator()(std::int64_t index, const std::vector<Assignment>& assignments) const {
  nlohmann::json doc;
  scenario::Scenario s;
  step::RunResult r;
  try {
    doc = point_document(base_, assignments, file_);
    s = scenario::parse_scenario(doc, file_);
    step::EvaluateOptions options;
    options.backend = backend_;
    options.measurement_cache = measurement_cache_;
    r = step::evaluate(s, options);  // its input errors: the activation file a point names
  } catch (const InputError& e) {
    // Named by the swept field at fault, not only the scenario path (whose value in the file is valid).
    throw InputError(point_problems(e.problems(), static_cast<std::size_t>(index), assignments,
                                    base_.value("sweep", nlohmann::json()), file_));
  }
  {
    const std::lock_guard lock(counters_->mutex);
    CacheCounts& c = counters_->counts;
    const step::CacheUse cache = r.compression.cache;
    c.hits += cache == step::CacheUse::kHit;
    c.stored += cache == step::CacheUse::kMiss;
    c.shared += cache == step::CacheUse::kShared;
    if (cache == step::CacheUse::kUnstored && c.unstored++ == 0) c.unstored_reason = r.compression.cache_note;
  }
  return make_record(s, r, doc);
}

PointEvaluator::CacheCounts PointEvaluator::cache_counts() const {
  const std::lock_guard lock(counters_->mutex);
  return counters_->counts;
}

PointRecord make_record(const scenario::Scenario& s, const step::RunResult& r, const nlohmann::json& doc) {
  PointRecord rec = make_result_record(r, doc);
  const converge::CostBreakdown cost = cost_of(s, r);
  const auto& n = s.cluster.network;
  const std::vector<std::pair<std::string, double>> design = {
      {"cost_usd", cost.priced ? cost.total_usd : kNaN},
      {"cost_gpu_usd", or_nan(cost.gpu_usd)},
      {"cost_network_usd", or_nan(cost.network_usd)},
      {"cost_transfer_usd", or_nan(cost.transfer_usd)},
      {"link_capacity_gbps", cost.link_capacity_gbps},
      {"bandwidth_bps", n.bandwidth_bps},
      {"latency_s", n.latency_s},
      {"mtu_bytes", static_cast<double>(n.mtu_bytes)},
      {"link_loss", n.loss},
      {"nodes", static_cast<double>(s.cluster.nodes)},
      {"gpus_per_node", static_cast<double>(s.cluster.gpus_per_node)},
      {"gpus", static_cast<double>(s.cluster.gpus())},
      {"context", static_cast<double>(s.parallelism.context)},
      {"data", static_cast<double>(s.parallelism.data)},
      {"seq_len", static_cast<double>(s.training.seq_len)},
      {"rank_k", static_cast<double>(s.compression.rank_k)},
      {"rank_v", static_cast<double>(s.compression.rank_v)},
      {"fraction", s.compression.fraction},
      {"bits", static_cast<double>(s.compression.bits)},
      {"sync_every_steps", static_cast<double>(s.training.sync_every_steps)},
      {"efficiency_gemm", s.cluster.gpu.efficiency.gemm},
      {"efficiency_attention_fwd", s.cluster.gpu.efficiency.attention_fwd},
      {"efficiency_attention_bwd", s.cluster.gpu.efficiency.attention_bwd},
      {"efficiency_memory", s.cluster.gpu.efficiency.memory},
  };
  rec.metrics.insert(rec.metrics.end(), design.begin(), design.end());
  const std::vector<std::pair<std::string, std::string>> labels = {
      {"scenario", s.name},
      {"method", s.compression.method},
      {"design", design_label(s.compression)},
      {"gpu", s.cluster.gpu.name},
      {"topology", scenario::to_string(n.topology)},
      {"cp_algorithm", scenario::to_string(s.parallelism.cp_algorithm)},
      {"loss_law_source", s.convergence.law.source},
  };
  rec.labels.insert(rec.labels.end(), labels.begin(), labels.end());
  return rec;
}

PointRecord make_result_record(const step::RunResult& r, const nlohmann::json& doc) {
  PointRecord rec;
  const auto& c = r.convergence;
  const step::LinkLoad* link = busiest_link(r);
  rec.metrics = {
      {"tokens_per_second", r.tokens_per_second},
      {"step_time_s", r.step_time_s},
      {"step_time_no_sync_s", r.step_time_no_sync_s},
      {"compute_only_step_s", r.compute_only_step_s},
      {"mfu", r.mfu},
      {"params", r.params},
      {"tokens_per_step", r.tokens_per_step},
      {"comm_bytes_per_step_per_device", r.comm_bytes_per_step_per_device},
      {"cp_bytes_per_step_per_device", r.cp_bytes_per_step_per_device},
      {"sync_bytes_per_step_per_device", r.sync_bytes_per_step_per_device},
      {"exposed_comm_s", r.exposed_comm_s},
      {"exposed_comm_share", r.step_time_s > 0 ? r.exposed_comm_s / r.step_time_s : kNaN},
      {"weight_sync_time_s", r.weight_sync_time_s},
      {"gpu_memory_bytes", r.gpu_memory_bytes},
      {"compression_ratio", r.compression.ratio},
      {"compression_relative_error", or_nan(r.compression.relative_error)},
      {"compression_relative_error_k", or_nan(r.compression.relative_error_k)},
      {"compression_relative_error_v", or_nan(r.compression.relative_error_v)},
      {"compression_sent_bytes_per_token", r.compression.sent_bytes_per_token},
      {"cp_comm_time_s", r.cp_comm_time_s},
      {"memory_total_bytes", r.memory.total_bytes},
      {"retransmissions", static_cast<double>(r.network.retransmissions)},
      {"links_used", static_cast<double>(r.links.size())},
      {"busiest_link_utilisation", link ? link->utilisation : kNaN},
      {"busiest_link_wire_bytes_per_step", link ? link->wire_bytes_per_step : kNaN},
      {"busiest_link_bandwidth_bps", link ? link->bandwidth_bps : kNaN},
      {"vs_analytic_flows", r.vs_analytic ? static_cast<double>(r.vs_analytic->flows) : kNaN},
      {"vs_analytic_mean_ratio", r.vs_analytic ? r.vs_analytic->mean_ratio : kNaN},
      {"vs_analytic_worst_ratio", r.vs_analytic ? r.vs_analytic->worst_ratio : kNaN},
      {"eta", c.eta},
      {"eta_compression", c.eta_compression.value},
      {"eta_weight_sync", c.eta_weight_sync.value},
      {"target_tokens", c.target_tokens},
      {"target_loss", c.target_loss},
      {"time_to_target_s", c.reachable ? c.time_to_target_s : kNaN},
      {"steps", c.steps},
      {"gpu_hours", c.reachable ? c.gpu_hours : kNaN},
      {"reachable", c.reachable ? 1.0 : 0.0},
  };
  rec.labels = {
      {"backend", r.backend},
      {"eta_source", c.eta_source},
      {"eta_compression_source", c.eta_compression.describe()},
      {"eta_weight_sync_source", c.eta_weight_sync.describe()},
      {"compression_source", r.compression.source},
      {"compression_timing_source", r.compression.timing_source},
      {"busiest_link", link ? link->from + "->" + link->to : std::string()},
  };
  for (const auto& p : c.curve) {
    rec.curve_tokens.push_back(p.tokens);
    rec.curve_wall_s.push_back(p.wall_s);
    rec.curve_loss.push_back(p.loss);
  }
  rec.scenario_json = doc.dump();
  rec.summary_json = deterministic_summary(r).dump();
  return rec;
}

}  // namespace moss::sweep
