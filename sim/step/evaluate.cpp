#include "moss/step/evaluate.h"

#include <algorithm>
#include <cmath>

#include "moss/core/trace.h"
#include "moss/model/memory.h"
#include "moss/net/backend_factory.h"
#include "moss/scenario/cluster_topology.h"
#include "moss/step/compression_measure.h"
#include "moss/step/step_simulator.h"

namespace moss::step {

namespace {

nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

model::MemoryBreakdown memory_of(const scenario::Scenario& s) {
  const model::MemoryInputs in{
      static_cast<double>(s.training.seq_len) / s.parallelism.context, static_cast<double>(s.training.seq_len),
      s.parallelism.context * s.parallelism.data, s.parallelism.zero_stage, s.training.activation_checkpointing,
      s.parallelism.cp_algorithm == scenario::CpAlgorithm::kAllGather && !s.training.activation_checkpointing};
  return model::memory_per_gpu(s.model, in);
}

std::vector<LinkLoad> link_loads(const net::Topology& topo, const StepLayout& layout, double micro,
                                 double sync_every, double step_s) {
  std::vector<LinkLoad> out;
  for (net::ChannelId c = 0; c < topo.channels(); ++c) {
    const auto i = static_cast<std::size_t>(c);
    double bytes = micro * layout.cp_channel_bytes[i];
    if (sync_every > 0) bytes += layout.sync_channel_bytes[i] / sync_every;
    if (bytes <= 0) continue;
    const double bw = topo.channel(c).bandwidth_bps;
    out.push_back({topo.vertex_name(topo.channel_from(c)), topo.vertex_name(topo.channel_to(c)), bw, bytes,
                   bytes * 8 / (bw * step_s)});
  }
  std::stable_sort(out.begin(), out.end(), [](const LinkLoad& a, const LinkLoad& b) { return a.utilisation > b.utilisation; });
  return out;
}

}  // namespace

RunResult evaluate(const scenario::Scenario& s, const EvaluateOptions& options) {
  // A calibration file that cannot serve the scenario is found before the step is simulated.
  if (std::vector<Problem> problems = converge::efficiency_problems(s); !problems.empty()) throw InputError(std::move(problems));
  RunResult r;
  r.scenario = s.name;
  const net::Topology topology = scenario::build_topology(s);
  const std::string backend_name = options.backend.value_or(s.simulation.backend);
  net::PacketOptions packet;
  packet.seed = s.simulation.seed;
  packet.memoise = s.simulation.packet_memoise;
  packet.full = !s.simulation.packet_extrapolate;
  std::unique_ptr<net::NetworkBackend> backend = net::make_backend(backend_name, topology, scenario::transport_of(s), packet);
  net::ComparingBackend* comparing = nullptr;
  if (backend->name() != "analytic") {
    // Packet-level runs also time every phase analytically, so the summary can show the gap.
    auto both = std::make_unique<net::ComparingBackend>(
        std::move(backend), net::make_backend("analytic", topology, scenario::transport_of(s)));
    comparing = both.get();
    backend = std::move(both);
  }
  r.backend = backend->name();

  const CompressionFigures figures = compression_figures(s, options.measure_compression && s.simulation.measure_compression, options.measurement_cache);
  const CodecInputs& codec = figures.codec;
  r.compression = figures.outcome;

  const bool overlap = s.training.sync_overlap;
  const StepLayout layout = simulate_step(s, topology, *backend, codec, !overlap);
  const int gpus = s.cluster.gpus();
  const double c = s.training.sync_every_steps;
  const double micro = static_cast<double>(s.training.sequences_per_step / s.parallelism.data);
  const double sync_s = gpus > 1 ? layout.sync_s : 0.0;

  r.step_time_no_sync_s = micro * layout.micro_s + layout.optimizer_s;
  if (overlap) {
    // The all-reduce runs in the background over the next c steps, using the network only
    // while the context-parallel exchange does not.
    const double idle = c * std::max(0.0, r.step_time_no_sync_s - micro * layout.network_busy_s);
    r.step_time_s = r.step_time_no_sync_s + std::max(0.0, sync_s - idle) / c;
  } else {
    r.step_time_s = r.step_time_no_sync_s + sync_s / c;
  }
  r.compute_only_step_s = micro * layout.micro_free_s + layout.optimizer_s;
  r.exposed_comm_s = std::max(0.0, r.step_time_s - r.compute_only_step_s);
  r.weight_sync_time_s = sync_s;
  r.cp_comm_time_s = micro * layout.network_busy_s;

  r.params = model::parameter_count(s.model);
  r.tokens_per_step = static_cast<double>(s.training.seq_len) * s.training.sequences_per_step;
  r.tokens_per_second = r.tokens_per_step / r.step_time_s;
  r.model_flops_per_step =
      model::training_flops_per_sequence(s.model, static_cast<double>(s.training.seq_len)) * s.training.sequences_per_step;
  r.mfu = r.model_flops_per_step / (r.step_time_s * gpus * s.cluster.gpu.peak_bf16_flops);

  double basis_bytes = 0;
  if (s.compression.basis_refresh_steps > 0) {
    basis_bytes = codec.bytes.one_time * s.model.layers / s.compression.basis_refresh_steps;
  }
  r.cp_bytes_per_step_per_device = micro * layout.cp_bytes_per_device + basis_bytes;
  r.sync_bytes_per_step_per_device = gpus > 1 ? layout.sync_bytes_per_device / c : 0.0;
  r.comm_bytes_per_step_per_device = r.cp_bytes_per_step_per_device + r.sync_bytes_per_step_per_device;

  r.memory = memory_of(s);
  r.gpu_memory_bytes = s.cluster.gpu.memory_bytes;
  r.convergence = converge::predict(s, r.params, r.tokens_per_second, r.tokens_per_step, gpus);
  r.network = backend->stats();
  if (comparing) r.vs_analytic = comparing->comparison();
  r.links = link_loads(topology, layout, micro, gpus > 1 ? c : 0.0, r.step_time_s);
  if (options.trace) r.trace = core::chrome_trace(layout.graph, layout.schedule, layout.device_names);
  return r;
}

nlohmann::json RunResult::to_summary_json() const {
  using nlohmann::json;
  json j;
  j["scenario"] = scenario;
  j["tokens_per_second"] = tokens_per_second;
  j["step_time_s"] = step_time_s;
  j["mfu"] = mfu;
  j["params"] = params;
  j["comm_bytes_per_step_per_device"] = comm_bytes_per_step_per_device;
  j["exposed_comm_s"] = exposed_comm_s;
  j["compression"] = {{"method", compression.method},
                      {"ratio", compression.ratio},
                      {"relative_error", compression.relative_error ? json(*compression.relative_error) : json()},
                      {"relative_error_k", compression.relative_error_k ? json(*compression.relative_error_k) : json()},
                      {"relative_error_v", compression.relative_error_v ? json(*compression.relative_error_v) : json()},
                      {"sent_bytes_per_token", compression.sent_bytes_per_token},
                      {"raw_bytes_per_token", compression.raw_bytes_per_token},
                      {"source", compression.source},
                      {"timing_source", compression.timing_source}};
  if (compression.warmup_tokens) j["compression"]["warmup_tokens"] = *compression.warmup_tokens;
  j["statistical_efficiency"] = convergence.eta;
  j["time_to_target_s"] = finite_or_null(convergence.time_to_target_s);
  j["backend"] = backend;
  j["step"] = {{"tokens_per_step", tokens_per_step},
               {"step_time_no_sync_s", step_time_no_sync_s},
               {"compute_only_step_s", compute_only_step_s},
               {"weight_sync_time_s", weight_sync_time_s},
               {"cp_comm_time_s", cp_comm_time_s},
               {"model_flops_per_step", model_flops_per_step},
               {"cp_bytes_per_step_per_device", cp_bytes_per_step_per_device},
               {"sync_bytes_per_step_per_device", sync_bytes_per_step_per_device}};
  j["memory"] = {{"total_bytes", memory.total_bytes},        {"gpu_bytes", gpu_memory_bytes},
                 {"weights_bytes", memory.weights_bytes},    {"gradients_bytes", memory.gradients_bytes},
                 {"optimizer_bytes", memory.optimizer_bytes}, {"activations_bytes", memory.activations_bytes},
                 {"gathered_kv_bytes", memory.gathered_kv_bytes}, {"logits_bytes", memory.logits_bytes}};
  json curve = json::array();
  for (const auto& p : convergence.curve) curve.push_back({{"tokens", p.tokens}, {"wall_s", p.wall_s}, {"loss", p.loss}});
  j["convergence"] = {{"eta_source", convergence.eta_source},
                      {"target_tokens", finite_or_null(convergence.target_tokens)},
                      {"target_loss", convergence.target_loss},
                      {"steps", finite_or_null(convergence.steps)},
                      {"gpu_hours", finite_or_null(convergence.gpu_hours)},
                      {"reachable", convergence.reachable},
                      {"loss_law", {{"E", convergence.law.e}, {"A", convergence.law.a}, {"B", convergence.law.b},
                                    {"alpha", convergence.law.alpha}, {"beta", convergence.law.beta},
                                    {"source", convergence.law.source}}},
                      {"loss_floor", convergence.loss_floor},
                      {"curve", std::move(curve)}};
  json links_json = json::array();
  for (const LinkLoad& l : links) {
    links_json.push_back({{"from", l.from}, {"to", l.to}, {"bandwidth_bps", l.bandwidth_bps},
                          {"wire_bytes_per_step", l.wire_bytes_per_step}, {"utilisation", l.utilisation}});
  }
  j["network"] = {{"phases_simulated", network.phases_simulated},
                  {"phases_reused", network.phases_reused},
                  {"phases_extrapolated", network.phases_extrapolated},
                  {"retransmissions", network.retransmissions},
                  {"events", network.events},
                  {"packet_payload_bytes", network.packet_payload_bytes},
                  {"extrapolated_payload_bytes", network.extrapolated_payload_bytes},
                  {"links", std::move(links_json)}};
  if (vs_analytic) {
    j["network"]["vs_analytic"] = {{"flows", vs_analytic->flows},
                                   {"mean_completion_s", vs_analytic->mean_finish_s},
                                   {"worst_completion_s", vs_analytic->worst_finish_s},
                                   {"analytic_mean_completion_s", vs_analytic->mean_reference_finish_s},
                                   {"analytic_worst_completion_s", vs_analytic->worst_reference_finish_s},
                                   {"mean_ratio", vs_analytic->mean_ratio},
                                   {"worst_ratio", vs_analytic->worst_ratio}};
  }
  return j;
}

}  // namespace moss::step
