#pragma once

#include "moss/kernels/codec.h"
#include "moss/scenario/scenario.h"

namespace moss::scenario {

/// The kernels' parameters of a scenario's compression, K and V together: one theta per chunk (mos)
/// and one basis index per token (mos-k), bf16 on the wire.
[[nodiscard]] kernels::CompressionParams kernel_params(const CompressionSpec& c);

/// Bytes per token of K and V as the kernels' wire format sends them from a chunk of `chunk_tokens`
/// (per-chunk bytes amortised over it), at the model's K/V width `kv_dim`. For parameters a scenario
/// validated (kernels::codec_config throws std::invalid_argument for an unknown method or routing
/// only; other values are not checked here).
[[nodiscard]] double wire_bytes_per_token(const CompressionSpec& c, std::int64_t kv_dim, double chunk_tokens);

}  // namespace moss::scenario
