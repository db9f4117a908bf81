#include "moss/net/topology.h"

#include <algorithm>
#include <limits>
#include <queue>
#include <utility>

#include "moss/core/error.h"

namespace moss::net {

Topology::Topology(int gpus, int vertices, std::vector<Link> links,
                   std::vector<std::string> vertex_names)
    : gpus_(gpus), vertices_(vertices), links_(std::move(links)), names_(std::move(vertex_names)) {
  MOSS_CHECK(gpus_ > 0 && vertices_ >= gpus_, "a topology needs at least one GPU vertex");
  names_.resize(static_cast<std::size_t>(vertices_));
  for (int v = 0; v < vertices_; ++v) {
    // Not "v" + to_string(v): GCC 12 reports a false -Wrestrict on a literal + string (bug 105651).
    if (std::string& name = names_[static_cast<std::size_t>(v)]; name.empty()) name = std::to_string(v).insert(0, 1, 'v');
  }
  out_.resize(static_cast<std::size_t>(vertices_));
  for (std::size_t i = 0; i < links_.size(); ++i) {
    const Link& l = links_[i];
    MOSS_CHECK(l.a >= 0 && l.a < vertices_ && l.b >= 0 && l.b < vertices_ && l.a != l.b,
               "link endpoints out of range");
    const auto c = static_cast<ChannelId>(2 * i);
    if (l.ab.bandwidth_bps > 0) out_[static_cast<std::size_t>(l.a)].push_back(c);
    if (l.ba.bandwidth_bps > 0) out_[static_cast<std::size_t>(l.b)].push_back(c + 1);
  }
}

const Channel& Topology::channel(ChannelId c) const {
  const Link& l = links_[static_cast<std::size_t>(c / 2)];
  return (c % 2 == 0) ? l.ab : l.ba;
}

int Topology::channel_from(ChannelId c) const {
  const Link& l = links_[static_cast<std::size_t>(c / 2)];
  return (c % 2 == 0) ? l.a : l.b;
}

int Topology::channel_to(ChannelId c) const {
  const Link& l = links_[static_cast<std::size_t>(c / 2)];
  return (c % 2 == 0) ? l.b : l.a;
}

// Dijkstra on (hops, latency, channel id): fewest hops first, then lowest latency; ties go to
// the lowest channel id, so routes are deterministic. Stops as soon as dst is settled.
std::vector<ChannelId> Topology::shortest_path(int src, int dst) const {
  struct Cost {
    int hops;
    double latency;
    bool operator<(const Cost& o) const { return hops != o.hops ? hops < o.hops : latency < o.latency; }
    bool operator>(const Cost& o) const { return o < *this; }
  };
  const auto n = static_cast<std::size_t>(vertices_);
  std::vector<Cost> cost(n, {std::numeric_limits<int>::max(), 0});
  std::vector<ChannelId> via(n, -1);
  std::vector<char> done(n, 0);
  using Item = std::pair<Cost, int>;
  auto later = [](const Item& a, const Item& b) {
    return a.first < b.first || b.first < a.first ? a.first > b.first : a.second > b.second;
  };
  std::priority_queue<Item, std::vector<Item>, decltype(later)> heap(later);
  cost[static_cast<std::size_t>(src)] = {0, 0};
  heap.push({{0, 0}, src});
  while (!heap.empty()) {
    const auto [c, u] = heap.top();
    heap.pop();
    if (done[static_cast<std::size_t>(u)]) continue;
    done[static_cast<std::size_t>(u)] = 1;
    if (u == dst) break;
    // A GPU only forwards traffic when it is the node itself (one GPU per node).
    for (ChannelId ch : out_[static_cast<std::size_t>(u)]) {
      const int v = channel_to(ch);
      const Cost next{c.hops + 1, c.latency + channel(ch).latency_s};
      if (next < cost[static_cast<std::size_t>(v)]) {
        cost[static_cast<std::size_t>(v)] = next;
        via[static_cast<std::size_t>(v)] = ch;
        heap.push({next, v});
      }
    }
  }
  std::vector<ChannelId> path;
  if (!done[static_cast<std::size_t>(dst)]) return path;
  for (int v = dst; v != src; v = channel_from(via[static_cast<std::size_t>(v)])) {
    path.push_back(via[static_cast<std::size_t>(v)]);
  }
  std::reverse(path.begin(), path.end());
  return path;
}

const std::vector<ChannelId>& Topology::route(int src, int dst) const {
  MOSS_CHECK(src >= 0 && src < gpus_ && dst >= 0 && dst < gpus_, "route endpoints must be GPUs");
  const std::uint64_t key = (static_cast<std::uint64_t>(src) << 32) | static_cast<std::uint32_t>(dst);
  if (auto it = routes_.find(key); it != routes_.end()) return it->second;
  std::vector<ChannelId> path;
  if (src != dst) {
    path = shortest_path(src, dst);
    if (path.empty()) {
      throw InputError("", "/cluster/network",
                       "GPU " + std::to_string(src) + " cannot reach GPU " + std::to_string(dst) +
                           ": the topology must connect every GPU");
    }
  }
  return routes_.emplace(key, std::move(path)).first->second;
}

bool Topology::connected() const {
  // Every vertex reachable from GPU 0 and GPU 0 reachable from every vertex covers all pairs.
  auto reach = [&](bool forward) {
    std::vector<char> seen(static_cast<std::size_t>(vertices_), 0);
    std::vector<int> stack{0};
    seen[0] = 1;
    std::vector<std::vector<int>> in;
    if (!forward) {
      in.resize(static_cast<std::size_t>(vertices_));
      for (int v = 0; v < vertices_; ++v) {
        for (ChannelId c : out_[static_cast<std::size_t>(v)]) in[static_cast<std::size_t>(channel_to(c))].push_back(v);
      }
    }
    while (!stack.empty()) {
      const int u = stack.back();
      stack.pop_back();
      std::vector<int> next;
      if (forward) {
        for (ChannelId c : out_[static_cast<std::size_t>(u)]) next.push_back(channel_to(c));
      } else {
        next = in[static_cast<std::size_t>(u)];
      }
      for (int v : next) {
        if (!seen[static_cast<std::size_t>(v)]) {
          seen[static_cast<std::size_t>(v)] = 1;
          stack.push_back(v);
        }
      }
    }
    for (int g = 0; g < gpus_; ++g) {
      if (!seen[static_cast<std::size_t>(g)]) return false;
    }
    return true;
  };
  return reach(true) && reach(false);
}

double Topology::path_latency_s(int src, int dst) const {
  double sum = 0;
  for (ChannelId c : route(src, dst)) sum += channel(c).latency_s;
  return sum;
}

double Topology::path_bandwidth_bps(int src, int dst) const {
  double bw = std::numeric_limits<double>::infinity();
  for (ChannelId c : route(src, dst)) bw = std::min(bw, channel(c).bandwidth_bps);
  return bw;
}

int Topology::path_mtu_bytes(int src, int dst) const {
  const auto& r = route(src, dst);
  if (r.empty()) return 1500;
  int mtu = std::numeric_limits<int>::max();
  for (ChannelId c : r) mtu = std::min(mtu, channel(c).mtu_bytes);
  return mtu;
}

}  // namespace moss::net
