// A running copy whose CLICKHOUSE_URL lists two ClickHouse servers loses the first one (killed
// as a crash would: at a random point, and inside an insert) and carries on on the second. The
// two are independent servers here, not replicas (each PrivateServers is a Postgres and a
// ClickHouse of its own; the first one's Postgres is the only one used), so the proof is about
// the handover, not replication: the copy finishes through the second server within the same
// worker and lease, the first holds every batch it acknowledged before it died (it is started
// again to look), and together the two hold exactly the source's ids, none lost at the switch.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "clickhouse/clickhouse_client.h"
#include "postgres/pg_connection.h"
#include "testing/example_app.h"
#include "testing/private_servers.h"
#include "testing/process.h"

namespace bgm {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ChildProcess;
using testing::PrivateServers;
using testing::ProcessResult;
using testing::RunProcess;
using Clock = std::chrono::steady_clock;

class ClickHouseFailoverFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(first_.ok());
    ASSERT_TRUE(second_.ok());
  }

  // Postgres is always the first server's; `clickhouse_url` says which ClickHouse node(s).
  std::map<std::string, std::string> Env(const std::string& clickhouse_url,
                                         const std::string& worker) const {
    return {{"DATABASE_URL", first_.database_url()}, {"CLICKHOUSE_URL", clickhouse_url},
            {"CLICKHOUSE_USER", "default"},          {"CLICKHOUSE_PASSWORD", ""},
            {"BGMIGRATE_LEASE_SECONDS", "2"},        {"BGMIGRATE_POLL_SECONDS", "0.2"},
            {"BGMIGRATE_WORKER_ID", worker}};
  }
  std::string BothNodes() const { return first_.clickhouse_url() + "," + second_.clickhouse_url(); }

  ProcessResult Cli(const std::vector<std::string>& args, const std::string& clickhouse_url) {
    return RunProcess(BGM_BINARY, args, Env(clickhouse_url, "cli"), seconds(300));
  }

  PgConnection& Pg() {
    if (!pg_.has_value()) {
      Result<PgConnection> c = PgConnection::Connect(first_.database_url());
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
  std::string CopyStatus() {
    ProcessResult r = Cli({"list", "--json"}, BothNodes());
    if (r.exit_code != 0) return "";
    for (const nlohmann::json& row : nlohmann::json::parse(r.out)) {
      if (row["name"] == testing::kCopyTraces) return row["status"];
    }
    return "";
  }
  template <typename F>
  bool WaitFor(F done, milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return false;
  }

  // The ids of `traces` after FINAL on one ClickHouse server.
  std::set<std::string> ClickHouseIds(const std::string& url) {
    Result<std::unique_ptr<HttpClickHouseClient>> ch =
        HttpClickHouseClient::Create({.url = url, .user = "default"});
    EXPECT_TRUE(ch.ok());
    if (!ch.ok()) return {};
    Result<std::string> out = (*ch)->Query("SELECT id FROM traces FINAL FORMAT TabSeparated");
    EXPECT_TRUE(out.ok()) << url << ": " << out.status().ToString();
    std::set<std::string> ids;
    std::istringstream lines(out.ok() ? *out : "");
    for (std::string id; std::getline(lines, id);) ids.insert(id);
    return ids;
  }
  std::set<std::string> SourceIds() {
    Result<PgResult> r = Pg().Exec("SELECT id FROM traces");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::set<std::string> ids;
    for (int i = 0; r.ok() && i < r->rows(); ++i) ids.emplace(r->Get(i, 0));
    return ids;
  }

  enum class Fault { kKill, kKillInsideAnInsert, kFreeze };
  void CopyAndLoseTheFirstNode(Fault fault);

  PrivateServers first_;
  PrivateServers second_;
  std::optional<PgConnection> pg_;
};

// Copies the traces through both nodes and takes the first one away after 3000 rows.
void ClickHouseFailoverFaultTest::CopyAndLoseTheFirstNode(Fault fault) {
  // The application's ClickHouse tables on each server (each node alone: fast migrations go
  // to one node, and these two are not a cluster), then the source rows.
  for (const std::string& node : {first_.clickhouse_url(), second_.clickhouse_url()}) {
    ProcessResult m = Cli({"migrate"}, node);
    ASSERT_EQ(m.exit_code, 0) << node << ": " << m.err;
  }
  // The example application's seeder (examples/langfuse/seed).
  ProcessResult seeded = RunProcess(BGM_SEED_BINARY,
                                    {"--traces", "30000", "--observations", "0", "--scores", "0",
                                     "--blob-bytes", "300", "--random-seed", "7"},
                                    Env(first_.clickhouse_url(), "cli"), seconds(300));
  ASSERT_EQ(seeded.exit_code, 0) << seeded.err;
  PgRun("UPDATE background_migrations SET paused_at = now() WHERE name <> $1",
        {testing::kCopyTraces});
  PgRun("UPDATE background_migrations SET args = $1::jsonb WHERE name = $2",
        {nlohmann::json{{"batchSize", 500}, {"pauseMs", 200}}.dump(), testing::kCopyTraces});

  auto env = Env(BothNodes(), "w-failover");
  // A stall is noticed only where the test wants it (when frozen, not killed): with the
  // default 30 s the kill a second into a freeze always comes first.
  if (fault == Fault::kFreeze) env["BGMIGRATE_CLICKHOUSE_STALL_SECONDS"] = "2";
  ChildProcess worker(BGM_BINARY, {"worker", "--exit-when-idle"}, env);
  ASSERT_TRUE(WaitFor([&] { return RowsProcessed() >= 3000; }, seconds(60)));
  const int pid = first_.ClickHousePid();
  ASSERT_GT(pid, 0);
  // Resumes a frozen server whatever happens below, so that it can be stopped at the end.
  std::unique_ptr<const int, void (*)(const int*)> resume(&pid,
                                                          [](const int* p) { kill(*p, SIGCONT); });
  if (fault != Fault::kKill) {
    ASSERT_EQ(kill(pid, SIGSTOP), 0);
  }
  if (fault == Fault::kKillInsideAnInsert) {
    std::this_thread::sleep_for(seconds(1));  // > pauseMs: the next insert is waiting on it
  }
  // Read before the kill: every row checkpointed by then was acknowledged by the first node.
  // (Read after it, the worker may already have moved to the second node and checkpointed a
  // batch there: 3,500 against 3,000 on the first, once under ASan.)
  const int64_t rows_at_loss = RowsProcessed();
  if (fault != Fault::kFreeze) {
    ASSERT_TRUE(first_.Kill("clickhouse"));
  }
  const auto lost_at = Clock::now();
  ASSERT_LT(rows_at_loss, 30000) << "the copy finished before the first node was lost";

  ASSERT_TRUE(worker.Wait(seconds(120)).has_value()) << "the copy did not finish";
  const double finished_after = std::chrono::duration<double>(Clock::now() - lost_at).count();
  EXPECT_EQ(CopyStatus(), "finished");
  EXPECT_EQ(PgScalar("SELECT count(*) FROM background_migration_events WHERE migration_name = $1 "
                     "AND kind = 'acquired'",
                     {testing::kCopyTraces}),
            "1");  // one worker, one lease throughout

  // The worker's log names the node it left and the node it went to.
  const std::string log = worker.Stderr();
  if (fault == Fault::kFreeze) {
    EXPECT_NE(log.find("ClickHouse at " + first_.clickhouse_url() +
                       "/ stalled and did not answer /ping; later requests go to " +
                       second_.clickhouse_url() + "/ (node 2 of 2 in CLICKHOUSE_URL)"),
              std::string::npos)
        << log;
  } else {
    EXPECT_NE(log.find("ClickHouse at " + first_.clickhouse_url() + "/ is unreachable ("),
              std::string::npos)
        << log;
    EXPECT_NE(log.find("ClickHouse: requests now go to " + second_.clickhouse_url() +
                       "/ (node 2 of 2 in CLICKHOUSE_URL)"),
              std::string::npos)
        << log;
  }
  // Whether the copy had to wait depends on where the kill landed: inside an insert (its
  // outcome unknown: the copy waits and redoes the batch from its checkpoint, now on the
  // second node) or between two (the next insert moved on by itself).
  const std::string waits = PgScalar(
      "SELECT count(*) FROM background_migration_events WHERE migration_name = $1 AND "
      "kind = 'waiting'",
      {testing::kCopyTraces});
  if (fault != Fault::kKill) {
    // The insert in flight failed naming the first node, and the copy waited once: its redo
    // went to the second node straight away.
    EXPECT_EQ(waits, "1");
    const std::string reason = PgScalar(
        "SELECT detail::text FROM background_migration_events WHERE migration_name = $1 AND "
        "kind = 'waiting'",
        {testing::kCopyTraces});
    EXPECT_NE(reason.find("ClickHouse at " + first_.clickhouse_url() + "/"), std::string::npos)
        << reason;
  }

  if (fault == Fault::kFreeze) {
    resume.reset();
  } else {
    ASSERT_TRUE(first_.Start("clickhouse"));
  }
  const std::set<std::string> source = SourceIds();
  const std::set<std::string> on_first = ClickHouseIds(first_.clickhouse_url());
  const std::set<std::string> on_second = ClickHouseIds(second_.clickhouse_url());
  ASSERT_EQ(source.size(), 30000u);
  // Every batch checkpointed before the loss had been acknowledged by the first node.
  EXPECT_GE(static_cast<int64_t>(on_first.size()), rows_at_loss);
  EXPECT_GT(on_second.size(), 0u);
  std::set<std::string> both = on_first;
  both.insert(on_second.begin(), on_second.end());
  std::vector<std::string> lost, invented;
  std::set_difference(source.begin(), source.end(), both.begin(), both.end(),
                      std::back_inserter(lost));
  std::set_difference(both.begin(), both.end(), source.begin(), source.end(),
                      std::back_inserter(invented));
  EXPECT_EQ(lost.size(), 0u) << "source ids on neither node, e.g. " << lost.front();
  EXPECT_EQ(invented.size(), 0u) << "ids not in the source, e.g. " << invented.front();
  const size_t overlap = on_first.size() + on_second.size() - both.size();
  const char* how = fault == Fault::kKill                 ? "killed"
                    : fault == Fault::kKillInsideAnInsert ? "killed inside an insert"
                                                          : "frozen";
  std::cout << "figure: first node " << how << " at row " << rows_at_loss << "; copy finished "
            << finished_after << " s later through the second node; first holds " << on_first.size()
            << " ids, second " << on_second.size() << ", " << overlap << " on both; " << waits
            << " waits" << std::endl;
}

// Killed at once, wherever the copy is: between two inserts or inside one.
TEST_F(ClickHouseFailoverFaultTest, CopyCarriesOnOnTheSecondNodeWhenTheFirstIsKilled) {
  CopyAndLoseTheFirstNode(Fault::kKill);
}

// Frozen (SIGSTOP) for a second first, so that an insert is certainly in flight when it dies.
TEST_F(ClickHouseFailoverFaultTest, AnInsertCutOffByTheKillIsRedoneOnTheSecondNode) {
  CopyAndLoseTheFirstNode(Fault::kKillInsideAnInsert);
}

// Frozen and left so: connections to it still open (the kernel accepts them), nothing answers.
// The insert stalls (BGMIGRATE_CLICKHOUSE_STALL_SECONDS=2), /ping goes unanswered, and the
// redo goes to the second node.
TEST_F(ClickHouseFailoverFaultTest, AFrozenFirstNodeIsLeftAfterItsInsertStalls) {
  CopyAndLoseTheFirstNode(Fault::kFreeze);
}

// Regression: a ClickHouse killed while an insert waited for its answer on a kept-alive
// connection failed the insert as kInternal ("curl error 65": libcurl wanted to resend the body
// on a new connection and could not rewind it), which fails a migration at once instead of
// waiting the outage out. Seen as a copy `failed` in
// AnInsertCutOffByTheKillIsRedoneOnTheSecondNode.
TEST(ClickHouseKilledMidInsertTest, AnInsertOnAReusedConnectionCutOffByAKillIsUnavailable) {
  PrivateServers servers;
  ASSERT_TRUE(servers.ok());
  Result<std::unique_ptr<HttpClickHouseClient>> ch =
      HttpClickHouseClient::Create({.url = servers.clickhouse_url(), .user = "default"});
  ASSERT_TRUE(ch.ok()) << ch.status().ToString();
  ASSERT_TRUE((*ch)->Execute("CREATE TABLE t (id UInt64) ENGINE = MergeTree ORDER BY id").ok());
  ASSERT_TRUE((*ch)->Ping().ok());  // the connection the insert reuses
  // Frozen, the server takes the whole small body into its socket buffer and answers nothing;
  // killed a second later, it resets the connection before any byte of an answer.
  const int pid = servers.ClickHousePid();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  std::jthread killer([&servers] {
    std::this_thread::sleep_for(seconds(1));
    EXPECT_TRUE(servers.Kill("clickhouse"));
  });
  const std::string rows(8 * 1000, '\0');  // 1000 rows of id 0
  StringInsertSource body(rows);
  Status s = (*ch)->Insert("INSERT INTO t FORMAT RowBinary", body);
  killer.join();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_TRUE(s.message().starts_with("connection to ClickHouse at " + servers.clickhouse_url() +
                                      "/ failed: "))
      << s.message();
  EXPECT_NE(s.message().find("the outcome of a write is unknown"), std::string::npos)
      << s.message();
}

}  // namespace
}  // namespace bgm
