#include "moss/converge/cost.h"

#include <algorithm>

namespace moss::converge {

double link_capacity_gbps(const scenario::ClusterSpec& cluster) {
  const int n = cluster.nodes;
  if (n <= 1) return 0;
  double links = 0;
  switch (cluster.network.topology) {
    case scenario::TopologyKind::kRing: links = n == 2 ? 1 : n; break;
    case scenario::TopologyKind::kStar: links = n; break;
    case scenario::TopologyKind::kFullMesh: links = n * (n - 1) / 2.0; break;
    case scenario::TopologyKind::kCustom: break;  // handled above
  }
  const double default_bps = cluster.network.bandwidth_bps;
  if (cluster.network.topology == scenario::TopologyKind::kCustom) {
    // A custom topology lists every link.
    double sum_bps = 0;
    for (const auto& l : cluster.network.links)
      sum_bps += (l.bidirectional ? 1.0 : 0.5) * l.bandwidth_bps.value_or(default_bps);
    return sum_bps / 1e9;
  }
  double total_bps = links * default_bps;
  // An override replaces one link's rate; a one-way override changes half of a duplex link's price.
  for (const auto& o : cluster.network.links) {
    if (!o.bandwidth_bps) continue;
    const double share = o.bidirectional ? 1.0 : 0.5;
    total_bps += share * (*o.bandwidth_bps - default_bps);
  }
  return std::max(0.0, total_bps) / 1e9;
}

CostBreakdown estimate_cost(const scenario::Scenario& s, double wall_s, int gpus,
                            std::optional<double> inter_node_bytes) {
  CostBreakdown c;
  c.gpu_hours = wall_s * gpus / 3600.0;
  c.link_capacity_gbps = link_capacity_gbps(s.cluster);
  c.months = wall_s / kSecondsPerMonth;
  if (inter_node_bytes) c.transfer_gb = *inter_node_bytes / 1e9;
  if (s.cost.gpu_hour_usd) c.gpu_usd = c.gpu_hours * *s.cost.gpu_hour_usd;
  if (s.cost.gbps_month_usd) c.network_usd = c.link_capacity_gbps * c.months * *s.cost.gbps_month_usd;
  if (s.cost.transfer_gb_usd && c.transfer_gb) c.transfer_usd = *c.transfer_gb * *s.cost.transfer_gb_usd;
  for (const auto& part : {c.gpu_usd, c.network_usd, c.transfer_usd}) {
    if (!part) continue;
    c.total_usd += *part;
    c.priced = true;
  }
  return c;
}

}  // namespace moss::converge
