#pragma once

#include "moss/model/hardware.h"
#include "moss/model/transformer.h"
#include "moss/scenario/scenario.h"

namespace moss::step {

/// Bytes of the K/V exchange as they travel, per layer, from the method's parameters.
struct KvBytes {
  double raw_per_token = 0;      ///< bf16 K + V
  double sent_per_token = 0;     ///< K + V as sent (coefficients, indices, scales), per token
  double per_chunk = 0;          ///< sent once per chunk (MoS rotation angles theta, fp32)
  double one_time = 0;           ///< basis exchange per layer (pca basis, mos Ubar and directions, mos-k bases; bf16)
  [[nodiscard]] double chunk_bytes(double tokens) const { return sent_per_token * tokens + per_chunk; }
  [[nodiscard]] double ratio(double tokens) const { return chunk_bytes(tokens) / (raw_per_token * tokens); }
};

/// Byte accounting of each method, the kernels' wire format (kernels::wire_rate; README, "Compression
/// accounting"): none: 2 bytes per element; pca/mos: rank_k + rank_v bf16 coefficients per token,
/// mos adds 2 x rotations fp32 angles per chunk; mos-k adds ceil(log2 subspaces) bits per token and
/// tensor; topk: ceil(fraction x kv_dim) bf16 values + ceil(log2 kv_dim)-bit indices per row;
/// quant: kv_dim x bits / 8 bytes + one bf16 scale per row. For a validated scenario's parameters
/// (std::invalid_argument for an unknown method or routing).
[[nodiscard]] KvBytes kv_bytes(const scenario::CompressionSpec& c, const model::TransformerConfig& m);

/// Roofline time to encode one chunk of `tokens` tokens of K and V on one GPU (mos: one theta per
/// chunk, fitted on its sample), and to decode them.
struct CodecTime {
  double encode_s = 0;
  double decode_s = 0;
};
[[nodiscard]] CodecTime codec_time(const scenario::CompressionSpec& c, const model::TransformerConfig& m,
                                   const model::GpuSpec& gpu, double tokens);

}  // namespace moss::step
