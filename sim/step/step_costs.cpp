// Roofline times of one context rank's per-layer work.
#include "moss/model/roofline.h"
#include "moss/model/transformer.h"
#include "step_builder.h"

namespace moss::step::detail {

using model::OpClass;
using model::roofline_time_s;

Ranges chunk_ranges(scenario::Partition p, double seq_len, int rank, int ranks) {
  if (p == scenario::Partition::kContiguous) {
    const double t = seq_len / ranks;
    return {{rank * t, (rank + 1) * t}};
  }
  // Zigzag: piece `rank` from the front and piece 2P-1-rank from the back, so every rank gets
  // the same causal work.
  const double h = seq_len / (2.0 * ranks);
  return {{rank * h, (rank + 1) * h}, {(2.0 * ranks - 1 - rank) * h, (2.0 * ranks - rank) * h}};
}

double pairs_between(const Ranges& queries, const Ranges& keys) {
  double sum = 0;
  for (const auto& q : queries) {
    for (const auto& k : keys) sum += model::causal_pairs(q.first, q.second, k.first, k.second);
  }
  return sum;
}

LayerCosts layer_costs(const scenario::Scenario& s, int rank) {
  const model::TransformerConfig& m = s.model;
  const model::GpuSpec& gpu = s.cluster.gpu;
  const int ranks = s.parallelism.context;
  const double seq = static_cast<double>(s.training.seq_len);
  const double t = seq / ranks;
  const double d = m.d_model;
  const double kv = m.kv_dim();
  const double f = m.ffn_hidden;
  const double half_elementwise = model::layer_elementwise_bytes(m, t) / 2;

  LayerCosts c;
  // Q/K/V projection: read the activations and the weights, write Q, K, V.
  const double qkv_flops = model::gemm_flops(t, d + 2 * kv, d);
  const double qkv_bytes = 2.0 * (d * (d + 2 * kv) + t * (2 * d + 2 * kv));
  c.qkv_fwd_s = roofline_time_s(gpu, OpClass::kGemm, qkv_flops, qkv_bytes) +
                roofline_time_s(gpu, OpClass::kElementwise, 0, half_elementwise);
  c.qkv_bwd_s = roofline_time_s(gpu, OpClass::kGemm, 2 * qkv_flops, 2 * qkv_bytes) +
                roofline_time_s(gpu, OpClass::kElementwise, 0, 2 * half_elementwise);
  const double om_flops = model::gemm_flops(t, d, d) + 3 * model::gemm_flops(t, f, d);
  const double om_bytes = 2.0 * (d * d + 3 * d * f + t * (3 * d + 3 * f));
  c.out_mlp_fwd_s = roofline_time_s(gpu, OpClass::kGemm, om_flops, om_bytes) +
                    roofline_time_s(gpu, OpClass::kElementwise, 0, half_elementwise);
  c.out_mlp_bwd_s = roofline_time_s(gpu, OpClass::kGemm, 2 * om_flops, 2 * om_bytes) +
                    roofline_time_s(gpu, OpClass::kElementwise, 0, 2 * half_elementwise);

  const Ranges mine = chunk_ranges(s.parallelism.partition, seq, rank, ranks);
  c.attn_fwd_s.resize(static_cast<std::size_t>(ranks));
  c.attn_bwd_s.resize(static_cast<std::size_t>(ranks));
  for (int e = 0; e < ranks; ++e) {
    const double pairs = pairs_between(mine, chunk_ranges(s.parallelism.partition, seq, e, ranks));
    if (pairs <= 0) continue;  // a fully masked block is skipped
    const double flops = model::attention_flops(m, pairs);
    const double bytes = 2.0 * t * (2 * d + 2 * kv);  // Q and O of the queries, K and V of the keys
    c.attn_fwd_s[static_cast<std::size_t>(e)] = roofline_time_s(gpu, OpClass::kAttentionForward, flops, bytes);
    // Flash-attention backward recomputes the scores: 5 matmuls against the forward's 2.
    c.attn_bwd_s[static_cast<std::size_t>(e)] = roofline_time_s(gpu, OpClass::kAttentionBackward, 2.5 * flops, 2.5 * bytes);
  }
  const double vocab = static_cast<double>(m.vocab);
  const double head = model::head_flops(m, t);
  const double logits_bytes = 4.0 * t * vocab;
  c.head_fwd_s = roofline_time_s(gpu, OpClass::kGemm, head, 2.0 * d * vocab + logits_bytes) +
                 roofline_time_s(gpu, OpClass::kElementwise, 0, 2 * logits_bytes);
  c.head_bwd_s = roofline_time_s(gpu, OpClass::kGemm, 2 * head, 2 * (2.0 * d * vocab + logits_bytes)) +
                 roofline_time_s(gpu, OpClass::kElementwise, 0, 2 * logits_bytes);
  return c;
}

}  // namespace moss::step::detail
