#include "moss/model/memory.h"

#include <gtest/gtest.h>

namespace moss::model {

TEST(Memory, ZeroStagesShardWhatTheySay) {
  const TransformerConfig m{"tiny", 2, 64, 4, 4, 256, 1000, true};
  const double n = parameter_count(m);
  MemoryInputs in{128, 1024, 8, 0, false, false};
  EXPECT_DOUBLE_EQ(memory_per_gpu(m, in).optimizer_bytes, 12 * n);
  in.zero_stage = 1;
  EXPECT_DOUBLE_EQ(memory_per_gpu(m, in).optimizer_bytes, 12 * n / 8);
  EXPECT_DOUBLE_EQ(memory_per_gpu(m, in).gradients_bytes, 2 * n);
  in.zero_stage = 2;
  EXPECT_DOUBLE_EQ(memory_per_gpu(m, in).gradients_bytes, 2 * n / 8);
  in.zero_stage = 3;
  EXPECT_DOUBLE_EQ(memory_per_gpu(m, in).weights_bytes, 2 * n / 8);
}

TEST(Memory, CheckpointingKeepsOnlyLayerInputs) {
  const TransformerConfig m{"tiny", 10, 64, 4, 4, 256, 1000, true};
  MemoryInputs in{1000, 8000, 8, 1, false, false};
  const double full = memory_per_gpu(m, in).activations_bytes;
  in.activation_checkpointing = true;
  const double ckpt = memory_per_gpu(m, in).activations_bytes;
  EXPECT_DOUBLE_EQ(full, 10 * activation_bytes_per_token_layer(m) * 1000);
  EXPECT_DOUBLE_EQ(ckpt, 10 * 2.0 * 64 * 1000 + activation_bytes_per_token_layer(m) * 1000);
}

TEST(Memory, AllGatherKeepsRemoteKv) {
  const TransformerConfig m{"tiny", 3, 64, 4, 2, 256, 1000, true};
  MemoryInputs in{1000, 8000, 8, 1, false, true};
  // 3 layers x 7000 remote tokens x K and V x kv_dim 32 x 2 bytes.
  EXPECT_DOUBLE_EQ(memory_per_gpu(m, in).gathered_kv_bytes, 3 * 7000 * 2 * 32 * 2.0);
}

}  // namespace moss::model
