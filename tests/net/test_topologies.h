#pragma once

#include <vector>

#include "moss/net/backend.h"
#include "moss/net/topology.h"

namespace moss::net::testing {

/// Transport without header overhead, so times are exactly latency + bytes / bandwidth.
inline TransportConfig no_overhead() {
  TransportConfig t;
  t.ip_tcp_header_bytes = 0;
  t.link_header_bytes = 0;
  return t;
}

/// n GPUs on a ring of identical duplex links.
inline Topology ring(int n, double bps, double latency_s, int mtu = 1500) {
  std::vector<Link> links;
  const Channel ch{bps, latency_s, mtu, 0.0};
  if (n == 2) links.push_back({0, 1, ch, ch, false});
  for (int i = 0; n > 2 && i < n; ++i) links.push_back({i, (i + 1) % n, ch, ch, false});
  return Topology(n, n, links, {});
}

/// n GPUs hanging off one switch (vertex n).
inline Topology star(int n, double bps, double latency_s) {
  std::vector<Link> links;
  const Channel ch{bps, latency_s, 1500, 0.0};
  for (int i = 0; i < n; ++i) links.push_back({i, n, ch, ch, false});
  return Topology(n, n + 1, links, {});
}

}  // namespace moss::net::testing
