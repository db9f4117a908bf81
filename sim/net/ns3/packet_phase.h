#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "moss/net/backend.h"

namespace moss::net {

/// How far to run one packet-level phase.
struct PacketPhasePlan {
  /// Fast-forward over steady stretches (false: simulate every byte).
  bool stop_when_steady = true;
  /// Relative spread of window rates that counts as steady (see RateTracker).
  double steady_tolerance = 0.02;
  /// Flows that share a channel with another running flow (its data on their data or ACK path):
  /// how the flows split the channel oscillates and drifts over tens of RTTs, so their windows
  /// start at this many samples, and a trend either way is not steady (RateTracker).
  std::size_t shared_min_window_samples = 32;
  double shared_tolerance = 0.02;
  /// A fast-forward that credits a shared flow covers at most this fraction of that flow's
  /// remaining time; its detector then restarts, so the split is measured again before the
  /// next jump. 1 (default): no cap; 0.5 halved the error or better for 1.2-5x the events (README).
  double shared_jump_fraction = 1.0;
  /// Fast-forward only over at least this many packets (all flows together).
  std::uint64_t min_packets_to_extrapolate = 4000;
  /// After this many simulator events (since the last forced fast-forward), fast-forward at the
  /// mean rates since the last change even if no flow looks steady.
  std::uint64_t event_budget = 6'000'000;
  /// Seed of ns-3's random streams (loss).
  std::uint64_t seed = 1;
  /// Flows on lossy paths: steady when three windows of this many loss episodes (entries into
  /// fast or timeout recovery) agree on their mean rate within lossy_tolerance (RateTracker).
  std::size_t lossy_episodes = 32;
  double lossy_tolerance = 0.15;
  /// ... and each window spans at least this many sampling intervals (RTTs).
  std::size_t lossy_min_samples = 16;
  /// Estimate a lossy flow's rate with the known mean epoch size as a control variate.
  bool lossy_control_variate = true;
};

/// What the packet simulation measured for one flow.
struct PacketFlowOutcome {
  bool finished = false;
  bool gave_up = false;              ///< TCP gave the connection up (a retry limit ran out at heavy loss)
  double finish_s = 0;               ///< phase-relative arrival of the last byte (fast-forwards included)
  double delivered_bytes = 0;        ///< payload bytes delivered packet by packet
  double skipped_bytes = 0;          ///< payload bytes fast-forwarded at a measured steady rate
  std::uint64_t retransmissions = 0; ///< segments sent again (+ the steady rate's share of skipped bytes)
  std::uint64_t loss_episodes = 0;   ///< entries into fast recovery or timeout recovery (simulated only)
  std::uint64_t timeouts = 0;        ///< retransmission timeouts (simulated only)
};

/// What the packet simulation measured for one phase.
struct PacketPhaseOutcome {
  std::vector<PacketFlowOutcome> flows;
  double skipped_s = 0;          ///< simulated time fast-forwarded
  std::uint64_t fast_forwards = 0;
  bool forced = false;           ///< a fast-forward used mean, not steady, rates (event budget)
  std::uint64_t events = 0;      ///< ns-3 events executed
  std::uint64_t dropped_packets = 0;       ///< packets the links' error models dropped (all channels)
  std::uint64_t dropped_data_packets = 0;  ///< ... of them carrying payload (not pure ACKs)
  std::vector<double> channel_wire_bytes;  ///< per directed channel, bytes incl. framing and ACKs
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

/// Send buffer of a flow, which caps its window: the configured size, or the path's
/// bandwidth-delay product + 8 MTU (the pipe full, a few packets of slack for delayed ACKs and
/// queueing). The receive buffer is twice this so that the advertised window never binds.
[[nodiscard]] double socket_buffer_bytes(const Topology& topology,
                                         const TransportConfig& transport, int src, int dst);

}  // namespace moss::net
