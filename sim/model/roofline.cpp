#include "moss/model/roofline.h"

#include <algorithm>

#include "moss/core/error.h"

namespace moss::model {

double roofline_time_s(const GpuSpec& gpu, OpClass op, double flops, double bytes) {
  MOSS_CHECK(gpu.peak_bf16_flops > 0 && gpu.hbm_bytes_per_s > 0, "GPU peak figures must be set");
  double eff = gpu.efficiency.gemm;
  switch (op) {
    case OpClass::kGemm: eff = gpu.efficiency.gemm; break;
    case OpClass::kAttentionForward: eff = gpu.efficiency.attention_fwd; break;
    case OpClass::kAttentionBackward: eff = gpu.efficiency.attention_bwd; break;
    case OpClass::kElementwise: eff = 1.0; break;  // element-wise ops are bound by bytes
  }
  const double compute_s = flops / (gpu.peak_bf16_flops * eff);
  const double memory_s = bytes / (gpu.hbm_bytes_per_s * gpu.efficiency.memory);
  return std::max(compute_s, memory_s);
}

}  // namespace moss::model
