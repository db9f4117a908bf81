#pragma once

#include <cstdint>
#include <queue>
#include <utility>
#include <vector>

namespace moss::core {

/// Min-heap of (time, payload) events; equal times pop in insertion order, so runs are
/// deterministic.
class EventQueue {
 public:
  void push(double time_s, int payload) { heap_.push({time_s, seq_++, payload}); }
  [[nodiscard]] bool empty() const { return heap_.empty(); }
  [[nodiscard]] std::size_t size() const { return heap_.size(); }
  /// Removes and returns the earliest event as (time, payload).
  std::pair<double, int> pop() {
    const Entry e = heap_.top();
    heap_.pop();
    return {e.time_s, e.payload};
  }

 private:
  struct Entry {
    double time_s;
    std::uint64_t seq;
    int payload;
    bool operator>(const Entry& o) const {
      return time_s != o.time_s ? time_s > o.time_s : seq > o.seq;
    }
  };
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
  std::uint64_t seq_ = 0;
};

}  // namespace moss::core
