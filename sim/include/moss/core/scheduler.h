#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moss::core {

using TaskId = int;
using ResourceId = int;

/// What a task does; used to drop communication for the compute-only schedule and to colour the
/// trace.
enum class TaskKind { kCompute, kCompression, kCommunication, kOptimizer };

/// A serial resource (a GPU stream, the network) that runs one task at a time, in the order the
/// tasks were added (like a CUDA stream).
struct Resource {
  std::string name;  ///< track name in the trace ("compute", "nic send", ...)
  int device = 0;    ///< trace process: the GPU it belongs to (-1: the whole cluster)
};

struct Task {
  std::string name;
  TaskKind kind = TaskKind::kCompute;
  ResourceId resource = 0;
  double duration_s = 0;
  std::vector<TaskId> successors;
  int dependencies = 0;
  std::vector<ResourceId> mirrors;  ///< extra trace tracks that show this task (a collective's NICs)
  double bytes = 0;                 ///< bytes this task sends per participant (communication)
};

/// Start and end of every task.
struct Schedule {
  std::vector<double> start_s;
  std::vector<double> end_s;
  double makespan_s = 0;
};

/// A DAG of tasks on in-order serial resources, run by an event queue: a task starts when its
/// dependencies are done and the task added before it on the same resource has finished.
class TaskGraph {
 public:
  ResourceId add_resource(std::string name, int device);
  /// Adds a task that starts after every task in `after`.
  TaskId add_task(std::string name, TaskKind kind, ResourceId resource, double duration_s,
                  const std::vector<TaskId>& after);
  void add_dependency(TaskId before, TaskId after);
  void add_mirror(TaskId task, ResourceId track);
  void set_bytes(TaskId task, double bytes);

  [[nodiscard]] const std::vector<Task>& tasks() const { return tasks_; }
  [[nodiscard]] const std::vector<Resource>& resources() const { return resources_; }

  /// Runs the graph. With `free_communication`, communication tasks take no time (the schedule
  /// of compute alone). Throws moss::InternalError on a cycle.
  [[nodiscard]] Schedule run(bool free_communication = false) const;

 private:
  std::vector<Resource> resources_;
  std::vector<Task> tasks_;
};

}  // namespace moss::core
