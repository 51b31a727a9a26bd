#include "testing/running_web_server.h"

#include <future>

#include "core/pg_control_store.h"

namespace bgm::testing {

ControlStoreFactory PgStoreFactory(const std::string& url) {
  return [url]() -> Result<std::unique_ptr<ControlStore>> {
    Result<std::unique_ptr<PgControlStore>> s = PgControlStore::Open(url, std::chrono::seconds(60));
    if (!s.ok()) return s.status();
    return std::unique_ptr<ControlStore>(std::move(*s));
  };
}

RunningWebServer::RunningWebServer(WebOptions options) {
  std::promise<int> port;
  std::future<int> listening = port.get_future();
  thread_ = std::jthread([this, options, p = std::move(port)](std::stop_token stop) mutable {
    bool listened = false;
    result_ = RunWebServer(options, stop, [&](int real) {
      listened = true;
      p.set_value(real);
    });
    if (!listened) p.set_value(-1);
  });
  if (listening.wait_for(std::chrono::seconds(10)) == std::future_status::ready) {
    port_ = listening.get();
  }
}

Status RunningWebServer::Stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
  return result_;
}

}  // namespace bgm::testing
