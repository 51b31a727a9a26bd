// Slow clients against the real web server (RunWebServer, as `bgmigrate web` runs it) on a
// real Postgres (issue 12): connections that send a request line and then one header line every
// second ("slowloris") used to hold all of cpp-httplib's 8 worker threads, so /api/health stopped
// answering until they left. Now each request must arrive whole within the request timeout
// (the server answers 408 and closes), and connections over the cap are refused at once with 503.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "core/pg_control_store.h"
#include "core/registry.h"
#include "testing/example_app.h"
#include "testing/running_web_server.h"
#include "testing/test_database.h"
#include "web/server.h"

namespace bgm {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;
using testing::TestDatabase;

// One TCP connection that sends a request line at once and then one header line per `Dribble`,
// never the blank line that ends the headers. Owns its socket.
class SlowClient {
 public:
  explicit SlowClient(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    connected_at_ = steady_clock::now();
    if (connected_) Send("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  }
  ~SlowClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  SlowClient(const SlowClient&) = delete;
  SlowClient& operator=(const SlowClient&) = delete;

  bool connected() const { return connected_; }
  bool closed() const { return closed_at_.has_value(); }
  void Dribble() {
    if (!closed()) Send("X-Slow-" + std::to_string(++headers_) + ": still typing\r\n");
  }
  // Reads what the server sent, noting when it closed the connection. Never blocks.
  void Poll() {
    if (closed()) return;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        received_.append(buf, static_cast<size_t>(n));
      } else {
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) MarkClosed();
        return;
      }
    }
  }
  int fd() const { return fd_; }
  const std::string& received() const { return received_; }
  int headers_sent() const { return headers_; }
  // How long after connecting the server closed the connection.
  milliseconds open_for() const {
    return std::chrono::duration_cast<milliseconds>(closed_at_.value_or(steady_clock::now()) -
                                                    connected_at_);
  }

 private:
  void Send(const std::string& bytes) {
    if (::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) < 0) MarkClosed();
  }
  // The server closed the connection: close ours too, as a client would.
  void MarkClosed() {
    if (closed_at_) return;
    closed_at_ = steady_clock::now();
    ::close(fd_);
    fd_ = -1;
  }

  int fd_;
  bool connected_ = false;
  int headers_ = 0;
  std::string received_;
  steady_clock::time_point connected_at_;
  std::optional<steady_clock::time_point> closed_at_;
};

// Dribbles a header line on every open client each `interval` and watches for closes, until
// all are closed or `limit` has passed. Runs on its own thread; the clients outlive it.
class Dribbler {
 public:
  Dribbler(std::vector<std::unique_ptr<SlowClient>>& clients, milliseconds interval,
           milliseconds limit)
      : thread_([&clients, interval, limit](std::stop_token stop) {
          const auto end = steady_clock::now() + limit;
          auto next = steady_clock::now() + interval;
          while (!stop.stop_requested() && steady_clock::now() < end) {
            std::vector<pollfd> fds;
            for (const auto& c : clients) {
              if (!c->closed()) fds.push_back({c->fd(), POLLIN, 0});
            }
            if (fds.empty()) return;
            ::poll(fds.data(), fds.size(), 50);
            for (const auto& c : clients) c->Poll();
            if (steady_clock::now() >= next) {
              for (const auto& c : clients) c->Dribble();
              next += interval;
            }
          }
        }) {}
  void Join() { thread_.join(); }

 private:
  std::jthread thread_;
};

class SlowClientsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(db_.ok()); }

  WebOptions Options() {
    WebOptions o;
    o.bind = "127.0.0.1";
    o.port = 0;
    o.admin_api_key = "slow-clients-key";
    o.factory = testing::PgStoreFactory(db_.url());
    o.registry = &testing::ExampleRegistry();
    return o;
  }

  // GET /api/health on a fresh connection, with `within` to connect and to answer; the status
  // (or -1) and how long it took.
  static std::pair<int, milliseconds> Health(int port, milliseconds within) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(within);
    client.set_read_timeout(within);
    const auto start = steady_clock::now();
    httplib::Result r = client.Get("/api/health");
    return {r ? r->status : -1,
            std::chrono::duration_cast<milliseconds>(steady_clock::now() - start)};
  }

  TestDatabase db_;
};

constexpr int kSlowClients = 20;
constexpr milliseconds kRequestTimeout = seconds(3);
constexpr milliseconds kDribbleEvery = seconds(1);

TEST_F(SlowClientsTest, EightSlowClientsTookTheWebUiAndApiDown) {
  WebOptions options = Options();
  options.request_timeout = kRequestTimeout;
  testing::RunningWebServer server(options);
  ASSERT_GT(server.port(), 0);
  ASSERT_EQ(Health(server.port(), seconds(1)).first, 200) << "the server answers before the test";

  std::vector<std::unique_ptr<SlowClient>> clients;
  for (int i = 0; i < kSlowClients; ++i) {
    clients.push_back(std::make_unique<SlowClient>(server.port()));
    ASSERT_TRUE(clients.back()->connected());
  }
  Dribbler dribbler(clients, kDribbleEvery, kRequestTimeout + seconds(12));

  // While all of them are connected and dribbling, the API answers at once.
  std::this_thread::sleep_for(milliseconds(500));  // the server has accepted them
  for (int i = 0; i < 5; ++i) {
    const auto [status, took] = Health(server.port(), seconds(1));
    EXPECT_EQ(status, 200) << "health check " << i << " with " << kSlowClients
                           << " slow clients connected (took " << took.count() << " ms)";
    EXPECT_LT(took, seconds(1));
    std::this_thread::sleep_for(milliseconds(200));
  }

  // The server closes each slow connection once its request timeout has passed, with a 408.
  dribbler.Join();
  for (const auto& c : clients) {
    EXPECT_TRUE(c->closed()) << "a slow client is still connected after " << c->open_for().count()
                             << " ms and " << c->headers_sent() << " header lines";
    EXPECT_GE(c->open_for(), kRequestTimeout - milliseconds(100));
    EXPECT_LT(c->open_for(), kRequestTimeout + milliseconds(1500));
    EXPECT_EQ(c->received().substr(0, 12), "HTTP/1.1 408") << c->received().substr(0, 300);
    EXPECT_NE(c->received().find("\"error\":\"request timeout\""), std::string::npos)
        << c->received().substr(0, 500);
  }
  const auto [status, took] = Health(server.port(), seconds(1));
  EXPECT_EQ(status, 200) << "after the slow clients (took " << took.count() << " ms)";
}

TEST_F(SlowClientsTest, ConnectionsOverTheCapAreRefusedAtOnceWith503) {
  WebOptions options = Options();
  options.request_timeout = kRequestTimeout;
  options.max_connections = 4;
  testing::RunningWebServer server(options);
  ASSERT_GT(server.port(), 0);

  std::vector<std::unique_ptr<SlowClient>> clients;
  for (int i = 0; i < options.max_connections; ++i) {
    clients.push_back(std::make_unique<SlowClient>(server.port()));
    ASSERT_TRUE(clients.back()->connected());
  }
  Dribbler dribbler(clients, kDribbleEvery, kRequestTimeout + seconds(12));
  std::this_thread::sleep_for(milliseconds(500));  // the server has accepted them

  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(seconds(1));
  const auto start = steady_clock::now();
  httplib::Result refused = client.Get("/api/health");
  const auto took = std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
  ASSERT_TRUE(refused) << "no answer over the cap: " << httplib::to_string(refused.error());
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->get_header_value("Connection"), "close");
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  EXPECT_NE(refused->body.find("\"error\":\"too many connections\""), std::string::npos)
      << refused->body;
  EXPECT_LT(took, milliseconds(500));

  dribbler.Join();  // the slow ones time out and free their places
  int status = -1;
  for (const auto end = steady_clock::now() + seconds(1);
       status != 200 && steady_clock::now() < end; std::this_thread::sleep_for(milliseconds(20))) {
    status = Health(server.port(), seconds(1)).first;
  }
  EXPECT_EQ(status, 200) << "a second after the slow clients were answered 408 and closed";
}

TEST_F(SlowClientsTest, AStopDoesNotWaitForSlowClients) {
  WebOptions options = Options();
  options.request_timeout = seconds(60);
  testing::RunningWebServer server(options);
  ASSERT_GT(server.port(), 0);
  std::vector<std::unique_ptr<SlowClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<SlowClient>(server.port()));
    ASSERT_TRUE(clients.back()->connected());
  }
  Dribbler dribbler(clients, kDribbleEvery, seconds(15));
  std::this_thread::sleep_for(milliseconds(500));  // the server is reading their headers
  const auto start = steady_clock::now();
  EXPECT_TRUE(server.Stop().ok());
  EXPECT_LT(steady_clock::now() - start, seconds(2)) << "the stop waited for the slow clients";
  dribbler.Join();
  for (const auto& c : clients) {
    EXPECT_TRUE(c->closed()) << "a slow client is still connected after the server stopped";
  }
}

}  // namespace
}  // namespace bgm
