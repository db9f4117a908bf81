#pragma once

#include <string>
#include <vector>

namespace moss::model {

/// Fraction of the datasheet peak an op class reaches in practice (roofline efficiency).
struct Efficiency {
  double gemm = 0.7;            ///< dense bf16 GEMMs (projections, MLP, head)
  double attention_fwd = 0.6;   ///< fused (flash) attention forward
  double attention_bwd = 0.45;  ///< fused attention backward
  double memory = 0.8;          ///< share of HBM bandwidth reached by element-wise kernels
};

/// One GPU model from the hardware catalog (scenarios/hardware.json).
struct GpuSpec {
  std::string name;
  double peak_bf16_flops = 0;        ///< dense bf16 FLOP/s, no sparsity
  double hbm_bytes_per_s = 0;        ///< memory bandwidth
  double memory_bytes = 0;           ///< HBM capacity
  double intra_node_bps = 0;         ///< GPU-to-GPU bandwidth inside a node, per direction (bits/s)
  double intra_node_latency_s = 0;   ///< one-way latency of that link
  Efficiency efficiency;
  std::vector<std::string> device_names;  ///< names the CUDA runtime gives this GPU (cudaDeviceProp::name)
};

}  // namespace moss::model
