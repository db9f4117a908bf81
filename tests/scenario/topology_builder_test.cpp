#include "moss/scenario/cluster_topology.h"

#include <gtest/gtest.h>

#include "moss/scenario/loader.h"

namespace moss::scenario {

using nlohmann::json;

Scenario with_network(const std::string& network_json, int nodes, int gpus_per_node = 1) {
  json doc = json::parse(R"({"model": {"preset": "mos-800m"}, "training": {"seq_len": 65536},
      "cluster": {"gpu": "A100-80GB"}})");
  doc["cluster"]["nodes"] = nodes;
  doc["cluster"]["gpus_per_node"] = gpus_per_node;
  doc["cluster"]["network"] = json::parse(network_json);
  return parse_scenario(doc, "t.json");
}

TEST(ClusterTopology, AsymmetricOverrideChangesOneDirection) {
  const Scenario s = with_network(R"({"bandwidth": "1Gbps", "latency": "1ms",
      "links": [{"from": 3, "to": 0, "bandwidth": "100Mbps", "latency": "40ms", "bidirectional": false}]})", 4);
  const net::Topology t = build_topology(s);
  EXPECT_DOUBLE_EQ(t.path_bandwidth_bps(3, 0), 100e6);
  EXPECT_DOUBLE_EQ(t.path_latency_s(3, 0), 40e-3);
  EXPECT_DOUBLE_EQ(t.path_bandwidth_bps(0, 3), 1e9);
}

TEST(ClusterTopology, GpusInANodeShareItsHost) {
  const Scenario s = with_network(R"({"topology": "star", "bandwidth": "10Gbps"})", 2, 4);
  const net::Topology t = build_topology(s);
  EXPECT_EQ(t.gpus(), 8);
  EXPECT_EQ(t.vertices(), 8 + 2 + 1);
  EXPECT_EQ(t.route(0, 1).size(), 2u);  // gpu -> host -> gpu
  EXPECT_EQ(t.route(0, 4).size(), 4u);  // gpu -> host -> switch -> host -> gpu
  EXPECT_DOUBLE_EQ(t.path_bandwidth_bps(0, 4), 10e9);
  EXPECT_DOUBLE_EQ(t.path_bandwidth_bps(0, 1), 300e9 * 8);
}

}  // namespace moss::scenario
