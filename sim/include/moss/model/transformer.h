#pragma once

#include <cstdint>
#include <string>

namespace moss::model {

/// A LLaMA-style decoder: RMSNorm, RoPE, grouped-query attention, SwiGLU MLP.
struct TransformerConfig {
  std::string name;
  int layers = 0;
  int d_model = 0;
  int heads = 0;
  int kv_heads = 0;
  int ffn_hidden = 0;
  std::int64_t vocab = 0;
  bool tied_embeddings = true;

  [[nodiscard]] int head_dim() const { return d_model / heads; }
  /// Width of K (and of V) per token: kv_heads x head_dim.
  [[nodiscard]] int kv_dim() const { return kv_heads * head_dim(); }
};

/// Parameters of one decoder layer (attention, MLP, two RMSNorm gains).
[[nodiscard]] double layer_parameters(const TransformerConfig& m);
/// All parameters: layers, token embedding, final norm and (untied) output head.
[[nodiscard]] double parameter_count(const TransformerConfig& m);

/// FLOPs of a dense [m x k] * [k x n] product (multiply-adds count 2).
[[nodiscard]] constexpr double gemm_flops(double m, double n, double k) { return 2.0 * m * n * k; }

/// Number of (query, key) pairs a causal mask allows between query positions [q0, q1) and key
/// positions [k0, k1) (a query attends to keys at positions <= its own).
[[nodiscard]] double causal_pairs(double q0, double q1, double k0, double k1);

/// Forward FLOPs of one layer's GEMMs (QKV, output projection, SwiGLU MLP) for `tokens` tokens.
[[nodiscard]] double layer_gemm_flops(const TransformerConfig& m, double tokens);
/// Forward FLOPs of attention scores and weighted sum for `pairs` causal (query, key) pairs.
[[nodiscard]] double attention_flops(const TransformerConfig& m, double pairs);
/// Bytes moved by one layer's memory-bound element-wise work (norms, RoPE, SwiGLU, residuals).
[[nodiscard]] double layer_elementwise_bytes(const TransformerConfig& m, double tokens);
/// Forward FLOPs of the output head (logits) for `tokens` tokens.
[[nodiscard]] double head_flops(const TransformerConfig& m, double tokens);

/// Model FLOPs of one training pass (forward + backward, no recomputation) over a sequence of
/// `seq_len` tokens with causal attention: the numerator of MFU.
[[nodiscard]] double training_flops_per_sequence(const TransformerConfig& m, double seq_len);

/// bf16 bytes of K and V (both) for `tokens` tokens of one layer.
[[nodiscard]] double kv_bytes(const TransformerConfig& m, double tokens);

}  // namespace moss::model
