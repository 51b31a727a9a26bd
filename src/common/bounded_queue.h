// BoundedQueue: a FIFO between one producer and one consumer thread whose capacity is counted
// in a caller-defined cost (bytes), so a fast producer waits instead of growing memory.
// Thread-safe. Close() wakes both sides for good (a consumer that failed stops the producer).
//
//   BoundedQueue<Chunk> q(16 << 20);
//   producer: if (!q.Push(std::move(chunk), chunk.size())) return;  // closed
//   consumer: std::optional<Chunk> c = q.Pop();                     // nullopt once closed+empty
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

namespace bgm {

template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) {}

  // Blocks while the queue holds `capacity` or more (an item larger than the capacity is
  // accepted into an empty queue). False when the queue was closed.
  bool Push(T item, size_t cost) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return closed_ || used_ == 0 || used_ + cost <= capacity_; });
    if (closed_) return false;
    items_.emplace_back(std::move(item), cost);
    used_ += cost;
    not_empty_.notify_one();
    return true;
  }

  // Blocks until an item is there. nullopt when the queue is closed.
  std::optional<T> Pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (closed_) return std::nullopt;
    auto [item, cost] = std::move(items_.front());
    items_.pop_front();
    used_ -= cost;
    not_full_.notify_one();
    return std::move(item);
  }

  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    items_.clear();
    used_ = 0;
    not_full_.notify_all();
    not_empty_.notify_all();
  }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<std::pair<T, size_t>> items_;  // guarded by mu_
  size_t used_ = 0;                         // guarded by mu_
  bool closed_ = false;                     // guarded by mu_
};

}  // namespace bgm
