#include "moss/net/analytic_backend.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "moss/core/error.h"

namespace moss::net {

double payload_efficiency(int mtu_bytes, const TransportConfig& t) {
  MOSS_CHECK(mtu_bytes > t.ip_tcp_header_bytes, "MTU must exceed the TCP/IP headers");
  return static_cast<double>(mtu_bytes - t.ip_tcp_header_bytes) /
         static_cast<double>(mtu_bytes + t.link_header_bytes);
}

AnalyticBackend::AnalyticBackend(const Topology& topology, TransportConfig transport)
    : topology_(topology), transport_(std::move(transport)) {
  stats_.channel_busy_bytes.assign(static_cast<std::size_t>(topology_.channels()), 0.0);
}

namespace {

std::string phase_key(const Phase& flows) {
  std::string key(flows.size() * sizeof(Flow), '\0');
  char* out = key.data();
  for (const Flow& f : flows) {
    std::memcpy(out, &f.src, sizeof f.src);
    std::memcpy(out + sizeof(int), &f.dst, sizeof f.dst);
    std::memcpy(out + 2 * sizeof(int), &f.bytes, sizeof f.bytes);
    std::memcpy(out + 2 * sizeof(int) + sizeof(double), &f.start_s, sizeof f.start_s);
    out += sizeof(Flow);
  }
  return key;
}

struct FluidFlow {
  const std::vector<ChannelId>* route = nullptr;
  double remaining_bits = 0;
  double cap_bps = 0;  // TCP window limit
  double latency_s = 0;
  double rate_bps = 0;
  bool active = false;
  bool done = false;
};

// Max-min fair rates by progressive filling over the channels the active flows cross.
void assign_max_min_rates(std::vector<FluidFlow>& flows, const Topology& topo,
                          std::vector<double>& remaining_bps, std::vector<int>& unfrozen_on) {
  std::fill(unfrozen_on.begin(), unfrozen_on.end(), 0);
  for (ChannelId c = 0; c < topo.channels(); ++c) {
    remaining_bps[static_cast<std::size_t>(c)] = topo.channel(c).bandwidth_bps;
  }
  std::vector<FluidFlow*> open;
  for (FluidFlow& f : flows) {
    if (!f.active) continue;
    f.rate_bps = 0;
    open.push_back(&f);
    for (ChannelId c : *f.route) ++unfrozen_on[static_cast<std::size_t>(c)];
  }
  constexpr double kTol = 1e-12;
  while (!open.empty()) {
    double level = std::numeric_limits<double>::infinity();
    for (const FluidFlow* f : open) {
      level = std::min(level, f->cap_bps);
      for (ChannelId c : *f->route) {
        const auto ci = static_cast<std::size_t>(c);
        level = std::min(level, remaining_bps[ci] / unfrozen_on[ci]);
      }
    }
    level = std::max(level, 0.0);
    const double bar = level * (1 + kTol) + kTol;
    std::vector<FluidFlow*> still_open;
    std::vector<FluidFlow*> frozen;
    for (FluidFlow* f : open) {
      bool at_bottleneck = f->cap_bps <= bar;
      for (ChannelId c : *f->route) {
        const auto ci = static_cast<std::size_t>(c);
        if (remaining_bps[ci] / unfrozen_on[ci] <= bar) at_bottleneck = true;
      }
      (at_bottleneck ? frozen : still_open).push_back(f);
    }
    for (FluidFlow* f : frozen) {
      f->rate_bps = level;
      for (ChannelId c : *f->route) {
        const auto ci = static_cast<std::size_t>(c);
        remaining_bps[ci] = std::max(0.0, remaining_bps[ci] - level);
        --unfrozen_on[ci];
      }
    }
    open.swap(still_open);
  }
}

}  // namespace

PhaseResult AnalyticBackend::run_phase(const Phase& flows) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string key = phase_key(flows);
  PhaseResult result;
  if (auto it = memo_.find(key); it != memo_.end()) {
    ++stats_.phases_reused;
    result = it->second;
  } else {
    ++stats_.phases_simulated;
    result = simulate(flows);
    memo_.emplace(std::move(key), result);
  }
  for (const Flow& f : flows) {
    if (f.src == f.dst || f.bytes <= 0) continue;
    const double wire =
        f.bytes / payload_efficiency(topology_.path_mtu_bytes(f.src, f.dst), transport_);
    for (ChannelId c : topology_.route(f.src, f.dst)) {
      stats_.channel_busy_bytes[static_cast<std::size_t>(c)] += wire;
    }
  }
  stats_.wall_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

PhaseResult AnalyticBackend::simulate(const Phase& phase) {
  PhaseResult result;
  result.finish_s.assign(phase.size(), 0.0);
  std::vector<FluidFlow> flows(phase.size());
  std::vector<std::size_t> pending;  // flows not yet started, by start time
  for (std::size_t i = 0; i < phase.size(); ++i) {
    const Flow& in = phase[i];
    MOSS_CHECK(in.bytes >= 0 && in.start_s >= 0, "flows need non-negative bytes and start");
    FluidFlow& f = flows[i];
    f.route = &topology_.route(in.src, in.dst);
    if (in.src == in.dst || in.bytes <= 0) {
      f.done = true;
      result.finish_s[i] = in.start_s + (in.src == in.dst ? 0.0 : topology_.path_latency_s(in.src, in.dst));
      continue;
    }
    const double eff = payload_efficiency(topology_.path_mtu_bytes(in.src, in.dst), transport_);
    f.remaining_bits = in.bytes * 8.0 / eff;
    f.latency_s = topology_.path_latency_s(in.src, in.dst);
    f.cap_bps = std::numeric_limits<double>::infinity();
    if (transport_.socket_buffer_bytes > 0) {
      const double rtt = f.latency_s + topology_.path_latency_s(in.dst, in.src);
      if (rtt > 0) f.cap_bps = transport_.socket_buffer_bytes * 8.0 / rtt / eff;
    }
    pending.push_back(i);
  }
  std::sort(pending.begin(), pending.end(), [&](std::size_t a, std::size_t b) {
    return phase[a].start_s != phase[b].start_s ? phase[a].start_s < phase[b].start_s : a < b;
  });
  std::vector<double> remaining_bps(static_cast<std::size_t>(topology_.channels()));
  std::vector<int> unfrozen_on(static_cast<std::size_t>(topology_.channels()));
  std::size_t next_start = 0;
  std::size_t active = 0;
  double now = 0;
  while (next_start < pending.size() || active > 0) {
    while (next_start < pending.size() && phase[pending[next_start]].start_s <= now) {
      flows[pending[next_start]].active = true;
      ++active;
      ++next_start;
    }
    if (active == 0) {
      now = phase[pending[next_start]].start_s;
      continue;
    }
    assign_max_min_rates(flows, topology_, remaining_bps, unfrozen_on);
    double dt = std::numeric_limits<double>::infinity();
    for (const FluidFlow& f : flows) {
      if (f.active && f.rate_bps > 0) dt = std::min(dt, f.remaining_bits / f.rate_bps);
    }
    if (next_start < pending.size()) dt = std::min(dt, phase[pending[next_start]].start_s - now);
    MOSS_CHECK(std::isfinite(dt), "no active flow can make progress (zero-bandwidth channel)");
    now += dt;
    for (std::size_t i = 0; i < flows.size(); ++i) {
      FluidFlow& f = flows[i];
      if (!f.active) continue;
      f.remaining_bits -= f.rate_bps * dt;
      // A flow is done when what is left would take under a picosecond.
      if (f.remaining_bits <= f.rate_bps * 1e-12 + 1e-9) {
        f.active = false;
        f.done = true;
        --active;
        result.finish_s[i] = now + f.latency_s;
      }
    }
  }
  for (double t : result.finish_s) result.makespan_s = std::max(result.makespan_s, t);
  return result;
}

}  // namespace moss::net
