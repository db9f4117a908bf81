#pragma once

#include <optional>

#include "moss/scenario/scenario.h"

namespace moss::converge {

/// Seconds in an average month (365.25 / 12 days): the unit of link rental prices.
inline constexpr double kSecondsPerMonth = 365.25 / 12.0 * 86400.0;

/// What a training run costs, per price the scenario gives (/cost). A part is absent when its
/// price (or, for transfer, the traffic) is unknown.
struct CostBreakdown {
  std::optional<double> gpu_usd;       ///< gpu_hours x gpu_hour_usd
  std::optional<double> network_usd;   ///< link_capacity_gbps x months x gbps_month_usd
  std::optional<double> transfer_usd;  ///< transfer_gb x transfer_gb_usd
  double total_usd = 0;                ///< sum of the parts present
  bool priced = false;                 ///< true when at least one part is present
  double gpu_hours = 0;
  double link_capacity_gbps = 0;       ///< rented inter-node capacity (sum over links, per direction)
  double months = 0;                   ///< wall-clock of the run in months
  std::optional<double> transfer_gb;   ///< inter-node GB sent over the whole run (1 GB = 1e9 bytes)
};

/// Sum of the inter-node link bandwidths of the cluster in Gbit/s (per direction): ring n links
/// (1 for two nodes), star n uplinks, full mesh n(n-1)/2; per-link overrides replace the default.
/// A custom topology: the sum over its listed links. 0 for a single node.
[[nodiscard]] double link_capacity_gbps(const scenario::ClusterSpec& cluster);

/// Prices a run of `wall_s` seconds on `gpus` GPUs that sends `inter_node_bytes` in total
/// (std::nullopt when unknown).
[[nodiscard]] CostBreakdown estimate_cost(const scenario::Scenario& s, double wall_s, int gpus,
                                          std::optional<double> inter_node_bytes);

}  // namespace moss::converge
