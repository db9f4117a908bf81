#pragma once

#include <string>
#include <vector>

#include "moss/core/scheduler.h"
#include "moss/net/backend.h"
#include "moss/net/topology.h"
#include "moss/scenario/scenario.h"
#include "moss/step/compression_accounting.h"

namespace moss::step {

/// Compression figures the step needs, whatever produced them (byte formula or kernels).
struct CodecInputs {
  KvBytes bytes;         ///< what travels per layer
  CodecTime per_chunk;   ///< encode / decode time of one local chunk's K and V
};

/// One optimizer step laid out on every GPU of one data-parallel replica (the replicas run the
/// same schedule in lockstep; their traffic shares each network phase).
struct StepLayout {
  core::TaskGraph graph;
  core::Schedule schedule;       ///< with the network backend's communication times
  double micro_s = 0;            ///< one microbatch: forward + backward of the local chunk
  double micro_free_s = 0;       ///< the same with free communication
  double sync_s = 0;             ///< one gradient all-reduce across all GPUs
  double optimizer_s = 0;        ///< optimizer update after the step
  double network_busy_s = 0;     ///< time the network carries CP traffic per microbatch
  double cp_bytes_per_device = 0;    ///< per microbatch, sent by one GPU (mean)
  double sync_bytes_per_device = 0;  ///< one all-reduce, sent by one GPU
  std::vector<double> cp_channel_bytes;    ///< wire bytes per directed channel, one microbatch
  std::vector<double> sync_channel_bytes;  ///< wire bytes per directed channel, one all-reduce
  std::vector<std::string> device_names;
};

/// Builds and runs the task graph of one microbatch (+ weight sync when `with_sync`, + optimizer).
[[nodiscard]] StepLayout simulate_step(const scenario::Scenario& s, const net::Topology& topology,
                                       net::NetworkBackend& backend, const CodecInputs& codec, bool with_sync);

}  // namespace moss::step
