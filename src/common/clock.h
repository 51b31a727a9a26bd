// Clock: the engine's source of time and of waiting, so tests can advance time instead of
// sleeping. SystemClock is the real one; FakeClock (tests) moves only when told to.
// Both are thread-safe.
//
//   if (!clock.SleepFor(std::chrono::seconds(5), stop)) return;  // stop was requested
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>

namespace bgm {

class Clock {
 public:
  using Duration = std::chrono::milliseconds;
  using TimePoint = std::chrono::time_point<std::chrono::system_clock, Duration>;

  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  // Waits `d`. Returns false as soon as `stop` is requested (true when the time passed).
  virtual bool SleepFor(Duration d, std::stop_token stop) = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override;
  bool SleepFor(Duration d, std::stop_token stop) override;
};

// A clock for tests: Now() changes only through Advance(). Sleepers wake when the time they
// wait for has been reached or their stop token fires.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = TimePoint(std::chrono::hours(24 * 365 * 50)));
  TimePoint Now() const override;
  bool SleepFor(Duration d, std::stop_token stop) override;

  void Advance(Duration d);
  // Blocks until at least `n` threads are inside SleepFor (a test's way to know a worker is
  // idle before advancing time). Returns false after `real_timeout` of real time.
  bool WaitForSleepers(int n, std::chrono::milliseconds real_timeout = std::chrono::seconds(10));

 private:
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  TimePoint now_;     // guarded by mu_
  int sleepers_ = 0;  // guarded by mu_
};

}  // namespace bgm
