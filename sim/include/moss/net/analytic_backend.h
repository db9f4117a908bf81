#pragma once

#include <memory>
#include <unordered_map>

#include "moss/net/backend.h"

namespace moss::net {

/// Fluid model: each flow pays its path latency once, then moves its wire bytes at a rate given by
/// max-min fair sharing of every channel it crosses, capped by its TCP window (socket buffer / RTT).
/// Rates are recomputed whenever a flow starts or finishes.
class AnalyticBackend final : public NetworkBackend {
 public:
  AnalyticBackend(const Topology& topology, TransportConfig transport);

  [[nodiscard]] std::string name() const override { return "analytic"; }
  PhaseResult run_phase(const Phase& flows) override;
  [[nodiscard]] const BackendStats& stats() const override { return stats_; }

 private:
  PhaseResult simulate(const Phase& flows);

  const Topology& topology_;
  TransportConfig transport_;
  BackendStats stats_;
  std::unordered_map<std::string, PhaseResult> memo_;
};

}  // namespace moss::net
