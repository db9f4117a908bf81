#pragma once

#include "moss/model/transformer.h"

namespace moss::model {

/// What decides the memory one GPU needs for a training step.
struct MemoryInputs {
  double local_tokens = 0;          ///< tokens of the sequence held by this GPU
  double sequence_tokens = 0;       ///< whole sequence length
  int shard_group = 1;              ///< GPUs that shard optimizer state (context x data)
  int zero_stage = 1;               ///< 0: nothing sharded, 1: optimizer, 2: + gradients, 3: + weights
  bool activation_checkpointing = false;
  bool stores_gathered_kv = false;  ///< all-gather CP keeps every layer's full-sequence K/V
};

/// Bytes per GPU, by kind.
struct MemoryBreakdown {
  double weights_bytes = 0;      ///< bf16 weights
  double gradients_bytes = 0;    ///< bf16 gradients
  double optimizer_bytes = 0;    ///< fp32 master weights + Adam moments (12 bytes per parameter)
  double activations_bytes = 0;  ///< saved for backward
  double gathered_kv_bytes = 0;  ///< remote K/V kept for backward (all-gather CP)
  double logits_bytes = 0;       ///< fp32 logits of the local chunk
  double total_bytes = 0;
};

/// Bytes of activations saved per token per layer without recomputation (bf16, flash attention:
/// no T x T score matrix is kept).
[[nodiscard]] double activation_bytes_per_token_layer(const TransformerConfig& m);

[[nodiscard]] MemoryBreakdown memory_per_gpu(const TransformerConfig& m, const MemoryInputs& in);

}  // namespace moss::model
