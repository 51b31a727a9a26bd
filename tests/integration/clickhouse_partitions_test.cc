// The `clickhouse` kind of migration file on a real ClickHouse (18.16 over HTTP, or chDB 26.7
// embedded) and Postgres (each partition a chunk): exact rows per partition, mutations awaited,
// resumable (a second run redoes no done partition), a failing partition tried `attempts` times
// and then failed alone while the others run, and a try that an earlier worker left running on
// the server awaited instead of sent again.
#include "migrations/clickhouse_partitions.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "clickhouse/client_factory.h"
#include "migrations/file_check.h"
#include "testing/process.h"
#include "testing/recording_context.h"
#include "testing/test_clickhouse.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using testing::ChildProcess;
using testing::ProcessResult;
using testing::RunProcess;
using testing::TestClickHouse;
using RecordingContext = testing::RecordingContext;

constexpr const char* kName = "20250601_1200_rebuild_events";

MigrationFile File(const std::string& table, const std::string& statement,
                   std::optional<std::string> before = std::nullopt) {
  MigrationFile f;
  f.name = kName;
  f.path = std::string("migrations/") + kName + ".toml";
  f.kind = MigrationKind::kClickHouse;
  f.table = table;
  f.statement = statement;
  f.before = std::move(before);
  return f;
}

// The rows of each month of a table: "month count sum(id) sum(score) kinds" lines.
constexpr const char* kMonthsOf =
    "SELECT toYYYYMM(ts) m, count(), sum(id), sum(score), uniqExact(kind) FROM {} GROUP BY m "
    "ORDER BY m FORMAT TabSeparated";

class ClickHousePartitionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg_.ok());
    ASSERT_TRUE(ch_.ok());
    // 1,000 rows in January 2024, 700 in February, 300 in March; ids 0..1999.
    const char* columns = "(ts DateTime, id UInt64, kind String, score UInt64)";
    Exec(std::string("CREATE TABLE events ") + columns +
         " ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY id");
    Exec(std::string("CREATE TABLE events_by_kind ") + columns +
         " ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (kind, id)");
    Exec("CREATE TABLE tries (p String) ENGINE = MergeTree ORDER BY p");
    Exec(
        "INSERT INTO events SELECT toDateTime('2024-01-01 00:00:00') + number * 60, number, "
        "concat('k', toString(number % 7)), 0 FROM numbers(1000)");
    Exec(
        "INSERT INTO events SELECT toDateTime('2024-02-01 00:00:00') + number * 60, "
        "1000 + number, concat('k', toString(number % 5)), 0 FROM numbers(700)");
    Exec(
        "INSERT INTO events SELECT toDateTime('2024-03-01 00:00:00') + number * 60, "
        "1700 + number, 'k0', 0 FROM numbers(300)");
  }
  void Exec(const std::string& sql) {
    Status s = ch_.client().Execute(sql);
    ASSERT_TRUE(s.ok()) << sql << ": " << s.ToString();
  }
  std::string Months(const std::string& table) {
    std::string sql = kMonthsOf;
    sql.replace(sql.find("{}"), 2, table);
    Result<std::string> r = ch_.client().Query(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : "";
  }

  // Per month: the row count and a sum of row hashes, equal only for the same rows.
  std::string Digest(const std::string& table) {
    Result<std::string> r = ch_.client().Query(
        "SELECT toYYYYMM(ts) m, count(), sum(cityHash64(ts, id, kind, score)) FROM " + table +
        " GROUP BY m ORDER BY m FORMAT TabSeparated");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : "";
  }

  // A context for kName with the test's Postgres (the chunks) and ClickHouse.
  std::unique_ptr<RecordingContext> Ctx(nlohmann::json args, nlohmann::json state = {}) {
    MigrationEnv env;
    env.database_url = pg_.url();
    env.clickhouse_url = ch_.url();
    env.clickhouse_user = "default";
    env.clickhouse_db = ch_.database();
    auto ctx = std::make_unique<RecordingContext>(env, std::move(args), std::move(state));
    ctx->set_name(kName);
    return ctx;
  }
  // "chunk:partition:status:rows" of each chunk, in order.
  std::string Chunks() {
    PgConnection conn = pg_.Connect();
    Result<PgResult> r = conn.Exec(
        "SELECT coalesce(string_agg(chunk || ':' || (lower_bound #>> '{}') || ':' || status || "
        "':' || rows_processed, ',' ORDER BY chunk), '') FROM background_migration_chunks");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::string(r->Get(0, 0)) : "";
  }

  testing::TestDatabase pg_;
  TestClickHouse ch_;
};

TEST_F(ClickHousePartitionsTest, ARebuildCopiesEachPartitionOnceIntoTheNewSortOrder) {
  // A row left in the target's January by an earlier, interrupted try: `before` drops it.
  Exec("INSERT INTO events_by_kind VALUES ('2024-01-05 00:00:00', 999999, 'stray', 7)");
  auto m = NewClickHousePartitions(
      File("events",
           "INSERT INTO events_by_kind SELECT * FROM events WHERE toString(toYYYYMM(ts)) = "
           "{partition}",
           "ALTER TABLE events_by_kind DROP PARTITION ID {partition}"));
  std::unique_ptr<RecordingContext> ctx_owner = Ctx(nlohmann::json::object());
  RecordingContext& ctx = *ctx_owner;
  ASSERT_TRUE(m->Validate(ctx.args()).ok());
  Status s = m->Run(ctx);
  ASSERT_TRUE(s.ok()) << s.ToString();

  EXPECT_EQ(Months("events_by_kind"),
            "202401\t1000\t499500\t0\t7\n"
            "202402\t700\t944650\t0\t5\n"
            "202403\t300\t554850\t0\t1\n");
  EXPECT_EQ(Digest("events_by_kind"), Digest("events"));
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM events_by_kind WHERE id = 999999"), "0");
  // The new sort order: January's one part read in order starts with kind k0's ids 0, 7, 14.
  Result<std::string> first = ch_.client().Query(
      "SELECT groupArray(id) FROM (SELECT id FROM events_by_kind WHERE toYYYYMM(ts) = 202401 "
      "LIMIT 3) FORMAT TabSeparated",
      {{"max_threads", "1"}});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, "[0,7,14]\n");
  // One batch per partition, each its own chunk, in partition order.
  ASSERT_EQ(ctx.batches.size(), 3u);
  EXPECT_EQ(ctx.estimate, 2000);
  EXPECT_EQ(ctx.batches[0].from, nullptr);
  EXPECT_EQ(ctx.batches[0].to, "202401");
  EXPECT_EQ(ctx.batches[0].rows, 1000);
  EXPECT_GT(ctx.batches[0].bytes, 0);
  EXPECT_EQ(ctx.batches[1].to, "202402");
  EXPECT_EQ(ctx.batches[1].rows, 700);
  EXPECT_EQ(ctx.batches[2].to, "202403");
  EXPECT_EQ(ctx.batches[2].chunk->chunk, 2);
  EXPECT_EQ(ctx.batches[2].chunk->cursor, "202403");
  EXPECT_EQ(ctx.state(), (nlohmann::json{{"partitions", true}}));
  EXPECT_EQ(Chunks(), "0:202401:done:1000,1:202402:done:700,2:202403:done:300");
}

TEST_F(ClickHousePartitionsTest, AnAlterUpdateBackfillIsDoneWhenItsPartitionIsCheckpointed) {
  auto m = NewClickHousePartitions(
      File("events",
           "ALTER TABLE events UPDATE score = id * 2 WHERE toString(toYYYYMM(ts)) = {partition}"));
  std::unique_ptr<RecordingContext> ctx_owner = Ctx(nlohmann::json::object());
  RecordingContext& ctx = *ctx_owner;
  ctx.stop_after = 1;  // stop after January: February and March must be untouched
  EXPECT_EQ(m->Run(ctx).code(), StatusCode::kCancelled);
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM system.mutations WHERE database = currentDatabase() "
                       "AND NOT is_done"),
            "0");
  EXPECT_EQ(Months("events"),
            "202401\t1000\t499500\t999000\t7\n"
            "202402\t700\t944650\t0\t5\n"
            "202403\t300\t554850\t0\t1\n");

  std::unique_ptr<RecordingContext> rest_owner = Ctx(nlohmann::json::object(), ctx.state());
  RecordingContext& rest = *rest_owner;
  Status s = m->Run(rest);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM events WHERE score != id * 2"), "0");
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM system.mutations WHERE database = currentDatabase()"),
            "3");
  ASSERT_EQ(rest.batches.size(), 2u);
  EXPECT_EQ(rest.batches[0].to, "202402");
  EXPECT_EQ(Chunks(), "0:202401:done:1000,1:202402:done:700,2:202403:done:300");
}

TEST_F(ClickHousePartitionsTest, ASecondRunContinuesAfterTheCheckpointAndRedoesNoPartition) {
  // No `before`: a partition run twice would show as doubled rows.
  auto m = NewClickHousePartitions(File("events",
                                        "INSERT INTO events_by_kind SELECT * FROM events WHERE "
                                        "toString(toYYYYMM(ts)) = {partition}"));
  std::unique_ptr<RecordingContext> first_owner = Ctx(nlohmann::json::object());
  RecordingContext& first = *first_owner;
  first.stop_after = 2;
  EXPECT_EQ(m->Run(first).code(), StatusCode::kCancelled);
  EXPECT_EQ(Months("events_by_kind"),
            "202401\t1000\t499500\t0\t7\n"
            "202402\t700\t944650\t0\t5\n");

  std::unique_ptr<RecordingContext> second_owner = Ctx(nlohmann::json::object(), first.state());
  RecordingContext& second = *second_owner;
  Status s = m->Run(second);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Digest("events_by_kind"), Digest("events"));
  ASSERT_EQ(second.batches.size(), 1u);
  EXPECT_EQ(second.batches[0].to, "202403");
  EXPECT_EQ(Chunks(), "0:202401:done:1000,1:202402:done:700,2:202403:done:300");

  // A finished migration run again does nothing.
  std::unique_ptr<RecordingContext> third_owner = Ctx(nlohmann::json::object(), second.state());
  RecordingContext& third = *third_owner;
  ASSERT_TRUE(m->Run(third).ok());
  EXPECT_TRUE(third.batches.empty());
  EXPECT_EQ(Months("events_by_kind"), Months("events"));
}

// A migration that ran partition by partition before partitions were chunks saved the last
// done id as its cursor: its partitions up to there are done, the rest run.
TEST_F(ClickHousePartitionsTest, ACursorSavedBeforePartitionsWereChunksIsHonoured) {
  auto m = NewClickHousePartitions(File("events",
                                        "INSERT INTO events_by_kind SELECT * FROM events WHERE "
                                        "toString(toYYYYMM(ts)) = {partition}"));
  std::unique_ptr<RecordingContext> ctx_owner =
      Ctx(nlohmann::json::object(), {{"cursor", "202401"}, {"partitions_done", 1}, {"rows", 1000}});
  RecordingContext& ctx = *ctx_owner;
  Status s = m->Run(ctx);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Months("events_by_kind"),
            "202402\t700\t944650\t0\t5\n"
            "202403\t300\t554850\t0\t1\n");
  EXPECT_EQ(Chunks(), "0:202401:done:0,1:202402:done:700,2:202403:done:300");
}

TEST_F(ClickHousePartitionsTest, AFailingPartitionIsTriedAttemptsTimesThenFailsWithItsError) {
  // February holds id 1500, which divides by zero (ClickHouse error 153, not one that names a
  // wrong statement, so worth another try); every try is counted by `before`.
  auto m = NewClickHousePartitions(
      File("events",
           "INSERT INTO events_by_kind SELECT * FROM events WHERE toString(toYYYYMM(ts)) = "
           "{partition} AND intDiv(1000, if(id = 1500, 0, 1)) > 0",
           "INSERT INTO tries (p) VALUES ({partition})"));
  EXPECT_EQ(m->Validate({{"attempts", 11}}).message(),
            "attempts must be an integer in [1, 10], got 11");
  std::unique_ptr<RecordingContext> ctx_owner = Ctx({{"attempts", 2}});
  RecordingContext& ctx = *ctx_owner;
  Status s = m->Run(ctx);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  // February failed alone; March ran after it.
  EXPECT_TRUE(s.message().starts_with(
      "1 of 3 partitions failed: partition 202402 of events failed on try 2 of 2 "
      "(max_block_size=4096): ClickHouse error 153: "))
      << s.message();
  EXPECT_TRUE(
      s.message().ends_with(". The other partitions are done; fix the cause and "
                            "`bgmigrate retry` (only the failed partitions run again)"))
      << s.message();
  EXPECT_EQ(ch_.Scalar("SELECT groupArray(p) FROM (SELECT p FROM tries ORDER BY p)"),
            "['202401','202402','202402','202403']");
  ASSERT_EQ(ctx.batches.size(), 2u);  // January and March are done and checkpointed
  EXPECT_EQ(Chunks(), "0:202401:done:1000,1:202402:failed:0,2:202403:done:300");

  // The default: three tries, the last with one thread too.
  Exec("TRUNCATE TABLE tries");
  std::unique_ptr<RecordingContext> again_owner = Ctx(nlohmann::json::object(), ctx.state());
  RecordingContext& again = *again_owner;
  s = m->Run(again);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_TRUE(
      s.message().starts_with("1 of 3 partitions failed: partition 202402 of events failed on "
                              "try 3 of 3 (max_block_size=4096, max_threads=1"))
      << s.message();
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM tries WHERE p = '202402'"), "3");
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM tries WHERE p != '202402'"), "0")
      << "only the failed partition runs again";
}

// Newer servers report a mutation's failure (latest_fail_reason); 18.16 retries it in the
// background for ever and reports nothing, so there the partition waits until stopped.
TEST_F(ClickHousePartitionsTest, AFailedMutationIsKilledAndFailsThePartition) {
  if (ch_.Scalar("SELECT count() FROM system.columns WHERE database = 'system' AND table = "
                 "'mutations' AND name = 'latest_fail_reason'") != "1") {
    GTEST_SKIP() << "this ClickHouse does not report failed mutations";
  }
  auto m = NewClickHousePartitions(
      File("events",
           "ALTER TABLE events UPDATE score = intDiv(1000, if(id = 1500, 0, 1)) WHERE "
           "toString(toYYYYMM(ts)) = {partition}"));
  std::unique_ptr<RecordingContext> ctx_owner = Ctx({{"attempts", 2}});
  RecordingContext& ctx = *ctx_owner;
  Status s = m->Run(ctx);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  // Reported by our wait (a server), or by the ALTER itself where the engine waits (chDB).
  EXPECT_TRUE(s.message().starts_with(
      "1 of 3 partitions failed: partition 202402 of events failed on try 2 of 2 "
      "(max_block_size=4096): "))
      << s.message();
  EXPECT_NE(s.message().find("Division by zero"), std::string::npos) << s.message();
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM system.mutations WHERE database = currentDatabase() "
                       "AND NOT is_done"),
            "0");
  EXPECT_EQ(Chunks(), "0:202401:done:1000,1:202402:failed:0,2:202403:done:300");
  // January and March (February's mutation was killed).
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM events WHERE score = 1000"), "1300");
}

TEST_F(ClickHousePartitionsTest, AWrongStatementFailsAtOnceAndAMissingTableIsNamed) {
  auto bad = NewClickHousePartitions(
      File("events", "INSERT INTO events_by_kind SELECT * FROM no_such_table WHERE p = {partition}",
           "INSERT INTO tries (p) VALUES ({partition})"));
  std::unique_ptr<RecordingContext> ctx_owner = Ctx(nlohmann::json::object());
  RecordingContext& ctx = *ctx_owner;
  Status s = bad->Run(ctx);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      s.message().starts_with("partition 202401 of events failed on try 1 of 3 (default "
                              "settings): ClickHouse error 60: "))
      << s.message();
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM tries"), "1");  // not tried again
  EXPECT_TRUE(ctx.batches.empty());
  // The migration failed at once, its partitions left pending for after the fix.
  EXPECT_EQ(Chunks(), "0:202401:pending:0,1:202402:pending:0,2:202403:pending:0");

  // {partition} used as a number: the error says what {partition} is and how to use it.
  auto misused = NewClickHousePartitions(
      File("events",
           "INSERT INTO events_by_kind SELECT * FROM events WHERE toYYYYMM(ts) = {partition} + 0"));
  std::unique_ptr<RecordingContext> misused_ctx_owner = Ctx(nlohmann::json::object());
  RecordingContext& misused_ctx = *misused_ctx_owner;
  s = misused->Run(misused_ctx);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_TRUE(
      s.message().starts_with("partition 202401 of events failed on try 1 of 3 (default "
                              "settings): ClickHouse error 43: "))
      << s.message();
  EXPECT_TRUE(s.message().ends_with(
      "; {partition} is the partition id as a String literal ('202401'): compare it with a "
      "String, e.g. toString(toYYYYMM(ts)) = {partition} or _partition_id = {partition}, or use "
      "DROP PARTITION ID {partition}"))
      << s.message();

  auto missing = NewClickHousePartitions(File("nope", "SELECT {partition}"));
  std::unique_ptr<RecordingContext> ctx2_owner = Ctx(nlohmann::json::object());
  RecordingContext& ctx2 = *ctx2_owner;
  s = missing->Run(ctx2);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), std::string("migrations/") + kName +
                             ".toml: [clickhouse] table nope does not exist in ClickHouse "
                             "database " +
                             ch_.database() +
                             " (CLICKHOUSE_DB); fix the table name or create the table first");

  // The saved cursor of another kind (a postgres file's) is refused, not misread.
  std::unique_ptr<RecordingContext> ctx3_owner =
      Ctx(nlohmann::json::object(), {{"cursor", {{"id", "x"}}}});
  RecordingContext& ctx3 = *ctx3_owner;
  s = bad->Run(ctx3);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "the saved cursor {\"id\":\"x\"} is not a partition id of this file; retry with "
            "--from-start to begin again");
}

TEST_F(ClickHousePartitionsTest, PartitionIdsAreBoundAsQuotedLiterals) {
  EXPECT_EQ(ClickHouseStringLiteral("a'b\\c"), "'a\\'b\\\\c'");
  EXPECT_EQ(ClickHousePartitionStatement("DROP PARTITION ID {partition}", "20'24"),
            "DROP PARTITION ID '20\\'24'");
  EXPECT_EQ(ClickHousePartitionQueryIdPrefix("db 1", "2025_a-b.c", "202401-3"),
            "bgm:db_1:2025_a-b.c:202401-3:");
  // A partition id with a quote reaches ClickHouse as data, not as SQL.
  Exec("CREATE TABLE odd (k String, v UInt8) ENGINE = MergeTree PARTITION BY k ORDER BY v");
  Exec("INSERT INTO odd VALUES ('it''s', 1)");
  const std::string id = ch_.Scalar(
      "SELECT partition_id FROM system.parts WHERE database = currentDatabase() AND "
      "table = 'odd' AND active");
  auto m = NewClickHousePartitions(File("odd", "INSERT INTO tries (p) VALUES ({partition})"));
  std::unique_ptr<RecordingContext> ctx_owner = Ctx(nlohmann::json::object());
  RecordingContext& ctx = *ctx_owner;
  ASSERT_TRUE(m->Run(ctx).ok());
  EXPECT_EQ(ch_.Scalar("SELECT p FROM tries"), id);
}

TEST_F(ClickHousePartitionsTest, CheckNamesAMissingTableAndAStatementThatDoesNotParse) {
  testing::TestDatabase db;
  ASSERT_TRUE(db.ok());
  MigrationFile good = File("events",
                            "INSERT INTO events_by_kind SELECT * FROM events WHERE "
                            "toString(toYYYYMM(ts)) = {partition}",
                            "ALTER TABLE events_by_kind DROP PARTITION ID {partition}");
  MigrationFile missing = File("nope", "SELECT {partition}");
  missing.path = "m/missing.toml";
  MigrationFile bad = File("events",
                           "INSERT INTO events_by_kind SELEC * FROM events WHERE "
                           "toString(toYYYYMM(ts)) = {partition}");
  bad.path = "m/bad.toml";
  FileCheckReport r =
      CheckFilesAgainstDatabases({good, missing, bad}, db.url(),
                                 {testing::TestClickHouseUrl(), "default", "", ch_.database()});
  std::vector<std::string> problems;
  for (const FileProblem& p : r.problems) problems.push_back(p.ToString());
  ASSERT_GE(problems.size(), 1u);
  EXPECT_EQ(problems[0],
            "m/missing.toml: [clickhouse] table nope does not exist in ClickHouse "
            "database " +
                ch_.database() + " (CLICKHOUSE_DB); fix the table name or create the table first");
  if (ch_.client().Query("EXPLAIN AST SELECT 1").ok()) {
    EXPECT_TRUE(r.notes.empty()) << r.notes[0];
    ASSERT_EQ(problems.size(), 2u);
    EXPECT_TRUE(problems[1].starts_with(
        "m/bad.toml: [clickhouse] statement does not parse: ClickHouse error 62: "))
        << problems[1];
  } else {  // 18.16: only the table is checked, and the notes say so
    EXPECT_EQ(problems.size(), 1u);
    EXPECT_EQ(r.notes,
              (std::vector<std::string>{
                  good.path + ": before and statement not parsed: this ClickHouse has no EXPLAIN "
                              "(added in 20.6); the server parses them when the migration runs",
                  "m/bad.toml: before and statement not parsed: this ClickHouse has no "
                  "EXPLAIN (added in 20.6); the server parses them when the migration "
                  "runs"}));
  }
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM events_by_kind"), "0");  // nothing ran
}

// A worker killed while its partition's INSERT ... SELECT still ran on the server: the next
// worker finds the query in system.processes by its query_id, waits for it, reads in
// system.query_log that it finished, and does not send the partition again.
TEST_F(ClickHousePartitionsTest, ATryStillRunningOnTheServerIsAwaitedNotSentAgain) {
  if (testing::TestClickHouseIsEmbedded()) {
    GTEST_SKIP() << "the embedded engine runs statements in this process: none outlives it";
  }
  const std::string statement =
      "INSERT INTO events_by_kind SELECT * FROM events WHERE toString(toYYYYMM(ts)) = {partition}";
  const std::string query_id =
      ClickHousePartitionQueryIdPrefix(ch_.database(), kName, "202401") + "1";
  std::unique_ptr<ClickHouseClient> other = ch_.NewClient();
  ASSERT_NE(other, nullptr);
  Status earlier;
  std::thread left_running([&] {
    // sleep() runs once per block: January's 1,000 rows are one block.
    earlier =
        other->Execute(ClickHousePartitionStatement(statement + " AND sleep(1) = 0", "202401"),
                       {{"query_id", query_id}, {"log_queries", "1"}});
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (ch_.Scalar("SELECT count() FROM system.processes WHERE query_id = '" + query_id + "'") !=
         "1") {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the earlier try did not start";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto m = NewClickHousePartitions(File("events", statement));
  std::unique_ptr<RecordingContext> ctx_owner = Ctx(nlohmann::json::object());
  RecordingContext& ctx = *ctx_owner;
  Status s = m->Run(ctx);
  left_running.join();
  ASSERT_TRUE(earlier.ok()) << earlier.ToString();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Months("events_by_kind"), Months("events"));  // January once, not twice
  ASSERT_EQ(ctx.batches.size(), 3u);
  EXPECT_EQ(ctx.batches[0].to, "202401");
}

// The same file run by real worker processes: one is killed with SIGKILL while its partition's
// INSERT ... SELECT runs on the server; the next waits for that query instead of sending it
// again, and the target ends with every row exactly once.
class ClickHousePartitionsWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    ASSERT_TRUE(ch_.ok());
    if (testing::TestClickHouseIsEmbedded()) {
      GTEST_SKIP() << "one embedded data directory belongs to one process: the test and its "
                      "workers cannot share it";
    }
    conn_.emplace(db_.Connect());
    dir_ = std::filesystem::temp_directory_path() /
           ("bgm-chparts-" + std::to_string(::getpid()) + "-" + db_.name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::map<std::string, std::string> Env(const std::string& worker) {
    return {{"DATABASE_URL", db_.url()},       {"CLICKHOUSE_URL", ch_.url()},
            {"CLICKHOUSE_USER", "default"},    {"CLICKHOUSE_PASSWORD", ""},
            {"CLICKHOUSE_DB", ch_.database()}, {"BGMIGRATE_MIGRATIONS_DIR", dir_.string()},
            {"BGMIGRATE_LEASE_SECONDS", "2"},  {"BGMIGRATE_POLL_SECONDS", "0.2"},
            {"BGMIGRATE_WORKER_ID", worker}};
  }
  std::string Pg(const std::string& sql) {
    Result<PgResult> r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->rows() > 0 && !r->IsNull(0, 0) ? std::string(r->Get(0, 0)) : "NULL";
  }

  testing::TestDatabase db_;
  TestClickHouse ch_;
  std::optional<PgConnection> conn_;
  std::filesystem::path dir_;
};

TEST_F(ClickHousePartitionsWorkerTest, AKillNineMidPartitionIsAwaitedAndEveryRowArrivesOnce) {
  const char* columns = "(ts DateTime, id UInt64, kind String)";
  ASSERT_TRUE(ch_.client()
                  .Execute(std::string("CREATE TABLE events ") + columns +
                           " ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY id")
                  .ok());
  ASSERT_TRUE(ch_.client()
                  .Execute(std::string("CREATE TABLE events_v2 ") + columns +
                           " ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (kind, id)")
                  .ok());
  // Three months of two parts each: 2,000 rows a month, read in two blocks.
  for (int part = 0; part < 6; ++part) {
    const std::string month = "2024-0" + std::to_string(1 + part / 2) + "-01 00:00:00";
    ASSERT_TRUE(ch_.client()
                    .Execute("INSERT INTO events SELECT toDateTime('" + month + "') + number, " +
                             std::to_string(part * 1000) +
                             " + number, concat('k', toString(number % 3)) FROM numbers(1000)")
                    .ok());
  }
  // Each partition takes about 5.6 s (2.8 s per block of 1,000 rows).
  std::ofstream(dir_ / (std::string(kName) + ".toml")) << R"(description = "events into events_v2"
kind = "clickhouse"

[clickhouse]
table = "events"
before = "ALTER TABLE events_v2 DROP PARTITION ID {partition}"
statement = '''
INSERT INTO events_v2 SELECT * FROM events
WHERE toString(toYYYYMM(ts)) = {partition} AND sleepEachRow(0.0028) = 0
'''
)";
  ProcessResult m = RunProcess(BGM_BINARY, {"migrate"}, Env("cli"));
  ASSERT_EQ(m.exit_code, 0) << m.out << m.err;
  ASSERT_TRUE(
      conn_->Run("UPDATE background_migrations SET paused_at = now() WHERE name <> $1", {kName})
          .ok());

  const std::string prefix = ClickHousePartitionQueryIdPrefix(ch_.database(), kName, "202402");
  const std::string running =
      "SELECT count() FROM system.processes WHERE query_id = '" + prefix + "1'";
  {
    ChildProcess w(BGM_BINARY, {"worker"}, Env("w1"));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (ch_.Scalar(running) != "1") {  // February's statement runs
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "February never started";
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    w.Signal(SIGKILL);
    ASSERT_TRUE(w.Wait(std::chrono::seconds(10)).has_value());
  }
  EXPECT_EQ(Pg(std::string("SELECT rows_processed FROM background_migrations WHERE name = '") +
               kName + "'"),
            "2000");  // January only

  // Past the lease (2 s) of both the migration and February's claim, while February's
  // statement (5.6 s) still runs: the next worker takes February over, not March first.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  ChildProcess w2(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w2"));
  const std::optional<int> exit = w2.Wait(std::chrono::seconds(90));
  ASSERT_TRUE(exit.has_value()) << "the second worker did not finish";
  EXPECT_EQ(*exit, 0) << w2.Stderr();
  EXPECT_NE(w2.Stderr().find("query " + prefix + "1 of an earlier worker still runs"),
            std::string::npos)
      << w2.Stderr();
  EXPECT_EQ(ch_.Scalar("SELECT concat(toString(count()), ' ', toString(uniqExact(id)), ' ', "
                       "toString(sum(id))) FROM events_v2"),
            "6000 6000 17997000");
  EXPECT_EQ(Pg(std::string("SELECT rows_processed FROM background_migrations WHERE name = '") +
               kName + "'"),
            "6000");
  EXPECT_NE(
      Pg(std::string("SELECT finished_at FROM background_migrations WHERE name = '") + kName + "'"),
      "NULL");
}

// Two worker processes share one migration (maxWorkers 2): the lease holder and a helper each
// run partitions, no partition twice, and every row lands once.
TEST_F(ClickHousePartitionsWorkerTest, TwoWorkersShareThePartitions) {
  const char* columns = "(ts DateTime, id UInt64, kind String)";
  ASSERT_TRUE(ch_.client()
                  .Execute(std::string("CREATE TABLE events ") + columns +
                           " ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY id")
                  .ok());
  ASSERT_TRUE(ch_.client()
                  .Execute(std::string("CREATE TABLE events_v2 ") + columns +
                           " ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (kind, id)")
                  .ok());
  // Six months of 500 rows; each partition takes about 1 s (2 ms a row).
  for (int month = 1; month <= 6; ++month) {
    ASSERT_TRUE(ch_.client()
                    .Execute("INSERT INTO events SELECT toDateTime('2024-0" +
                             std::to_string(month) + "-01 00:00:00') + number, " +
                             std::to_string(month * 1000) +
                             " + number, concat('k', toString(number % 3)) FROM numbers(500)")
                    .ok());
  }
  std::ofstream(dir_ / (std::string(kName) + ".toml")) << R"(description = "events into events_v2"
kind = "clickhouse"

[clickhouse]
table = "events"
before = "ALTER TABLE events_v2 DROP PARTITION ID {partition}"
statement = '''
INSERT INTO events_v2 SELECT * FROM events
WHERE toString(toYYYYMM(ts)) = {partition} AND sleepEachRow(0.002) = 0
'''
)";
  ProcessResult m = RunProcess(BGM_BINARY, {"migrate"}, Env("cli"));
  ASSERT_EQ(m.exit_code, 0) << m.out << m.err;
  ASSERT_TRUE(
      conn_->Run("UPDATE background_migrations SET paused_at = now() WHERE name <> $1", {kName})
          .ok());
  ASSERT_TRUE(
      conn_
          ->Run("UPDATE background_migrations SET args = '{\"maxWorkers\": 2}' WHERE name = $1",
                {kName})
          .ok());
  ChildProcess w1(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w1"));
  ChildProcess w2(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w2"));
  for (ChildProcess* w : {&w1, &w2}) {
    const std::optional<int> exit = w->Wait(std::chrono::seconds(90));
    ASSERT_TRUE(exit.has_value()) << "a worker did not finish";
    EXPECT_EQ(*exit, 0) << w->Stderr();
  }
  EXPECT_EQ(ch_.Scalar("SELECT concat(toString(count()), ' ', toString(uniqExact(id))) FROM "
                       "events_v2"),
            "3000 3000");
  EXPECT_EQ(Pg("SELECT count(*) FILTER (WHERE status = 'done') || '/' || count(*) FROM "
               "background_migration_chunks"),
            "6/6");
  // One batch per partition, none twice, from both workers.
  EXPECT_EQ(Pg("SELECT count(*) || '/' || count(DISTINCT detail->>'to') FROM "
               "background_migration_events WHERE kind = 'batch'"),
            "6/6");
  EXPECT_EQ(Pg("SELECT string_agg(DISTINCT split_part(worker_id, '#', 1), ',') FROM "
               "background_migration_events WHERE kind = 'batch'"),
            "w1,w2");
  EXPECT_EQ(Pg(std::string("SELECT rows_processed FROM background_migrations WHERE name = '") +
               kName + "'"),
            "3000");
}

}  // namespace
}  // namespace bgm
