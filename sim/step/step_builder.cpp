#include "step_builder.h"

#include <numeric>

#include "moss/model/roofline.h"
#include "moss/model/transformer.h"
#include "moss/net/topology.h"
#include "moss/scenario/cluster_topology.h"

namespace moss::step::detail {

using core::TaskId;
using core::TaskKind;

StepBuilder::StepBuilder(const scenario::Scenario& s, const net::Topology& topology, net::NetworkBackend& backend,
                         const CodecInputs& codec)
    : s_(s), backend_(backend), codec_(codec), ranks_(s.parallelism.context), topology_(topology),
      transport_(scenario::transport_of(s)) {
  cp_channel_bytes_.assign(static_cast<std::size_t>(topology.channels()), 0.0);
  sync_channel_bytes_ = cp_channel_bytes_;
  chunk_tokens_ = static_cast<double>(s.training.seq_len) / ranks_;
  chunk_bytes_ = codec.bytes.chunk_bytes(chunk_tokens_);
  groups_ = scenario::context_groups(s);
  network_ = graph_.add_resource("network", -1);
  for (int r = 0; r < ranks_; ++r) {
    costs_.push_back(layer_costs(s, r));
    Device d{};
    d.compute = graph_.add_resource("compute stream", r);
    d.compression = graph_.add_resource("compression stream", r);
    d.nic_send = graph_.add_resource("nic send", r);
    d.nic_recv = graph_.add_resource("nic recv", r);
    devices_.push_back(d);
  }
}

std::vector<TaskId> StepBuilder::lasts() const {
  std::vector<TaskId> out;
  for (const Device& d : devices_) {
    if (d.last >= 0) out.push_back(d.last);
  }
  return out;
}

void StepBuilder::count_channel_bytes(const net::CollectivePlan& plan, std::vector<double>& into) {
  for (const auto& step : plan.steps) {
    for (const net::Flow& f : step.phase) {
      if (f.src == f.dst || f.bytes <= 0) continue;
      const double wire = f.bytes / net::payload_efficiency(topology_.path_mtu_bytes(f.src, f.dst), transport_);
      for (net::ChannelId c : topology_.route(f.src, f.dst)) into[static_cast<std::size_t>(c)] += wire * step.repeat;
    }
  }
}

TaskId StepBuilder::collective(const std::string& name, const net::CollectivePlan& plan,
                               const std::vector<TaskId>& after, bool weight_sync) {
  const double t = net::run_collective(backend_, plan, !s_.simulation.packet_memoise);
  count_channel_bytes(plan, weight_sync ? sync_channel_bytes_ : cp_channel_bytes_);
  if (!weight_sync) {
    network_busy_s_ += t;
    cp_bytes_ += plan.bytes_sent_per_rank;
  }
  const TaskId id = graph_.add_task(name, TaskKind::kCommunication, network_, t, after);
  graph_.set_bytes(id, plan.bytes_sent_per_rank);
  for (const Device& d : devices_) {
    graph_.add_mirror(id, d.nic_send);
    graph_.add_mirror(id, d.nic_recv);
  }
  return id;
}

TaskId StepBuilder::compute(int rank, const std::string& name, double s, const std::vector<TaskId>& after) {
  return graph_.add_task(name, TaskKind::kCompute, devices_[static_cast<std::size_t>(rank)].compute, s, after);
}

TaskId StepBuilder::codec(int rank, const std::string& name, double s, const std::vector<TaskId>& after) {
  return graph_.add_task(name, TaskKind::kCompression, devices_[static_cast<std::size_t>(rank)].compression, s, after);
}

namespace {
std::string layer_name(int layer, bool recompute, const char* what) {
  // Appended, not "L" + to_string(..): GCC 12 reports a false -Wrestrict on a literal + string (bug 105651).
  std::string name = recompute ? "recompute L" : "L";
  name += std::to_string(layer);
  name += ' ';
  name += what;
  return name;
}
}  // namespace

void StepBuilder::forward_layer_allgather(int layer, bool recompute) {
  const bool z = s_.compression.compressed();
  const auto& ct = codec_.per_chunk;
  std::vector<TaskId> qkv(static_cast<std::size_t>(ranks_)), enc(qkv.size());
  for (int r = 0; r < ranks_; ++r) {
    auto& d = devices_[static_cast<std::size_t>(r)];
    qkv[r] = compute(r, layer_name(layer, recompute, "qkv"), costs_[r].qkv_fwd_s,
                     d.last >= 0 ? std::vector<TaskId>{d.last} : std::vector<TaskId>{});
    enc[r] = z && ranks_ > 1 ? codec(r, layer_name(layer, recompute, "encode K/V"), ct.encode_s, {qkv[r]}) : qkv[r];
  }
  TaskId gathered = -1;
  if (ranks_ > 1) {
    const auto plan = net::ring_allgather(groups_, chunk_bytes_);
    gathered = collective(layer_name(layer, recompute, "all-gather K/V"), plan, enc);
  }
  for (int r = 0; r < ranks_; ++r) {
    auto& d = devices_[static_cast<std::size_t>(r)];
    const auto& c = costs_[r];
    const TaskId local = compute(r, layer_name(layer, recompute, "attention (local)"), c.attn_fwd_s[r], {qkv[r]});
    TaskId last = local;
    if (ranks_ > 1) {
      const TaskId ready = z ? codec(r, layer_name(layer, recompute, "decode K/V"), ct.decode_s * (ranks_ - 1), {gathered}) : gathered;
      const double remote = std::accumulate(c.attn_fwd_s.begin(), c.attn_fwd_s.end(), 0.0) - c.attn_fwd_s[r];
      last = compute(r, layer_name(layer, recompute, "attention (remote)"), remote, {ready, local});
    }
    d.last = compute(r, layer_name(layer, recompute, "out+mlp"), c.out_mlp_fwd_s, {last});
  }
}

void StepBuilder::backward_layer_allgather(int layer) {
  if (s_.training.activation_checkpointing) forward_layer_allgather(layer, true);
  const bool z = s_.compression.compressed();
  const auto& ct = codec_.per_chunk;
  std::vector<TaskId> remote(static_cast<std::size_t>(ranks_)), enc(remote.size());
  for (int r = 0; r < ranks_; ++r) {
    auto& d = devices_[static_cast<std::size_t>(r)];
    const auto& c = costs_[r];
    const TaskId om = compute(r, layer_name(layer, false, "bwd out+mlp"), c.out_mlp_bwd_s, {d.last});
    const double rem = std::accumulate(c.attn_bwd_s.begin(), c.attn_bwd_s.end(), 0.0) - c.attn_bwd_s[r];
    remote[r] = ranks_ > 1 ? compute(r, layer_name(layer, false, "bwd attention (remote)"), rem, {om}) : om;
    enc[r] = z && ranks_ > 1 ? codec(r, layer_name(layer, false, "encode dK/dV"), ct.encode_s * (ranks_ - 1), {remote[r]}) : remote[r];
  }
  TaskId reduced = -1;
  if (ranks_ > 1) {
    const auto plan = net::ring_reduce_scatter(groups_, chunk_bytes_);
    reduced = collective(layer_name(layer, false, "reduce-scatter dK/dV"), plan, enc);
  }
  for (int r = 0; r < ranks_; ++r) {
    auto& d = devices_[static_cast<std::size_t>(r)];
    const auto& c = costs_[r];
    const TaskId local = compute(r, layer_name(layer, false, "bwd attention (local)"), c.attn_bwd_s[r], {remote[r]});
    std::vector<TaskId> after{local};
    if (ranks_ > 1) after.push_back(z ? codec(r, layer_name(layer, false, "decode dK/dV"), ct.decode_s, {reduced}) : reduced);
    d.last = compute(r, layer_name(layer, false, "bwd qkv"), c.qkv_bwd_s, after);
  }
}

void StepBuilder::forward_layer_ring(int layer, bool recompute) {
  const bool z = s_.compression.compressed();
  const auto& ct = codec_.per_chunk;
  std::vector<TaskId> enc(static_cast<std::size_t>(ranks_)), prev(enc.size());
  for (int r = 0; r < ranks_; ++r) {
    auto& d = devices_[static_cast<std::size_t>(r)];
    const TaskId qkv = compute(r, layer_name(layer, recompute, "qkv"), costs_[r].qkv_fwd_s, d.last >= 0 ? std::vector<TaskId>{d.last} : std::vector<TaskId>{});
    enc[r] = z ? codec(r, layer_name(layer, recompute, "encode K/V"), ct.encode_s, {qkv}) : qkv;
    prev[r] = compute(r, layer_name(layer, recompute, "attention block 0"), costs_[r].attn_fwd_s[r], {qkv});
  }
  TaskId shift = -1;
  const auto plan = net::ring_shift(groups_, chunk_bytes_);
  for (int k = 1; k < ranks_; ++k) {
    shift = collective(layer_name(layer, recompute, ("ring step " + std::to_string(k)).c_str()), plan,
                       k == 1 ? enc : std::vector<TaskId>{shift});
    for (int r = 0; r < ranks_; ++r) {
      const int src = (r - k + ranks_) % ranks_;
      const TaskId ready = z ? codec(r, layer_name(layer, recompute, "decode K/V"), ct.decode_s, {shift}) : shift;
      prev[r] = compute(r, layer_name(layer, recompute, ("attention block " + std::to_string(k)).c_str()),
                        costs_[r].attn_fwd_s[src], {ready, prev[r]});
    }
  }
  for (int r = 0; r < ranks_; ++r) {
    devices_[r].last = compute(r, layer_name(layer, recompute, "out+mlp"), costs_[r].out_mlp_fwd_s, {prev[r]});
  }
}

void StepBuilder::backward_layer_ring(int layer) {
  if (s_.training.activation_checkpointing) forward_layer_ring(layer, true);
  const bool z = s_.compression.compressed();
  const auto& ct = codec_.per_chunk;
  std::vector<TaskId> block(static_cast<std::size_t>(ranks_));
  for (int r = 0; r < ranks_; ++r) {
    auto& d = devices_[static_cast<std::size_t>(r)];
    const TaskId om = compute(r, layer_name(layer, false, "bwd out+mlp"), costs_[r].out_mlp_bwd_s, {d.last});
    block[r] = compute(r, layer_name(layer, false, "bwd attention block 0"), costs_[r].attn_bwd_s[r], {om});
  }
  // K/V blocks travel ahead (they only depend on the previous shift); the dK/dV accumulators
  // follow once each rank has added its contribution, and a last shift returns them home.
  const auto plan = net::ring_shift(groups_, chunk_bytes_);
  TaskId kv_shift = -1;
  TaskId dkv_shift = -1;
  for (int k = 1; k <= ranks_; ++k) {
    // Streams run in the order tasks are added: the K/V prefetch for block k goes on the network
    // before the accumulators of block k - 1, so it overlaps that block's compute.
    if (k < ranks_) {
      kv_shift = collective(layer_name(layer, false, ("bwd K/V step " + std::to_string(k)).c_str()), plan,
                            kv_shift >= 0 ? std::vector<TaskId>{kv_shift} : block);
    }
    std::vector<TaskId> dkv_after = block;
    if (dkv_shift >= 0) dkv_after.push_back(dkv_shift);
    for (int r = 0; r < ranks_ && z; ++r) {
      dkv_after[r] = codec(r, layer_name(layer, false, "encode dK/dV"), ct.encode_s, {block[r]});
    }
    dkv_shift = collective(layer_name(layer, false, ("bwd dK/dV step " + std::to_string(k)).c_str()), plan, dkv_after);
    if (k == ranks_) break;
    for (int r = 0; r < ranks_; ++r) {
      const int src = (r - k + ranks_) % ranks_;
      const TaskId ready = z ? codec(r, layer_name(layer, false, "decode K/V"), 2 * ct.decode_s, {kv_shift, dkv_shift}) : kv_shift;
      block[r] = compute(r, layer_name(layer, false, ("bwd attention block " + std::to_string(k)).c_str()),
                         costs_[r].attn_bwd_s[src], {ready, block[r], dkv_shift});
    }
  }
  for (int r = 0; r < ranks_; ++r) {
    const TaskId ready = z ? codec(r, layer_name(layer, false, "decode dK/dV"), ct.decode_s, {dkv_shift}) : dkv_shift;
    devices_[r].last = compute(r, layer_name(layer, false, "bwd qkv"), costs_[r].qkv_bwd_s, {ready, block[r]});
  }
}

void StepBuilder::build(bool with_sync) {
  const bool ring = s_.parallelism.cp_algorithm == scenario::CpAlgorithm::kRing && ranks_ > 1;
  const int layers = s_.model.layers;
  for (int l = 0; l < layers; ++l) ring ? forward_layer_ring(l, false) : forward_layer_allgather(l, false);
  for (int r = 0; r < ranks_; ++r) {
    auto& d = devices_[static_cast<std::size_t>(r)];
    const TaskId fwd = compute(r, "head + loss", costs_[r].head_fwd_s, {d.last});
    d.last = compute(r, "bwd head", costs_[r].head_bwd_s, {fwd});
  }
  for (int l = layers - 1; l >= 0; --l) ring ? backward_layer_ring(l) : backward_layer_allgather(l);
  backward_ends_ = lasts();

  const double params = model::parameter_count(s_.model);
  const int gpus = s_.cluster.gpus();
  const auto sync_plan = net::ring_allreduce(scenario::all_gpus_group(s_), 2.0 * params);
  sync_bytes_ = sync_plan.bytes_sent_per_rank;
  std::vector<TaskId> before_optimizer = backward_ends_;
  if (with_sync && gpus > 1) {
    sync_task_ = collective("weight sync (ring all-reduce)", sync_plan, backward_ends_, true);
    sync_s_ = graph_.tasks()[static_cast<std::size_t>(sync_task_)].duration_s;
    before_optimizer = {sync_task_};
  } else if (gpus > 1) {
    sync_s_ = net::run_collective(backend_, sync_plan, !s_.simulation.packet_memoise);
    count_channel_bytes(sync_plan, sync_channel_bytes_);
  }
  // Adam on this GPU's shard: read and write fp32 master, m, v; read the gradient, write bf16 weights.
  const double shard = s_.parallelism.zero_stage >= 1 ? params / gpus : params;
  optimizer_s_ = model::roofline_time_s(s_.cluster.gpu, model::OpClass::kElementwise, 0, shard * (12.0 * 2 + 2 + 2));
  for (int r = 0; r < ranks_; ++r) {
    graph_.add_task("optimizer", TaskKind::kOptimizer, devices_[static_cast<std::size_t>(r)].compute, optimizer_s_,
                    with_sync ? before_optimizer : std::vector<TaskId>{backward_ends_[static_cast<std::size_t>(r)]});
  }
}

}  // namespace moss::step::detail
