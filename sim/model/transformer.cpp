#include "moss/model/transformer.h"

#include <algorithm>

namespace moss::model {

double layer_parameters(const TransformerConfig& m) {
  const double d = m.d_model;
  const double kv = m.kv_dim();
  const double attention = d * d /*q*/ + 2.0 * d * kv /*k, v*/ + d * d /*o*/;
  const double mlp = 3.0 * d * m.ffn_hidden;  // gate, up, down
  const double norms = 2.0 * d;
  return attention + mlp + norms;
}

double parameter_count(const TransformerConfig& m) {
  const double embedding = static_cast<double>(m.vocab) * m.d_model;
  const double head = m.tied_embeddings ? 0.0 : embedding;
  return m.layers * layer_parameters(m) + embedding + head + m.d_model /*final norm*/;
}

double causal_pairs(double q0, double q1, double k0, double k1) {
  // Sum over queries q in [q0, q1) of |{k in [k0, k1) : k <= q}|, in closed form.
  if (q1 <= q0 || k1 <= k0) return 0;
  // Queries below k0 see nothing; queries at or above k1 - 1 see the whole key range.
  const double lo = std::max(q0, k0);
  const double full_from = std::max(lo, k1 - 1);
  double pairs = 0;
  // Partial region: q in [lo, min(q1, full_from)) sees q - k0 + 1 keys.
  const double hi = std::min(q1, full_from);
  if (hi > lo) {
    const double n = hi - lo;
    pairs += n * (lo - k0 + 1) + n * (n - 1) / 2;
  }
  if (q1 > full_from) pairs += (q1 - std::max(full_from, lo)) * (k1 - k0);
  return pairs;
}

double layer_gemm_flops(const TransformerConfig& m, double tokens) {
  const double d = m.d_model;
  const double kv = m.kv_dim();
  return gemm_flops(tokens, d + 2.0 * kv, d) + gemm_flops(tokens, d, d) +
         3.0 * gemm_flops(tokens, m.ffn_hidden, d);
}

double attention_flops(const TransformerConfig& m, double pairs) {
  // Q K^T and P V: each 2 FLOPs per pair per head dimension, over all query heads.
  return 4.0 * pairs * m.head_dim() * m.heads;
}

double layer_elementwise_bytes(const TransformerConfig& m, double tokens) {
  const double d = m.d_model;
  const double kv = m.kv_dim();
  // bf16 reads + writes: two RMSNorms (2d each), RoPE on q and k (2 (d + kv)), SwiGLU
  // (read gate and up, write product: 3 ffn), two residual adds (3d each).
  const double elements = 4.0 * d + 2.0 * (d + kv) + 3.0 * m.ffn_hidden + 6.0 * d;
  return 2.0 * elements * tokens;
}

double head_flops(const TransformerConfig& m, double tokens) {
  return gemm_flops(tokens, static_cast<double>(m.vocab), m.d_model);
}

double training_flops_per_sequence(const TransformerConfig& m, double seq_len) {
  const double pairs = causal_pairs(0, seq_len, 0, seq_len);
  const double forward =
      m.layers * (layer_gemm_flops(m, seq_len) + attention_flops(m, pairs)) + head_flops(m, seq_len);
  return 3.0 * forward;
}

double kv_bytes(const TransformerConfig& m, double tokens) {
  return 2.0 /*K and V*/ * tokens * m.kv_dim() * 2.0 /*bf16*/;
}

}  // namespace moss::model
