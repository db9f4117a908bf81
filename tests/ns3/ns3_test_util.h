#pragma once

#include <string>
#include <vector>

#include "moss/net/topology.h"

namespace moss::net::test {

/// Two GPUs joined by one duplex link with the same channel both ways.
inline Topology one_link(double bandwidth_bps, double latency_s, int mtu_bytes, double loss = 0) {
  const Channel c{bandwidth_bps, latency_s, mtu_bytes, loss};
  return Topology(2, 2, {Link{0, 1, c, c, false}}, {"gpu0", "gpu1"});
}

/// n GPUs in a ring (i -> i+1), every link the same channel.
inline Topology ring(int n, double bandwidth_bps, double latency_s, int mtu_bytes) {
  const Channel c{bandwidth_bps, latency_s, mtu_bytes, 0};
  std::vector<Link> links;
  for (int i = 0; i < n; ++i) links.push_back(Link{i, (i + 1) % n, c, c, false});
  return Topology(n, n, links, {});
}

/// n GPUs on one switch (vertex n), every link the same channel.
inline Topology star(int n, double bandwidth_bps, double latency_s, int mtu_bytes) {
  const Channel c{bandwidth_bps, latency_s, mtu_bytes, 0};
  std::vector<Link> links;
  for (int i = 0; i < n; ++i) links.push_back(Link{i, n, c, c, false});
  return Topology(n, n + 1, links, {});
}

}  // namespace moss::net::test
