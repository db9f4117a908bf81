#pragma once

#include <vector>

#include "moss/core/scheduler.h"
#include "moss/net/backend.h"
#include "moss/net/collectives.h"
#include "moss/scenario/scenario.h"
#include "moss/step/step_simulator.h"

namespace moss::step::detail {

/// Token ranges [begin, end) of the sequence held by one context rank.
using Ranges = std::vector<std::pair<double, double>>;

/// Context rank `rank`'s share of a `seq_len` sequence split over `ranks` GPUs.
[[nodiscard]] Ranges chunk_ranges(scenario::Partition p, double seq_len, int rank, int ranks);
/// Causal (query, key) pairs between two sets of ranges.
[[nodiscard]] double pairs_between(const Ranges& queries, const Ranges& keys);

/// Per-layer compute times of one context rank.
struct LayerCosts {
  double qkv_fwd_s = 0;
  double out_mlp_fwd_s = 0;
  double qkv_bwd_s = 0;
  double out_mlp_bwd_s = 0;
  std::vector<double> attn_fwd_s;  ///< against the keys of each context rank (index = rank)
  std::vector<double> attn_bwd_s;
  double head_fwd_s = 0;
  double head_bwd_s = 0;
};

[[nodiscard]] LayerCosts layer_costs(const scenario::Scenario& s, int rank);

/// Lays out one microbatch on the context ranks of replica 0 with their resources.
class StepBuilder {
 public:
  StepBuilder(const scenario::Scenario& s, const net::Topology& topology, net::NetworkBackend& backend,
              const CodecInputs& codec);

  /// Builds the graph; returns the tasks whose end marks the end of the microbatch.
  void build(bool with_sync);

  core::TaskGraph& graph() { return graph_; }
  [[nodiscard]] const std::vector<core::TaskId>& backward_ends() const { return backward_ends_; }
  [[nodiscard]] core::TaskId sync_task() const { return sync_task_; }
  [[nodiscard]] double network_busy_s() const { return network_busy_s_; }
  [[nodiscard]] double cp_bytes_per_device() const { return cp_bytes_; }
  [[nodiscard]] double sync_s() const { return sync_s_; }
  [[nodiscard]] double sync_bytes_per_device() const { return sync_bytes_; }
  [[nodiscard]] double optimizer_s() const { return optimizer_s_; }
  /// Wire bytes per directed channel of one microbatch's CP exchange, and of one weight sync.
  [[nodiscard]] const std::vector<double>& cp_channel_bytes() const { return cp_channel_bytes_; }
  [[nodiscard]] const std::vector<double>& sync_channel_bytes() const { return sync_channel_bytes_; }

 private:
  struct Device {
    core::ResourceId compute, compression, nic_send, nic_recv;
    core::TaskId last = -1;  // latest task on the critical chain of this device
  };

  core::TaskId collective(const std::string& name, const net::CollectivePlan& plan,
                          const std::vector<core::TaskId>& after, bool weight_sync = false);
  void count_channel_bytes(const net::CollectivePlan& plan, std::vector<double>& into);
  core::TaskId compute(int rank, const std::string& name, double s, const std::vector<core::TaskId>& after);
  core::TaskId codec(int rank, const std::string& name, double s, const std::vector<core::TaskId>& after);
  void forward_layer_allgather(int layer, bool recompute);
  void backward_layer_allgather(int layer);
  void forward_layer_ring(int layer, bool recompute);
  void backward_layer_ring(int layer);
  [[nodiscard]] std::vector<core::TaskId> lasts() const;

  const scenario::Scenario& s_;
  net::NetworkBackend& backend_;
  const CodecInputs& codec_;
  int ranks_;
  double chunk_tokens_;
  double chunk_bytes_;
  std::vector<LayerCosts> costs_;
  std::vector<Device> devices_;
  std::vector<net::Group> groups_;
  core::TaskGraph graph_;
  core::ResourceId network_ = 0;
  std::vector<core::TaskId> backward_ends_;
  core::TaskId sync_task_ = -1;
  double network_busy_s_ = 0;
  double cp_bytes_ = 0;
  double sync_s_ = 0;
  double sync_bytes_ = 0;
  double optimizer_s_ = 0;
  const net::Topology& topology_;
  net::TransportConfig transport_;
  std::vector<double> cp_channel_bytes_;
  std::vector<double> sync_channel_bytes_;
};

}  // namespace moss::step::detail
