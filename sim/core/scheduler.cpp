#include "moss/core/scheduler.h"

#include <algorithm>
#include <utility>

#include "moss/core/error.h"
#include "moss/core/event_queue.h"

namespace moss::core {

ResourceId TaskGraph::add_resource(std::string name, int device) {
  resources_.push_back({std::move(name), device});
  return static_cast<ResourceId>(resources_.size() - 1);
}

TaskId TaskGraph::add_task(std::string name, TaskKind kind, ResourceId resource, double duration_s,
                           const std::vector<TaskId>& after) {
  MOSS_CHECK(resource >= 0 && resource < static_cast<ResourceId>(resources_.size()),
             "task on an unknown resource");
  MOSS_CHECK(duration_s >= 0, "task durations are non-negative");
  const auto id = static_cast<TaskId>(tasks_.size());
  Task t;
  t.name = std::move(name);
  t.kind = kind;
  t.resource = resource;
  t.duration_s = duration_s;
  tasks_.push_back(std::move(t));
  for (TaskId before : after) add_dependency(before, id);
  return id;
}

void TaskGraph::add_dependency(TaskId before, TaskId after) {
  MOSS_CHECK(before >= 0 && before < after, "dependencies point to earlier tasks");
  tasks_[static_cast<std::size_t>(before)].successors.push_back(after);
  ++tasks_[static_cast<std::size_t>(after)].dependencies;
}

void TaskGraph::add_mirror(TaskId task, ResourceId track) {
  tasks_[static_cast<std::size_t>(task)].mirrors.push_back(track);
}

void TaskGraph::set_bytes(TaskId task, double bytes) {
  tasks_[static_cast<std::size_t>(task)].bytes = bytes;
}

Schedule TaskGraph::run(bool free_communication) const {
  // Resources are in-order queues, as CUDA streams are: each runs its tasks in the order they were
  // added, a task starting when its predecessor on the resource and its dependencies are done.
  // Start times are then a max-plus function of the durations, so a shorter task never delays
  // anything (no list-scheduling anomalies: more bandwidth never makes a step slower).
  const std::size_t n = tasks_.size();
  Schedule s;
  s.start_s.assign(n, 0.0);
  s.end_s.assign(n, 0.0);
  std::vector<int> waiting(n);
  std::vector<double> ready_at(n, 0.0);
  std::vector<std::vector<TaskId>> order(resources_.size());
  for (std::size_t i = 0; i < n; ++i) {
    waiting[i] = tasks_[i].dependencies;
    order[static_cast<std::size_t>(tasks_[i].resource)].push_back(static_cast<TaskId>(i));
  }
  std::vector<std::size_t> next(resources_.size(), 0);
  std::vector<char> busy(resources_.size(), 0);
  EventQueue events;

  auto duration = [&](const Task& t) {
    return free_communication && t.kind == TaskKind::kCommunication ? 0.0 : t.duration_s;
  };
  auto try_start = [&](ResourceId r, double now) {
    const auto ri = static_cast<std::size_t>(r);
    if (busy[ri] || next[ri] >= order[ri].size()) return;
    const TaskId id = order[ri][next[ri]];
    const auto i = static_cast<std::size_t>(id);
    if (waiting[i] != 0) return;
    ++next[ri];
    busy[ri] = 1;
    s.start_s[i] = std::max(now, ready_at[i]);
    s.end_s[i] = s.start_s[i] + duration(tasks_[i]);
    events.push(s.end_s[i], id);
  };

  for (ResourceId r = 0; r < static_cast<ResourceId>(resources_.size()); ++r) try_start(r, 0.0);
  std::size_t finished = 0;
  while (!events.empty()) {
    const auto [now, id] = events.pop();
    ++finished;
    const Task& t = tasks_[static_cast<std::size_t>(id)];
    busy[static_cast<std::size_t>(t.resource)] = 0;
    for (TaskId succ : t.successors) {
      const auto j = static_cast<std::size_t>(succ);
      ready_at[j] = std::max(ready_at[j], now);
      if (--waiting[j] == 0) try_start(tasks_[j].resource, now);
    }
    try_start(t.resource, now);
    s.makespan_s = std::max(s.makespan_s, now);
  }
  MOSS_CHECK(finished == n, "the task graph has a cycle or a resource order that contradicts it");
  return s;
}

}  // namespace moss::core
