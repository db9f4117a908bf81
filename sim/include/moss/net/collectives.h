#pragma once

#include <vector>

#include "moss/net/backend.h"
#include "moss/net/flow.h"

namespace moss::net {

/// A collective as phases that run one after the other (each waits for the previous to finish,
/// as the steps of a ring algorithm do). Several groups (data-parallel replicas) run the same
/// collective at once: their flows share each phase, so they contend where they share links.
struct CollectivePlan {
  /// A phase and how many times it runs back to back (ring steps repeat the same flows).
  struct Step {
    Phase phase;
    int repeat = 1;
  };
  std::vector<Step> steps;
  double bytes_sent_per_rank = 0;  ///< payload one rank sends in the whole collective
};

/// Ranks of one group, in ring order (GPU vertex ids).
using Group = std::vector<int>;

/// Ring all-gather: n-1 steps, rank i sends one block of `block_bytes` to rank i+1 per step.
[[nodiscard]] CollectivePlan ring_allgather(const std::vector<Group>& groups, double block_bytes);
/// Ring reduce-scatter: same traffic pattern as the all-gather (n-1 steps of one block).
[[nodiscard]] CollectivePlan ring_reduce_scatter(const std::vector<Group>& groups, double block_bytes);
/// Ring all-reduce of `total_bytes` per rank: reduce-scatter + all-gather, 2 (n-1) steps of
/// total_bytes / n.
[[nodiscard]] CollectivePlan ring_allreduce(const std::vector<Group>& groups, double total_bytes);
/// One ring step: every rank sends `bytes` to the next rank (Ring Attention's K/V rotation).
[[nodiscard]] CollectivePlan ring_shift(const std::vector<Group>& groups, double bytes);

/// Time of a collective: the sum of its phases' makespans. A repeated phase is handed to the
/// backend once, or `repeat` times with `every_transfer` (to measure what memoisation hides).
[[nodiscard]] double run_collective(NetworkBackend& backend, const CollectivePlan& plan, bool every_transfer = false);

}  // namespace moss::net
