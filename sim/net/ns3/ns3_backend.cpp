#include "moss/net/ns3_backend.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "moss/core/error.h"
#include "packet_phase.h"
#include "phase_key.h"

namespace moss::net {

namespace {

/// One simulated phase as it is memoised (flows in canonical order).
struct SimulatedPhase {
  PhaseResult result;
  std::vector<double> channel_wire_bytes;
  double packet_payload_bytes = 0;
  double extrapolated_payload_bytes = 0;
  std::uint64_t events = 0;
};

// ns-3's Simulator is a process-wide singleton, so a process-wide lock and, with it, a
// process-wide phase cache: a sweep point that changes no network field (another compression
// rank, model or GPU) re-runs its phases from this cache for free. Bounded so that a long sweep
// cannot grow it without limit.
struct ProcessState {
  std::mutex simulator;
  std::mutex cache_lock;
  std::unordered_map<std::string, std::shared_ptr<const SimulatedPhase>> cache;
  static constexpr std::size_t kMaxEntries = 100000;
};

ProcessState& process_state() {
  static ProcessState state;
  return state;
}

void fail(const std::string& pointer, const std::string& message) {
  throw InputError("", pointer, "ns3 backend: " + message);
}

void validate_channel(const Channel& c, const TransportConfig& t, const std::string& where) {
  if (!(c.bandwidth_bps >= 0) || c.bandwidth_bps > 1e13) {
    fail("/cluster/network/bandwidth", where + ": bandwidth must be in [0, 10 Tbps]");
  }
  if (!(c.latency_s >= 0) || c.latency_s > 1e3) {
    fail("/cluster/network/latency", where + ": latency must be in [0, 1000 s]");
  }
  if (c.mtu_bytes < t.ip_tcp_header_bytes + 64 || c.mtu_bytes > 65535) {
    fail("/cluster/network/mtu", where + ": MTU must be in [" +
                                     std::to_string(t.ip_tcp_header_bytes + 64) + ", 65535]");
  }
  if (!(c.loss >= 0) || c.loss > 0.5) fail("/cluster/network/loss", where + ": loss must be in [0, 0.5]");
}

class Ns3Backend final : public NetworkBackend {
 public:
  Ns3Backend(const Topology& topology, TransportConfig transport, PacketOptions options)
      : topology_(topology), transport_(std::move(transport)), options_(options) {
    validate_network();
    fingerprint_ = network_fingerprint(topology_, transport_, options_.full, options_.seed);
    stats_.channel_busy_bytes.assign(static_cast<std::size_t>(topology_.channels()), 0.0);
  }

  [[nodiscard]] std::string name() const override { return "ns3"; }
  [[nodiscard]] const BackendStats& stats() const override { return stats_; }

  PhaseResult run_phase(const Phase& flows) override {
    const auto t0 = std::chrono::steady_clock::now();
    validate_flows(flows);
    const CanonicalPhase canonical = canonicalise(flows, fingerprint_);
    std::shared_ptr<const SimulatedPhase> sim = options_.memoise ? lookup(canonical.key) : nullptr;
    const bool reused = sim != nullptr;
    if (!reused) {
      std::lock_guard<std::mutex> lock(process_state().simulator);
      // Another thread may have simulated it while this one waited.
      if (options_.memoise) sim = lookup(canonical.key);
      if (!sim) {
        sim = std::make_shared<const SimulatedPhase>(simulate(canonical.flows));
        if (options_.memoise) store(canonical.key, sim);
      }
    }
    PhaseResult result;
    result.finish_s.assign(flows.size(), 0.0);
    result.flow_retransmissions.assign(flows.size(), 0);
    for (std::size_t k = 0; k < canonical.order.size(); ++k) {
      result.finish_s[canonical.order[k]] = sim->result.finish_s[k];
      result.flow_retransmissions[canonical.order[k]] = sim->result.flow_retransmissions[k];
    }
    result.makespan_s = sim->result.makespan_s;
    result.retransmissions = sim->result.retransmissions;
    result.extrapolated = sim->result.extrapolated;
    account(*sim, reused);
    stats_.wall_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return result;
  }

 private:
  void validate_network() const {
    if (std::string(ns3_tcp_type_name(transport_.tcp_variant)).empty()) {
      fail("/simulation/tcp", "unknown TCP variant \"" + transport_.tcp_variant +
                                  "\" (cubic, newreno, bbr, bic, htcp, highspeed, vegas, westwood, "
                                  "scalable, illinois, yeah, hybla, veno, ledbat, lp)");
    }
    // ns-3 always puts 20 IP + 20 TCP + 12 timestamp-option bytes on a segment.
    if (transport_.ip_tcp_header_bytes < 52 || transport_.ip_tcp_header_bytes > 1000) {
      fail("/simulation", "ip_tcp_header_bytes must be in [52, 1000] (ns-3 sends 52)");
    }
    if (!(transport_.socket_buffer_bytes >= 0) || transport_.socket_buffer_bytes > 4e9) {
      fail("/simulation", "socket buffer must be in [0, 4 GB]");
    }
    for (std::size_t l = 0; l < topology_.links().size(); ++l) {
      const Link& link = topology_.links()[l];
      const std::string where = topology_.vertex_name(link.a) + "-" + topology_.vertex_name(link.b);
      validate_channel(link.ab, transport_, where);
      validate_channel(link.ba, transport_, where);
    }
  }

  void validate_flows(const Phase& flows) const {
    if (flows.size() > 50000) fail("/simulation", "at most 50000 flows per phase (one TCP port each)");
    for (const Flow& f : flows) {
      if (f.src < 0 || f.src >= topology_.gpus() || f.dst < 0 || f.dst >= topology_.gpus()) {
        throw InternalError("ns3 backend: flow endpoint is not a GPU vertex");
      }
      if (!std::isfinite(f.bytes) || f.bytes < 0 || f.bytes > 1e15 || !std::isfinite(f.start_s) ||
          f.start_s < 0 || f.start_s > 1e6) {
        throw InternalError("ns3 backend: flow bytes/start out of range");
      }
      if (f.src != f.dst) (void)topology_.route(f.src, f.dst);  // throws if unreachable
      if (f.src != f.dst) (void)topology_.route(f.dst, f.src);  // ACK path
    }
  }

  std::shared_ptr<const SimulatedPhase> lookup(const std::string& key) {
    ProcessState& ps = process_state();
    std::lock_guard<std::mutex> lock(ps.cache_lock);
    auto it = ps.cache.find(key);
    return it == ps.cache.end() ? nullptr : it->second;
  }

  void store(const std::string& key, std::shared_ptr<const SimulatedPhase> sim) {
    ProcessState& ps = process_state();
    std::lock_guard<std::mutex> lock(ps.cache_lock);
    if (ps.cache.size() >= ProcessState::kMaxEntries) ps.cache.clear();
    ps.cache.emplace(key, std::move(sim));
  }

  void account(const SimulatedPhase& sim, bool reused) {
    if (reused) {
      ++stats_.phases_reused;
    } else {
      ++stats_.phases_simulated;
      stats_.events += sim.events;
      stats_.phases_extrapolated += sim.result.extrapolated ? 1 : 0;
      stats_.packet_payload_bytes += sim.packet_payload_bytes;
      stats_.extrapolated_payload_bytes += sim.extrapolated_payload_bytes;
    }
    stats_.retransmissions += sim.result.retransmissions;
    for (std::size_t c = 0; c < sim.channel_wire_bytes.size(); ++c) {
      stats_.channel_busy_bytes[c] += sim.channel_wire_bytes[c];
    }
  }

  // One-way latency ns-3 simulates on the path (each link carries the mean of its directions).
  double simulated_latency_s(int src, int dst) const {
    double sum = 0;
    for (ChannelId c : topology_.route(src, dst)) {
      const Link& l = topology_.links()[static_cast<std::size_t>(c / 2)];
      sum += (l.ab.latency_s + l.ba.latency_s) / 2;
    }
    return sum;
  }

  SimulatedPhase simulate(const Phase& flows) const;

  const Topology& topology_;
  TransportConfig transport_;
  PacketOptions options_;
  std::string fingerprint_;
  BackendStats stats_;
};

SimulatedPhase Ns3Backend::simulate(const Phase& flows) const {
  SimulatedPhase sim;
  PhaseResult& r = sim.result;
  r.finish_s.assign(flows.size(), 0.0);
  r.flow_retransmissions.assign(flows.size(), 0);
  sim.channel_wire_bytes.assign(static_cast<std::size_t>(topology_.channels()), 0.0);
  Phase packet_flows;
  std::vector<std::size_t> index;  // packet flow -> phase flow
  for (std::size_t i = 0; i < flows.size(); ++i) {
    const Flow& f = flows[i];
    if (f.src == f.dst || f.bytes <= 0) {  // as the analytic backend: nothing to move
      r.finish_s[i] = f.start_s + (f.src == f.dst ? 0.0 : topology_.path_latency_s(f.src, f.dst));
      continue;
    }
    packet_flows.push_back(f);
    index.push_back(i);
  }
  if (!packet_flows.empty()) {
    PacketPhasePlan plan;
    plan.stop_when_steady = !options_.full;
    plan.seed = options_.seed;
    const PacketPhaseOutcome out = simulate_packet_phase(topology_, transport_, packet_flows, plan);
    sim.events = out.events;
    sim.channel_wire_bytes = out.channel_wire_bytes;
    r.extrapolated = out.fast_forwards > 0;
    for (std::size_t k = 0; k < packet_flows.size(); ++k) {
      const Flow& f = packet_flows[k];
      const PacketFlowOutcome& o = out.flows[k];
      if (!o.finished && o.gave_up) {
        double loss = 0;  // the worst link of the flow's path, for the message
        for (ChannelId c : topology_.route(f.src, f.dst)) loss = std::max(loss, topology_.channel(c).loss);
        char share[32];
        std::snprintf(share, sizeof share, "%g", loss);
        throw RuntimeFailure("ns3 backend: TCP gave up on the flow from GPU " + std::to_string(f.src) + " to GPU " + std::to_string(f.dst) +
                             " (ns-3 retransmits a SYN or segment 6 times, then closes the connection) over links that drop up to " +
                             share + " of the packets: no transfer completes at such loss; use --backend analytic or a lower loss");
      }
      if (!o.finished) throw InternalError("ns3 backend: a flow did not finish (ns-3 ran out of events)");
      sim.packet_payload_bytes += o.delivered_bytes;
      sim.extrapolated_payload_bytes += o.skipped_bytes;
      r.flow_retransmissions[index[k]] = o.retransmissions;
      r.retransmissions += o.retransmissions;
      r.finish_s[index[k]] =
          o.finish_s + topology_.path_latency_s(f.src, f.dst) - simulated_latency_s(f.src, f.dst);
    }
  }
  for (double t : r.finish_s) r.makespan_s = std::max(r.makespan_s, t);
  return sim;
}

}  // namespace

std::unique_ptr<NetworkBackend> make_ns3_backend(const Topology& topology,
                                                 const TransportConfig& transport,
                                                 const PacketOptions& options) {
  return std::make_unique<Ns3Backend>(topology, transport, options);
}

}  // namespace moss::net
