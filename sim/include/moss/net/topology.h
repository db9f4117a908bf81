#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace moss::net {

/// One direction of a duplex link.
struct Channel {
  double bandwidth_bps = 0;  ///< payload + header bits per second on the wire
  double latency_s = 0;      ///< one-way propagation delay
  int mtu_bytes = 1500;      ///< largest IP packet
  double loss = 0;           ///< packet loss probability
};

/// A duplex link between two vertices; each direction has its own properties.
struct Link {
  int a = 0;
  int b = 0;
  Channel ab;  ///< a -> b
  Channel ba;  ///< b -> a
  bool intra_node = false;  ///< GPU <-> host link inside a machine (NVLink/PCIe class)
};

/// Directed channel id: 2 * link index + (0 for a->b, 1 for b->a).
using ChannelId = int;

/// The cluster as a graph. Vertices 0..gpus-1 are the GPUs (the communication endpoints).
/// With one GPU per node the GPU vertex is the node itself; with several, each node has a host
/// vertex that its GPUs hang off by intra-node links. A star topology adds one switch vertex.
class Topology {
 public:
  Topology(int gpus, int vertices, std::vector<Link> links, std::vector<std::string> vertex_names);

  [[nodiscard]] int gpus() const { return gpus_; }
  [[nodiscard]] int vertices() const { return vertices_; }
  [[nodiscard]] const std::vector<Link>& links() const { return links_; }
  [[nodiscard]] const std::string& vertex_name(int v) const { return names_[v]; }
  [[nodiscard]] int channels() const { return static_cast<int>(links_.size()) * 2; }
  [[nodiscard]] const Channel& channel(ChannelId c) const;
  /// Source vertex of a directed channel.
  [[nodiscard]] int channel_from(ChannelId c) const;
  /// Destination vertex of a directed channel.
  [[nodiscard]] int channel_to(ChannelId c) const;

  /// Channels on the route from src to dst (fewest hops, then lowest latency; deterministic).
  /// Empty when src == dst. Throws moss::InputError when dst is unreachable. Routes are computed
  /// on first use and cached: a Topology is not safe to share between threads while routing.
  [[nodiscard]] const std::vector<ChannelId>& route(int src, int dst) const;
  /// True when every GPU can reach every other GPU (and back).
  [[nodiscard]] bool connected() const;
  /// Sum of one-way latencies along the route.
  [[nodiscard]] double path_latency_s(int src, int dst) const;
  /// Smallest bandwidth along the route.
  [[nodiscard]] double path_bandwidth_bps(int src, int dst) const;
  /// Smallest MTU along the route.
  [[nodiscard]] int path_mtu_bytes(int src, int dst) const;

 private:
  [[nodiscard]] std::vector<ChannelId> shortest_path(int src, int dst) const;

  int gpus_;
  int vertices_;
  std::vector<Link> links_;
  std::vector<std::string> names_;
  std::vector<std::vector<ChannelId>> out_;  // channels leaving each vertex
  mutable std::unordered_map<std::uint64_t, std::vector<ChannelId>> routes_;
};

}  // namespace moss::net
