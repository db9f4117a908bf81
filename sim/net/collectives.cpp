#include "moss/net/collectives.h"

#include "moss/core/error.h"

namespace moss::net {

namespace {

Phase shift_phase(const std::vector<Group>& groups, double bytes) {
  Phase phase;
  for (const Group& g : groups) {
    const std::size_t n = g.size();
    if (n < 2) continue;
    for (std::size_t i = 0; i < n; ++i) phase.push_back({g[i], g[(i + 1) % n], bytes, 0.0});
  }
  return phase;
}

std::size_t group_size(const std::vector<Group>& groups) {
  MOSS_CHECK(!groups.empty(), "a collective needs at least one group");
  for (const Group& g : groups) MOSS_CHECK(g.size() == groups.front().size(), "groups differ in size");
  return groups.front().size();
}

CollectivePlan repeated_shift(const std::vector<Group>& groups, double bytes, std::size_t steps) {
  CollectivePlan plan;
  if (bytes <= 0 || steps == 0) return plan;
  const Phase phase = shift_phase(groups, bytes);
  if (phase.empty()) return plan;
  plan.steps.push_back({phase, static_cast<int>(steps)});
  plan.bytes_sent_per_rank = bytes * static_cast<double>(steps);
  return plan;
}

}  // namespace

CollectivePlan ring_allgather(const std::vector<Group>& groups, double block_bytes) {
  const std::size_t n = group_size(groups);
  return repeated_shift(groups, block_bytes, n > 0 ? n - 1 : 0);
}

CollectivePlan ring_reduce_scatter(const std::vector<Group>& groups, double block_bytes) {
  return ring_allgather(groups, block_bytes);
}

CollectivePlan ring_allreduce(const std::vector<Group>& groups, double total_bytes) {
  const std::size_t n = group_size(groups);
  if (n < 2) return {};
  return repeated_shift(groups, total_bytes / static_cast<double>(n), 2 * (n - 1));
}

CollectivePlan ring_shift(const std::vector<Group>& groups, double bytes) {
  group_size(groups);
  return repeated_shift(groups, bytes, 1);
}

double run_collective(NetworkBackend& backend, const CollectivePlan& plan, bool every_transfer) {
  double total = 0;
  for (const auto& step : plan.steps) {
    if (!every_transfer) {
      total += backend.run_phase(step.phase).makespan_s * step.repeat;
      continue;
    }
    for (int i = 0; i < step.repeat; ++i) total += backend.run_phase(step.phase).makespan_s;
  }
  return total;
}

}  // namespace moss::net
