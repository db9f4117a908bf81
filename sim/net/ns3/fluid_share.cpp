#include "fluid_share.h"

#include <algorithm>
#include <limits>

namespace moss::net {

std::vector<double> max_min_payload_rates_Bps(const Topology& topology,
                                             const std::vector<FluidFlowRoute>& flows) {
  const auto channels = static_cast<std::size_t>(topology.channels());
  std::vector<double> left_wire_Bps(channels);
  for (std::size_t c = 0; c < channels; ++c) {
    left_wire_Bps[c] = topology.channel(static_cast<ChannelId>(c)).bandwidth_bps / 8;
  }
  // Progressive filling in wire bytes/s: every open flow grows at the same wire rate until a
  // channel saturates; the flows on it freeze.
  std::vector<double> wire_Bps(flows.size(), 0.0);
  std::vector<char> open(flows.size(), 1);
  std::size_t n_open = 0;
  for (std::size_t i = 0; i < flows.size(); ++i) {
    if (flows[i].route == nullptr || flows[i].route->empty()) {
      open[i] = 0;
      wire_Bps[i] = std::numeric_limits<double>::infinity();
    } else {
      ++n_open;
    }
  }
  while (n_open > 0) {
    std::vector<int> users(channels, 0);
    for (std::size_t i = 0; i < flows.size(); ++i) {
      if (!open[i]) continue;
      for (ChannelId c : *flows[i].route) ++users[static_cast<std::size_t>(c)];
    }
    double level = std::numeric_limits<double>::infinity();
    for (std::size_t c = 0; c < channels; ++c) {
      if (users[c] > 0) level = std::min(level, left_wire_Bps[c] / users[c]);
    }
    level = std::max(level, 0.0);
    std::vector<char> saturated(channels, 0);
    for (std::size_t c = 0; c < channels; ++c) {
      saturated[c] = users[c] > 0 && left_wire_Bps[c] / users[c] <= level * (1 + 1e-12);
    }
    for (std::size_t i = 0; i < flows.size(); ++i) {
      if (!open[i]) continue;
      wire_Bps[i] += level;
      bool frozen = false;
      for (ChannelId c : *flows[i].route) frozen = frozen || saturated[static_cast<std::size_t>(c)];
      if (frozen) {
        open[i] = 0;
        --n_open;
      }
    }
    for (std::size_t c = 0; c < channels; ++c) left_wire_Bps[c] -= level * users[c];
  }
  std::vector<double> payload_Bps(flows.size());
  for (std::size_t i = 0; i < flows.size(); ++i) {
    payload_Bps[i] = wire_Bps[i] / flows[i].wire_per_payload;
  }
  return payload_Bps;
}

}  // namespace moss::net
