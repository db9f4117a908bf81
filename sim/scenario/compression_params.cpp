#include "moss/scenario/compression_params.h"

namespace moss::scenario {

kernels::CompressionParams kernel_params(const CompressionSpec& c) {
  kernels::CompressionParams p;
  p.method = c.method;
  p.rank_k = c.rank_k;
  p.rank_v = c.rank_v;
  p.rotations = c.rotations;
  p.subspaces = c.subspaces;
  p.routing = c.routing;
  p.fraction = c.fraction;
  p.bits = c.bits;
  return p;
}

double wire_bytes_per_token(const CompressionSpec& c, std::int64_t kv_dim, double chunk_tokens) {
  const kernels::CompressionParams p = kernel_params(c);
  double bytes = 0;
  for (const bool is_v : {false, true}) {
    const kernels::WireRate rate = kernels::wire_rate(kernels::codec_config(p, is_v), kv_dim);
    bytes += rate.per_token_bytes + rate.per_chunk_bytes / chunk_tokens;
  }
  return bytes;
}

}  // namespace moss::scenario
