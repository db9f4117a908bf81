// Checks that involve several sections of a scenario.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <utility>

#include "moss/kernels/codec.h"
#include "moss/kernels/measure.h"
#include "moss/kernels/synthetic.h"
#include "moss/model/memory.h"
#include "moss/scenario/cluster_topology.h"
#include "moss/scenario/compression_params.h"
#include "moss/scenario/units.h"
#include "sections.h"

namespace moss::scenario::detail {

namespace {

constexpr int kMaxGpus = 16384;        // beyond this a scenario is certainly a typo
constexpr int kMaxFullMeshNodes = 1024;  // n (n - 1) / 2 links
constexpr int kMaxContext = 256;         // the step graph grows with context^2 (ring steps x ranks)

std::string num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// The shortest text that reads back as v: 8192.000488 is not "8192" beside the 8192 it exceeds.
std::string exact(double v) {
  char text[32];
  const std::size_t length = static_cast<std::size_t>(std::to_chars(text, text + sizeof text, v).ptr - text);
  return std::string(text, length);
}

void check_memory(JsonReader& r, const Scenario& s) {
  const model::MemoryInputs in{
      static_cast<double>(s.training.seq_len) / s.parallelism.context,
      static_cast<double>(s.training.seq_len),
      s.parallelism.context * s.parallelism.data,
      s.parallelism.zero_stage,
      s.training.activation_checkpointing,
      s.parallelism.cp_algorithm == CpAlgorithm::kAllGather && !s.training.activation_checkpointing};
  const model::MemoryBreakdown m = model::memory_per_gpu(s.model, in);
  // Leave room for the CUDA context, NCCL buffers and allocator fragmentation.
  const double usable = s.cluster.gpu.memory_bytes * 0.95;
  if (m.total_bytes <= usable) return;
  std::string advice = "; try more GPUs (context), a higher zero_stage";
  if (!s.training.activation_checkpointing) advice += ", \"activation_checkpointing\": true";
  r.problem("/cluster/gpu", "= \"" + s.cluster.gpu.name + "\": the step needs " + format_bytes(m.total_bytes) +
                                " per GPU (weights " + format_bytes(m.weights_bytes) + ", gradients " +
                                format_bytes(m.gradients_bytes) + ", optimizer " + format_bytes(m.optimizer_bytes) +
                                ", activations " + format_bytes(m.activations_bytes) + ", gathered K/V " +
                                format_bytes(m.gathered_kv_bytes) + ", logits " + format_bytes(m.logits_bytes) +
                                ") but 95% of its memory is " + format_bytes(usable) + advice);
}

}  // namespace

void check_semantics(JsonReader& r, const Scenario& s) {
  const ClusterSpec& c = s.cluster;
  const ParallelismSpec& p = s.parallelism;
  const double gpus = static_cast<double>(c.nodes) * c.gpus_per_node;
  if (gpus > kMaxGpus) {
    r.problem("/cluster/nodes", "= " + std::to_string(c.nodes) + ": nodes x gpus_per_node = " + num(gpus) +
                                    " GPUs; moss simulates at most " + std::to_string(kMaxGpus));
    return;
  }
  if (c.network.topology == TopologyKind::kFullMesh && c.nodes > kMaxFullMeshNodes) {
    r.problem("/cluster/network/topology", "a full mesh of " + std::to_string(c.nodes) +
                                               " nodes is too large; at most " + std::to_string(kMaxFullMeshNodes));
    return;
  }
  if (p.context > kMaxContext) {
    r.problem("/parallelism/context", "= " + std::to_string(p.context) + ": moss simulates context degrees up to " +
                                          std::to_string(kMaxContext) + " (the step graph grows with its square)");
    return;
  }
  if (static_cast<double>(p.context) * p.data != gpus) {
    r.problem("/parallelism/context", "= " + std::to_string(p.context) + ": context x data = " +
                                          num(static_cast<double>(p.context) * p.data) +
                                          " must equal nodes x gpus_per_node = " + num(gpus));
    return;
  }
  const std::int64_t parts = p.partition == Partition::kZigzag ? 2 * p.context : p.context;
  if (s.training.seq_len % parts != 0) {
    r.problem("/training/seq_len", "= " + std::to_string(s.training.seq_len) + ": must be a multiple of " +
                                       std::to_string(parts) + (p.partition == Partition::kZigzag
                                                                    ? " (2 x context: zigzag splits it into 2 x context pieces)"
                                                                    : " (context)"));
  }
  if (s.training.sequences_per_step % p.data != 0) {
    r.problem("/training/sequences_per_step", "= " + std::to_string(s.training.sequences_per_step) +
                                                  ": must be a multiple of data = " + std::to_string(p.data));
  }
  const int kv = s.model.kv_dim();
  if (s.compression.rank_k > kv) {
    r.problem("/compression/rank_k", "= " + std::to_string(s.compression.rank_k) +
                                         ": exceeds the width of K (kv_heads x head_dim = " + std::to_string(kv) + ")");
  }
  if (s.compression.rank_v > kv) {
    r.problem("/compression/rank_v", "= " + std::to_string(s.compression.rank_v) +
                                         ": exceeds the width of V (kv_heads x head_dim = " + std::to_string(kv) + ")");
  }
  const bool fitted = s.compression.fitted();
  for (const auto& [ptr, rank] : s.compression.ranks_above(s.compression.warmup_tokens)) {
    r.problem(ptr, "= " + std::to_string(rank) + ": exceeds warmup_tokens (" + std::to_string(s.compression.warmup_tokens) +
                       "): a basis fitted on that many tokens has no more directions; raise warmup_tokens (at most 65536)");
  }
  // The synthetic data the kernels will generate, at the scenario's K/V width and sample size
  // (kernels::measure_kv): within the generator's bounds, so that what validates also runs.
  if (s.compression.compressed() && s.compression.activations.rfind("synthetic:", 0) == 0) {
    try {
      const std::string_view text = std::string_view(s.compression.activations).substr(10);
      kernels::SyntheticSpec spec = kernels::parse_synthetic_spec(text);
      // The scenario sets the data's width (the model's K/V) and its tokens (warm-up + sample): a spec
      // that says otherwise would be measured at other sizes than it names.
      for (std::size_t begin = 0; begin <= text.size();) {
        const std::size_t end = std::min(text.find(',', begin), text.size());
        std::string_view item = text.substr(begin, end - begin);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        if (item.rfind("dim=", 0) == 0 && spec.dim != kv)
          r.problem("/compression/activations", "= \"" + s.compression.activations + "\": dim=" + std::to_string(spec.dim) +
                                                    " differs from this model's K/V width " + std::to_string(kv) +
                                                    ", which the scenario measures at; leave dim out");
        if (item.rfind("tokens=", 0) == 0)
          r.problem("/compression/activations", "= \"" + s.compression.activations +
                                                    "\": tokens= is not used here: the scenario generates warmup_tokens + "
                                                    "one chunk's sample (at most 1024); leave tokens out");
        begin = end + 1;
      }
      spec.dim = kv;
      spec.tokens = std::min(s.compression.warmup_tokens, kernels::kMaxWarmupTokens) +
                    std::min<std::int64_t>(s.training.seq_len / s.parallelism.context, kernels::kMaxSampleTokens);
      kernels::check_synthetic_cost(spec);
    } catch (const std::invalid_argument& e) {
      r.problem("/compression/activations", "= \"" + s.compression.activations + "\" at this model's K/V width " +
                                                std::to_string(kv) + ": " + e.what());
    }
  }
  if (fitted && s.compression.rank_k <= kv && s.compression.rank_v <= kv) {
    // Coefficients of a rank at (or near) the width, plus mos's angles or mos-k's index, can outweigh
    // the rows themselves: refused, as a topk that keeps too much is (a rank above the width is
    // refused above).
    const double chunk = static_cast<double>(s.training.seq_len) / s.parallelism.context;
    const double sent = wire_bytes_per_token(s.compression, kv, chunk);
    if (sent > 4.0 * kv)
      r.problem("/compression/rank_k", "= " + std::to_string(s.compression.rank_k) + " and rank_v = " + std::to_string(s.compression.rank_v) +
                                           ": " + s.compression.method + " would send " + exact(sent) +
                                           " bytes per token (coefficients" + (s.compression.method == "mos" ? " and angles" : " and index") +
                                           "), more than the " + num(4.0 * kv) +
                                           " of uncompressed bf16 K and V; lower the ranks or use \"method\": \"none\"");
  }
  if (s.compression.method == "topk") {
    // Values (bf16) + indices of ceil(log2 kv) bits, bit-packed across the chunk (the kernels' wire
    // format): past about 60 % kept it outweighs bf16 rows. K and V send alike: per row, half.
    const double sent = wire_bytes_per_token(s.compression, kv, 1.0) / 2.0;
    if (sent > 2.0 * kv) {
      r.problem("/compression/fraction", "= " + num(s.compression.fraction) + ": top-k would send " + exact(sent) +
                                             " bytes per row, more than the " + num(2.0 * kv) +
                                             " of uncompressed bf16; use a smaller fraction or \"method\": \"none\"");
    }
  }
  if (s.training.target_loss) {
    const LossLaw& law = s.convergence.law;
    const double floor = law.e + law.a / std::pow(model::parameter_count(s.model), law.alpha);
    if (*s.training.target_loss <= floor) {
      r.problem("/training/target_loss", "= " + num(*s.training.target_loss) + ": unreachable, a model of " +
                                             num(model::parameter_count(s.model)) + " parameters cannot go below " +
                                             num(floor) + " by the loss law");
    }
  }
  if (!build_topology(s).connected()) {
    r.problem("/cluster/network/links", "the links leave some nodes unreachable: every node must reach every other");
  }
  if (r.ok()) check_memory(r, s);
}

}  // namespace moss::scenario::detail
