#include "moss/step/compression_accounting.h"

#include <cmath>

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
  } else if (c.method == "pca" || c.method == "mos" || c.method == "mos-k") {
    b.sent_per_token = 2.0 * ranks;
    b.one_time = 2.0 * ranks * kv;
    if (c.method == "mos") b.per_chunk = 2.0 * c.rotations * 4.0;
    if (c.method == "mos-k") {
      b.sent_per_token += 2.0 * bits_for(c.subspaces) / 8.0;
      b.one_time *= c.subspaces;
    }
  } else if (c.method == "topk") {
    const double k = std::ceil(c.fraction * kv);
    b.sent_per_token = 2.0 * (2.0 * k + std::ceil(k * bits_for(kv) / 8.0));
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
  if (c.method == "pca" || c.method == "mos" || c.method == "mos-k") {
    const double ranks = static_cast<double>(c.rank_k) + c.rank_v;
    flops = 2.0 * tokens * kv * ranks;
    if (c.method == "mos-k") flops *= c.subspaces;  // every token tries every basis
    if (c.method == "mos") {
      // U(theta) = (I + theta A + theta^2 A^2 / 2) Ubar: two d x d by d x r products per generator.
      flops += c.rotations * 2.0 * 2.0 * kv * kv * ranks;
    }
  } else {
    flops = tokens * 2.0 * kv * 4.0;  // a few operations per element (abs, compare, scale)
  }
  t.encode_s = model::roofline_time_s(gpu, model::OpClass::kGemm, flops, raw + sent);
  const double decode_flops = (c.method == "pca" || c.method == "mos" || c.method == "mos-k")
                                  ? 2.0 * tokens * kv * (static_cast<double>(c.rank_k) + c.rank_v)
                                  : tokens * 2.0 * kv;
  t.decode_s = model::roofline_time_s(gpu, model::OpClass::kGemm, decode_flops, raw + sent);
  return t;
}

}  // namespace moss::step
