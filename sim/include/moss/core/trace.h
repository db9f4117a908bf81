#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moss/core/scheduler.h"

namespace moss::core {

/// Chrome trace-event JSON ({"traceEvents": [...]}, opens in Perfetto and chrome://tracing):
/// one process per device (named by `device_names`, resource device -1 becomes "cluster"),
/// one thread per resource, one complete ("X") event per task and per mirror track.
[[nodiscard]] nlohmann::json chrome_trace(const TaskGraph& graph, const Schedule& schedule,
                                          const std::vector<std::string>& device_names);

}  // namespace moss::core
