#include "moss/core/event_queue.h"

#include <gtest/gtest.h>

namespace moss::core {

TEST(EventQueue, PopsInTimeOrder) {
  EventQueue q;
  q.push(3.0, 30);
  q.push(1.0, 10);
  q.push(2.0, 20);
  EXPECT_EQ(q.pop().second, 10);
  EXPECT_EQ(q.pop().second, 20);
  EXPECT_EQ(q.pop().second, 30);
  EXPECT_TRUE(q.empty());
}

TEST(EventQueue, EqualTimesPopInInsertionOrder) {
  EventQueue q;
  for (int i = 0; i < 100; ++i) q.push(5.0, i);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(q.pop().second, i);
}

}  // namespace moss::core
