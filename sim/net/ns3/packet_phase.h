#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "moss/net/backend.h"

namespace moss::net {

/// How far to run one packet-level phase.
struct PacketPhasePlan {
  /// Stop once every unfinished flow delivers at a steady rate (false: run every byte).
  bool stop_when_steady = true;
  /// Relative spread of window rates that counts as steady (see RateTracker).
  double steady_tolerance = 0.02;
  /// Below this many packets left in the phase, finish it exactly rather than extrapolate.
  std::uint64_t min_packets_to_extrapolate = 4000;
  /// After this many simulator events, stop with mean rates even if no flow looks steady.
  std::uint64_t event_budget = 6'000'000;
  /// Seed of ns-3's random streams (loss).
  std::uint64_t seed = 1;
};

/// What the packet simulation measured for one flow.
struct PacketFlowOutcome {
  bool finished = false;
  double finish_s = 0;               ///< phase-relative arrival of the last byte (when finished)
  double delivered_bytes = 0;        ///< payload bytes at the sink when the run stopped
  double rate_Bps = 0;               ///< payload delivery rate at the stop (unfinished flows)
  std::uint64_t retransmissions = 0; ///< segments sent again (sequence below the highest sent)
};

/// What the packet simulation measured for one phase.
struct PacketPhaseOutcome {
  std::vector<PacketFlowOutcome> flows;
  double stop_s = 0;           ///< phase-relative simulated time at which the run ended
  bool stopped_early = false;  ///< unfinished flows remain: their ends must be extrapolated
  bool forced = false;         ///< stopped by the event budget with mean, not steady, rates
  std::uint64_t events = 0;    ///< ns-3 events executed
  std::vector<double> channel_wire_bytes;  ///< per directed channel, bytes incl. framing
};

/// Runs the flows of one phase on ns-3 (TCP over point-to-point links built from the topology).
/// Preconditions (checked by the caller, since ns-3 aborts on bad input): every flow has
/// src != dst, bytes >= 1, start_s >= 0, GPUs connected, channel bandwidths > 0 where routed,
/// MTUs in (ip_tcp_header_bytes + 64, 65535]. Not thread-safe: ns-3 is a process singleton;
/// the caller serialises calls.
[[nodiscard]] PacketPhaseOutcome simulate_packet_phase(const Topology& topology,
                                                       const TransportConfig& transport,
                                                       const Phase& flows,
                                                       const PacketPhasePlan& plan);

/// The ns-3 TypeId name of a TCP variant ("cubic" -> "ns3::TcpCubic"), "" when unknown.
[[nodiscard]] const char* ns3_tcp_type_name(const std::string& variant);

/// Socket buffer (send and receive) for a flow: the configured size, or twice the path's
/// bandwidth-delay product (one BDP in flight, one standing in the bottleneck queue) + 16 MTU.
[[nodiscard]] double socket_buffer_bytes(const Topology& topology,
                                         const TransportConfig& transport, int src, int dst);

}  // namespace moss::net
