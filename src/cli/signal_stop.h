// SignalStop: turns SIGINT/SIGTERM into a stop request for the long-running commands, and
// bounds how long stopping may take: if the process has not finished `grace` after the signal
// (a database that does not answer can hold a thread), or a second signal arrives, it exits at
// once with status 1, logging that the batch in flight was not checkpointed and will be copied
// again by the next worker (as after kill -9, which the engine already survives).
// Blocks both signals in every thread created after it; construct it before any thread.
#pragma once

#include <signal.h>

#include <chrono>
#include <stop_token>
#include <thread>

namespace bgm {

class SignalStop {
 public:
  explicit SignalStop(std::chrono::milliseconds grace);
  SignalStop(const SignalStop&) = delete;
  SignalStop& operator=(const SignalStop&) = delete;

  std::stop_token token() const { return source_.get_token(); }

 private:
  sigset_t set_;
  std::chrono::milliseconds grace_;
  std::stop_source source_;
  std::jthread waiter_;  // last: started once the members it uses exist
};

}  // namespace bgm
