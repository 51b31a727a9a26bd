// BoundedHttpServer: cpp-httplib's Server with the two limits a server open to slow or hostile
// clients needs and httplib 0.11 lacks. Each request (line, headers and body) must arrive whole
// within `request_timeout`, or it is answered 408 and its connection closed (httplib's own read
// timeout applies to each recv, so a header line every few seconds held a thread for ever). At
// most `max_connections` connections are served at once, each on its own pool thread; one more
// is answered 503 and closed at once. Configure, bind, listen and stop it as an httplib::Server.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>

namespace bgm {

struct HttpLimits {
  int max_connections = 64;
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
};

class BoundedHttpServer : public httplib::Server {
 public:
  // `limits.max_connections` >= 1 and `limits.request_timeout` > 0 (asserted).
  explicit BoundedHttpServer(HttpLimits limits);

 private:
  // httplib calls this on a pool thread for each accepted connection: serves its requests
  // (keep-alive included) within the limits, then closes it.
  bool process_and_close_socket(socket_t sock) override;

  const HttpLimits limits_;
  std::atomic<int> open_{0};  // connections being served (refused ones not counted)
};

}  // namespace bgm
