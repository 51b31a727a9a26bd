#include "cli/signal_stop.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

namespace bgm {
namespace {

const char* SignalName(int sig) { return sig == SIGINT ? "SIGINT" : "SIGTERM"; }

// Waits up to `ms` for SIGINT/SIGTERM; the signal, or 0.
int WaitForSignal(const sigset_t& set, long ms) {
  timespec timeout{ms / 1000, (ms % 1000) * 1000 * 1000};
  const int sig = sigtimedwait(&set, nullptr, &timeout);
  return (sig == SIGINT || sig == SIGTERM) ? sig : 0;
}

}  // namespace

SignalStop::SignalStop(std::chrono::milliseconds grace) : grace_(grace) {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  waiter_ = std::jthread([this](std::stop_token st) {
    int sig = 0;
    while (!st.stop_requested() && sig == 0) sig = WaitForSignal(set_, 200);
    if (sig == 0) return;
    spdlog::info(
        "Received {}; finishing the current batch and releasing the lock (at most {} s, "
        "BGMIGRATE_SHUTDOWN_TIMEOUT_SECONDS)",
        SignalName(sig), static_cast<double>(grace_.count()) / 1000.0);
    source_.request_stop();
    // The command returns and destroys this object (stopping this thread) once it has stopped.
    const auto deadline = std::chrono::steady_clock::now() + grace_;
    int second = 0;
    while (!st.stop_requested() && second == 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      second = WaitForSignal(set_, std::min<long>(200, static_cast<long>(left.count())));
    }
    if (st.stop_requested()) return;
    spdlog::error(
        "{}; exiting now without a clean stop: the batch in flight was not checkpointed and "
        "will be copied again from the last checkpoint by the next worker once this worker's "
        "lease expires",
        second != 0 ? std::string("Received ") + SignalName(second) + " again"
                    : "Could not stop within " +
                          std::to_string(static_cast<double>(grace_.count()) / 1000.0) +
                          " s (BGMIGRATE_SHUTDOWN_TIMEOUT_SECONDS): a database is not answering");
    spdlog::default_logger()->flush();
    std::fflush(nullptr);
    std::_Exit(1);
  });
}

}  // namespace bgm
