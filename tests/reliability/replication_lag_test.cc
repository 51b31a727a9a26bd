// The replication-lag health signal on a real Postgres standby: its Postgres of its own
// (PrivateServers) with a streaming standby (services.sh start-pg-standby) whose replay is
// paused, so that pg_stat_replication's replay_lag grows for real. A worker holds its batches
// back (status throttled, the signal, its value and threshold) and goes on by itself once the
// standby replays again and catches up; every row is changed once.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

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

constexpr const char* kName = "20250601_1200_bump_items";

std::string Scalar(PgConnection& conn, const std::string& sql) {
  Result<PgResult> r = conn.Exec(sql);
  EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  return r.ok() && r->rows() > 0 && !r->IsNull(0, 0) ? std::string(r->Get(0, 0)) : "NULL";
}

TEST(ReplicationLagTest, AStandbyThatLagsThrottlesTheMigrationUntilItCatchesUp) {
  PrivateServers servers;
  ASSERT_TRUE(servers.ok());
  const int standby_port = servers.StartPgStandby();
  ASSERT_NE(standby_port, 0);
  Result<PgConnection> primary = PgConnection::Connect(servers.database_url());
  ASSERT_TRUE(primary.ok()) << primary.status().ToString();
  Result<PgConnection> standby = PgConnection::Connect(
      "postgresql://postgres@127.0.0.1:" + std::to_string(standby_port) + "/postgres");
  ASSERT_TRUE(standby.ok()) << standby.status().ToString();

  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("bgm-lag-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / (std::string(kName) + ".toml")) << R"(description = "bump items"
kind = "postgres"

[postgres]
table = "items"
key = ["id"]
statement = "UPDATE items SET v = v + 1 WHERE {batch}"
)";
  const std::map<std::string, std::string> env = {
      {"DATABASE_URL", servers.database_url()},
      {"CLICKHOUSE_URL", servers.clickhouse_url()},
      {"BGMIGRATE_MIGRATIONS_DIR", dir.string()},
      {"BGMIGRATE_LEASE_SECONDS", "2"},
      {"BGMIGRATE_POLL_SECONDS", "0.2"},
      {"BGMIGRATE_WORKER_ID", "w1"},
      {"BGMIGRATE_THROTTLE_CHECK_SECONDS", "0.1"},
      {"BGMIGRATE_THROTTLE_WAIT_SECONDS", "0.2"},
      {"BGMIGRATE_THROTTLE_POSTGRES_REPLICATION_LAG_SECONDS", "2"}};
  ProcessResult m = RunProcess(BGM_BINARY, {"migrate"}, env);
  ASSERT_EQ(m.exit_code, 0) << m.out << m.err;
  ASSERT_TRUE(primary
                  ->RunScript("UPDATE background_migrations SET paused_at = now() WHERE name <> '" +
                              std::string(kName) +
                              "'; CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL); "
                              "INSERT INTO items SELECT g, 0 FROM generate_series(1, 5000) g;")
                  .ok());

  // The standby stops replaying while the primary writes: its replay lag grows past 2 s.
  ASSERT_EQ(Scalar(*standby, "SELECT pg_is_in_recovery()"), "t");
  ASSERT_TRUE(standby->Run("SELECT pg_wal_replay_pause()").ok());
  ASSERT_TRUE(primary->Run("CREATE TABLE wal_writes (at timestamptz)").ok());
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  double lag = 0;
  while (lag < 3) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the replay lag did not grow";
    ASSERT_TRUE(primary->Run("INSERT INTO wal_writes VALUES (now())").ok());
    std::this_thread::sleep_for(milliseconds(200));
    const std::string v =
        Scalar(*primary,
               "SELECT COALESCE(max(EXTRACT(EPOCH FROM replay_lag)), 0) FROM pg_stat_replication");
    lag = std::stod(v);
  }

  ChildProcess worker(BGM_BINARY, {"worker", "--exit-when-idle"}, env);
  nlohmann::json row;
  const auto until = std::chrono::steady_clock::now() + seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    ProcessResult list = RunProcess(BGM_BINARY, {"list", "--json"}, env);
    for (const nlohmann::json& r : nlohmann::json::parse(list.out)) {
      if (r["name"] == kName) row = r;
    }
    if (row.is_object() && row["status"] == "throttled") break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_EQ(row["status"], "throttled") << row.dump();
  EXPECT_EQ(row["throttle"]["signal"], "postgres_replication_lag_seconds");
  EXPECT_EQ(row["throttle"]["what"], "replication lag of Postgres's replicas (seconds)");
  EXPECT_EQ(row["throttle"]["threshold"], 2.0);
  EXPECT_GE(row["throttle"]["value"].get<double>(), 2.0);
  EXPECT_EQ(row["rows_processed"], 0);

  ASSERT_TRUE(standby->Run("SELECT pg_wal_replay_resume()").ok());
  const std::optional<int> code = worker.Wait(seconds(90));
  ASSERT_TRUE(code.has_value()) << "the worker did not finish after the standby caught up";
  EXPECT_EQ(*code, 0) << worker.Stderr();
  EXPECT_EQ(Scalar(*primary, "SELECT count(*) || ' ' || min(v) || ' ' || max(v) FROM items"),
            "5000 1 1");
  EXPECT_EQ(Scalar(*primary,
                   "SELECT count(*) FILTER (WHERE kind = 'throttled') || ' ' || count(*) FILTER "
                   "(WHERE kind = 'throttle_ended') FROM background_migration_events "
                   "WHERE migration_name = '" +
                       std::string(kName) + "'"),
            "1 1");
  std::cout << "figure: replay lag " << lag << " s held the migration back; after the standby "
            << "caught up it finished" << std::endl;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace bgm
