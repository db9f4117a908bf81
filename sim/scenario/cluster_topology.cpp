#include "moss/scenario/cluster_topology.h"

#include <map>

#include "moss/core/error.h"

namespace moss::scenario {

namespace {

net::Channel default_channel(const NetworkSpec& n) {
  return {n.bandwidth_bps, n.latency_s, n.mtu_bytes, n.loss};
}

void apply(net::Channel& ch, const LinkOverride& o) {
  if (o.bandwidth_bps) ch.bandwidth_bps = *o.bandwidth_bps;
  if (o.latency_s) ch.latency_s = *o.latency_s;
  if (o.mtu_bytes) ch.mtu_bytes = *o.mtu_bytes;
  if (o.loss) ch.loss = *o.loss;
}

}  // namespace

net::Topology build_topology(const Scenario& s) {
  const ClusterSpec& c = s.cluster;
  const NetworkSpec& n = c.network;
  const int gpus = c.gpus();
  const bool hosts = c.gpus_per_node > 1;
  const bool star = n.topology == TopologyKind::kStar;
  const int vertices = gpus + (hosts ? c.nodes : 0) + (star ? 1 : 0);
  const int switch_vertex = vertices - 1;
  auto node_vertex = [&](int node) { return node == LinkOverride::kSwitch ? switch_vertex : (hosts ? gpus + node : node); };

  std::vector<std::string> names(static_cast<std::size_t>(vertices));
  for (int g = 0; g < gpus; ++g) names[static_cast<std::size_t>(g)] = hosts ? "gpu" + std::to_string(g) : "node" + std::to_string(g);
  if (hosts) {
    for (int i = 0; i < c.nodes; ++i) names[static_cast<std::size_t>(gpus + i)] = "node" + std::to_string(i);
  }
  if (star) names[static_cast<std::size_t>(switch_vertex)] = "switch";

  std::vector<net::Link> links;
  std::map<std::pair<int, int>, std::size_t> index;  // (a, b) node-level endpoints -> link
  const net::Channel def = default_channel(n);
  auto add = [&](int a, int b) {
    index[{a, b}] = links.size();
    links.push_back({node_vertex(a), node_vertex(b), def, def, false});
  };
  switch (n.topology) {
    case TopologyKind::kRing:
      if (c.nodes == 2) add(0, 1);
      if (c.nodes > 2) {
        for (int i = 0; i < c.nodes; ++i) add(i, (i + 1) % c.nodes);
      }
      break;
    case TopologyKind::kStar:
      for (int i = 0; i < c.nodes; ++i) add(i, LinkOverride::kSwitch);
      break;
    case TopologyKind::kFullMesh:
      for (int i = 0; i < c.nodes; ++i) {
        for (int j = i + 1; j < c.nodes; ++j) add(i, j);
      }
      break;
    case TopologyKind::kCustom:
      for (const LinkOverride& o : n.links) {
        if (!index.count({o.from, o.to}) && !index.count({o.to, o.from})) add(o.from, o.to);
      }
      break;
  }
  for (const LinkOverride& o : n.links) {
    auto it = index.find({o.from, o.to});
    bool forward = true;
    if (it == index.end()) {
      it = index.find({o.to, o.from});
      forward = false;
    }
    MOSS_CHECK(it != index.end(), "validated overrides name existing links");
    net::Link& l = links[it->second];
    apply(forward ? l.ab : l.ba, o);
    if (o.bidirectional) apply(forward ? l.ba : l.ab, o);
  }
  if (hosts) {
    const double bw = n.intra_node_bps.value_or(c.gpu.intra_node_bps);
    const net::Channel intra{bw, c.gpu.intra_node_latency_s, 65535, 0.0};
    for (int g = 0; g < gpus; ++g) links.push_back({g, gpus + g / c.gpus_per_node, intra, intra, true});
  }
  return net::Topology(gpus, vertices, std::move(links), std::move(names));
}

net::TransportConfig transport_of(const Scenario& s) {
  net::TransportConfig t;
  t.socket_buffer_bytes = s.cluster.network.socket_buffer_bytes;
  t.tcp_variant = s.cluster.network.tcp;
  return t;
}

std::vector<net::Group> context_groups(const Scenario& s) {
  std::vector<net::Group> groups(static_cast<std::size_t>(s.parallelism.data));
  for (int dp = 0; dp < s.parallelism.data; ++dp) {
    for (int cp = 0; cp < s.parallelism.context; ++cp) groups[static_cast<std::size_t>(dp)].push_back(gpu_of(s, dp, cp));
  }
  return groups;
}

std::vector<net::Group> all_gpus_group(const Scenario& s) {
  net::Group g;
  for (int i = 0; i < s.cluster.gpus(); ++i) g.push_back(i);
  return {g};
}

}  // namespace moss::scenario
