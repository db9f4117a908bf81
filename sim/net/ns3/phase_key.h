#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "moss/net/backend.h"

namespace moss::net {

/// Everything that fixes a packet simulation's outcome apart from the flows: the links' state,
/// the transport settings, the mode and the seed. Two backends with equal fingerprints may share
/// memoised phases (see the process-wide phase cache in ns3_backend.cpp).
[[nodiscard]] std::string network_fingerprint(const Topology& topology,
                                              const TransportConfig& transport, bool full,
                                              std::uint64_t seed);

/// A phase in canonical order: flows sorted by (start, src, dst, bytes), with sizes rounded up to
/// whole bytes and starts to picoseconds, so that the same exchange handed over in another order
/// hits the same cache entry.
struct CanonicalPhase {
  Phase flows;                     ///< canonical order
  std::vector<std::size_t> order;  ///< order[k] = index in the caller's phase of canonical flow k
  std::string key;                 ///< fingerprint + flows
};

/// Puts a phase in canonical order and builds its memo key.
[[nodiscard]] CanonicalPhase canonicalise(const Phase& flows, const std::string& fingerprint);

}  // namespace moss::net
