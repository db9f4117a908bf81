#include "moss/core/trace.h"

#include <gtest/gtest.h>

namespace moss::core {

TEST(ChromeTrace, OneCompleteEventPerTaskAndMirror) {
  TaskGraph g;
  const auto c = g.add_resource("compute stream", 0);
  const auto nic = g.add_resource("nic send", 0);
  const auto net = g.add_resource("network", -1);
  const auto a = g.add_task("qkv", TaskKind::kCompute, c, 1e-3, {});
  const auto x = g.add_task("all-gather", TaskKind::kCommunication, net, 2e-3, {a});
  g.add_mirror(x, nic);
  const auto trace = chrome_trace(g, g.run(), {"gpu0"});
  int complete = 0;
  double gather_ts = -1;
  for (const auto& e : trace.at("traceEvents")) {
    if (e.at("ph") == "X") {
      ++complete;
      if (e.at("name") == "all-gather") gather_ts = e.at("ts").get<double>();
    }
  }
  EXPECT_EQ(complete, 3);
  EXPECT_DOUBLE_EQ(gather_ts, 1000.0);  // microseconds
}

}  // namespace moss::core
