// A `clickhouse` migration file under a ClickHouse crash, with a real worker process and private
// servers: ClickHouse killed while a partition's INSERT ... SELECT has committed part of its
// rows; the worker shows `waiting`, resumes when ClickHouse is back, runs the partition again
// from `before` (which drops the partial rows), and the target ends with every row exactly once.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "clickhouse/client_factory.h"
#include "migrations/clickhouse_partitions.h"
#include "postgres/pg_connection.h"
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

constexpr const char* kName = "20250601_1200_events_v2";

class ClickHousePartitionsFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(servers_.ok());
    dir_ = std::filesystem::temp_directory_path() /
           ("bgm-chfault-" + std::to_string(::getpid()) + "-" + std::to_string(servers_.pg_port()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::map<std::string, std::string> Env(const std::string& worker) const {
    return {{"DATABASE_URL", servers_.database_url()},
            {"CLICKHOUSE_URL", servers_.clickhouse_url()},
            {"CLICKHOUSE_USER", "default"},
            {"CLICKHOUSE_PASSWORD", ""},
            {"CLICKHOUSE_DB", "app"},
            {"BGMIGRATE_MIGRATIONS_DIR", dir_.string()},
            {"BGMIGRATE_LEASE_SECONDS", "2"},
            {"BGMIGRATE_POLL_SECONDS", "0.2"},
            {"BGMIGRATE_WORKER_ID", worker}};
  }
  // A new client each time: the server may have been restarted under the last one.
  std::string Ch(const std::string& sql) {
    Result<std::unique_ptr<ClickHouseClient>> c =
        OpenClickHouseClient({.url = servers_.clickhouse_url(), .user = "default"});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (!c.ok()) return "";
    Result<std::string> r =
        (*c)->Query(sql.starts_with("SELECT") ? sql + " FORMAT TabSeparated" : sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() ? r->substr(0, r->find('\n')) : "";
  }
  std::string Pg(const std::string& sql) {
    Result<PgConnection> conn = PgConnection::Connect(servers_.database_url());
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    if (!conn.ok()) return "";
    Result<PgResult> r = conn->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->rows() > 0 && !r->IsNull(0, 0) ? std::string(r->Get(0, 0)) : "NULL";
  }
  ProcessResult Cli(const std::vector<std::string>& args) {
    return RunProcess(BGM_BINARY, args, Env("cli"), seconds(120));
  }

  PrivateServers servers_;
  std::filesystem::path dir_;
};

TEST_F(ClickHousePartitionsFaultTest, AClickHouseCrashMidPartitionIsWaitedOutAndEveryRowLandsOnce) {
  Ch("CREATE DATABASE app");
  const char* columns = "(ts DateTime, id UInt64, kind String)";
  Ch(std::string("CREATE TABLE app.events ") + columns +
     " ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY id");
  Ch(std::string("CREATE TABLE app.events_v2 ") + columns +
     " ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (kind, id)");
  // January and March 1,000 rows; February 1,300,000, more than one insert block
  // (min_insert_block_size_rows, 1,048,576): its INSERT ... SELECT commits a first part of
  // 1,048,576 rows while it still reads the rest (sleep(0.01) per block of 8,192 rows).
  Ch("INSERT INTO app.events SELECT toDateTime('2024-01-01 00:00:00') + number, number, "
     "concat('k', toString(number % 3)) FROM numbers(1000)");
  Ch("INSERT INTO app.events SELECT toDateTime('2024-02-01 00:00:00') + intDiv(number, 1000), "
     "10000 + number, concat('k', toString(number % 3)) FROM numbers(1300000)");
  Ch("INSERT INTO app.events SELECT toDateTime('2024-03-01 00:00:00') + number, 2000000 + number, "
     "concat('k', toString(number % 3)) FROM numbers(1000)");
  ASSERT_EQ(Ch("SELECT count() FROM app.events"), "1302000");
  std::ofstream(dir_ / (std::string(kName) + ".toml")) << R"(description = "events into events_v2"
kind = "clickhouse"

[clickhouse]
table = "events"
before = "ALTER TABLE events_v2 DROP PARTITION ID {partition}"
statement = '''
INSERT INTO events_v2 SELECT * FROM events
WHERE toString(toYYYYMM(ts)) = {partition} AND sleep(0.01) = 0
SETTINGS max_block_size = 8192
'''
)";
  ProcessResult m = Cli({"migrate"});
  ASSERT_EQ(m.exit_code, 0) << m.out << m.err;
  Pg(std::string("UPDATE background_migrations SET paused_at = now() WHERE name <> '") + kName +
     "' RETURNING 1");

  ChildProcess worker(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w"));
  // Wait until February's first part is in the target while its statement still runs, then
  // crash ClickHouse: the part stays, the statement is lost.
  const auto deadline = Clock::now() + seconds(60);
  while (Ch("SELECT count() FROM app.events_v2 WHERE toYYYYMM(ts) = 202402") != "1048576") {
    ASSERT_LT(Clock::now(), deadline) << "February's first part never arrived";
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_EQ(Ch("SELECT count() FROM system.processes WHERE query_id = '" +
               ClickHousePartitionQueryIdPrefix("app", kName, "202402") + "1'"),
            "1");
  ASSERT_TRUE(servers_.Kill("clickhouse"));
  const auto waiting_deadline = Clock::now() + seconds(20);
  for (;;) {
    ProcessResult list = Cli({"list", "--json"});
    bool waiting = false;
    if (list.exit_code == 0) {
      for (const nlohmann::json& row : nlohmann::json::parse(list.out)) {
        waiting = waiting || (row["name"] == kName && row["status"] == "waiting");
      }
    }
    if (waiting) break;
    ASSERT_LT(Clock::now(), waiting_deadline) << "the migration never showed as waiting";
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_TRUE(servers_.Start("clickhouse"));

  const std::optional<int> exit = worker.Wait(seconds(120));
  ASSERT_TRUE(exit.has_value()) << "the worker did not finish";
  EXPECT_EQ(*exit, 0) << worker.Stderr();
  const std::string digest =
      "SELECT concat(toString(count()), ' ', toString(uniqExact(id)), ' ', toString(sum(id)), ' ', "
      "toString(sum(cityHash64(ts, id, kind)))) FROM ";
  EXPECT_EQ(Ch(digest + "app.events_v2"), Ch(digest + "app.events"));
  EXPECT_EQ(Ch("SELECT groupArray(c) FROM (SELECT toYYYYMM(ts) m, count() c FROM app.events_v2 "
               "GROUP BY m ORDER BY m)"),
            "[1000,1300000,1000]");
  EXPECT_EQ(Pg(std::string("SELECT rows_processed FROM background_migrations WHERE name = '") +
               kName + "'"),
            "1302000");
  EXPECT_NE(
      Pg(std::string("SELECT finished_at FROM background_migrations WHERE name = '") + kName + "'"),
      "NULL");
}

}  // namespace
}  // namespace bgm
