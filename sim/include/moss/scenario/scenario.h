#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "moss/model/hardware.h"
#include "moss/model/transformer.h"

namespace moss::scenario {

enum class TopologyKind { kRing, kStar, kFullMesh, kCustom };
enum class CpAlgorithm { kAllGather, kRing };
enum class Partition { kZigzag, kContiguous };

/// A per-link override (CONTRACT.md /cluster/network/links), or a link of a custom topology.
/// Node indices; kSwitch names a star's switch. Unset fields keep the network default.
struct LinkOverride {
  static constexpr int kSwitch = -1;
  int from = 0;
  int to = 0;
  bool bidirectional = true;  ///< false: only from -> to changes (asymmetric links)
  std::optional<double> bandwidth_bps;
  std::optional<double> latency_s;
  std::optional<int> mtu_bytes;
  std::optional<double> loss;
};

struct NetworkSpec {
  TopologyKind topology = TopologyKind::kRing;
  double bandwidth_bps = 0;
  double latency_s = 0;
  int mtu_bytes = 1500;
  double loss = 0;
  double socket_buffer_bytes = 0;  ///< 0 = "auto": sized to the path bandwidth-delay product
  std::string tcp = "cubic";
  std::optional<double> intra_node_bps;  ///< overrides the GPU catalog's intra-node bandwidth
  std::vector<LinkOverride> links;
};

struct ClusterSpec {
  model::GpuSpec gpu;
  int nodes = 1;
  int gpus_per_node = 1;
  NetworkSpec network;
  [[nodiscard]] int gpus() const { return nodes * gpus_per_node; }
};

struct TrainingSpec {
  std::int64_t seq_len = 0;
  int sequences_per_step = 1;
  std::optional<double> tokens;       ///< total training tokens (token target)
  std::optional<double> target_loss;  ///< or a loss target
  int sync_every_steps = 1;
  bool sync_overlap = false;
  bool activation_checkpointing = false;
};

struct ParallelismSpec {
  int context = 1;
  int data = 1;
  CpAlgorithm cp_algorithm = CpAlgorithm::kAllGather;
  Partition partition = Partition::kZigzag;
  int zero_stage = 1;
};

struct CompressionSpec {
  std::string method = "none";  ///< none | mos | pca | mos-k | topk | quant
  int rank_k = 0;
  int rank_v = 0;
  int rotations = 1;      ///< mos: skew-symmetric generators (theta values per chunk)
  int subspaces = 4;      ///< mos-k: bases in the discrete mixture
  std::string routing = "exhaustive";  ///< mos-k: "exhaustive" (every basis tried) or "sketch" (cheap router)
  double fraction = 0.1;  ///< topk: kept fraction of each row
  int bits = 8;           ///< quant: 4 or 8
  int basis_refresh_steps = 0;  ///< pca/mos/mos-k: re-send the basis every N steps (0: once)
  std::int64_t warmup_tokens = 4096;  ///< tokens the bases are fitted on (pca/mos/mos-k), skipped by every method before the measured sample (kernels::kWarmupTokens)
  /// K/V the kernels are measured on: "synthetic:<spec>" or a .npy/.h5 file (resolved path).
  std::string activations = "synthetic:llama";
  /// "datasets": {"k": ..., "v": ...}: the HDF5 datasets of K and V in `activations`, by path from
  /// the file's root; empty: the file's own rules (datasets "k" and "v").
  std::string dataset_k;
  std::string dataset_v;
  [[nodiscard]] bool compressed() const { return method != "none"; }
  /// A method whose bases are fitted on a warm-up sample and that sends rank_k + rank_v coefficients.
  [[nodiscard]] bool fitted() const { return method == "pca" || method == "mos" || method == "mos-k"; }
  /// The rank fields (JSON pointer under the scenario, value) of a fitted method that exceed
  /// `fit_tokens`, the tokens its bases are fitted on: such a basis has no more directions.
  [[nodiscard]] std::vector<std::pair<std::string, int>> ranks_above(std::int64_t fit_tokens) const {
    std::vector<std::pair<std::string, int>> out;
    if (!fitted()) return out;
    if (rank_k > fit_tokens) out.emplace_back("/compression/rank_k", rank_k);
    if (rank_v > fit_tokens) out.emplace_back("/compression/rank_v", rank_v);
    return out;
  }
};

/// Loss law L(N, D) = E + A / N^alpha + B / D^beta.
struct LossLaw {
  double e = 1.69;
  double a = 406.4;
  double b = 410.7;
  double alpha = 0.34;
  double beta = 0.28;
  std::string source = "Hoffmann et al. 2022 (Chinchilla), approach 3 fit";
};

/// A statistical efficiency factor and where it comes from.
struct EfficiencySource {
  std::string source = "assumed";  ///< assumed | measured
  double value = 1.0;
  std::string file;                ///< calibration file for `measured`
  bool defaulted = true;           ///< true when the scenario did not say (reports flag it)
};

struct ConvergenceSpec {
  LossLaw law;
  EfficiencySource compression;
  EfficiencySource weight_sync;
};

/// Prices for the cost outputs (all optional; absent prices give no cost line).
struct CostSpec {
  std::optional<double> gpu_hour_usd;          ///< per GPU-hour
  std::optional<double> gbps_month_usd;        ///< per Gbps of link capacity per month, per link
  std::optional<double> transfer_gb_usd;       ///< per GB sent between nodes
};

struct SimulationSpec {
  std::string backend = "analytic";
  std::uint64_t seed = 1;
  bool measure_compression = true;  ///< run the kernels for bytes and errors (false: byte formula)
  bool packet_memoise = true;       ///< ns3: simulate identical phases once (false: every transfer)
  bool packet_extrapolate = true;   ///< ns3: extrapolate steady flows (false: every packet)
};

/// A fully validated scenario: every field set, units resolved to SI (seconds, bytes, bits/s).
struct Scenario {
  std::string name;
  std::string source_file;  ///< where it was loaded from ("" when built in memory)
  model::TransformerConfig model;
  TrainingSpec training;
  ClusterSpec cluster;
  ParallelismSpec parallelism;
  CompressionSpec compression;
  ConvergenceSpec convergence;
  CostSpec cost;
  SimulationSpec simulation;
};

[[nodiscard]] const char* to_string(TopologyKind t);
[[nodiscard]] const char* to_string(CpAlgorithm a);
[[nodiscard]] const char* to_string(Partition p);

}  // namespace moss::scenario
