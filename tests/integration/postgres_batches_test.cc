// The `postgres` kind of migration file on a real Postgres: keyset batches over the file's key,
// exactly once per row, resumable from the saved cursor, and every bad table or key refused.
#include "migrations/postgres_batches.h"

#include <gtest/gtest.h>

#include "migrations/file_check.h"
#include "testing/recording_context.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using testing::RecordingContext;
using testing::TestDatabase;

MigrationFile File(const std::string& table, std::vector<std::string> key,
                   const std::string& statement) {
  MigrationFile f;
  f.name = "20250601_1200_backfill";
  f.path = "migrations/20250601_1200_backfill.toml";
  f.kind = MigrationKind::kPostgres;
  f.table = table;
  f.key = std::move(key);
  f.statement = statement;
  return f;
}

class PostgresBatchesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    conn_.emplace(db_.Connect());
    // 2,500 rows, 2,000 of them sharing one created_at (as in an instance made before
    // 2024-05-03), ids with characters that need care in text form.
    ASSERT_TRUE(conn_
                    ->Run("CREATE TABLE items (id text NOT NULL, created_at timestamp(6) NOT NULL, "
                          "n int NOT NULL DEFAULT 0, label text, PRIMARY KEY (id))")
                    .ok());
    ASSERT_TRUE(conn_
                    ->Run("INSERT INTO items (id, created_at) SELECT "
                          "'id ' || lpad(g::text, 5, '0') || E'\\t\"\\\\', "
                          "CASE WHEN g <= 2000 THEN timestamp '2024-05-02 10:00:00.123456' "
                          "ELSE timestamp '2024-05-03 00:00:00' + g * interval '1 microsecond' END "
                          "FROM generate_series(1, 2500) g")
                    .ok());
    ASSERT_TRUE(conn_->Run("ANALYZE items").ok());
  }
  std::string Scalar(const std::string& sql) {
    Result<PgResult> r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->rows() > 0 && !r->IsNull(0, 0) ? std::string(r->Get(0, 0)) : "NULL";
  }

  TestDatabase db_;
  std::optional<PgConnection> conn_;
};

TEST_F(PostgresBatchesTest, EveryRowIsChangedOnceInKeyOrderBatches) {
  auto m = NewPostgresBatches(
      File("items", {"created_at", "id"}, "UPDATE items SET n = n + 1 WHERE {batch}"));
  RecordingContext ctx(db_.url(), {{"batchSize", 300}});
  ASSERT_TRUE(m->Validate(ctx.args()).ok());
  Status s = m->Run(ctx);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Scalar("SELECT count(*) FROM items WHERE n = 1"), "2500");
  ASSERT_EQ(ctx.batches.size(), 9u);  // 8 x 300 + 100
  EXPECT_EQ(ctx.batches[0].rows, 300);
  EXPECT_EQ(ctx.batches[8].rows, 100);
  EXPECT_EQ(ctx.estimate, 2500);
  EXPECT_EQ(ctx.state()["affected"], 2500);
  EXPECT_EQ(ctx.batches[0].from, nullptr);
  EXPECT_EQ(ctx.batches[0].to, (nlohmann::json{{"created_at", "2024-05-02 10:00:00.123456"},
                                               {"id", "id 00300\t\"\\"}}));
  EXPECT_EQ(ctx.batches[1].from, ctx.batches[0].to);
  EXPECT_EQ(ctx.state()["cursor"]["created_at"], "2024-05-03 00:00:00.0025");
}

// An integer key: each batch ends at the batchSize-th key in the key's own order (not in the
// order of its text, where "99" comes after "500").
TEST_F(PostgresBatchesTest, BatchesOfAnIntegerKeyEndAtTheBatchSizethKeyInNumericOrder) {
  ASSERT_TRUE(conn_
                  ->RunScript("CREATE TABLE nums (id int PRIMARY KEY, n int NOT NULL DEFAULT 0); "
                              "INSERT INTO nums (id) SELECT generate_series(1, 1000);")
                  .ok());
  auto m = NewPostgresBatches(File("nums", {"id"}, "UPDATE nums SET n = n + 1 WHERE {batch}"));
  RecordingContext ctx(db_.url(), {{"batchSize", 300}});
  Status s = m->Run(ctx);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(ctx.batches.size(), 4u);
  std::vector<std::string> ends;
  for (const BatchRecord& b : ctx.batches) {
    ends.push_back(b.to["id"].get<std::string>() + ":" + std::to_string(b.rows));
  }
  EXPECT_EQ(ends, (std::vector<std::string>{"300:300", "600:300", "900:300", "1000:100"}));
  EXPECT_EQ(ctx.state()["affected"], 1000);
  EXPECT_EQ(Scalar("SELECT count(*) FROM nums WHERE n = 1"), "1000");
}

TEST_F(PostgresBatchesTest, AStoppedRunResumesFromItsCursorWithoutRedoingABatch) {
  auto m = NewPostgresBatches(
      File("items", {"created_at", "id"}, "UPDATE items SET n = n + 1 WHERE {batch}"));
  RecordingContext first(db_.url(), {{"batchSize", 700}});
  first.stop_after = 2;
  EXPECT_EQ(m->Run(first).code(), StatusCode::kCancelled);
  EXPECT_EQ(Scalar("SELECT count(*) FROM items WHERE n = 1"), "1400");

  RecordingContext second(db_.url(), {{"batchSize", 700}}, first.state());
  Status s = m->Run(second);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Scalar("SELECT count(*) FROM items WHERE n = 1"), "2500");
  EXPECT_EQ(second.batches.size(), 2u);
  EXPECT_EQ(second.state()["affected"], 2500);
}

TEST_F(PostgresBatchesTest, ARowInsertedAheadOfTheCursorIsCoveredAndDefaultsApply) {
  MigrationFile f = File("items", {"id"}, "UPDATE items SET label = 'done' WHERE {batch}");
  f.args.push_back({"batchSize", ArgSpec::Type::kInt, 1, 10, {}, 10});
  auto m = NewPostgresBatches(f);
  EXPECT_EQ(m->Validate({{"batchSize", 11}}).message(),
            "batchSize must be an integer in [1, 10], got 11");
  EXPECT_EQ(m->Validate({{"statementTimeoutMs", 50}}).message(),
            "statementTimeoutMs must be an integer in [100, 3600000], got 50");
  ASSERT_TRUE(conn_->Run("DELETE FROM items WHERE id >= 'id 00021'").ok());  // 20 rows left
  RecordingContext ctx(db_.url(), nlohmann::json::object());
  ctx.stop_after = 1;
  EXPECT_EQ(m->Run(ctx).code(), StatusCode::kCancelled);
  ASSERT_TRUE(conn_->Run("INSERT INTO items (id, created_at) VALUES ('zz', now())").ok());
  RecordingContext rest(db_.url(), nlohmann::json::object(), ctx.state());
  ASSERT_TRUE(m->Run(rest).ok());
  EXPECT_EQ(ctx.batches[0].rows, 10);  // the file's default batchSize
  EXPECT_EQ(Scalar("SELECT count(*) FROM items WHERE label = 'done'"), "21");
}

TEST_F(PostgresBatchesTest, TablesAndKeysThatCannotOrderEveryRowAreRefused) {
  ASSERT_TRUE(conn_->Run("ALTER TABLE items ADD COLUMN maybe text").ok());
  const std::string where = "migrations/20250601_1200_backfill.toml: [postgres] ";
  struct Case {
    MigrationFile file;
    std::string message;
  } cases[] = {
      {File("nope", {"id"}, "UPDATE nope SET n = 1 WHERE {batch}"),
       where + "table nope does not exist in DATABASE_URL's database; fix the table name"},
      {File("items", {"id", "missing"}, "UPDATE items SET n = 1 WHERE {batch}"),
       where + "key columns {missing} do not exist in items"},
      {File("items", {"created_at"}, "UPDATE items SET n = 1 WHERE {batch}"),
       where + "key (created_at) is not unique in items: no unique index lies within these "
               "columns, so rows sharing a key could be skipped; add the primary key's columns "
               "(e.g. id) to key"},
      {File("items", {"maybe", "id"}, "UPDATE items SET n = 1 WHERE {batch}"),
       where + "key columns {maybe} of items allow NULL, and rows with NULL keys would be "
               "skipped; use NOT NULL columns"},
  };
  for (const Case& c : cases) {
    RecordingContext ctx(db_.url(), nlohmann::json::object());
    Status s = NewPostgresBatches(c.file)->Run(ctx);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.message;
    EXPECT_EQ(s.message(), c.message);
  }
  EXPECT_EQ(Scalar("SELECT count(*) FROM items WHERE n <> 0"), "0");
}

TEST_F(PostgresBatchesTest, ABatchOverItsStatementTimeoutFailsWithAdviceAndIsRolledBack) {
  auto m = NewPostgresBatches(File(
      "items", {"id"}, "UPDATE items SET n = n + 1 WHERE {batch} AND pg_sleep(0.3) IS NOT NULL"));
  RecordingContext ctx(db_.url(), {{"batchSize", 5}, {"statementTimeoutMs", 200}});
  Status s = m->Run(ctx);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "the statement of migrations/20250601_1200_backfill.toml ran longer than "
            "statementTimeoutMs=200 on one batch; lower batchSize or raise statementTimeoutMs");
  EXPECT_EQ(Scalar("SELECT count(*) FROM items WHERE n <> 0"), "0");
  EXPECT_TRUE(ctx.batches.empty());
}

TEST_F(PostgresBatchesTest, CheckPreparesStatementsWithoutRunningThem) {
  MigrationFile good = File("items", {"created_at", "id"}, "UPDATE items SET n = 1 WHERE {batch}");
  MigrationFile typo = File("items", {"id"}, "UPDATE items SET nn = 1 WHERE {batch}");
  typo.path = "m/20250602_typo.toml";
  MigrationFile copy;
  copy.path = "m/20250603_copy.toml";
  copy.kind = MigrationKind::kPostgresToClickHouse;
  copy.select = "SELECT id, created_at FROM itemz";
  FileCheckReport report = CheckFilesAgainstDatabases({good, typo, copy}, db_.url());
  EXPECT_EQ(report.notes, (std::vector<std::string>{
                              "copies not checked against ClickHouse: CLICKHOUSE_URL is not set"}));
  std::vector<std::string> got;
  for (const FileProblem& p : report.problems) got.push_back(p.ToString());
  EXPECT_EQ(got, (std::vector<std::string>{
                     "m/20250602_typo.toml: [postgres] statement does not prepare: Postgres query "
                     "failed (SQLSTATE 42703): ERROR:  column \"nn\" of relation \"items\" does "
                     "not exist",
                     "m/20250603_copy.toml: [postgres_to_clickhouse] select does not prepare: "
                     "Postgres query failed (SQLSTATE 42P01): ERROR:  relation \"itemz\" does not "
                     "exist"}));
  EXPECT_EQ(Scalar("SELECT count(*) FROM items WHERE n <> 0"), "0");  // nothing ran

  FileCheckReport offline = CheckFilesAgainstDatabases({good}, "");
  EXPECT_EQ(offline.notes,
            (std::vector<std::string>{"not checked against Postgres: DATABASE_URL is not set"}));
}

}  // namespace
}  // namespace bgm
