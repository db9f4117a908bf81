#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "moss/net/flow.h"
#include "moss/net/topology.h"

namespace moss::net {

/// Transport settings shared by every backend.
struct TransportConfig {
  /// Socket send/receive buffer per flow in bytes; 0 = sized to the path's bandwidth-delay product.
  double socket_buffer_bytes = 0;
  /// TCP congestion control for packet backends ("cubic", "newreno", ...).
  std::string tcp_variant = "cubic";
  /// Bytes of header per IP packet: 20 IP + 20 TCP + 12 TCP timestamp option.
  int ip_tcp_header_bytes = 52;
  /// Link-layer framing per packet on the wire (point-to-point PPP header).
  int link_header_bytes = 2;
};

/// Per-channel and per-run counters a backend may report.
struct BackendStats {
  std::uint64_t phases_simulated = 0;  ///< phases actually computed
  std::uint64_t phases_reused = 0;     ///< phases answered from the memo cache
  std::uint64_t retransmissions = 0;
  std::uint64_t events = 0;            ///< simulator events processed (packet backends)
  double wall_s = 0;                   ///< wall-clock seconds spent inside the backend
  std::vector<double> channel_busy_bytes;  ///< wire bytes carried per directed channel
  std::uint64_t phases_extrapolated = 0;   ///< simulated phases finished by extrapolation
  double packet_payload_bytes = 0;         ///< payload bytes simulated packet by packet
  double extrapolated_payload_bytes = 0;   ///< payload bytes whose delivery was extrapolated
};

/// The interface between the step scheduler and a network model: hand over concurrent flows,
/// get their completion times back. Implementations may memoise identical phases.
class NetworkBackend {
 public:
  virtual ~NetworkBackend() = default;
  /// "analytic" or "ns3".
  [[nodiscard]] virtual std::string name() const = 0;
  /// Simulates the flows of one phase together. Flow endpoints must be GPU vertices.
  virtual PhaseResult run_phase(const Phase& flows) = 0;
  [[nodiscard]] virtual const BackendStats& stats() const = 0;
};

/// Payload fraction of the wire: (MTU - headers) / (MTU + link framing).
[[nodiscard]] double payload_efficiency(int mtu_bytes, const TransportConfig& transport);

}  // namespace moss::net
