#include "moss/model/roofline.h"

#include <gtest/gtest.h>

namespace moss::model {

TEST(Roofline, ComputeBoundAndMemoryBound) {
  GpuSpec g;
  g.peak_bf16_flops = 100e12;
  g.hbm_bytes_per_s = 1e12;
  g.efficiency = {0.5, 0.5, 0.5, 0.5};
  // 100 TFLOP at 50 TFLOP/s = 2 s; 1 GB at 0.5 TB/s = 2 ms.
  EXPECT_DOUBLE_EQ(roofline_time_s(g, OpClass::kGemm, 100e12, 1e9), 2.0);
  EXPECT_DOUBLE_EQ(roofline_time_s(g, OpClass::kElementwise, 0, 1e9), 2e-3);
}

}  // namespace moss::model
