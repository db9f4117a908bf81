#include "moss/step/compression_accounting.h"

#include <cmath>

#include "moss/kernels/codec.h"
#include "moss/model/roofline.h"

namespace moss::step {

namespace {

double bits_for(double choices) { return choices <= 1 ? 0.0 : std::ceil(std::log2(choices)); }

}  // namespace

KvBytes kv_bytes(const scenario::CompressionSpec& c, const model::TransformerConfig& m, double chunk_tokens) {
  const double kv = m.kv_dim();
  KvBytes b;
  b.raw_per_token = 2.0 * kv * 2.0;
  const double ranks = static_cast<double>(c.rank_k) + c.rank_v;
  if (c.method == "none") {
    b.sent_per_token = b.raw_per_token;
  } else if (c.fitted()) {
    b.sent_per_token = 2.0 * ranks;
    b.one_time = 2.0 * ranks * kv;
    if (c.method == "mos") b.per_chunk = 2.0 * c.rotations * 4.0;
    if (c.method == "mos-k") {
      b.sent_per_token += 2.0 * bits_for(c.subspaces) / 8.0;
      b.one_time *= c.subspaces;
    }
  } else if (c.method == "topk") {
    // The kernels' count, and their wire format: a chunk's indices are bit-packed together, so a
    // token carries k x bits / 8 bytes of them, not a whole number (a chunk rounds up once, < 1 byte).
    const auto k = static_cast<double>(kernels::topk_count(c.fraction, static_cast<std::int64_t>(kv)));
    b.sent_per_token = 2.0 * (2.0 * k + k * bits_for(kv) / 8.0);
  } else if (c.method == "quant") {
    b.sent_per_token = 2.0 * (kv * c.bits / 8.0 + 2.0);
  }
  (void)chunk_tokens;
  return b;
}

CodecTime codec_time(const scenario::CompressionSpec& c, const model::TransformerConfig& m,
                     const model::GpuSpec& gpu, double tokens) {
  CodecTime t;
  if (!c.compressed()) return t;
  const double kv = m.kv_dim();
  const double raw = tokens * 2.0 * kv * 2.0;
  const double sent = kv_bytes(c, m, tokens).chunk_bytes(tokens);
  double flops = 0;
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
      const double gens = c.rotations;
      for (const double r : {static_cast<double>(c.rank_k), static_cast<double>(c.rank_v)})
        flops += 2.0 * kv * r * (1.0 + gens + gens * gens) + 2.0 * 2.0 * kv * r * r;
    }
  } else {
    flops = tokens * 2.0 * kv * 4.0;  // a few operations per element (abs, compare, scale)
  }
  t.encode_s = model::roofline_time_s(gpu, model::OpClass::kGemm, flops, raw + sent);
  const double decode_flops = c.fitted()
                                  ? 2.0 * tokens * kv * (static_cast<double>(c.rank_k) + c.rank_v)
                                  : tokens * 2.0 * kv;
  t.decode_s = model::roofline_time_s(gpu, model::OpClass::kGemm, decode_flops, raw + sent);
  return t;
}

}  // namespace moss::step
