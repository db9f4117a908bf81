#pragma once

#include <cstdint>
#include <vector>

namespace moss::net {

/// One point-to-point transfer between two GPUs (vertex ids < Topology::gpus()).
struct Flow {
  int src = 0;
  int dst = 0;
  double bytes = 0;    ///< application payload bytes
  double start_s = 0;  ///< start time relative to the phase start
};

/// A set of flows in flight together; the backend simulates them with their contention.
using Phase = std::vector<Flow>;

/// What the backend says about one phase.
struct PhaseResult {
  std::vector<double> finish_s;  ///< per flow: time its last byte is delivered (phase-relative)
  double makespan_s = 0;         ///< max of finish_s (0 for an empty phase)
  std::uint64_t retransmissions = 0;  ///< packet backends only
  /// Per flow: segments sent again (packet backends only; empty otherwise).
  std::vector<std::uint64_t> flow_retransmissions;
  /// True when part of the phase was extrapolated from steady rates instead of simulated.
  bool extrapolated = false;
};

}  // namespace moss::net
