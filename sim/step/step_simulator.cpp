#include "moss/step/step_simulator.h"

#include <algorithm>

#include "step_builder.h"

namespace moss::step {

StepLayout simulate_step(const scenario::Scenario& s, const net::Topology& topology, net::NetworkBackend& backend,
                         const CodecInputs& codec, bool with_sync) {
  detail::StepBuilder builder(s, topology, backend, codec);
  builder.build(with_sync);
  StepLayout out;
  out.graph = std::move(builder.graph());
  out.schedule = out.graph.run(false);
  const core::Schedule free = out.graph.run(true);
  for (core::TaskId t : builder.backward_ends()) {
    out.micro_s = std::max(out.micro_s, out.schedule.end_s[static_cast<std::size_t>(t)]);
    out.micro_free_s = std::max(out.micro_free_s, free.end_s[static_cast<std::size_t>(t)]);
  }
  out.sync_s = builder.sync_s();
  out.optimizer_s = builder.optimizer_s();
  out.network_busy_s = builder.network_busy_s();
  out.cp_bytes_per_device = builder.cp_bytes_per_device();
  out.sync_bytes_per_device = builder.sync_bytes_per_device();
  out.cp_channel_bytes = builder.cp_channel_bytes();
  out.sync_channel_bytes = builder.sync_channel_bytes();
  const int per_node = s.cluster.gpus_per_node;
  for (int r = 0; r < s.parallelism.context; ++r) {
    out.device_names.push_back("gpu" + std::to_string(r) + " (node" + std::to_string(r / per_node) + ")");
  }
  return out;
}

}  // namespace moss::step
