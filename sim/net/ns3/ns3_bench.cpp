// moss_ns3_bench: what the ns-3 backend costs on the phases moss hands it most. Prints simulated
// bytes per wall second and events per second. Not a test.
//   moss_ns3_bench            steady-state mode (the default backend settings)
//   moss_ns3_bench --full     also runs the uncompressed phase packet by packet (~30 s)
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "moss/net/analytic_backend.h"
#include "moss/net/ns3_backend.h"

namespace {

using moss::net::Phase;

// DESIGN.md: 800M model, 8 layers, kv_dim 2048, 132K context over 8 GPUs (T_chunk 16384), bf16.
constexpr double kChunkKvBytes = 16384.0 * 2048 * 2 /*K+V*/ * 2 /*bf16*/;
constexpr int kGpus = 8;
constexpr int kLayers = 8;

moss::net::Topology ring_300mbps() {
  const moss::net::Channel c{300e6, 5e-3, 1500, 0};
  std::vector<moss::net::Link> links;
  for (int i = 0; i < kGpus; ++i) links.push_back({i, (i + 1) % kGpus, c, c, false});
  return moss::net::Topology(kGpus, kGpus, links, {});
}

Phase ring_step(double bytes) {
  Phase p;
  for (int g = 0; g < kGpus; ++g) p.push_back({g, (g + 1) % kGpus, bytes, 0});
  return p;
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

}  // namespace

int main(int argc, char** argv) {
  const bool full = argc > 1 && std::strcmp(argv[1], "--full") == 0;
  const auto topo = ring_300mbps();
  std::printf("8-GPU ring, 300 Mbps / 5 ms per link, MTU 1500, Cubic; one all-gather ring step\n");
  bench("mos-800m K/V compressed", topo, 0.035 * kChunkKvBytes, false);
  bench("mos-800m K/V compressed", topo, 0.035 * kChunkKvBytes, true);
  bench("mos-800m K/V uncompressed", topo, kChunkKvBytes, false);
  if (full) bench("mos-800m K/V uncompressed", topo, kChunkKvBytes, true);
  return 0;
}
