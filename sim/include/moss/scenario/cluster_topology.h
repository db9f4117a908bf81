#pragma once

#include <vector>

#include "moss/net/backend.h"
#include "moss/net/collectives.h"
#include "moss/net/topology.h"
#include "moss/scenario/scenario.h"

namespace moss::scenario {

/// The scenario's cluster as a network graph (see net::Topology for the vertex layout):
/// ring / star / full_mesh / custom between nodes, per-link overrides, and intra-node links
/// when a node holds several GPUs.
[[nodiscard]] net::Topology build_topology(const Scenario& s);

/// Transport settings of the scenario's network.
[[nodiscard]] net::TransportConfig transport_of(const Scenario& s);

/// GPU of context rank `cp` in data-parallel replica `dp` (context ranks are adjacent GPUs).
[[nodiscard]] inline int gpu_of(const Scenario& s, int dp, int cp) { return dp * s.parallelism.context + cp; }

/// One ring group per data-parallel replica, over its context ranks.
[[nodiscard]] std::vector<net::Group> context_groups(const Scenario& s);
/// One ring over every GPU (gradient all-reduce across context x data).
[[nodiscard]] std::vector<net::Group> all_gpus_group(const Scenario& s);

}  // namespace moss::scenario
