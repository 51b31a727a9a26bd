// The ClickHouse load signals on a real server of the test's own (PrivateServers: no other
// test's merges or queries in its figures, and this test's load in no other test's): a merge of
// three large parts in progress, and a query holding a few hundred MB of memory. A copy's worker
// holds its batches back while the condition lasts (status throttled with the signal, its value
// and threshold) and goes on by itself when it ends; every row lands once.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "clickhouse/client_factory.h"
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

constexpr const char* kName = "20250601_1200_copy_src";

std::string Scalar(PgConnection& conn, const std::string& sql) {
  Result<PgResult> r = conn.Exec(sql);
  EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  return r.ok() && r->rows() > 0 && !r->IsNull(0, 0) ? std::string(r->Get(0, 0)) : "NULL";
}

class ClickHouseLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(servers_.ok());
    Result<PgConnection> pg = PgConnection::Connect(servers_.database_url());
    ASSERT_TRUE(pg.ok()) << pg.status().ToString();
    pg_.emplace(std::move(*pg));
    ch_ = Client();
    ASSERT_NE(ch_, nullptr);
    dir_ = std::filesystem::temp_directory_path() / ("bgm-chload-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / (std::string(kName) + ".toml")) << R"(description = "src into dst"
kind = "postgres_to_clickhouse"

[postgres_to_clickhouse]
target = "dst"
key = ["id"]
select = "SELECT id, name FROM src"
)";
    ASSERT_TRUE(
        ch_->Execute("CREATE TABLE dst (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
            .ok());
    ASSERT_TRUE(
        pg_->RunScript("CREATE TABLE src (id bigint PRIMARY KEY, name text NOT NULL); "
                       "INSERT INTO src SELECT g, 'n' || g FROM generate_series(1, 3000) g;")
            .ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A client of the private ClickHouse (one per thread: a client is not shared between threads).
  std::unique_ptr<ClickHouseClient> Client() {
    Result<std::unique_ptr<ClickHouseClient>> c =
        OpenClickHouseClient({.url = servers_.clickhouse_url(), .user = "default"});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  std::map<std::string, std::string> Env(std::map<std::string, std::string> settings) {
    std::map<std::string, std::string> env = {
        {"DATABASE_URL", servers_.database_url()},   {"CLICKHOUSE_URL", servers_.clickhouse_url()},
        {"BGMIGRATE_MIGRATIONS_DIR", dir_.string()}, {"BGMIGRATE_LEASE_SECONDS", "2"},
        {"BGMIGRATE_POLL_SECONDS", "0.2"},           {"BGMIGRATE_WORKER_ID", "w1"},
        {"BGMIGRATE_THROTTLE_CHECK_SECONDS", "0.1"}, {"BGMIGRATE_THROTTLE_WAIT_SECONDS", "0.2"}};
    env.merge(settings);
    return env;
  }
  void Migrate(const std::map<std::string, std::string>& env) {
    ProcessResult m = RunProcess(BGM_BINARY, {"migrate"}, env);
    ASSERT_EQ(m.exit_code, 0) << m.out << m.err;
    ASSERT_TRUE(
        pg_->Run("UPDATE background_migrations SET paused_at = now() WHERE name <> $1", {kName})
            .ok());
  }
  // kName's entry of `list --json` once it is throttled (up to 30 s), else the last one.
  nlohmann::json AwaitThrottled(const std::map<std::string, std::string>& env) {
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
    return row;
  }
  std::string Ch(const std::string& sql) {
    Result<std::string> r = ch_->Query(sql + " FORMAT TabSeparated");
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() ? *r : "";
  }
  // The worker finished, every source row landed once, one throttled and one throttle_ended
  // event.
  void ExpectFinishedExact(ChildProcess& worker) {
    const std::optional<int> code = worker.Wait(seconds(90));
    ASSERT_TRUE(code.has_value()) << "the worker did not finish after the load ended";
    EXPECT_EQ(*code, 0) << worker.Stderr();
    EXPECT_EQ(Ch("SELECT count(), uniqExact(id), min(id), max(id) FROM dst"),
              "3000\t3000\t1\t3000\n");
    EXPECT_EQ(Scalar(*pg_,
                     "SELECT count(*) FILTER (WHERE kind = 'throttled') || ' ' || count(*) "
                     "FILTER (WHERE kind = 'throttle_ended') FROM background_migration_events "
                     "WHERE migration_name = '" +
                         std::string(kName) + "'"),
              "1 1");
  }

  PrivateServers servers_;
  std::optional<PgConnection> pg_;
  std::unique_ptr<ClickHouseClient> ch_;
  std::filesystem::path dir_;
};

// A merge in progress (three parts of 4M rows each, merging for a few seconds) at the
// threshold of 1 holds a running copy back (slowed to 20 rows every 50 ms, its health read
// before each batch, so that it is still running when the merge starts) until it ends. The merge is
// shorter than a worker's start-up, so the copy is running first and what it saw is read from its
// events.
TEST_F(ClickHouseLoadTest, AMergeInProgressThrottlesACopyUntilItEnds) {
  ASSERT_TRUE(ch_->Execute("SYSTEM STOP MERGES dst").ok());  // no merges but the heavy one
  ASSERT_TRUE(
      ch_->Execute("CREATE TABLE heavy (k UInt64, s String) ENGINE = MergeTree ORDER BY k").ok());
  ASSERT_TRUE(ch_->Execute("SYSTEM STOP MERGES heavy").ok());
  for (int part = 0; part < 3; ++part) {
    ASSERT_TRUE(ch_->Execute("INSERT INTO heavy SELECT number, toString(cityHash64(number)) "
                             "FROM numbers(4000000)")
                    .ok());
  }
  // dst's 150 parts (one a batch, its merges stopped) are not what this test is about.
  const auto env = Env({{"BGMIGRATE_THROTTLE_CLICKHOUSE_MERGES", "1"},
                        {"BGMIGRATE_THROTTLE_CLICKHOUSE_PARTS", "0"}});
  Migrate(env);
  ASSERT_TRUE(pg_->Run("UPDATE background_migrations SET args = "
                       "'{\"batchSize\": 20, \"pauseMs\": 50}' WHERE name = $1",
                       {kName})
                  .ok());
  ChildProcess worker(BGM_BINARY, {"worker", "--exit-when-idle"}, env);
  const std::string progress =
      "SELECT rows_processed FROM background_migrations WHERE name = '" + std::string(kName) + "'";
  auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (Scalar(*pg_, progress) == "0") {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the copy did not start";
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_NE(Scalar(*pg_, progress), "3000") << "the copy ended before the merge began";
  ASSERT_TRUE(ch_->Execute("SYSTEM START MERGES heavy").ok());
  std::jthread optimize([c = Client()] { (void)c->Execute("OPTIMIZE TABLE heavy"); });
  int merging_seen = 0;
  deadline = std::chrono::steady_clock::now() + seconds(60);
  while (Ch("SELECT count() FROM system.parts WHERE table = 'heavy' AND active") != "1\n") {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the parts were not merged";
    if (Ch("SELECT count() FROM system.merges") != "0\n") ++merging_seen;
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_GT(merging_seen, 0) << "the merge was never seen in progress";
  ExpectFinishedExact(worker);
  EXPECT_EQ(Scalar(*pg_,
                   "SELECT detail->>'signal' || ' ' || (detail->>'value')::float || ' ' || "
                   "(detail->>'threshold')::float FROM background_migration_events WHERE "
                   "migration_name = '" +
                       std::string(kName) + "' AND kind = 'throttled'"),
            "clickhouse_merges 1 1");
}

// A query holding a few hundred MB (the hash table of a JOIN's right side, built one row a
// block so that it takes seconds: ~100 MB until its last resize, then ~350 MB for several
// seconds) above the threshold (200 MB over idle) holds a copy back until the query ends.
TEST_F(ClickHouseLoadTest, MemoryInUseThrottlesACopyUntilItIsFreed) {
  const double idle =
      std::stod(Ch("SELECT max(value) FROM system.metrics WHERE metric = 'MemoryTracking'"));
  const double threshold = idle + 200e6;
  const auto env = Env({{"BGMIGRATE_THROTTLE_CLICKHOUSE_MEMORY_BYTES",
                         std::to_string(static_cast<int64_t>(threshold))}});
  Migrate(env);
  std::jthread holder([c = Client()] {
    (void)c->Execute(
        "SELECT count() FROM (SELECT number AS k FROM numbers(16)) ANY LEFT JOIN (SELECT "
        "number AS k, toString(number) AS s FROM numbers(6000000)) USING k SETTINGS "
        "max_block_size = 1");
  });
  const auto deadline = std::chrono::steady_clock::now() + seconds(20);
  while (std::stod(Ch("SELECT max(value) FROM system.metrics WHERE metric = "
                      "'MemoryTracking'")) < threshold) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the query did not take the memory";
    std::this_thread::sleep_for(milliseconds(10));
  }
  ChildProcess worker(BGM_BINARY, {"worker", "--exit-when-idle"}, env);
  nlohmann::json row = AwaitThrottled(env);
  ASSERT_EQ(row["status"], "throttled") << row.dump();
  EXPECT_EQ(row["throttle"]["signal"], "clickhouse_memory");
  EXPECT_EQ(row["throttle"]["what"], "memory used by ClickHouse's queries and merges");
  EXPECT_EQ(row["throttle"]["threshold"], static_cast<double>(static_cast<int64_t>(threshold)));
  EXPECT_GE(row["throttle"]["value"].get<double>(), threshold);
  EXPECT_EQ(row["rows_processed"], 0);
  holder.join();
  ExpectFinishedExact(worker);
  std::cout << "figure: ClickHouse's memory at idle " << idle / 1e6 << " MB, held above "
            << threshold / 1e6 << " MB by the query" << std::endl;
}

}  // namespace
}  // namespace bgm
