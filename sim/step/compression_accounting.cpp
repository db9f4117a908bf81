#include "moss/step/compression_accounting.h"

#include <algorithm>
#include <cmath>

#include "moss/kernels/codec.h"
#include "moss/model/roofline.h"
#include "moss/scenario/compression_params.h"

namespace moss::step {

KvBytes kv_bytes(const scenario::CompressionSpec& c, const model::TransformerConfig& m) {
  const auto kv = static_cast<std::int64_t>(m.kv_dim());
  KvBytes b;
  b.raw_per_token = 2.0 * static_cast<double>(kv) * 2.0;
  // The kernels' wire format (rates: a chunk's bit-packed indices are not rounded up to a byte) and
  // their one-time exchange, which for mos holds its tangent directions besides Ubar.
  const kernels::CompressionParams p = scenario::kernel_params(c);
  for (const bool is_v : {false, true}) {
    const kernels::CodecConfig config = kernels::codec_config(p, is_v);
    const kernels::WireRate rate = kernels::wire_rate(config, kv);
    b.sent_per_token += rate.per_token_bytes;
    b.per_chunk += rate.per_chunk_bytes;
    b.one_time += static_cast<double>(kernels::one_time_bytes(config, kv));
  }
  return b;
}

CodecTime codec_time(const scenario::CompressionSpec& c, const model::TransformerConfig& m,
                     const model::GpuSpec& gpu, double tokens) {
  CodecTime t;
  if (!c.compressed()) return t;
  const double kv = m.kv_dim();
  const double raw = tokens * 2.0 * kv * 2.0;
  const double sent = kv_bytes(c, m).chunk_bytes(tokens);
  double flops = 0, sample_bytes = 0;
  if (c.fitted()) {
    const double ranks = static_cast<double>(c.rank_k) + c.rank_v;
    flops = 2.0 * tokens * kv * ranks;
    if (c.method == "mos-k") {
      // exhaustive: every token tries every basis; sketch: the first route_sketch_columns(r) columns
      // of each basis route it, then it is projected on its own basis only (kernels/include codec.h).
      double factor = c.subspaces;
      if (c.routing == "sketch") {
        const auto sketch = [&](int r) { return c.subspaces * static_cast<double>(kernels::route_sketch_columns(r)); };
        factor = 1.0 + (sketch(c.rank_k) + sketch(c.rank_v)) / ranks;
      }
      flops *= factor;
    }
    if (c.method == "mos") {
      // U(theta) per chunk from blocks stored at fit time (kernels/README.md): the m directions and
      // their products, O((1 + m + m^2) d r), plus two d x r x r products; the r x r algebra is small.
      // Theta is fitted on an evenly strided sample of the chunk (kernels::theta_sample_count tokens),
      // projected on [Ubar W_1 .. W_m] and so read a second time.
      const double gens = c.rotations;
      const auto chunk = static_cast<std::int64_t>(std::max(1.0, tokens));
      for (const int r : {c.rank_k, c.rank_v}) {
        const double rd = r;
        flops += 2.0 * kv * rd * (1.0 + gens + gens * gens) + 2.0 * 2.0 * kv * rd * rd;
        if (c.rotations == 0) continue;
        const double samples = static_cast<double>(kernels::theta_sample_count(chunk, c.rotations, r));
        flops += 2.0 * samples * kv * (gens + 1.0) * rd;
        sample_bytes += samples * kv * 2.0;
      }
    }
  } else {
    flops = tokens * 2.0 * kv * 4.0;  // a few operations per element (abs, compare, scale)
  }
  t.encode_s = model::roofline_time_s(gpu, model::OpClass::kGemm, flops, raw + sent + sample_bytes);
  const double decode_flops = c.fitted()
                                  ? 2.0 * tokens * kv * (static_cast<double>(c.rank_k) + c.rank_v)
                                  : tokens * 2.0 * kv;
  t.decode_s = model::roofline_time_s(gpu, model::OpClass::kGemm, decode_flops, raw + sent);
  return t;
}

}  // namespace moss::step
