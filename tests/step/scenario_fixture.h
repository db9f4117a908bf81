#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "moss/scenario/loader.h"

namespace moss::testing {

/// The shipped 800M scenario at the given bandwidth and compression, changed at dotted paths.
inline nlohmann::json mos800m(const std::string& bandwidth, const std::string& compression_json) {
  nlohmann::json doc = nlohmann::json::parse(R"({
    "name": "t", "model": {"preset": "mos-800m"},
    "training": {"seq_len": 131072, "tokens": 16e9},
    "cluster": {"gpu": "A100-80GB", "nodes": 8,
                "network": {"topology": "ring", "latency": "5ms"}},
    "parallelism": {"context": 8}})");
  doc["cluster"]["network"]["bandwidth"] = bandwidth;
  doc["compression"] = nlohmann::json::parse(compression_json);
  return doc;
}

inline scenario::Scenario parse(const nlohmann::json& doc) { return scenario::parse_scenario(doc, "test.json"); }

}  // namespace moss::testing
