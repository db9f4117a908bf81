#pragma once

#include <memory>

#include "moss/net/backend.h"
#include "moss/net/backend_factory.h"

namespace moss::net {

/// Packet-level backend on stock ns-3 (built only with MOSS_WITH_NS3). Declared with std types
/// only: the implementation in sim/net/ns3/ is the one place that includes ns-3 headers.
[[nodiscard]] std::unique_ptr<NetworkBackend> make_ns3_backend(const Topology& topology,
                                                               const TransportConfig& transport,
                                                               const PacketOptions& options);

}  // namespace moss::net
