// Failover between the nodes CLICKHOUSE_URL lists, against the real test server
// (BGM_TEST_CLICKHOUSE_URL) and loopback ports that are made unreachable in each way the rule
// covers: refused (a bound socket that never listens), a connect timeout (a listener whose
// accept queue is full, so SYNs are dropped), a name that does not resolve. And the failures
// the rule keeps on their node: a ClickHouse error, and a timeout after connecting (a frozen
// proxy); a stall that moves the process's node for later requests; and `bgmigrate migrate`
// with good and malformed lists. HTTP only: skipped when the tests run on the embedded engine.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "clickhouse/clickhouse_client.h"
#include "clickhouse/client_factory.h"
#include "clickhouse/row_binary.h"
#include "testing/freezable_proxy.h"
#include "testing/process.h"
#include "testing/test_clickhouse.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

std::string LoopbackUrl(int port) { return "http://127.0.0.1:" + std::to_string(port); }

// A loopback address of its own for each port the tests make unreachable (127.0.0.10, .11, ...),
// so that no two tests of this process list the same node: the client's choice of node is kept
// per CLICKHOUSE_URL for the life of the process.
sockaddr_in NextLoopbackAddress() {
  static std::atomic<uint32_t> next{10};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl((127u << 24) | next++);
  return addr;
}

std::string UrlOf(const sockaddr_in& addr) {
  char host[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &addr.sin_addr, host, sizeof host);
  return "http://" + std::string(host) + ":" + std::to_string(ntohs(addr.sin_port));
}
// A node's URL as the client shows it (libcurl's normal form: "/" for an empty path).
std::string Shown(const std::string& url) { return url + "/"; }

// A loopback port bound to a socket that never listens: every connection to it is refused, and
// no other process can take the port while this object lives.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = NextLoopbackAddress();
    socklen_t len = sizeof addr;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "could not bind a loopback port";
      return;
    }
    url_ = UrlOf(addr);
  }
  ~RefusingPort() {
    if (fd_ >= 0) close(fd_);
  }
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  const std::string& url() const { return url_; }

 private:
  int fd_ = -1;
  std::string url_;
};

// A loopback listener that never accepts, its accept queue (backlog 0) filled by connections
// of its own: the kernel drops further SYNs, so connecting to it times out, as with a host
// that is down or a firewall that drops packets.
class BlackHolePort {
 public:
  BlackHolePort() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = NextLoopbackAddress();
    socklen_t len = sizeof addr;
    if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listen_fd_, 0) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "could not listen on a loopback port";
      return;
    }
    url_ = UrlOf(addr);
    for (int i = 0; i < 3; ++i) {
      const int fd = socket(AF_INET, SOCK_STREAM, 0);
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      (void)connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);  // EINPROGRESS
      fillers_.push_back(fd);
    }
  }
  ~BlackHolePort() {
    for (int fd : fillers_) close(fd);
    if (listen_fd_ >= 0) close(listen_fd_);
  }
  BlackHolePort(const BlackHolePort&) = delete;
  BlackHolePort& operator=(const BlackHolePort&) = delete;
  const std::string& url() const { return url_; }

 private:
  int listen_fd_ = -1;
  std::string url_;
  std::vector<int> fillers_;
};

// Captures what spdlog's default logger writes while it lives.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::vector<std::string> Lines() const {
    std::vector<std::string> lines;
    std::istringstream in(out_.str());
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream out_;
};

// RowBinary for (id UInt64, s String) rows [first, first + count).
void EncodeRows(uint64_t first, uint64_t count, std::string& out) {
  RowBinaryWriter w(out);
  for (uint64_t id = first; id < first + count; ++id) {
    w.WriteUInt64(id);
    w.WriteString("row-" + std::to_string(id));
  }
}

class ClickHouseFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::TestClickHouseIsEmbedded()) {
      GTEST_SKIP() << "the embedded engine is one node in this process: no failover";
    }
    ASSERT_TRUE(ch_.ok());
    real_ = ch_.url();
    Status created = ch_.client().Execute(
        "CREATE TABLE rows (id UInt64, s String) ENGINE = MergeTree ORDER BY id");
    ASSERT_TRUE(created.ok()) << created.ToString();
  }

  std::unique_ptr<HttpClickHouseClient> Client(const std::string& url,
                                               milliseconds connect_timeout = seconds(5),
                                               milliseconds total_timeout = seconds(300)) {
    ClickHouseHttpConfig config;
    config.url = url;
    config.user = "default";
    config.database = ch_.database();
    config.connect_timeout = connect_timeout;
    config.total_timeout = total_timeout;
    Result<std::unique_ptr<HttpClickHouseClient>> c = HttpClickHouseClient::Create(config);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  testing::TestClickHouse ch_;
  std::string real_;
};

TEST_F(ClickHouseFailoverTest, RefusedFirstNodeIsSkippedAndTheClientStaysOnTheSecond) {
  RefusingPort refused;
  LogCapture log;
  std::unique_ptr<HttpClickHouseClient> client = Client(refused.url() + "," + real_);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->endpoint(), Shown(refused.url()));  // before any request

  Result<std::string> one = client->Query("SELECT 1");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(*one, "1\n");
  EXPECT_EQ(client->endpoint(), Shown(real_));
  EXPECT_EQ(client->failovers(), 1u);
  const uint64_t connections = client->connections_opened();
  EXPECT_EQ(connections, 1u);

  // Every later request goes straight to the working node over the same connection.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(client->Ping().ok());
    Result<std::string> q = client->Query("SELECT " + std::to_string(i));
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    EXPECT_EQ(*q, std::to_string(i) + "\n");
  }
  EXPECT_EQ(client->failovers(), 1u);
  EXPECT_EQ(client->endpoint(), Shown(real_));
  EXPECT_EQ(client->connections_opened(), connections);

  // The move is logged once, naming the unreachable node, why, and the node tried next; then
  // the node requests go to now.
  const std::vector<std::string> lines = log.Lines();
  ASSERT_EQ(lines.size(), 2u) << ::testing::PrintToString(lines);
  EXPECT_NE(lines[0].find("ClickHouse at " + Shown(refused.url()) + " is unreachable ("),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[0].find("Couldn't connect to server"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("trying the next node in CLICKHOUSE_URL, " + Shown(real_)),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find("ClickHouse: requests now go to " + Shown(real_) +
                          " (node 2 of 2 in "
                          "CLICKHOUSE_URL)"),
            std::string::npos)
      << lines[1];
}

TEST_F(ClickHouseFailoverTest, AnInsertWhoseFirstNodeRefusesIsStoredOnceOnTheNextNode) {
  RefusingPort refused;
  std::unique_ptr<HttpClickHouseClient> client = Client(refused.url() + "," + real_);
  ASSERT_NE(client, nullptr);
  int calls = 0;
  ChunkedInsertSource source([&](std::string& chunk) -> Result<bool> {
    EncodeRows(static_cast<uint64_t>(calls) * 1000, 1000, chunk);
    return ++calls < 10;
  });
  // The insert is the client's first request: nothing reached the refusing node, so the same
  // streamed body goes to the next one, read from the source once.
  Status s = client->Insert("INSERT INTO rows FORMAT RowBinary", source);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(source.fill_calls(), 10u);
  EXPECT_EQ(client->endpoint(), Shown(real_));
  EXPECT_EQ(client->failovers(), 1u);
  EXPECT_EQ(ch_.Scalar("SELECT concat(toString(count()), ' ', toString(uniqExact(id)), ' ', "
                       "toString(sum(id))) FROM rows"),
            "10000 10000 49995000");
}

TEST_F(ClickHouseFailoverTest, ANodeThatDoesNotAcceptWithinTheConnectTimeoutIsSkipped) {
  BlackHolePort black_hole;
  std::unique_ptr<HttpClickHouseClient> client =
      Client(black_hole.url() + "," + real_, milliseconds(1500));
  ASSERT_NE(client, nullptr);
  const auto start = SteadyClock::now();
  Result<std::string> version = client->Version();
  const auto elapsed = SteadyClock::now() - start;
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_EQ(client->endpoint(), Shown(real_));
  EXPECT_EQ(client->failovers(), 1u);
  EXPECT_GE(elapsed, milliseconds(1400));  // it waited for the first node's connect timeout
  EXPECT_LT(elapsed, milliseconds(4500));
  // Remembered: the next request does not wait for the black hole again.
  const auto again = SteadyClock::now();
  ASSERT_TRUE(client->Query("SELECT 1").ok());
  EXPECT_LT(SteadyClock::now() - again, milliseconds(1000));
}

TEST_F(ClickHouseFailoverTest, ANodeWhoseNameDoesNotResolveIsSkipped) {
  // .invalid never resolves (RFC 2606); a resolver that cannot be reached times out within the
  // connect timeout instead, which moves on the same way.
  static std::atomic<int> run{0};  // a name of its own each run (the choice of node is kept)
  const std::string unresolvable = "http://bgm-no-such-node-" + std::to_string(run++) + ".invalid";
  std::unique_ptr<HttpClickHouseClient> client = Client(unresolvable + "," + real_, seconds(2));
  ASSERT_NE(client, nullptr);
  Result<std::string> r = client->Query("SELECT 2");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "2\n");
  EXPECT_EQ(client->endpoint(), Shown(real_));
  EXPECT_EQ(client->failovers(), 1u);
}

TEST_F(ClickHouseFailoverTest, AllNodesDownIsUnavailableListingEachNodeAndItsFailure) {
  RefusingPort first;
  BlackHolePort second;
  std::unique_ptr<HttpClickHouseClient> client =
      Client(first.url() + "," + second.url(), milliseconds(1000));
  ASSERT_NE(client, nullptr);
  const auto start = SteadyClock::now();
  StringInsertSource body("x");
  Status insert = client->Insert("INSERT INTO rows FORMAT RowBinary", body);
  const auto elapsed = SteadyClock::now() - start;
  EXPECT_EQ(insert.code(), StatusCode::kUnavailable) << insert.ToString();
  EXPECT_TRUE(IsRetriable(insert.code()));
  const std::string& m = insert.message();
  EXPECT_TRUE(
      m.starts_with("could not connect to any of the 2 ClickHouse nodes in "
                    "CLICKHOUSE_URL: ClickHouse at " +
                    Shown(first.url()) + ": "))
      << m;
  const size_t refused = m.find("Couldn't connect to server");
  const size_t second_node =
      m.find("; ClickHouse at " + Shown(second.url()) + ": no connection within 1000 ms: ");
  EXPECT_NE(refused, std::string::npos) << m;
  EXPECT_NE(second_node, std::string::npos) << m;
  EXPECT_LT(refused, second_node) << "each node's failure follows its own URL: " << m;
  EXPECT_TRUE(m.ends_with("; check CLICKHOUSE_URL and that the servers are running")) << m;
  EXPECT_LT(elapsed, milliseconds(3500));  // the refusal is immediate, the timeout 1 s
  // Nothing worked, so the client still starts from where it was.
  EXPECT_EQ(client->endpoint(), Shown(first.url()));
  EXPECT_EQ(client->failovers(), 0u);
  EXPECT_EQ(client->Ping().code(), StatusCode::kUnavailable);
}

TEST_F(ClickHouseFailoverTest, AClickHouseErrorStaysOnItsNode) {
  RefusingPort refused;
  std::unique_ptr<HttpClickHouseClient> client = Client(real_ + "," + refused.url());
  ASSERT_NE(client, nullptr);
  Result<std::string> bad = client->Query("SELEC 1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(ClickHouseErrorCode(bad.status()), 62) << bad.status().ToString();
  EXPECT_EQ(client->endpoint(), Shown(real_));
  EXPECT_EQ(client->failovers(), 0u);
}

TEST_F(ClickHouseFailoverTest, AnInsertThatTimesOutAfterConnectingIsNotSentToTheNextNode) {
  // The first node takes the connection and then answers nothing: the insert's outcome there
  // is unknown, so it is returned, not sent to the next node.
  const std::string port = real_.substr(real_.rfind(':') + 1);
  testing::FreezableProxy proxy(std::stoi(port));
  proxy.Freeze();
  ClickHouseHttpConfig config;
  config.url = LoopbackUrl(proxy.port()) + "," + real_;
  config.user = "default";
  config.database = ch_.database();
  config.total_timeout = milliseconds(1500);
  config.stall_timeout = milliseconds(0);
  Result<std::unique_ptr<HttpClickHouseClient>> client = HttpClickHouseClient::Create(config);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  std::string rows;
  EncodeRows(0, 100, rows);
  StringInsertSource body(rows);
  Status s = (*client)->Insert("INSERT INTO rows FORMAT RowBinary", body);
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s.ToString();
  EXPECT_TRUE(s.message().starts_with(
      "request to ClickHouse at " + Shown(LoopbackUrl(proxy.port())) + " timed out after 1500 ms"))
      << s.message();
  EXPECT_EQ((*client)->endpoint(), Shown(LoopbackUrl(proxy.port())));
  EXPECT_EQ((*client)->failovers(), 0u);
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM rows"), "0");
}

TEST_F(ClickHouseFailoverTest, AClientOpenedAfterAMoveStartsOnTheNodeThatWorks) {
  RefusingPort refused;
  const std::string url = refused.url() + "," + real_;
  std::unique_ptr<HttpClickHouseClient> first = Client(url);
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->Ping().ok());
  EXPECT_EQ(first->failovers(), 1u);
  // Another client of the same CLICKHOUSE_URL in this process (a copy's next attempt, another
  // thread) starts where the first one moved to, and never tries the refusing node.
  std::unique_ptr<HttpClickHouseClient> second = Client(url);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->endpoint(), Shown(real_));
  Result<std::string> r = second->Query("SELECT 3");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(second->failovers(), 0u);
  // A different list is a different process-wide choice.
  std::unique_ptr<HttpClickHouseClient> other = Client(refused.url() + ", " + real_);
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->endpoint(), Shown(refused.url()));
}

TEST_F(ClickHouseFailoverTest, AStalledNodeIsLeftForLaterRequestsButItsInsertIsNotResent) {
  const std::string port = real_.substr(real_.rfind(':') + 1);
  testing::FreezableProxy proxy(std::stoi(port));
  proxy.Freeze();
  const std::string proxy_url = LoopbackUrl(proxy.port());
  ClickHouseHttpConfig config;
  config.url = proxy_url + "," + real_;
  config.user = "default";
  config.database = ch_.database();
  config.stall_timeout = milliseconds(1000);
  Result<std::unique_ptr<HttpClickHouseClient>> client = HttpClickHouseClient::Create(config);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  LogCapture log;
  std::string rows;
  EncodeRows(0, 100, rows);
  StringInsertSource body(rows);
  const auto start = SteadyClock::now();
  Status s = (*client)->Insert("INSERT INTO rows FORMAT RowBinary", body);
  EXPECT_LT(SteadyClock::now() - start, seconds(5));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_TRUE(s.message().starts_with("ClickHouse at " + Shown(proxy_url) + " stalled"))
      << s.message();
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM rows"), "0");  // not sent to the next node
  // Later requests go to the next node.
  EXPECT_EQ((*client)->endpoint(), Shown(real_));
  EXPECT_EQ((*client)->failovers(), 1u);
  const std::vector<std::string> lines = log.Lines();
  ASSERT_EQ(lines.size(), 1u) << ::testing::PrintToString(lines);
  EXPECT_NE(lines[0].find("ClickHouse at " + Shown(proxy_url) +
                          " stalled and did not answer /ping; later requests go to " +
                          Shown(real_) + " (node 2 of 2 in CLICKHOUSE_URL)"),
            std::string::npos)
      << lines[0];
  StringInsertSource again(rows);
  Status redo = (*client)->Insert("INSERT INTO rows FORMAT RowBinary", again);
  ASSERT_TRUE(redo.ok()) << redo.ToString();
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM rows"), "100");
}

TEST_F(ClickHouseFailoverTest, MigrateTakesAListAndStopsOnAMalformedOneWithItsError) {
  testing::TestDatabase pg;
  ASSERT_TRUE(pg.ok());
  auto migrate = [&](const std::string& clickhouse_url) {
    return testing::RunProcess(BGM_BINARY, {"migrate"},
                               {{"DATABASE_URL", pg.url()},
                                {"CLICKHOUSE_URL", clickhouse_url},
                                {"CLICKHOUSE_DB", ch_.database()}});
  };
  struct Case {
    std::string url, error;
  };
  for (const Case& c :
       {Case{real_ + ",", "CLICKHOUSE_URL lists 2 nodes separated by commas and node 2 is empty"},
        Case{"embedded:///tmp/x," + real_,
             "node 1 is embedded:, which cannot be combined with other nodes"},
        Case{real_ + ",ftp://127.0.0.1:21",
             "node 2 of 2 in CLICKHOUSE_URL must start with http:// or https://"}}) {
    SCOPED_TRACE(c.url);
    testing::ProcessResult r = migrate(c.url);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(c.error), std::string::npos) << r.err;
  }
  // A good list: the fast migrations reach the second node, and the log says so.
  RefusingPort refused;
  testing::ProcessResult ok = migrate(refused.url() + "," + real_);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.err.find("ClickHouse at " + Shown(refused.url()) + " is unreachable ("),
            std::string::npos)
      << ok.err;
  EXPECT_NE(ch_.Scalar("SELECT count() FROM bgmigrate_schema_versions"), "0");
}

}  // namespace
}  // namespace bgm
