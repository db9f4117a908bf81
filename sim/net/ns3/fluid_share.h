#pragma once

#include <vector>

#include "moss/net/topology.h"

namespace moss::net {

/// One flow as the fluid model sees it: the channels it crosses and how many wire bytes it puts
/// on them per payload byte (1 / payload efficiency of its path MTU).
struct FluidFlowRoute {
  const std::vector<ChannelId>* route = nullptr;
  double wire_per_payload = 1;
};

/// Max-min fair payload rates (bytes/s) of flows sharing the topology's channels, by progressive
/// filling of wire bandwidth. Used to continue a packet simulation past the point where it was
/// stopped: when an extrapolated flow ends, the survivors' shares change as the fluid model says.
[[nodiscard]] std::vector<double> max_min_payload_rates_Bps(const Topology& topology,
                                                           const std::vector<FluidFlowRoute>& flows);

}  // namespace moss::net
