#include "phase_key.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace moss::net {

namespace {

void append(std::string& key, double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g,", value);
  key += buf;
}

void append(std::string& key, long long value) { key += std::to_string(value) + ","; }

}  // namespace

std::string network_fingerprint(const Topology& topology, const TransportConfig& transport,
                                bool full, std::uint64_t seed) {
  std::string key = "ns3/v1|";
  append(key, static_cast<long long>(topology.gpus()));
  append(key, static_cast<long long>(topology.vertices()));
  for (const Link& l : topology.links()) {
    key += "L";
    append(key, static_cast<long long>(l.a));
    append(key, static_cast<long long>(l.b));
    for (const Channel* c : {&l.ab, &l.ba}) {
      append(key, c->bandwidth_bps);
      append(key, c->latency_s);
      append(key, static_cast<long long>(c->mtu_bytes));
      append(key, c->loss);
    }
  }
  key += "|T";
  append(key, transport.socket_buffer_bytes);
  key += transport.tcp_variant + ",";
  append(key, static_cast<long long>(transport.ip_tcp_header_bytes));
  append(key, static_cast<long long>(transport.link_header_bytes));
  key += full ? "full," : "steady,";
  append(key, static_cast<long long>(seed));
  return key + "|F";
}

CanonicalPhase canonicalise(const Phase& flows, const std::string& fingerprint) {
  CanonicalPhase out;
  out.flows.reserve(flows.size());
  for (const Flow& f : flows) {
    Flow g = f;
    g.bytes = std::ceil(f.bytes);
    g.start_s = std::round(f.start_s * 1e12) / 1e12;
    out.flows.push_back(g);
  }
  out.order.resize(flows.size());
  std::iota(out.order.begin(), out.order.end(), std::size_t{0});
  std::stable_sort(out.order.begin(), out.order.end(), [&](std::size_t a, std::size_t b) {
    const Flow& x = out.flows[a];
    const Flow& y = out.flows[b];
    if (x.start_s != y.start_s) return x.start_s < y.start_s;
    if (x.src != y.src) return x.src < y.src;
    if (x.dst != y.dst) return x.dst < y.dst;
    return x.bytes < y.bytes;
  });
  Phase sorted;
  sorted.reserve(flows.size());
  out.key = fingerprint;
  for (std::size_t i : out.order) {
    const Flow& f = out.flows[i];
    sorted.push_back(f);
    append(out.key, static_cast<long long>(f.src));
    append(out.key, static_cast<long long>(f.dst));
    append(out.key, f.bytes);
    append(out.key, static_cast<long long>(std::llround(f.start_s * 1e12)));
  }
  out.flows = std::move(sorted);
  return out;
}

}  // namespace moss::net
