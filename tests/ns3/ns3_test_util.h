#pragma once

#include <string>
#include <vector>

#include "moss/net/ns3_backend.h"
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

/// One phase on two fresh backends that never memoise: every packet (`full`) and with the
/// steady-state fast-forward (`fast`), same loss seed.
struct FastVsFull {
  PhaseResult fast, full;
  BackendStats fast_stats, full_stats;
};

inline FastVsFull fast_vs_full(const Topology& topo, const Phase& phase, std::uint64_t seed = PacketOptions{}.seed) {
  PacketOptions full;
  full.full = true;
  full.memoise = false;
  full.seed = seed;
  PacketOptions fast = full;
  fast.full = false;
  auto full_backend = make_ns3_backend(topo, TransportConfig{}, full);
  auto fast_backend = make_ns3_backend(topo, TransportConfig{}, fast);
  FastVsFull r;
  r.full = full_backend->run_phase(phase);
  r.fast = fast_backend->run_phase(phase);
  r.full_stats = full_backend->stats();
  r.fast_stats = fast_backend->stats();
  return r;
}

}  // namespace moss::net::test
