#include "moss/core/trace.h"

namespace moss::core {

namespace {

const char* category(TaskKind k) {
  switch (k) {
    case TaskKind::kCompute: return "compute";
    case TaskKind::kCompression: return "compression";
    case TaskKind::kCommunication: return "communication";
    case TaskKind::kOptimizer: return "optimizer";
  }
  return "other";
}

}  // namespace

nlohmann::json chrome_trace(const TaskGraph& graph, const Schedule& schedule,
                            const std::vector<std::string>& device_names) {
  const int cluster_pid = static_cast<int>(device_names.size());
  auto pid_of = [&](const Resource& r) { return r.device < 0 ? cluster_pid : r.device; };
  nlohmann::json events = nlohmann::json::array();
  for (std::size_t d = 0; d < device_names.size(); ++d) {
    events.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", d}, {"tid", 0},
                      {"args", {{"name", device_names[d]}}}});
    events.push_back({{"ph", "M"}, {"name", "process_sort_index"}, {"pid", d}, {"tid", 0},
                      {"args", {{"sort_index", d}}}});
  }
  events.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", cluster_pid}, {"tid", 0},
                    {"args", {{"name", "cluster"}}}});
  const auto& resources = graph.resources();
  for (std::size_t r = 0; r < resources.size(); ++r) {
    events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", pid_of(resources[r])},
                      {"tid", r}, {"args", {{"name", resources[r].name}}}});
  }
  const auto& tasks = graph.tasks();
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const Task& t = tasks[i];
    const double ts_us = schedule.start_s[i] * 1e6;
    const double dur_us = (schedule.end_s[i] - schedule.start_s[i]) * 1e6;
    auto emit = [&](ResourceId r) {
      nlohmann::json e = {{"ph", "X"}, {"name", t.name}, {"cat", category(t.kind)},
                          {"pid", pid_of(resources[static_cast<std::size_t>(r)])}, {"tid", r},
                          {"ts", ts_us}, {"dur", dur_us}};
      if (t.bytes > 0) e["args"] = {{"bytes", t.bytes}};
      events.push_back(std::move(e));
    };
    emit(t.resource);
    for (ResourceId m : t.mirrors) emit(m);
  }
  return {{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}};
}

}  // namespace moss::core
