// Physical sanity as invariants over random valid scenarios (seeded, so a failure reproduces):
//  - a step is never shorter than its compute alone, nor than the time the busiest device needs to
//    push its bytes through the links it owns (bytes x 8 / egress rate);
//  - with the analytic backend, more bandwidth never makes a step slower;
//  - compression never increases the bytes a device sends.
#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "moss/core/error.h"
#include "moss/scenario/loader.h"
#include "moss/step/evaluate.h"

namespace {

using nlohmann::json;

constexpr std::uint64_t kSeed = 20261126;
constexpr int kScenarios = 60;
constexpr double kRelTol = 1e-9;

std::string rate(double bps) {
  std::ostringstream os;
  os << bps / 1e6 << "Mbps";
  return os.str();
}

json random_compression(std::mt19937_64& rng, int kv_dim) {
  std::uniform_int_distribution<int> pick(0, 5);
  std::uniform_int_distribution<int> rank(1, kv_dim);
  switch (pick(rng)) {
    case 0: return {{"method", "none"}};
    case 1: return {{"method", "mos"}, {"rank_k", rank(rng)}, {"rank_v", rank(rng)}, {"rotations", std::uniform_int_distribution<int>(0, 8)(rng)}};
    case 2: return {{"method", "pca"}, {"rank_k", rank(rng)}, {"rank_v", rank(rng)}};
    case 3: return {{"method", "mos-k"}, {"rank_k", rank(rng)}, {"rank_v", rank(rng)}, {"subspaces", std::uniform_int_distribution<int>(2, 16)(rng)}};
    case 4: return {{"method", "topk"}, {"fraction", std::uniform_real_distribution<double>(0.001, 1.0)(rng)}};
    default: return {{"method", "quant"}, {"bits", (rng() & 1) ? 4 : 8}};
  }
}

// A random scenario document: one GPU per node so that every byte a device sends crosses its links.
json random_scenario(std::mt19937_64& rng) {
  const int nodes = 1 << std::uniform_int_distribution<int>(1, 4)(rng);  // 2..16
  const char* topologies[] = {"ring", "star", "full_mesh"};
  const char* gpus[] = {"A100-40GB", "A100-80GB", "H100-SXM", "H200"};
  const double bw = std::pow(10.0, std::uniform_real_distribution<double>(8.0, 11.5)(rng));  // 100 Mbps..300 Gbps
  const int parts = 2 * nodes;
  const std::int64_t seq = static_cast<std::int64_t>(parts) * 512 * std::uniform_int_distribution<int>(2, 32)(rng);
  json doc = {
      {"name", "prop"},
      {"model", {{"preset", "mos-800m"}}},
      {"training", {{"seq_len", seq}, {"tokens", 1e9},
                    {"weight_sync", {{"every_steps", std::uniform_int_distribution<int>(1, 20)(rng)}, {"overlap", (rng() & 1) == 1}}}}},
      {"cluster", {{"gpu", gpus[rng() % 4]}, {"nodes", nodes}, {"gpus_per_node", 1},
                   {"network", {{"topology", topologies[rng() % 3]}, {"bandwidth", rate(bw)},
                                {"latency", std::to_string(std::uniform_int_distribution<int>(0, 40000)(rng)) + "us"},
                                {"mtu", (rng() & 1) ? 1500 : 9000}}}}},
      {"parallelism", {{"context", nodes}, {"cp_algorithm", (rng() & 1) ? "ring" : "allgather"},
                       {"partition", (rng() & 1) ? "zigzag" : "contiguous"},
                       {"zero_stage", std::uniform_int_distribution<int>(0, 3)(rng)}}},
      {"simulation", {{"backend", "analytic"}, {"seed", rng() % 1000}}}};
  doc["compression"] = random_compression(rng, 2048);
  return doc;
}

struct Sample {
  json doc;
  moss::scenario::Scenario scenario;
};

// The valid ones among kScenarios random documents (the generator stays inside the schema, so most are).
const std::vector<Sample>& samples() {
  static const std::vector<Sample> all = [] {
    std::vector<Sample> out;
    std::mt19937_64 rng(kSeed);
    for (int i = 0; i < kScenarios; ++i) {
      json doc = random_scenario(rng);
      doc["name"] = "prop-" + std::to_string(i);
      try {
        out.push_back({doc, moss::scenario::parse_scenario(doc, "random-" + std::to_string(i) + ".json")});
      } catch (const moss::InputError&) {
      }
    }
    return out;
  }();
  return all;
}

moss::step::RunResult evaluate(const json& doc) {
  return moss::step::evaluate(moss::scenario::parse_scenario(doc, "variant.json"));
}

// Sum of the rates of the links a node sends on (one GPU per node, no overrides).
double egress_bps(const moss::scenario::Scenario& s) {
  const auto& n = s.cluster.network;
  const int nodes = s.cluster.nodes;
  switch (n.topology) {
    case moss::scenario::TopologyKind::kRing: return n.bandwidth_bps * (nodes == 2 ? 1 : 2);
    case moss::scenario::TopologyKind::kStar: return n.bandwidth_bps;
    case moss::scenario::TopologyKind::kFullMesh: return n.bandwidth_bps * (nodes - 1);
    default: return n.bandwidth_bps * (nodes - 1);
  }
}

TEST(Invariants, MostRandomScenariosAreValid) { EXPECT_GE(samples().size(), static_cast<std::size_t>(kScenarios * 3 / 4)); }

TEST(Invariants, StepIsNoShorterThanComputeOrTheWireTimeOfEachDevicesBytes) {
  for (const Sample& s : samples()) {
    const auto r = moss::step::evaluate(s.scenario);
    SCOPED_TRACE(s.doc.dump());
    ASSERT_TRUE(std::isfinite(r.step_time_s) && r.step_time_s > 0);
    EXPECT_GE(r.step_time_s, r.compute_only_step_s * (1 - kRelTol));
    EXPECT_GE(r.step_time_no_sync_s, r.compute_only_step_s * (1 - kRelTol));
    // A device cannot send faster than all its links together, even if every byte overlapped perfectly.
    const double wire_s = r.comm_bytes_per_step_per_device * 8 / egress_bps(s.scenario);
    EXPECT_GE(r.step_time_s, wire_s * (1 - 1e-6)) << "bytes " << r.comm_bytes_per_step_per_device;
    // No link carries more than its rate for a step.
    for (const auto& l : r.links) {
      EXPECT_LE(l.wire_bytes_per_step * 8 / l.bandwidth_bps, r.step_time_s * (1 + 1e-6)) << l.from << "->" << l.to;
    }
    EXPECT_NEAR(r.tokens_per_second * r.step_time_s, r.tokens_per_step, 1e-6 * r.tokens_per_step);
    EXPECT_GE(r.exposed_comm_s, -1e-12);
  }
}

TEST(Invariants, MoreBandwidthNeverMakesAStepSlower) {
  for (const Sample& s : samples()) {
    SCOPED_TRACE(s.doc.dump());
    double previous = std::numeric_limits<double>::infinity();
    for (const double factor : {0.25, 1.0, 4.0, 64.0}) {
      json doc = s.doc;
      const double bps = std::min(s.scenario.cluster.network.bandwidth_bps * factor, 9e12);
      doc["cluster"]["network"]["bandwidth"] = rate(bps);
      const double t = evaluate(doc).step_time_s;
      EXPECT_LE(t, previous * (1 + kRelTol)) << "at " << rate(bps);
      previous = t;
    }
  }
}

TEST(Invariants, CompressionNeverIncreasesBytesSent) {
  for (const Sample& s : samples()) {
    if (s.scenario.compression.method == "none") continue;
    SCOPED_TRACE(s.doc.dump());
    json plain = s.doc;
    plain["compression"] = {{"method", "none"}};
    const auto a = evaluate(plain);
    const auto b = moss::step::evaluate(s.scenario);
    EXPECT_LE(b.cp_bytes_per_step_per_device, a.cp_bytes_per_step_per_device * (1 + kRelTol));
    EXPECT_LE(b.comm_bytes_per_step_per_device, a.comm_bytes_per_step_per_device * (1 + kRelTol));
    EXPECT_LE(b.compression.ratio, 1 + kRelTol) << b.compression.method;
  }
}

}  // namespace
