// moss_ns3_bench: what the ns-3 backend costs on the phases moss hands it most, and how far its
// shortcuts (steady-state fast-forward) are from running every packet. Prints simulated bytes
// per wall second and events per second. Not a test. The README's tables come from these:
//   moss_ns3_bench                 ring steps of the 800M model (steady mode)
//   moss_ns3_bench --full          also the uncompressed ring step packet by packet (~40 s)
//   moss_ns3_bench two-flows       two flows sharing a 300 Mbps / 10 ms link (full run)
//   moss_ns3_bench ack-share       star, one flow's ACKs queue behind another flow's data
//   moss_ns3_bench unequal [x] [2|3|late|star]
//                                  multi-flow phases of unequal sizes (every size and the late
//                                  start times x, default 1; one case or all): fast-forward vs full
//   moss_ns3_bench allreduce       a weight-sync ring step (200 MB/flow, 8 GPUs): fast-forward vs full
//   moss_ns3_bench lossy [MB] [p] [flows] [seeds] [Mbps] [ms] [episodes] [tolerance] [full]
//                        [socket buffer B] [control variate 0/1] [tcp variant]
//                                  flows sharing one lossy link (default 300 MB, 1e-4, 1 flow,
//                                  1 seed, 300 Mbps / 10 ms, 32 episodes, 15 %, full run too):
//                                  fast-forward vs full per seed, loss counters, the Mathis and
//                                  Cubic response-function estimates
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "moss/net/analytic_backend.h"
#include "moss/net/ns3_backend.h"
#include "packet_phase.h"

namespace {

using moss::net::Phase;
using moss::net::PhaseResult;

// DESIGN.md: 800M model, 8 layers, kv_dim 2048, 132K context over 8 GPUs (T_chunk 16384), bf16.
constexpr double kChunkKvBytes = 16384.0 * 2048 * 2 /*K+V*/ * 2 /*bf16*/;
constexpr int kGpus = 8;
constexpr int kLayers = 8;

moss::net::Topology ring(double bps, double latency_s, int mtu) {
  const moss::net::Channel c{bps, latency_s, mtu, 0};
  std::vector<moss::net::Link> links;
  for (int i = 0; i < kGpus; ++i) links.push_back({i, (i + 1) % kGpus, c, c, false});
  return moss::net::Topology(kGpus, kGpus, links, {});
}

moss::net::Topology one_link(double bps, double latency_s, int mtu, double loss = 0) {
  const moss::net::Channel c{bps, latency_s, mtu, loss};
  return moss::net::Topology(2, 2, {moss::net::Link{0, 1, c, c, false}}, {"a", "b"});
}

moss::net::Topology star(int gpus, double bps, double latency_s, int mtu) {
  const moss::net::Channel c{bps, latency_s, mtu, 0};
  std::vector<moss::net::Link> links;
  for (int g = 0; g < gpus; ++g) links.push_back({g, gpus, c, c, false});
  return moss::net::Topology(gpus, gpus + 1, links, {});
}

Phase ring_step(double bytes) {
  Phase p;
  for (int g = 0; g < kGpus; ++g) p.push_back({g, (g + 1) % kGpus, bytes, 0});
  return p;
}

struct Run {
  PhaseResult result;
  double wall_s = 0;
  unsigned long long events = 0;
  double packet_bytes = 0;
};

Run run(const moss::net::Topology& topo, const Phase& phase, bool full, std::uint64_t seed = 1) {
  moss::net::PacketOptions opt;
  opt.full = full;
  opt.memoise = false;
  opt.seed = seed;
  auto ns3 = moss::net::make_ns3_backend(topo, {}, opt);
  const auto t0 = std::chrono::steady_clock::now();
  Run r;
  r.result = ns3->run_phase(phase);
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.events = ns3->stats().events;
  r.packet_bytes = ns3->stats().packet_payload_bytes;
  return r;
}

// The phase with fast-forward and packet by packet; every flow's finish time side by side.
void compare(const char* name, const moss::net::Topology& topo, const Phase& phase) {
  moss::net::AnalyticBackend analytic(topo, {});
  const PhaseResult a = analytic.run_phase(phase);
  const Run s = run(topo, phase, false);
  const Run f = run(topo, phase, true);
  double worst = 0;
  for (std::size_t i = 0; i < phase.size(); ++i) {
    const double e = (s.result.finish_s[i] - phase[i].start_s) / (f.result.finish_s[i] - phase[i].start_s) - 1;
    if (std::abs(e) > std::abs(worst)) worst = e;
    std::printf("  %-24s flow %zu (%d->%d, %.4g B, start %.3g s): fast-forward %.6f s, full %.6f s "
                "(%+.3f %%), analytic %.6f s\n",
                name, i, phase[i].src, phase[i].dst, phase[i].bytes, phase[i].start_s,
                s.result.finish_s[i], f.result.finish_s[i], 100 * e, a.finish_s[i]);
  }
  std::printf("%-26s makespan fast-forward %.6f s, full %.6f s (%+.3f %%), worst flow %+.3f %%, "
              "analytic %.6f s; wall %.2f s / %.2f s, events %llu / %llu, retransmissions %llu / %llu\n",
              name, s.result.makespan_s, f.result.makespan_s,
              100 * (s.result.makespan_s / f.result.makespan_s - 1), 100 * worst, a.makespan_s, s.wall_s,
              f.wall_s, s.events, f.events, static_cast<unsigned long long>(s.result.retransmissions),
              static_cast<unsigned long long>(f.result.retransmissions));
}

void bench(const char* name, const moss::net::Topology& topo, double bytes, bool full) {
  moss::net::PacketOptions opt;
  opt.full = full;
  opt.memoise = true;
  auto ns3 = moss::net::make_ns3_backend(topo, {}, opt);
  moss::net::AnalyticBackend analytic(topo, {});
  const Phase phase = ring_step(bytes);
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = ns3->run_phase(phase);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& s = ns3->stats();
  const double a = analytic.run_phase(phase).makespan_s;
  std::printf("%-28s %-6s %9.3g B/flow  ns3 %8.4f s  analytic %8.4f s (%+6.2f %%)  wall %7.3f s  "
              "events %9llu  %8.0f ev/s  packet-simulated %7.1f MB/s  covered %8.1f MB/s  "
              "extrapolated %s\n",
              name, full ? "full" : "steady", bytes, r.makespan_s, a, 100 * (r.makespan_s / a - 1),
              wall, static_cast<unsigned long long>(s.events), s.events / wall,
              s.packet_payload_bytes / wall / 1e6, bytes * kGpus / wall / 1e6,
              r.extrapolated ? "yes" : "no");
  // One training step: 8 layers x (forward all-gather + backward reduce-scatter) x 7 ring steps,
  // all with this phase's shape: simulated once, then memoised.
  const auto t1 = std::chrono::steady_clock::now();
  double step_comm_s = 0;
  for (int i = 0; i < kLayers * 2 * (kGpus - 1); ++i) step_comm_s += ns3->run_phase(phase).makespan_s;
  const double step_wall =
      wall + std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  std::printf("%-28s step: %d phases (%llu simulated, %llu reused), comm %.2f s, wall %.3f s\n",
              name, kLayers * 2 * (kGpus - 1) + 1,
              static_cast<unsigned long long>(s.phases_simulated),
              static_cast<unsigned long long>(s.phases_reused), step_comm_s, step_wall);
}

void two_flows(double bytes) {
  const auto topo = one_link(300e6, 10e-3, 1500);
  const Phase phase{{0, 1, bytes, 0}, {0, 1, bytes, 0}};
  moss::net::AnalyticBackend analytic(topo, {});
  const Run f = run(topo, phase, true);
  const double link_Bps = 300e6 / 8 * moss::net::payload_efficiency(1500, {});
  const double first = std::min(f.result.finish_s[0], f.result.finish_s[1]);
  std::printf("two flows x %.3g B, 300 Mbps / 10 ms: finish %.4f / %.4f s, analytic %.4f s, "
              "first flow's share %.3f, makespan / analytic %.4f, retransmissions %llu / %llu, "
              "wall %.2f s, events %llu\n",
              bytes, f.result.finish_s[0], f.result.finish_s[1], analytic.run_phase(phase).makespan_s,
              bytes / first / link_Bps, f.result.makespan_s / analytic.run_phase(phase).makespan_s,
              static_cast<unsigned long long>(f.result.flow_retransmissions[0]),
              static_cast<unsigned long long>(f.result.flow_retransmissions[1]), f.wall_s, f.events);
}

void ack_share() {
  // 1 Gbps star, 50 us per hop: 3 -> 0's ACKs (0 -> switch -> 3) queue behind 0 -> 1's data.
  const auto topo = star(4, 1e9, 50e-6, 1500);
  const Phase phase{{0, 1, 20e6, 0}, {2, 3, 20e6, 0}, {3, 0, 20e6, 0}};
  moss::net::AnalyticBackend analytic(topo, {});
  const PhaseResult a = analytic.run_phase(phase);
  const Run f = run(topo, phase, true);
  for (std::size_t i = 0; i < phase.size(); ++i) {
    std::printf("ack-share flow %d->%d: ns3 %.5f s, analytic %.5f s, ratio %.4f, retransmissions %llu\n",
                phase[i].src, phase[i].dst, f.result.finish_s[i], a.finish_s[i],
                f.result.finish_s[i] / a.finish_s[i],
                static_cast<unsigned long long>(f.result.flow_retransmissions[i]));
  }
}

// One packet-level run of a phase, straight through simulate_packet_phase (the backend does
// not report loss counters); returns the makespan.
double lossy_run(const moss::net::Topology& topo, const moss::net::TransportConfig& transport,
                 const Phase& phase, moss::net::PacketPhasePlan plan, const char* label) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto out = moss::net::simulate_packet_phase(topo, transport, phase, plan);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double makespan = 0;
  double simulated = 0;
  double skipped = 0;
  unsigned long long rtx = 0, episodes = 0, timeouts = 0;
  std::printf("  %-5s seed %llu:", label, static_cast<unsigned long long>(plan.seed));
  for (const auto& f : out.flows) {
    makespan = std::max(makespan, f.finish_s);
    simulated += f.delivered_bytes;
    skipped += f.skipped_bytes;
    rtx += f.retransmissions;
    episodes += f.loss_episodes;
    timeouts += f.timeouts;
    std::printf(" %.4f s", f.finish_s);
  }
  std::printf("  | events %llu  wall %.2f s  packet-simulated %.1f MB, skipped %.1f MB (%llu jumps)  "
              "retransmissions %llu  loss episodes %llu  timeouts %llu  error-model drops %llu "
              "(data %llu)\n",
              static_cast<unsigned long long>(out.events), wall, simulated / 1e6, skipped / 1e6,
              static_cast<unsigned long long>(out.fast_forwards), rtx, episodes, timeouts,
              static_cast<unsigned long long>(out.dropped_packets),
              static_cast<unsigned long long>(out.dropped_data_packets));
  std::fflush(stdout);
  return makespan;
}

void lossy(int argc, char** argv) {
  const auto arg = [&](int i, double d) { return argc > i ? std::atof(argv[i]) : d; };
  const double mb = arg(2, 300);
  const double p = arg(3, 1e-4);
  const int flows = static_cast<int>(arg(4, 1));
  const int seeds = static_cast<int>(arg(5, 1));
  const double bps = arg(6, 300) * 1e6;
  const double latency_s = arg(7, 10) * 1e-3;
  moss::net::PacketPhasePlan plan;
  plan.lossy_episodes = static_cast<std::size_t>(arg(8, 32));
  plan.lossy_tolerance = arg(9, 0.15);
  const bool full = arg(10, 1) != 0;
  moss::net::TransportConfig transport;
  transport.socket_buffer_bytes = arg(11, 0);
  plan.lossy_control_variate = arg(12, 1) != 0;
  if (argc > 13) transport.tcp_variant = argv[13];
  const auto topo = one_link(bps, latency_s, 1500, p);
  Phase phase;
  for (int i = 0; i < flows; ++i) phase.push_back({0, 1, mb * 1e6, 0});
  // Loss-limited rates of one flow: Mathis et al. (Reno, no delayed ACKs) and Cubic's response
  // function (RFC 8312 4.6 without the TCP-friendly region, which ns-3 3.37's TcpCubic lacks).
  const double mss = 1500 - 52;
  const double rtt = 2 * latency_s;
  const double mathis_Bps = mss / rtt * 1.22 / std::sqrt(p);
  const double cubic_w = std::pow(0.4 * 3.7 / (4 * 0.3), 0.25) * std::pow(rtt, 0.75) / std::pow(p, 0.75);
  const double cubic_Bps = cubic_w * mss / rtt;
  const double link_Bps = bps / 8 * moss::net::payload_efficiency(1500, {});
  const double share_Bps = link_Bps / flows;
  std::printf("lossy (%s): %d x %.0f MB, %.0f Mbps / %.0f ms, loss %.0e, episodes %zu, tolerance %.2f; "
              "per flow: link share %.0f s, Mathis %.2f MB/s (%.1f s), Cubic %.1f segments = %.2f MB/s "
              "(%.1f s)\n",
              transport.tcp_variant.c_str(), flows, mb, bps / 1e6, latency_s * 1e3, p, plan.lossy_episodes, plan.lossy_tolerance,
              mb * 1e6 / share_Bps, mathis_Bps / 1e6, mb * 1e6 / std::min(mathis_Bps, share_Bps), cubic_w,
              cubic_Bps / 1e6, mb * 1e6 / std::min(cubic_Bps, share_Bps));
  for (int seed = 1; seed <= seeds; ++seed) {
    plan.seed = static_cast<std::uint64_t>(seed);
    plan.stop_when_steady = true;
    const double s = lossy_run(topo, transport, phase, plan, "ff");
    if (!full) continue;
    plan.stop_when_steady = false;
    const double f = lossy_run(topo, transport, phase, plan, "full");
    std::printf("  seed %d: makespan fast-forward %.4f s, full %.4f s (%+.2f %%)\n", seed, s, f,
                100 * (s / f - 1));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "two-flows") {
    two_flows(argc > 2 ? std::atof(argv[2]) * 1e6 : 40e6);
    return 0;
  }
  if (mode == "ack-share") {
    ack_share();
    return 0;
  }
  if (mode == "unequal") {
    // Optional scale: every size (and the late start) times x, e.g. 10 for the long shared runs.
    const double x = argc > 2 ? std::atof(argv[2]) : 1.0;
    const std::string only = argc > 3 ? argv[3] : "";
    if (x != 1) std::printf("every size and start below times %g\n", x);
    const auto link = one_link(300e6, 10e-3, 1500);
    const auto want = [&](const char* c) { return only.empty() || only == c; };
    if (want("2")) compare("2 flows 40+120 MB", link, {{0, 1, 40e6 * x, 0}, {0, 1, 120e6 * x, 0}});
    if (want("3")) {
      compare("3 flows 30/60/120 MB", link,
              {{0, 1, 30e6 * x, 0}, {0, 1, 60e6 * x, 0}, {0, 1, 120e6 * x, 0}});
    }
    if (want("late")) compare("2 flows, 2nd at 1 s", link, {{0, 1, 100e6 * x, 0}, {0, 1, 50e6 * x, 1.0 * x}});
    const auto st = star(4, 1e9, 50e-6, 1500);
    if (want("star")) {
      compare("star 1G 3 flows unequal", st,
              {{0, 1, 100e6 * x, 0}, {2, 1, 300e6 * x, 0}, {3, 2, 200e6 * x, 0}});
    }
    return 0;
  }
  if (mode == "allreduce") {
    // ring all-reduce of the 800M model's bf16 gradients: 1.6 GB / 8 = 200 MB per flow per step.
    const double bytes = 2.0 * 800e6 / kGpus;
    compare("allreduce step 300M/5ms", ring(300e6, 5e-3, 1500), ring_step(bytes));
    return 0;
  }
  if (mode == "lossy") {
    lossy(argc, argv);
    return 0;
  }
  const bool full = mode == "--full";
  const auto topo = ring(300e6, 5e-3, 1500);
  std::printf("8-GPU ring, 300 Mbps / 5 ms per link, MTU 1500, Cubic; one all-gather ring step\n");
  bench("mos-800m K/V compressed", topo, 0.035 * kChunkKvBytes, false);
  bench("mos-800m K/V compressed", topo, 0.035 * kChunkKvBytes, true);
  bench("mos-800m K/V uncompressed", topo, kChunkKvBytes, false);
  if (full) bench("mos-800m K/V uncompressed", topo, kChunkKvBytes, true);
  return 0;
}
