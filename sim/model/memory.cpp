#include "moss/model/memory.h"

namespace moss::model {

double activation_bytes_per_token_layer(const TransformerConfig& m) {
  const double d = m.d_model;
  const double kv = m.kv_dim();
  const double f = m.ffn_hidden;
  // Saved tensors: attention-norm input (d), Q K V (d + 2 kv), attention output (d),
  // MLP-norm input (d), MLP input after norm (d), gate and up (2 f), SwiGLU product (f);
  // all bf16. The softmax log-sum-exp per head is negligible.
  const double elements = d + (d + 2 * kv) + d + d + d + 3 * f;
  return 2.0 * elements;
}

MemoryBreakdown memory_per_gpu(const TransformerConfig& m, const MemoryInputs& in) {
  const double params = parameter_count(m);
  const double group = in.shard_group > 0 ? in.shard_group : 1;
  MemoryBreakdown b;
  b.weights_bytes = 2.0 * params / (in.zero_stage >= 3 ? group : 1.0);
  b.gradients_bytes = 2.0 * params / (in.zero_stage >= 2 ? group : 1.0);
  b.optimizer_bytes = 12.0 * params / (in.zero_stage >= 1 ? group : 1.0);
  const double per_layer = activation_bytes_per_token_layer(m) * in.local_tokens;
  if (in.activation_checkpointing) {
    // Layer inputs are kept; one layer's full activations live during its recomputation.
    b.activations_bytes = m.layers * 2.0 * m.d_model * in.local_tokens + per_layer;
  } else {
    b.activations_bytes = m.layers * per_layer;
  }
  if (in.stores_gathered_kv) {
    b.gathered_kv_bytes = m.layers * kv_bytes(m, in.sequence_tokens - in.local_tokens);
  }
  b.logits_bytes = 4.0 * static_cast<double>(m.vocab) * in.local_tokens;
  b.total_bytes = b.weights_bytes + b.gradients_bytes + b.optimizer_bytes + b.activations_bytes +
                  b.gathered_kv_bytes + b.logits_bytes;
  return b;
}

}  // namespace moss::model
