// FreezableProxy: a loopback TCP proxy in a thread of its own, for tests of a server that
// stops answering. It forwards every connection to 127.0.0.1:<target> until Freeze(): from
// then on it moves no byte in either direction and accepts no new connection, yet closes
// nothing, so peers see open, silent sockets (TCP still acknowledges what fits the buffers,
// as with a hung server or a proxy that stopped forwarding). Thaw() resumes forwarding.
// Thread-safe; the destructor stops the thread and closes every socket. Every wait of the
// thread is bounded (poll of at most 100 ms), so it always notices the destructor.
//
//   FreezableProxy proxy(5432);
//   std::string url = "postgresql://u@127.0.0.1:" + std::to_string(proxy.port()) + "/db";
//   proxy.Freeze();  ...  proxy.Thaw();
#pragma once

#include <atomic>
#include <thread>

namespace bgm::testing {

class FreezableProxy {
 public:
  explicit FreezableProxy(int target_port);  // ADD_FAILURE when it cannot listen
  ~FreezableProxy();
  FreezableProxy(const FreezableProxy&) = delete;
  FreezableProxy& operator=(const FreezableProxy&) = delete;

  int port() const { return port_; }
  void Freeze() { frozen_ = true; }
  void Thaw() { frozen_ = false; }
  // Connections forwarded so far.
  int connections() const { return connections_; }

 private:
  void Run(std::stop_token stop);

  const int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> frozen_{false};
  std::atomic<int> connections_{0};
  std::jthread thread_;  // last: starts after the members it uses
};

}  // namespace bgm::testing
