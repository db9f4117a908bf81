// Reading /cluster: GPU, node counts and the network with its per-link overrides.
#include "moss/scenario/catalog.h"
#include "sections.h"

namespace moss::scenario::detail {

using nlohmann::json;

namespace {

constexpr double kMinRate = 1e3;     // 1 kbps
constexpr double kMaxRate = 1e13;    // 10 Tbps
constexpr double kMaxLatency = 10;   // seconds

// A link endpoint: a node index or "switch".
std::optional<int> endpoint(JsonReader& r, const json& link, const std::string& p, const char* key, int nodes) {
  const json* v = r.member(link, p, key, true);
  if (!v) return std::nullopt;
  if (v->is_string() && v->get<std::string>() == "switch") return LinkOverride::kSwitch;
  if (v->is_number_integer() && v->get<std::int64_t>() >= 0 && v->get<std::int64_t>() < nodes) {
    return static_cast<int>(v->get<std::int64_t>());
  }
  r.problem(JsonReader::child(p, key), "= " + brief(*v) + ": expected a node index in [0, " +
                                           std::to_string(nodes - 1) + "] or \"switch\"");
  return std::nullopt;
}

bool link_exists(TopologyKind kind, int nodes, int a, int b) {
  switch (kind) {
    case TopologyKind::kRing: {
      if (a < 0 || b < 0) return false;
      const int d = (a - b + nodes) % nodes;
      return nodes >= 2 && (d == 1 || d == nodes - 1);
    }
    case TopologyKind::kStar: return (a < 0) != (b < 0);
    case TopologyKind::kFullMesh: return a >= 0 && b >= 0;
    case TopologyKind::kCustom: return a >= 0 && b >= 0;
  }
  return false;
}

void read_links(JsonReader& r, const json& net, const std::string& np, NetworkSpec& n, int nodes) {
  const json* links = r.member(net, np, "links", n.topology == TopologyKind::kCustom);
  if (!links) return;
  const std::string lp = np + "/links";
  if (!links->is_array()) {
    r.problem(lp, "= " + brief(*links) + ": expected an array of links");
    return;
  }
  if (links->size() > 1'000'000) {
    r.problem(lp, "more than 1,000,000 links");
    return;
  }
  for (std::size_t i = 0; i < links->size(); ++i) {
    const json& l = (*links)[i];
    const std::string p = lp + "/" + std::to_string(i);
    if (!r.expect_object(l, p)) continue;
    r.allow_keys(l, p, {"from", "to", "bandwidth", "latency", "mtu", "loss", "bidirectional"});
    LinkOverride o;
    auto from = endpoint(r, l, p, "from", nodes);
    auto to = endpoint(r, l, p, "to", nodes);
    o.bandwidth_bps = r.rate_bps(l, p, "bandwidth", kMinRate, kMaxRate, false);
    o.latency_s = r.duration_s(l, p, "latency", 0, kMaxLatency, false);
    if (auto v = r.integer(l, p, "mtu", 576, 65535, false)) o.mtu_bytes = static_cast<int>(*v);
    o.loss = r.number(l, p, "loss", 0, 0.5, false);
    if (auto v = r.boolean(l, p, "bidirectional", false)) o.bidirectional = *v;
    if (!from || !to) continue;
    o.from = *from;
    o.to = *to;
    if (o.from == o.to) {
      r.problem(p + "/to", "a link needs two different endpoints");
      continue;
    }
    if (!link_exists(n.topology, nodes, o.from, o.to)) {
      r.problem(p, "no link between " + brief(l.at("from")) + " and " + brief(l.at("to")) + " in a " +
                       to_string(n.topology) + " topology of " + std::to_string(nodes) +
                       " nodes (use \"topology\": \"custom\" to list links freely)");
      continue;
    }
    for (std::size_t k = 0; k < n.links.size(); ++k) {
      const LinkOverride& q = n.links[k];
      const bool same = q.from == o.from && q.to == o.to;
      const bool reverse = q.from == o.to && q.to == o.from;
      if (same || (reverse && (q.bidirectional || o.bidirectional))) {
        r.problem(p, "overrides the same link as " + lp + "/" + std::to_string(k));
      }
    }
    n.links.push_back(o);
  }
}

}  // namespace

void read_cluster(JsonReader& r, const json& doc, Scenario& s) {
  const json* c = r.member(doc, "", "cluster", true);
  if (!c || !r.expect_object(*c, "/cluster")) return;
  const std::string p = "/cluster";
  r.allow_keys(*c, p, {"gpu", "nodes", "gpus_per_node", "network"});
  ClusterSpec& cl = s.cluster;
  std::vector<std::string> names;
  for (const auto& [k, v] : catalog().gpus) names.push_back(k);
  if (auto g = r.choice(*c, p, "gpu", names, true)) cl.gpu = catalog().gpus.at(*g);
  if (auto v = r.integer(*c, p, "nodes", 1, 100'000, true)) cl.nodes = static_cast<int>(*v);
  if (auto v = r.integer(*c, p, "gpus_per_node", 1, 64, false)) cl.gpus_per_node = static_cast<int>(*v);
  const json* net = r.member(*c, p, "network", true);
  if (!net || !r.expect_object(*net, p + "/network")) return;
  const std::string np = p + "/network";
  r.allow_keys(*net, np, {"topology", "bandwidth", "latency", "mtu", "loss", "links", "socket_buffer", "tcp",
                          "intra_node_bandwidth"});
  NetworkSpec& n = cl.network;
  if (auto t = r.choice(*net, np, "topology", {"ring", "star", "full_mesh", "custom"}, false)) {
    n.topology = *t == "ring" ? TopologyKind::kRing
                 : *t == "star" ? TopologyKind::kStar
                 : *t == "full_mesh" ? TopologyKind::kFullMesh
                                     : TopologyKind::kCustom;
  }
  if (auto v = r.rate_bps(*net, np, "bandwidth", kMinRate, kMaxRate, true)) n.bandwidth_bps = *v;
  if (auto v = r.duration_s(*net, np, "latency", 0, kMaxLatency, false)) n.latency_s = *v;
  if (auto v = r.integer(*net, np, "mtu", 576, 65535, false)) n.mtu_bytes = static_cast<int>(*v);
  if (auto v = r.number(*net, np, "loss", 0, 0.5, false)) n.loss = *v;
  if (const json* b = r.member(*net, np, "socket_buffer", false)) {
    if (!(b->is_string() && b->get<std::string>() == "auto")) {
      if (auto v = r.size_bytes(*net, np, "socket_buffer", 4096, 68719476736.0, false)) n.socket_buffer_bytes = *v;
    }
  }
  if (auto v = r.choice(*net, np, "tcp", {"cubic", "newreno", "bbr", "dctcp", "vegas", "westwood", "htcp",
                                          "bic", "highspeed", "hybla", "illinois", "scalable", "veno", "yeah",
                                          "ledbat", "lp"}, false)) {
    n.tcp = *v;
  }
  n.intra_node_bps = r.rate_bps(*net, np, "intra_node_bandwidth", kMinRate, kMaxRate, false);
  if (r.ok() && cl.nodes > 0) read_links(r, *net, np, n, cl.nodes);
}

}  // namespace moss::scenario::detail
