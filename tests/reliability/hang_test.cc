// Servers that stop answering without closing anything (issue 12): a Postgres behind a proxy
// that stops forwarding (FreezableProxy) and a ClickHouse frozen with SIGSTOP. The worker
// must notice within bounded times, treat the silence as an outage (status `waiting`, outage
// budget), stop on SIGTERM within its shutdown timeout, and the CLI and API must answer.
// Figures go to stdout as "figure: ..." lines for docs/reliability.md.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "clickhouse/clickhouse_client.h"
#include "postgres/pg_connection.h"
#include "testing/example_app.h"
#include "testing/freezable_proxy.h"
#include "testing/private_servers.h"
#include "testing/process.h"
#include "testing/test_clickhouse.h"

namespace bgm {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ChildProcess;
using testing::FreezableProxy;
using testing::PrivateServers;
using testing::ProcessResult;
using testing::RunProcess;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Polls `done` every 50 ms for up to `timeout`.
template <typename F>
bool WaitFor(F done, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

class HangTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(servers_.ok()); }

  // DATABASE_URL through the proxy.
  std::string ProxiedUrl() const {
    std::string url = servers_.database_url();
    const std::string from = ":" + std::to_string(servers_.pg_port()) + "/";
    const size_t at = url.find(from);
    EXPECT_NE(at, std::string::npos) << url;
    return url.replace(at, from.size(), ":" + std::to_string(proxy_.port()) + "/");
  }

  std::map<std::string, std::string> Env(const std::string& worker, bool proxied = false) const {
    return {{"DATABASE_URL", proxied ? ProxiedUrl() : servers_.database_url()},
            {"CLICKHOUSE_URL", servers_.clickhouse_url()},
            {"CLICKHOUSE_USER", "default"},
            {"CLICKHOUSE_PASSWORD", ""},
            {"BGMIGRATE_LEASE_SECONDS", "2"},
            {"BGMIGRATE_POLL_SECONDS", "0.2"},
            {"BGMIGRATE_WORKER_ID", worker}};
  }

  ProcessResult Cli(const std::vector<std::string>& args) {
    return RunProcess(BGM_BINARY, args, Env("cli"), seconds(300));
  }
  // The example application's data generator (examples/langfuse/seed).
  ProcessResult Seeder(const std::vector<std::string>& args) {
    return RunProcess(BGM_SEED_BINARY, args, Env("cli"), seconds(300));
  }

  std::unique_ptr<ChildProcess> Worker(const std::string& id, bool proxied,
                                       const std::map<std::string, std::string>& extra = {}) {
    auto env = Env(id, proxied);
    for (const auto& [k, v] : extra) env[k] = v;
    return std::make_unique<ChildProcess>(
        BGM_BINARY, std::vector<std::string>{"worker", "--exit-when-idle"}, env);
  }

  // Fast migrations, `traces` traces, and every migration but the traces copy paused; the copy
  // goes in batches of 500 with a pause, so that it is still running when a fault lands.
  void Seed(int traces) {
    ProcessResult m = Cli({"migrate"});
    ASSERT_EQ(m.exit_code, 0) << m.err;
    ProcessResult s = Seeder({"--traces", std::to_string(traces), "--observations", "0", "--scores",
                              "0", "--blob-bytes", "300", "--random-seed", "7"});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    PgRun("UPDATE background_migrations SET paused_at = now() WHERE name <> $1",
          {testing::kCopyTraces});
    PgRun("UPDATE background_migrations SET args = $1::jsonb WHERE name = $2",
          {nlohmann::json{{"batchSize", 500}, {"pauseMs", 200}}.dump(), testing::kCopyTraces});
  }

  PgConnection& Pg() {
    if (!pg_.has_value()) {
      Result<PgConnection> c = PgConnection::Connect(servers_.database_url());
      EXPECT_TRUE(c.ok()) << c.status().ToString();
      pg_.emplace(std::move(*c));
    }
    return *pg_;
  }
  std::string PgScalar(const std::string& sql, const std::vector<PgParam>& params = {}) {
    Result<PgResult> r = Pg().Exec(sql, params);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() && r->rows() > 0 && !r->IsNull(0, 0) ? std::string(r->Get(0, 0)) : "";
  }
  void PgRun(const std::string& sql, const std::vector<PgParam>& params = {}) {
    Status s = Pg().Run(sql, params);
    ASSERT_TRUE(s.ok()) << sql << ": " << s.ToString();
  }
  int64_t RowsProcessed() {
    const std::string v = PgScalar(
        "SELECT rows_processed FROM background_migrations WHERE name = $1", {testing::kCopyTraces});
    return v.empty() ? 0 : std::stoll(v);
  }
  nlohmann::json Listed() {
    ProcessResult r = Cli({"list", "--json"});
    if (r.exit_code != 0) return nullptr;
    for (const nlohmann::json& row : nlohmann::json::parse(r.out)) {
      if (row["name"] == testing::kCopyTraces) return row;
    }
    return nullptr;
  }

  // ClickHouse holds exactly the source's trace ids, once each after FINAL.
  void ExpectExactTracesCopy() {
    const std::string source_count = PgScalar("SELECT count(*) FROM traces");
    const std::string source_md5 =
        PgScalar("SELECT md5(string_agg(id, ',' ORDER BY id)) FROM traces");
    Result<std::unique_ptr<HttpClickHouseClient>> ch =
        HttpClickHouseClient::Create({.url = servers_.clickhouse_url(), .user = "default"});
    ASSERT_TRUE(ch.ok());
    Result<std::string> target = (*ch)->Query(
        "SELECT count(), uniqExact(id), "
        "lower(hex(MD5(arrayStringConcat(arraySort(groupArray(id)), ',')))) FROM traces FINAL "
        "FORMAT TabSeparated");
    ASSERT_TRUE(target.ok()) << target.status().ToString();
    std::istringstream fields(*target);
    std::string count, unique, md5;
    fields >> count >> unique >> md5;
    EXPECT_EQ(count, source_count) << "rows in ClickHouse after FINAL";
    EXPECT_EQ(unique, source_count) << "distinct ids (duplicates after FINAL)";
    EXPECT_EQ(md5, source_md5) << "the id sets differ";
    EXPECT_EQ(RowsProcessed(), std::stoll(source_count));
  }

  PrivateServers servers_;
  FreezableProxy proxy_{servers_.pg_port()};
  std::optional<PgConnection> pg_;
};

// Issue 12: behind a proxy that stopped forwarding, the copy waited forever, never `waiting`,
// and its outage budget never ran out.
TEST_F(HangTest, SilentPostgresMidCopyGoesWaitingThenFailsAtTheOutageBudget) {
  Seed(30000);
  auto worker = Worker("w-silent", /*proxied=*/true,
                       {{"BGMIGRATE_PG_READ_TIMEOUT_SECONDS", "1"},
                        {"BGMIGRATE_PG_CONNECT_TIMEOUT_SECONDS", "2"},
                        {"BGMIGRATE_OUTAGE_BUDGET_SECONDS", "8"}});
  ASSERT_TRUE(WaitFor([&] { return RowsProcessed() >= 3000; }, seconds(60)));
  proxy_.Freeze();
  const auto frozen = Clock::now();
  const int64_t rows_at_freeze = RowsProcessed();
  ASSERT_LT(rows_at_freeze, 30000) << "the copy finished before the proxy froze";
  const std::string where = "Postgres at 127.0.0.1:" + std::to_string(proxy_.port());

  // Waiting, with a reason naming Postgres and its silence (the control tables are behind the
  // same silent proxy, so the worker's log is where this shows).
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string err = worker->Stderr();
        const size_t at = err.find("is waiting: ");
        return at != std::string::npos &&
               err.find(where + " stopped answering: nothing received for 1.0 s", at) !=
                   std::string::npos;
      },
      seconds(15)))
      << worker->Stderr();
  const double waiting_after = SecondsSince(frozen);
  EXPECT_LE(waiting_after, 10.0);  // read timeout 1 s + the check's connect timeout 2 s

  // The outage budget runs out.
  ASSERT_TRUE(WaitFor(
      [&] { return worker->Stderr().find("failed: gave up after waiting ") != std::string::npos; },
      seconds(40)))
      << worker->Stderr();
  const double failed_after = SecondsSince(frozen);
  const std::string err = worker->Stderr();
  const std::string failure = err.substr(err.find("failed: gave up after waiting "));
  EXPECT_NE(failure.find("(BGMIGRATE_OUTAGE_BUDGET_SECONDS=8)"), std::string::npos) << failure;
  EXPECT_NE(failure.find(where), std::string::npos) << failure;
  EXPECT_GE(failed_after, 8.0);
  EXPECT_LE(failed_after, 30.0);

  // SIGTERM ends the worker within a few seconds although Postgres is still silent.
  worker->Signal(SIGTERM);
  const auto term = Clock::now();
  ASSERT_TRUE(worker->Wait(seconds(15)).has_value()) << "SIGTERM did not stop the worker";
  const double stop_s = SecondsSince(term);
  EXPECT_LE(stop_s, 12.0);  // within the default shutdown timeout (10 s)

  // Once Postgres answers again, a worker finishes the copy from the saved cursor.
  proxy_.Thaw();
  auto again = Worker("w-after", /*proxied=*/false);
  ASSERT_TRUE(again->Wait(seconds(120)).has_value()) << "the copy did not finish";
  EXPECT_EQ(Listed()["status"], "finished");
  std::cout << "figure: silent Postgres at row " << rows_at_freeze << ": waiting after "
            << waiting_after << " s, budget (8 s) exhausted after " << failed_after
            << " s, SIGTERM exit after " << stop_s << " s" << std::endl;
  ExpectExactTracesCopy();
}

// Issue 12: SIGTERM was logged but the worker stuck on a silent Postgres lived on.
TEST_F(HangTest, SigtermStopsAWorkerStuckOnASilentPostgresWithinItsShutdownTimeout) {
  Seed(30000);
  // A read timeout far beyond the test: the worker is certainly inside a wait on Postgres.
  auto worker = Worker(
      "w-stuck", /*proxied=*/true,
      {{"BGMIGRATE_PG_READ_TIMEOUT_SECONDS", "600"}, {"BGMIGRATE_SHUTDOWN_TIMEOUT_SECONDS", "2"}});
  ASSERT_TRUE(WaitFor([&] { return RowsProcessed() >= 3000; }, seconds(60)));
  proxy_.Freeze();
  std::this_thread::sleep_for(seconds(1));
  worker->Signal(SIGTERM);
  const auto term = Clock::now();
  ASSERT_TRUE(worker->Wait(seconds(20)).has_value()) << "SIGTERM did not stop the worker";
  const double stop_s = SecondsSince(term);
  EXPECT_LE(stop_s, 4.0);  // shutdown timeout 2 s
  EXPECT_NE(worker->Stderr().find("Could not stop within 2.0"), std::string::npos)
      << worker->Stderr();
  EXPECT_NE(worker->Stderr().find("will be copied again from the last checkpoint"),
            std::string::npos);
  proxy_.Thaw();
  auto again = Worker("w-after", /*proxied=*/false);
  ASSERT_TRUE(again->Wait(seconds(120)).has_value()) << "the copy did not finish";
  EXPECT_EQ(Listed()["status"], "finished");
  std::cout << "figure: SIGTERM with Postgres silent: exit after " << stop_s
            << " s (BGMIGRATE_SHUTDOWN_TIMEOUT_SECONDS=2)" << std::endl;
  ExpectExactTracesCopy();
}

// Issue 12: `web` answered neither /api/health nor the API while Postgres was silent.
TEST_F(HangTest, WebAnswers503WhilePostgresIsSilentAnd200Again) {
  ASSERT_EQ(Cli({"migrate"}).exit_code, 0);
  const int port = testing::FreeLoopbackPort();
  auto env = Env("web", /*proxied=*/true);
  env["BGMIGRATE_PORT"] = std::to_string(port);
  env["BGMIGRATE_PG_READ_TIMEOUT_SECONDS"] = "1";
  env["BGMIGRATE_PG_CONNECT_TIMEOUT_SECONDS"] = "2";
  ChildProcess web(BGM_BINARY, {"web"}, env);
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  auto get = [&](const std::string& path) {
    ProcessResult r = RunProcess(
        "/usr/bin/curl", {"-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "30", base + path},
        {}, seconds(40));
    return r.out;
  };
  ASSERT_TRUE(WaitFor([&] { return get("/api/health") == "200"; }, seconds(60))) << web.Stderr();
  ASSERT_EQ(get("/api/background-migrations"), "200");

  proxy_.Freeze();
  for (const char* path : {"/api/health", "/api/background-migrations", "/api/health"}) {
    const auto asked = Clock::now();
    EXPECT_EQ(get(path), "503") << path;
    EXPECT_LE(SecondsSince(asked), 6.0) << path;  // read 1 s + connect 2 s, or connect 2 s
    std::cout << "figure: " << path << " with Postgres silent: 503 after " << SecondsSince(asked)
              << " s" << std::endl;
  }
  proxy_.Thaw();
  EXPECT_TRUE(WaitFor([&] { return get("/api/health") == "200"; }, seconds(15)));
  EXPECT_EQ(get("/api/background-migrations"), "200");
}

// Issue 12: SIGSTOP of ClickHouse mid-copy left the migration `running` for the 300 s request
// timeout. Now the stall shows as `waiting` within seconds, and after SIGCONT the copy ends.
TEST_F(HangTest, StoppedClickHouseMidCopyGoesWaitingNamingTheStallAndFinishesAfterSigcont) {
  Seed(30000);
  auto worker = Worker(
      "w-stall", /*proxied=*/false,
      {{"BGMIGRATE_CLICKHOUSE_STALL_SECONDS", "3"}, {"BGMIGRATE_OUTAGE_BUDGET_SECONDS", "600"}});
  ASSERT_TRUE(WaitFor([&] { return RowsProcessed() >= 3000; }, seconds(60)));
  const int pid = servers_.ClickHousePid();
  ASSERT_GT(pid, 0);
  // SIGCONT however the test ends, so that the servers can be stopped.
  std::unique_ptr<int, void (*)(int*)> resume(new int(pid), [](int* p) {
    kill(*p, SIGCONT);
    delete p;
  });
  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  const auto stopped = Clock::now();
  const int64_t rows_at_stop = RowsProcessed();
  ASSERT_LT(rows_at_stop, 30000);

  nlohmann::json waiting;
  ASSERT_TRUE(WaitFor(
      [&] {
        waiting = Listed();
        return waiting.is_object() && waiting["status"] == "waiting";
      },
      seconds(20)))
      << worker->Stderr();
  const double waiting_after = SecondsSince(stopped);
  EXPECT_LE(waiting_after, 12.0);  // stall 3 s, plus the batch in flight and a list
  const std::string reason = waiting["waiting_reason"];
  EXPECT_NE(reason.find("ClickHouse at " + servers_.clickhouse_url()), std::string::npos) << reason;
  EXPECT_NE(reason.find(" stalled: no bytes moved for 1.5 s"), std::string::npos) << reason;
  EXPECT_NE(reason.find("BGMIGRATE_CLICKHOUSE_STALL_SECONDS=3.0"), std::string::npos) << reason;

  std::this_thread::sleep_for(seconds(3));
  resume.reset();  // SIGCONT
  ASSERT_TRUE(worker->Wait(seconds(120)).has_value()) << "the copy did not finish";
  EXPECT_EQ(Listed()["status"], "finished");
  std::cout << "figure: ClickHouse stopped (SIGSTOP) at row " << rows_at_stop << ": waiting after "
            << waiting_after << " s with BGMIGRATE_CLICKHOUSE_STALL_SECONDS=3" << std::endl;
  ExpectExactTracesCopy();
}

// Issue 12: `bgmigrate list` against a listener that never answers did not return.
TEST(HangCliTest, ListAgainstASilentListenerFailsWithinTheConnectTimeout) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 16), 0);  // never accepted: the kernel completes the handshake only
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  const auto started = Clock::now();
  ProcessResult r = RunProcess(BGM_BINARY, {"list"},
                               {{"DATABASE_URL", "postgresql://u@127.0.0.1:" + port + "/db"},
                                {"BGMIGRATE_PG_CONNECT_TIMEOUT_SECONDS", "2"}},
                               seconds(30));
  const double took = SecondsSince(started);
  close(fd);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_LE(took, 6.0);
  EXPECT_NE(r.err.find("could not connect to Postgres at 127.0.0.1:" + port), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("timeout expired"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("BGMIGRATE_PG_CONNECT_TIMEOUT_SECONDS"), std::string::npos) << r.err;
  std::cout << "figure: list against a silent listener: exit " << r.exit_code << " after " << took
            << " s" << std::endl;
}

#ifndef BGM_HANG_TEST_OLD_CODE
// A query that computes for five times the stall timeout without sending a byte (ClickHouse
// 18.16 sends no progress) is a busy server, not a stalled one: its /ping answers.
TEST(HangClickHouseTest, LongButWorkingQueryIsNotAStall) {
  Result<std::unique_ptr<HttpClickHouseClient>> ch = HttpClickHouseClient::Create(
      {.url = testing::TestClickHouseUrl(), .user = "default", .stall_timeout = seconds(1)});
  ASSERT_TRUE(ch.ok()) << ch.status().ToString();
  const auto started = Clock::now();
  Result<std::string> r = (*ch)->Query(
      "SELECT count() FROM numbers(50) WHERE NOT ignore(sleepEachRow(0.1)) FORMAT TabSeparated",
      {{"max_block_size", "1"}});
  const double took = SecondsSince(started);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "50\n");
  EXPECT_GE(took, 4.5);
  std::cout << "figure: a " << took << " s query with a 1 s stall timeout succeeded" << std::endl;
}
#endif

}  // namespace
}  // namespace bgm
