// The web server of `bgmigrate web` and `bgmigrate up`: the UI, the JSON API and /metrics
// (see api.h) over HTTP/1.1 on cpp-httplib, with a thread per connection answering requests and
// a small pool of control-store connections shared between them.
//
// Every response carries X-Content-Type-Options: nosniff, X-Frame-Options: DENY and a
// Content-Security-Policy that allows only the server's own files; no CORS headers are sent,
// so other origins cannot call the API from a browser. Bodies over 1 MiB get a JSON 413
// (whether sent with a Content-Length or chunked; reading stops at the limit), multipart bodies
// a JSON 415. A request that does not arrive whole within `request_timeout` gets a JSON 408,
// and a connection beyond `max_connections` a JSON 503, each closing its connection
// (bounded_http_server.h), so slow clients cannot take the threads that answer the others.
//
//   Status s = RunWebServer(options, stop_token, [](int port) { ... });
#pragma once

#include <chrono>
#include <functional>
#include <stop_token>
#include <string>

#include "common/status.h"
#include "core/manager.h"  // ControlStoreFactory
#include "core/registry.h"

namespace bgm {

struct WebOptions {
  std::string bind = "127.0.0.1";      // BGMIGRATE_BIND
  int port = 3030;                     // BGMIGRATE_PORT; 0 picks a free port
  std::string admin_api_key;           // ADMIN_API_KEY; empty refuses every change
  bool enabled = true;                 // LANGFUSE_ENABLE_BACKGROUND_MIGRATIONS
  ControlStoreFactory factory;         // opens one control-store connection
  const Registry* registry = nullptr;  // required
  int max_connections = 64;            // served at once (>= 1); more are answered 503
  // A request's line, headers and body must arrive within this (> 0), or it is answered 408.
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
};

// Serves until `stop` is requested, then stops accepting, lets requests in flight finish and
// returns OK. Once listening it logs "Web UI listening on http://HOST:PORT" and calls
// `on_listening` with the real port (useful with port 0).
// kUnavailable when the address cannot be bound, saying why and which setting to change
// ("port 3030 on 127.0.0.1 is in use; set BGMIGRATE_PORT to a free port"); kInvalidArgument
// for limits out of range.
Status RunWebServer(const WebOptions& options, std::stop_token stop,
                    std::function<void(int port)> on_listening = {});

}  // namespace bgm
