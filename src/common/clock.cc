#include "common/clock.h"

#include <thread>

namespace bgm {

Clock::TimePoint SystemClock::Now() const {
  return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
}

bool SystemClock::SleepFor(Duration d, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  cv.wait_for(lock, stop, d, [] { return false; });
  return !stop.stop_requested();
}

FakeClock::FakeClock(TimePoint start) : now_(start) {}

Clock::TimePoint FakeClock::Now() const {
  std::lock_guard lock(mu_);
  return now_;
}

bool FakeClock::SleepFor(Duration d, std::stop_token stop) {
  std::unique_lock lock(mu_);
  const TimePoint until = now_ + d;
  ++sleepers_;
  cv_.notify_all();
  const bool reached = cv_.wait(lock, stop, [&] { return now_ >= until; });
  --sleepers_;
  return reached;
}

void FakeClock::Advance(Duration d) {
  {
    std::lock_guard lock(mu_);
    now_ += d;
  }
  cv_.notify_all();
}

bool FakeClock::WaitForSleepers(int n, std::chrono::milliseconds real_timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, real_timeout, [&] { return sleepers_ >= n; });
}

}  // namespace bgm
