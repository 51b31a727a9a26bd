// The web server of `bgmigrate web` (RunWebServer) on an ephemeral loopback port for the length
// of one test, and the Postgres control-store factory it serves from. One thread per server;
// the destructor stops it.
#pragma once

#include <string>
#include <thread>

#include "core/manager.h"
#include "web/server.h"

namespace bgm::testing {

// Opens a PgControlStore on `url` (lease 60 s) each time it is called.
ControlStoreFactory PgStoreFactory(const std::string& url);

class RunningWebServer {
 public:
  // Starts the server and waits (up to 10 s) until it listens; port() is -1 when it did not.
  explicit RunningWebServer(WebOptions options);
  ~RunningWebServer() { (void)Stop(); }
  RunningWebServer(const RunningWebServer&) = delete;
  RunningWebServer& operator=(const RunningWebServer&) = delete;

  // Stops the server; returns what RunWebServer returned, once it has.
  Status Stop();
  int port() const { return port_; }

 private:
  int port_ = -1;
  Status result_;
  std::jthread thread_;
};

}  // namespace bgm::testing
