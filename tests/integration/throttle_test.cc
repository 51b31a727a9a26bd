// Throttling on database health, on real servers: each condition is created for real (a
// transaction held open, a vacuum slowed down on the source table, merges stopped under a
// target with too many parts, a probe over its threshold), a real worker process shows the
// migration throttled with the signal, its value and threshold, and goes on by itself when the
// condition ends, with exact results. And every built-in signal reads on this server (ClickHouse
// 18.16 or the embedded engine).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/health_signals.h"
#include "testing/process.h"
#include "testing/test_clickhouse.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ChildProcess;
using testing::ProcessResult;
using testing::RunProcess;
using testing::TestClickHouse;

constexpr const char* kName = "20250601_1200_bump_items";

class ThrottleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    ASSERT_TRUE(ch_.ok());
    conn_.emplace(db_.Connect());
    dir_ = std::filesystem::temp_directory_path() /
           ("bgm-throttle-" + std::to_string(::getpid()) + "-" + db_.name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void SkipWhenEmbedded() {
    if (testing::TestClickHouseIsEmbedded()) {
      GTEST_SKIP() << "one embedded data directory belongs to one process: the test and its "
                      "worker cannot share it";
    }
  }

  // The worker's environment: signals read every 0.1 s, read again every 0.2 s while throttled.
  std::map<std::string, std::string> Env(std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> env = {{"DATABASE_URL", db_.url()},
                                              {"CLICKHOUSE_URL", ch_.url()},
                                              {"CLICKHOUSE_USER", "default"},
                                              {"CLICKHOUSE_PASSWORD", ""},
                                              {"CLICKHOUSE_DB", ch_.database()},
                                              {"BGMIGRATE_MIGRATIONS_DIR", dir_.string()},
                                              {"BGMIGRATE_LEASE_SECONDS", "2"},
                                              {"BGMIGRATE_POLL_SECONDS", "0.2"},
                                              {"BGMIGRATE_WORKER_ID", "w1"},
                                              {"BGMIGRATE_THROTTLE_CHECK_SECONDS", "0.1"},
                                              {"BGMIGRATE_THROTTLE_WAIT_SECONDS", "0.2"}};
    for (auto& [k, v] : extra) env[k] = v;
    return env;
  }

  // A `postgres` migration adding 1 to v of every row of items, 500 rows a batch, with `extra`
  // appended to its file.
  void WriteBumpFile(const std::string& extra = "") {
    std::ofstream(dir_ / (std::string(kName) + ".toml")) << R"(description = "bump items"
kind = "postgres"

[args]
batchSize = { type = "int", default = 500, min = 1, max = 100000 }

[postgres]
table = "items"
key = ["id"]
statement = "UPDATE items SET v = v + 1 WHERE {batch}"
)" << extra;
  }
  void CreateItems(int rows) {
    ASSERT_TRUE(conn_
                    ->RunScript("CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, "
                                "pad text NOT NULL); INSERT INTO items SELECT g, 0, "
                                "repeat('x', 200) FROM generate_series(1, " +
                                std::to_string(rows) + ") g;")
                    .ok());
  }
  // Applies the schema and pauses every migration but kName.
  void Migrate(const std::map<std::string, std::string>& env) {
    ProcessResult m = RunProcess(BGM_BINARY, {"migrate"}, env);
    ASSERT_EQ(m.exit_code, 0) << m.out << m.err;
    ASSERT_TRUE(
        conn_->Run("UPDATE background_migrations SET paused_at = now() WHERE name <> $1", {kName})
            .ok());
  }

  // kName's entry of `list --json`.
  nlohmann::json Listed(const std::map<std::string, std::string>& env) {
    ProcessResult r = RunProcess(BGM_BINARY, {"list", "--json"}, env);
    if (r.exit_code != 0) return nullptr;
    for (const nlohmann::json& row : nlohmann::json::parse(r.out)) {
      if (row["name"] == kName) return row;
    }
    return nullptr;
  }
  // Polls `list --json` until kName has `status` (up to 30 s); returns its entry.
  nlohmann::json AwaitStatus(const std::map<std::string, std::string>& env,
                             const std::string& status) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(30);
    nlohmann::json row;
    while (std::chrono::steady_clock::now() < deadline) {
      row = Listed(env);
      if (row.is_object() && row["status"] == status) return row;
      std::this_thread::sleep_for(milliseconds(100));
    }
    ADD_FAILURE() << kName << " never became " << status << "; last: " << row.dump();
    return row;
  }
  std::string Pg(const std::string& sql) {
    Result<PgResult> r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->rows() > 0 && !r->IsNull(0, 0) ? std::string(r->Get(0, 0)) : "NULL";
  }
  // A session that is not bgmigrate's (PgConnection says application_name bgmigrate otherwise).
  PgConnection OtherSession(const std::string& app) {
    const std::string& url = db_.url();
    const bool uri = url.starts_with("postgres");
    Result<PgConnection> c = PgConnection::Connect(url +
                                                   (!uri                                 ? " "
                                                    : url.find('?') == std::string::npos ? "?"
                                                                                         : "&") +
                                                   "application_name=" + app);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(*c);
  }
  // The events of kName of `kind`, oldest first, as their detail.
  std::vector<nlohmann::json> Events(const std::string& kind) {
    Result<PgResult> r = conn_->Exec(
        "SELECT detail::text FROM background_migration_events WHERE migration_name = $1 AND "
        "kind = $2 ORDER BY id",
        {kName, kind});
    EXPECT_TRUE(r.ok());
    std::vector<nlohmann::json> out;
    for (int i = 0; r.ok() && i < r->rows(); ++i)
      out.push_back(nlohmann::json::parse(r->Get(i, 0)));
    return out;
  }

  testing::TestDatabase db_;
  TestClickHouse ch_;
  std::optional<PgConnection> conn_;
  std::filesystem::path dir_;
};

// A transaction left open by another session holds the batches back (status throttled, with
// the signal in list, gate and the events); when it commits the migration goes on by itself and
// every row is changed once.
TEST_F(ThrottleTest, AnOpenTransactionThrottlesAPostgresMigrationUntilItEnds) {
  CreateItems(3000);
  WriteBumpFile();
  const auto env = Env({{"BGMIGRATE_THROTTLE_POSTGRES_TRANSACTION_SECONDS", "1"}});
  Migrate(env);
  PgConnection holder = OtherSession("report-job");
  ASSERT_TRUE(holder.Run("BEGIN").ok());
  ASSERT_TRUE(holder.Run("SELECT count(*) FROM items").ok());
  std::this_thread::sleep_for(milliseconds(1200));  // older than the threshold from the start
  ChildProcess worker(BGM_BINARY, {"worker", "--exit-when-idle"}, env);

  nlohmann::json row = AwaitStatus(env, "throttled");
  ASSERT_TRUE(row["throttle"].is_object()) << row.dump();
  EXPECT_EQ(row["throttle"]["signal"], "postgres_transaction_seconds");
  EXPECT_EQ(row["throttle"]["what"], "age of the oldest open transaction in Postgres (seconds)");
  EXPECT_EQ(row["throttle"]["threshold"], 1.0);
  EXPECT_GE(row["throttle"]["value"].get<double>(), 1.0);
  EXPECT_TRUE(row["throttled_since"].is_string());
  EXPECT_EQ(row["rows_processed"], 0);
  EXPECT_EQ(row["worker_id"], "w1") << "the lease is kept";
  ProcessResult gate = RunProcess(BGM_BINARY, {"gate", kName}, env);
  EXPECT_EQ(gate.exit_code, 1);
  EXPECT_NE(gate.out.find("throttled: age of the oldest open transaction in Postgres (seconds) "
                          "is "),
            std::string::npos)
      << gate.out;
  ProcessResult list = RunProcess(BGM_BINARY, {"list"}, env);
  EXPECT_NE(list.out.find("throttled"), std::string::npos) << list.out;
  std::this_thread::sleep_for(milliseconds(1000));  // several checks: still one event
  EXPECT_EQ(Events("throttled").size(), 1u);
  EXPECT_EQ(Pg("SELECT count(*) FROM items WHERE v > 0"), "0");

  ASSERT_TRUE(holder.Run("COMMIT").ok());
  const std::optional<int> code = worker.Wait(seconds(60));
  ASSERT_TRUE(code.has_value()) << "the worker did not finish after the transaction ended";
  EXPECT_EQ(*code, 0) << worker.Stderr();
  EXPECT_EQ(Listed(env)["status"], "finished");
  EXPECT_EQ(Listed(env)["rows_processed"], 3000) << worker.Stderr();
  EXPECT_EQ(Pg("SELECT count(*) || ' ' || min(v) || ' ' || max(v) FROM items"), "3000 1 1");
  ASSERT_EQ(Events("throttle_ended").size(), 1u);
  EXPECT_EQ(Events("throttle_ended")[0]["signal"], "postgres_transaction_seconds");
  EXPECT_GE(Events("throttle_ended")[0]["seconds"].get<double>(), 1.0);
  EXPECT_EQ(Listed(env)["throttle"], nullptr);
}

// A vacuum running on the source table (slowed down so that it lasts) holds the batches back;
// when it is cancelled the migration goes on.
TEST_F(ThrottleTest, AVacuumOnTheSourceTableThrottlesUntilItEnds) {
  CreateItems(20000);
  ASSERT_TRUE(conn_->Run("UPDATE items SET pad = repeat('y', 200)").ok());  // dead rows to scan
  // The only vacuum is the test's own (an autovacuum after the updates would throttle again).
  ASSERT_TRUE(conn_->Run("ALTER TABLE items SET (autovacuum_enabled = false)").ok());
  WriteBumpFile();
  const auto env = Env();
  Migrate(env);
  PgConnection vacuumer = OtherSession("maintenance");
  const std::string pid(vacuumer.Exec("SELECT pg_backend_pid()")->Get(0, 0));
  ASSERT_TRUE(vacuumer.Run("SET vacuum_cost_delay = 100").ok());
  ASSERT_TRUE(vacuumer.Run("SET vacuum_cost_limit = 1").ok());
  std::jthread vacuum([&vacuumer] { (void)vacuumer.Run("VACUUM items"); });
  const auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (Pg("SELECT count(*) FROM pg_stat_progress_vacuum WHERE relid = 'items'::regclass") !=
         "1") {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the vacuum did not start";
    std::this_thread::sleep_for(milliseconds(20));
  }
  ChildProcess worker(BGM_BINARY, {"worker", "--exit-when-idle"}, env);

  nlohmann::json row = AwaitStatus(env, "throttled");
  EXPECT_EQ(row["throttle"], (nlohmann::json{{"signal", "postgres_vacuums"},
                                             {"what", "vacuums running on \"items\""},
                                             {"value", 1.0},
                                             {"threshold", 1.0}}));
  EXPECT_EQ(row["rows_processed"], 0);

  ASSERT_EQ(Pg("SELECT pg_cancel_backend(" + pid + ")"), "t");
  vacuum.join();
  const std::optional<int> code = worker.Wait(seconds(60));
  ASSERT_TRUE(code.has_value()) << "the worker did not finish after the vacuum ended";
  EXPECT_EQ(*code, 0) << worker.Stderr();
  EXPECT_EQ(Pg("SELECT count(*) || ' ' || min(v) || ' ' || max(v) FROM items"), "20000 1 1");
  EXPECT_EQ(Events("throttled").size(), 1u);
  EXPECT_EQ(Events("throttle_ended").size(), 1u);
}

// The file's own probe over its threshold holds the batches back and lets them go when it
// falls.
TEST_F(ThrottleTest, AProbeOverItsThresholdThrottlesUntilItFalls) {
  CreateItems(3000);
  ASSERT_TRUE(conn_
                  ->RunScript("CREATE TABLE maintenance (note text); "
                              "INSERT INTO maintenance VALUES ('backup running');")
                  .ok());
  WriteBumpFile(R"(
[[throttle]]
name = "maintenance window"
database = "postgres"
query = "SELECT count(*) FROM maintenance"
threshold = 1
)");
  const auto env = Env();
  Migrate(env);
  ChildProcess worker(BGM_BINARY, {"worker", "--exit-when-idle"}, env);
  nlohmann::json row = AwaitStatus(env, "throttled");
  EXPECT_EQ(row["throttle"], (nlohmann::json{{"signal", "probe:maintenance window"},
                                             {"what", "maintenance window (probe on Postgres)"},
                                             {"value", 1.0},
                                             {"threshold", 1.0}}));
  ASSERT_TRUE(conn_->Run("DELETE FROM maintenance").ok());
  const std::optional<int> code = worker.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << worker.Stderr();
  EXPECT_EQ(Pg("SELECT count(*) FILTER (WHERE v = 1) FROM items"), "3000");
}

// A probe that answers something other than a number fails the migration, naming the probe and
// what it returned.
TEST_F(ThrottleTest, AProbeWithoutANumberFailsTheMigrationNamingIt) {
  CreateItems(100);
  ASSERT_TRUE(conn_
                  ->RunScript("CREATE TABLE maintenance (note text); "
                              "INSERT INTO maintenance VALUES ('x');")
                  .ok());
  WriteBumpFile(R"(
[[throttle]]
name = "maintenance window"
database = "postgres"
query = "SELECT note FROM maintenance"
threshold = 1
)");
  const auto env = Env();
  Migrate(env);
  ProcessResult worker = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, env);
  EXPECT_EQ(worker.exit_code, 1) << "a migration failed: " << worker.err;
  nlohmann::json row = Listed(env);
  EXPECT_EQ(row["status"], "failed");
  EXPECT_EQ(row["failed_reason"],
            "reading the health signal maintenance window (probe on Postgres) (probe:maintenance "
            "window): probe maintenance window returned 'x'; it must return one number, e.g. "
            "SELECT count(*) FROM ...");
  EXPECT_EQ(Pg("SELECT count(*) FROM items WHERE v > 0"), "0");
}

// In a copy (which runs in key ranges) a probe that answers something other than a number is
// the copy's failure, not a range's: it fails at once naming the probe, the range is not tried
// again and again nor marked failed, and nothing is copied.
TEST_F(ThrottleTest, AProbeWithoutANumberFailsACopyAtOnceNotItsRange) {
  SkipWhenEmbedded();
  ASSERT_TRUE(conn_
                  ->RunScript("CREATE TABLE src (id bigint PRIMARY KEY, name text NOT NULL); "
                              "INSERT INTO src SELECT g, 'n' || g FROM generate_series(1, 500) g; "
                              "CREATE TABLE maintenance (note text); "
                              "INSERT INTO maintenance VALUES ('x');")
                  .ok());
  ASSERT_TRUE(
      ch_.client()
          .Execute("CREATE TABLE dst (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
          .ok());
  std::ofstream(dir_ / (std::string(kName) + ".toml")) << R"(description = "src into dst"
kind = "postgres_to_clickhouse"

[postgres_to_clickhouse]
target = "dst"
key = ["id"]
select = "SELECT id, name FROM src"

[[throttle]]
name = "maintenance window"
database = "postgres"
query = "SELECT note FROM maintenance"
threshold = 1
)";
  const auto env = Env();
  Migrate(env);
  ProcessResult worker = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, env);
  EXPECT_EQ(worker.exit_code, 1) << "a migration failed: " << worker.err;
  nlohmann::json row = Listed(env);
  EXPECT_EQ(row["status"], "failed");
  EXPECT_EQ(row["failed_reason"],
            "reading the health signal maintenance window (probe on Postgres) (probe:maintenance "
            "window): probe maintenance window returned 'x'; it must return one number, e.g. "
            "SELECT count(*) FROM ...");
  EXPECT_EQ(Pg("SELECT string_agg(status || ' ' || attempts || ' ' || coalesce(last_error, '-'), "
               "',') FROM background_migration_chunks WHERE migration_name = '" +
               std::string(kName) + "'"),
            "pending 0 -");
  Result<std::string> landed = ch_.client().Query("SELECT count() FROM dst FORMAT TabSeparated");
  ASSERT_TRUE(landed.ok());
  EXPECT_EQ(*landed, "0\n");
}

// Too many parts in the target's busiest partition (merges stopped, small inserts) hold a copy
// back; when merges run again and the parts are merged, the copy goes on and lands every row.
TEST_F(ThrottleTest, TooManyPartsInTheTargetThrottleACopyUntilTheyAreMerged) {
  SkipWhenEmbedded();
  ASSERT_TRUE(conn_
                  ->RunScript("CREATE TABLE src (id bigint PRIMARY KEY, name text NOT NULL); "
                              "INSERT INTO src SELECT g, 'n' || g FROM generate_series(1, 2000) g;")
                  .ok());
  ASSERT_TRUE(
      ch_.client()
          .Execute("CREATE TABLE dst (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
          .ok());
  ASSERT_TRUE(ch_.client().Execute("SYSTEM STOP MERGES dst").ok());
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(ch_.client()
                    .Execute("INSERT INTO dst VALUES (" + std::to_string(1000000 + i) + ", 'old')")
                    .ok());
  }
  std::ofstream(dir_ / (std::string(kName) + ".toml")) << R"(description = "src into dst"
kind = "postgres_to_clickhouse"

[postgres_to_clickhouse]
target = "dst"
key = ["id"]
select = "SELECT id, name FROM src"
)";
  const auto env = Env({{"BGMIGRATE_THROTTLE_CLICKHOUSE_PARTS", "5"}});
  Migrate(env);
  ChildProcess worker(BGM_BINARY, {"worker", "--exit-when-idle"}, env);
  nlohmann::json row = AwaitStatus(env, "throttled");
  EXPECT_EQ(row["throttle"],
            (nlohmann::json{{"signal", "clickhouse_parts"},
                            {"what", "active parts in the busiest partition of dst"},
                            {"value", 6.0},
                            {"threshold", 5.0}}));
  EXPECT_EQ(row["rows_processed"], 0);
  ASSERT_TRUE(ch_.client().Execute("SYSTEM START MERGES dst").ok());
  ASSERT_TRUE(ch_.client().Execute("OPTIMIZE TABLE dst FINAL").ok());
  const std::optional<int> code = worker.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << worker.Stderr();
  Result<std::string> landed = ch_.client().Query(
      "SELECT count(), uniqExact(id), sum(id < 1000000) FROM dst FORMAT TabSeparated");
  ASSERT_TRUE(landed.ok());
  EXPECT_EQ(*landed, "2006\t2006\t2000\n");
  EXPECT_EQ(Events("throttle_ended").size(), 1u);
}

// Every built-in signal reads on this server: the parts of a table with merges stopped, and the
// idle values of the others (no replica: the lag does not apply).
TEST_F(ThrottleTest, EveryBuiltInSignalReadsOnThisServer) {
  CreateItems(10);
  ASSERT_TRUE(
      ch_.client().Execute("CREATE TABLE dst (id UInt64) ENGINE = MergeTree ORDER BY id").ok());
  ASSERT_TRUE(ch_.client().Execute("SYSTEM STOP MERGES dst").ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(ch_.client().Execute("INSERT INTO dst VALUES (" + std::to_string(i) + ")").ok());
  }
  MigrationEnv env{db_.url(), ch_.url(), "default", "", ch_.database()};
  HealthTargets targets;
  targets.postgres_relations_of = "SELECT id, v FROM items";
  targets.clickhouse_tables = {"dst"};
  ThrottleSettings settings;
  settings.clickhouse_memory_bytes = 1e15;
  std::vector<std::unique_ptr<HealthSignal>> signals = MakeHealthSignals(settings, env, targets);
  std::map<std::string, std::optional<double>> read;
  for (const auto& s : signals) {
    Result<std::optional<double>> v = s->Read();
    ASSERT_TRUE(v.ok()) << s->signal() << ": " << v.status().ToString();
    read[s->signal()] = *v;
  }
  ASSERT_EQ(read.size(), 6u);
  EXPECT_EQ(read["clickhouse_parts"], 3);
  EXPECT_EQ(read["clickhouse_merges"], 0);
  ASSERT_TRUE(read["clickhouse_memory"].has_value());
  EXPECT_GE(*read["clickhouse_memory"], 0);
  EXPECT_EQ(read["postgres_replication_lag_seconds"], std::nullopt);
  EXPECT_EQ(read["postgres_transaction_seconds"], 0);
  EXPECT_EQ(read["postgres_vacuums"], 0);
  // Unset, the memory threshold is 80% of the server's memory where it reports it; neither
  // ClickHouse 18.16 (no OSMemoryTotal) nor the embedded engine (no asynchronous_metrics) does,
  // so the signal does not apply there.
  std::vector<std::unique_ptr<HealthSignal>> automatic =
      MakeHealthSignals(ThrottleSettings{}, env, targets);
  for (const auto& s : automatic) {
    if (s->signal() != "clickhouse_memory") continue;
    Result<std::optional<double>> v = s->Read();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(*v, std::nullopt);
    EXPECT_EQ(s->threshold(), 0);
  }
  ASSERT_TRUE(ch_.client().Execute("SYSTEM START MERGES dst").ok());
}

}  // namespace
}  // namespace bgm
