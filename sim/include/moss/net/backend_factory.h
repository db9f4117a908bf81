#pragma once

#include <memory>
#include <string>

#include "moss/net/backend.h"

namespace moss::net {

/// Options of the packet-level backend (ignored by the analytic one).
struct PacketOptions {
  bool memoise = true;   ///< reuse results of identical phases
  bool full = false;     ///< simulate every byte (no steady-state extrapolation)
  std::uint64_t seed = 1;
};

/// Names of the backends compiled into this build ("analytic", and "ns3" when built with it).
[[nodiscard]] std::vector<std::string> available_backends();

/// Creates a backend by name. The topology must outlive the backend.
/// Throws moss::InputError for an unknown or unavailable backend.
[[nodiscard]] std::unique_ptr<NetworkBackend> make_backend(const std::string& name,
                                                           const Topology& topology,
                                                           const TransportConfig& transport,
                                                           const PacketOptions& packet = {});

}  // namespace moss::net
