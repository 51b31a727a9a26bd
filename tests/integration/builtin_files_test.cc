// The built-in migrations as migration files (examples/langfuse/migrations/): each file
// writes exactly what the C++ mapping it replaces writes. The seeder's edge cases (metadata of
// every JSON type, NULLs, unicode, negative token counts, costs, prompts, rows sharing one
// created_at) are copied once by the C++ mapping into one ClickHouse database and once by the
// file into another, and the two tables must be byte-identical (RowBinary of every row); the
// cost backfill file must price every observation exactly as the C++ backfill does.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "migrations/backfill_observation_costs.h"
#include "migrations/file_copy.h"
#include "migrations/langfuse_copies.h"
#include "migrations/postgres_batches.h"
#include "seed/seeder.h"
#include "testing/process.h"
#include "testing/recording_context.h"
#include "testing/test_clickhouse.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using testing::RecordingContext;

MigrationFile ExampleFile(const std::string& name) {
  const std::string path =
      std::string(BGM_SOURCE_DIR) + "/examples/langfuse/migrations/" + name + ".toml";
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  std::vector<FileProblem> problems;
  std::optional<MigrationFile> f = ParseMigrationFile(path, content.str(), problems);
  EXPECT_TRUE(f.has_value()) << path << ": "
                             << (problems.empty() ? "unreadable" : problems[0].ToString());
  return f.value_or(MigrationFile{});
}

class BuiltinFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg_.ok());
    ASSERT_TRUE(ch_.ok());
    conn_.emplace(pg_.Connect());
    files_db_ = ch_.database() + "_files";
    for (const std::string& db : {ch_.database(), files_db_}) {
      testing::ProcessResult r = testing::RunProcess(
          BGM_BINARY, {"migrate"},
          {{"DATABASE_URL", pg_.url()}, {"CLICKHOUSE_URL", ch_.url()}, {"CLICKHOUSE_DB", db}});
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    SeedOptions o;
    o.traces = 400;
    o.observations = 1200;
    o.scores = 400;
    o.blob_bytes = 200;
    o.same_created_at_fraction = 0.1;
    o.random_seed = 11;
    Status s = Seed(*conn_, o);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void TearDown() override { (void)ch_.client().Execute("DROP DATABASE IF EXISTS " + files_db_); }

  MigrationEnv Env(const std::string& db) {
    MigrationEnv env;
    env.database_url = pg_.url();
    env.clickhouse_url = ch_.url();
    env.clickhouse_db = db;
    return env;
  }

  void RunToEnd(BackgroundMigration& m, const std::string& db) {
    RecordingContext ctx(Env(db), {{"batchSize", 150}});
    ASSERT_TRUE(m.Validate(ctx.args()).ok());
    Status s = m.Run(ctx);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_GT(ctx.batches.size(), 2u);
  }

  std::string RowBinary(const std::string& db, const std::string& table) {
    Result<std::string> r =
        ch_.client().Query("SELECT * FROM " + db + "." + table + " ORDER BY id FORMAT RowBinary");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : "";
  }

  // The first row that differs, as JSON from both databases.
  std::string FirstDifference(const std::string& table) {
    auto rows = [&](const std::string& db) {
      Result<std::string> r = ch_.client().Query("SELECT * FROM " + db + "." + table +
                                                 " ORDER BY id FORMAT JSONEachRow");
      std::vector<std::string> out;
      std::istringstream lines(r.ok() ? *r : "");
      for (std::string line; std::getline(lines, line);) out.push_back(line);
      return out;
    };
    const std::vector<std::string> a = rows(ch_.database()), b = rows(files_db_);
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
      if (a[i] != b[i]) return "first difference:\n  mapping: " + a[i] + "\n  file:    " + b[i];
    }
    return "row counts " + std::to_string(a.size()) + " and " + std::to_string(b.size());
  }

  std::string PgScalar(const std::string& sql) {
    Result<PgResult> r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->rows() > 0 ? std::string(r->Get(0, 0)) : "";
  }

  // Copies `table` with the C++ mapping and with the file; both tables must hold the same bytes.
  void ExpectSameRows(const std::string& table, TableMapping mapping, const std::string& file) {
    std::unique_ptr<BackgroundMigration> cpp = NewTableCopy(std::move(mapping));
    RunToEnd(*cpp, ch_.database());
    std::unique_ptr<BackgroundMigration> from_file = NewFileCopy(ExampleFile(file));
    RunToEnd(*from_file, files_db_);
    const std::string expected = RowBinary(ch_.database(), table);
    const std::string actual = RowBinary(files_db_, table);
    EXPECT_EQ(ch_.Scalar("SELECT count() FROM " + files_db_ + "." + table),
              PgScalar("SELECT count(*) FROM " + table));
    EXPECT_GT(expected.size(), 1000u);
    EXPECT_TRUE(actual == expected)
        << table << ": the file wrote other bytes than the mapping; " << FirstDifference(table);
  }

  testing::TestDatabase pg_;
  testing::TestClickHouse ch_;
  std::optional<PgConnection> conn_;
  std::string files_db_;
};

TEST_F(BuiltinFilesTest, TracesFileWritesTheBytesOfTheCppMapping) {
  // The edge cases are there: metadata that is not an object, NULL metadata, unicode.
  EXPECT_NE(PgScalar("SELECT count(*) FROM traces WHERE jsonb_typeof(metadata) <> 'object'"), "0");
  EXPECT_NE(PgScalar("SELECT count(*) FROM traces WHERE metadata IS NULL"), "0");
  ExpectSameRows("traces", TracesMapping(), kCopyTraces);
}

TEST_F(BuiltinFilesTest, ObservationsFileWritesTheBytesOfTheCppMapping) {
  std::unique_ptr<BackgroundMigration> backfill = NewBackfillObservationCosts();
  RecordingContext priced(Env(ch_.database()), nlohmann::json::object());
  ASSERT_TRUE(backfill->Run(priced).ok());
  EXPECT_NE(PgScalar("SELECT count(*) FROM observations WHERE prompt_tokens < 0"), "0");
  EXPECT_NE(PgScalar("SELECT count(*) FROM observations WHERE prompt_id IS NOT NULL"), "0");
  EXPECT_NE(PgScalar("SELECT count(*) FROM observations WHERE calculated_total_cost > 0"), "0");
  ExpectSameRows("observations", ObservationsMapping(), kCopyObservations);
}

TEST_F(BuiltinFilesTest, ScoresFileWritesTheBytesOfTheCppMapping) {
  EXPECT_NE(PgScalar("SELECT count(*) FROM scores WHERE value IS NULL"), "0");
  ExpectSameRows("scores", ScoresMapping(), kCopyScores);
}

TEST_F(BuiltinFilesTest, CostBackfillFilePricesEveryObservationAsTheCppBackfill) {
  const std::string priced_sql =
      "SELECT md5(string_agg(concat_ws('|', id, internal_model_id, calculated_input_cost, "
      "calculated_output_cost, calculated_total_cost), ',' ORDER BY id)), "
      "count(internal_model_id) FROM observations";
  const std::string unpriced = PgScalar(priced_sql);
  std::unique_ptr<BackgroundMigration> cpp = NewBackfillObservationCosts();
  RecordingContext first(Env(ch_.database()), nlohmann::json::object());
  ASSERT_TRUE(cpp->Run(first).ok());
  const std::string expected = PgScalar(priced_sql);
  EXPECT_NE(expected, unpriced);
  ASSERT_TRUE(conn_
                  ->Run("UPDATE observations SET internal_model_id = NULL, calculated_input_cost "
                        "= NULL, calculated_output_cost = NULL, calculated_total_cost = NULL")
                  .ok());
  std::unique_ptr<BackgroundMigration> file =
      NewPostgresBatches(ExampleFile(kBackfillObservationCosts));
  RecordingContext second(Env(ch_.database()), {{"batchSize", 100}});
  Status s = file->Run(second);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(PgScalar(priced_sql), expected);
  EXPECT_EQ(PgScalar("SELECT count(internal_model_id) > 0 FROM observations"), "t");
}

}  // namespace
}  // namespace bgm
