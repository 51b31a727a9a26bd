// ClickHouse fast migrations against the real server (18.16 over HTTP, or the embedded 26.7):
// version-resolved types, exactly-once under concurrency, checksum refusal, completion of an
// interrupted file.
#include "schema/clickhouse_schema.h"

#include <gtest/gtest.h>

#include <thread>

#include "testing/example_app.h"
#include "testing/process.h"
#include "testing/test_clickhouse.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using testing::ExampleSchema;
using testing::TestClickHouse;
using testing::TestDatabase;

class ClickHouseSchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg_.ok());
    ASSERT_TRUE(ch_.ok());
    conn_.emplace(pg_.Connect());
  }
  Result<int> Apply(const std::vector<EmbeddedFile>& files) {
    return ApplyClickHouseSchema(*conn_, ch_.client(), ch_.dialect(), ch_.database(), files);
  }
  TestDatabase pg_;
  TestClickHouse ch_;
  std::optional<PgConnection> conn_;
};

TEST_F(ClickHouseSchemaTest, CreatesTheTablesWithTheServersTypesAndRerunsAsNoOp) {
  Result<int> applied = Apply(ExampleSchema().clickhouse());
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(*applied, static_cast<int>(ExampleSchema().clickhouse().size()));
  const std::string db = ch_.database();
  auto type = [&](const std::string& table, const std::string& column) {
    return ch_.Scalar("SELECT type FROM system.columns WHERE database = '" + db +
                      "' AND table = '" + table + "' AND name = '" + column + "'");
  };
  if (ch_.dialect().modern()) {
    EXPECT_EQ(type("traces", "timestamp"), "DateTime64(3)");
    EXPECT_EQ(type("traces", "metadata"), "Map(LowCardinality(String), String)");
    EXPECT_EQ(type("observations", "usage_details"), "Map(LowCardinality(String), UInt64)");
  } else {
    EXPECT_EQ(type("traces", "timestamp"), "DateTime");
    EXPECT_EQ(type("traces", "metadata.key"), "Array(String)");
    EXPECT_EQ(type("traces", "metadata.value"), "Array(String)");
    EXPECT_EQ(type("observations", "usage_details.value"), "Array(UInt64)");
    EXPECT_EQ(type("observations", "cost_details.value"), "Array(Decimal(18, 12))");
  }
  EXPECT_EQ(type("observations", "total_cost"), "Nullable(Decimal(18, 12))");
  EXPECT_EQ(type("scores", "value"), "Float64");
  EXPECT_EQ(ch_.Scalar("SELECT engine FROM system.tables WHERE database = '" + db +
                       "' AND name = 'traces'"),
            "ReplacingMergeTree");

  Result<int> again = Apply(ExampleSchema().clickhouse());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM bgmigrate_schema_versions"),
            std::to_string(ExampleSchema().clickhouse().size()));
}

TEST_F(ClickHouseSchemaTest, ConcurrentRunnersRecordEachVersionOnce) {
  std::vector<int> applied(3, -1);
  {
    std::vector<std::jthread> runners;
    for (int i = 0; i < 3; ++i) {
      runners.emplace_back([&, i] {
        PgConnection conn = pg_.Connect();
        std::unique_ptr<ClickHouseClient> client = ch_.NewClient();
        Result<int> r = ApplyClickHouseSchema(conn, *client, ch_.dialect(), ch_.database(),
                                              ExampleSchema().clickhouse());
        applied[static_cast<size_t>(i)] = r.ok() ? *r : -100;
      });
    }
  }
  EXPECT_EQ(applied[0] + applied[1] + applied[2],
            static_cast<int>(ExampleSchema().clickhouse().size()));
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM bgmigrate_schema_versions"),
            std::to_string(ExampleSchema().clickhouse().size()));
}

TEST_F(ClickHouseSchemaTest, EditedAppliedFileIsRefusedNamingIt) {
  ASSERT_TRUE(Apply(ExampleSchema().clickhouse()).ok());
  std::vector<EmbeddedFile> files = ExampleSchema().clickhouse();
  const std::string edited = std::string(files[1].contents) + "\n-- edited\n";
  files[1].contents = edited;
  Result<int> r = Apply(files);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("applied clickhouse schema file 0002_observations.sql was "
                                      "changed after it was applied (checksum "),
            std::string::npos)
      << r.status().message();
}

TEST_F(ClickHouseSchemaTest, FileInterruptedHalfwayCompletesOnTheNextRun) {
  const std::string half =
      "CREATE TABLE IF NOT EXISTS extra_a (id String) ENGINE = MergeTree ORDER BY id;\n"
      "CREATE TABLE extra_b (id String) ENGINE = NoSuchEngine ORDER BY id;\n";
  std::vector<EmbeddedFile> files = ExampleSchema().clickhouse();
  files.push_back({"0900_extra.sql", half});
  Result<int> first = Apply(files);
  ASSERT_FALSE(first.ok());
  EXPECT_NE(first.status().message().find("applying clickhouse schema file 0900_extra.sql"),
            std::string::npos)
      << first.status().message();
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM bgmigrate_schema_versions WHERE version = 900"), "0")
      << "an unfinished file is not recorded";
  EXPECT_EQ(ch_.Scalar("EXISTS TABLE extra_a"), "1");

  const std::string fixed =
      "CREATE TABLE IF NOT EXISTS extra_a (id String) ENGINE = MergeTree ORDER BY id;\n"
      "CREATE TABLE IF NOT EXISTS extra_b (id String) ENGINE = MergeTree ORDER BY id;\n";
  files.back().contents = fixed;
  Result<int> second = Apply(files);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(*second, 1);
  EXPECT_EQ(ch_.Scalar("EXISTS TABLE extra_b"), "1");
}

TEST(MigrateCommandTest, ThreeConcurrentMigratesOnEmptyDatabasesRecordEachVersionOnce) {
  TestDatabase pg(/*apply_schema=*/false);
  TestClickHouse ch;
  ASSERT_TRUE(pg.ok());
  ASSERT_TRUE(ch.ok());
  // A database name that does not exist yet: migrate creates it.
  const std::string db = ch.database() + "_new";
  const std::map<std::string, std::string> env = {
      {"DATABASE_URL", pg.url()}, {"CLICKHOUSE_URL", ch.url()}, {"CLICKHOUSE_DB", db}};
  std::vector<std::unique_ptr<testing::ChildProcess>> runs;
  for (int i = 0; i < 3; ++i) {
    runs.push_back(std::make_unique<testing::ChildProcess>(
        BGM_BINARY, std::vector<std::string>{"migrate"}, env));
  }
  int applied_lines = 0;
  for (auto& r : runs) {
    std::optional<int> code = r->Wait(std::chrono::seconds(60));
    ASSERT_TRUE(code.has_value());
    const std::string err = r->Stderr();
    if (testing::TestClickHouseIsEmbedded() && *code != 0) {
      // One process holds an embedded data directory: a migrate that starts while another runs
      // is refused with a clear error (exit 2), and changes nothing.
      EXPECT_EQ(*code, 2) << err;
      EXPECT_NE(err.find("is held by another process"), std::string::npos) << err;
      continue;
    }
    EXPECT_EQ(*code, 0) << err;
    for (size_t pos = 0;
         (pos = err.find("Applied clickhouse schema file", pos)) != std::string::npos; ++pos) {
      applied_lines++;
    }
  }
  EXPECT_EQ(applied_lines, static_cast<int>(ExampleSchema().clickhouse().size()));
  PgConnection conn = pg.Connect();
  EXPECT_EQ(conn.Exec("SELECT count(*) FROM bgmigrate_schema_versions")->GetInt(0, 0),
            static_cast<int64_t>(PostgresSchemaFiles().size() + ExampleSchema().postgres().size()));
  EXPECT_EQ(ch.Scalar("SELECT count() FROM " + db + ".bgmigrate_schema_versions"),
            std::to_string(ExampleSchema().clickhouse().size()));
  EXPECT_EQ(ch.Scalar("SELECT count() FROM system.tables WHERE database = '" + db +
                      "' AND name IN ('traces', 'observations', 'scores')"),
            "3");
  // A rerun applies nothing.
  testing::ProcessResult again = testing::RunProcess(BGM_BINARY, {"migrate"}, env);
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_EQ(again.err.find("Applied"), std::string::npos) << again.err;
  // The skip switches.
  testing::ProcessResult skipped =
      testing::RunProcess(BGM_BINARY, {"migrate"},
                          {{"DATABASE_URL", pg.url()},
                           {"CLICKHOUSE_URL", "http://127.0.0.1:1"},
                           {"LANGFUSE_AUTO_CLICKHOUSE_MIGRATION_DISABLED", "true"}});
  EXPECT_EQ(skipped.exit_code, 0) << skipped.err;
  testing::ProcessResult unreachable =
      testing::RunProcess(BGM_BINARY, {"migrate"},
                          {{"DATABASE_URL", pg.url()}, {"CLICKHOUSE_URL", "http://127.0.0.1:1"}});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_NE(unreachable.err.find("connecting to ClickHouse"), std::string::npos) << unreachable.err;
  std::unique_ptr<ClickHouseClient> client = ch.NewClient();
  (void)client->Execute("DROP DATABASE IF EXISTS " + db);
}

}  // namespace
}  // namespace bgm
