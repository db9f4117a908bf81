#pragma once

#include "moss/model/hardware.h"

namespace moss::model {

/// Op classes with their own efficiency factor.
enum class OpClass { kGemm, kAttentionForward, kAttentionBackward, kElementwise };

/// Time of one kernel on the GPU by the roofline: max(FLOPs / (peak x eff), bytes / (HBM x eff)).
[[nodiscard]] double roofline_time_s(const GpuSpec& gpu, OpClass op, double flops, double bytes);

}  // namespace moss::model
