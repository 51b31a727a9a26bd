// `bgmigrate check` on a copy file, against a real Postgres and a real ClickHouse: the SELECT's
// output columns and types against the target's, read from system.columns; nothing runs.
#include "migrations/file_check.h"

#include <gtest/gtest.h>

#include "testing/test_clickhouse.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

class FileCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    ASSERT_TRUE(ch_.ok());
    PgConnection conn = db_.Connect();
    ASSERT_TRUE(conn.RunScript("CREATE TABLE src (id text PRIMARY KEY, n int NOT NULL, "
                               "label text, at timestamp NOT NULL, tags text[], flag boolean, "
                               "amount numeric, meta jsonb)")
                    .ok());
    ASSERT_TRUE(ch_.client()
                    .Execute("CREATE TABLE tgt (id String, n UInt32, label Nullable(String), "
                             "at DateTime, tags Array(String), flag UInt8, "
                             "amount Decimal(18, 4), fresh String DEFAULT 'x') "
                             "ENGINE = MergeTree ORDER BY id")
                    .ok());
  }
  MigrationFile Copy(const std::string& select, std::vector<std::string> key = {"at", "id"}) {
    MigrationFile f;
    f.name = "20250602_copy";
    f.path = "m/20250602_copy.toml";
    f.kind = MigrationKind::kPostgresToClickHouse;
    f.target = "tgt";
    f.key = std::move(key);
    f.select = select;
    return f;
  }
  std::vector<std::string> Problems(const MigrationFile& f) {
    FileCheckReport r = CheckFilesAgainstDatabases(
        {f}, db_.url(), {testing::TestClickHouseUrl(), "default", "", ch_.database()});
    EXPECT_TRUE(r.notes.empty()) << r.notes[0];
    std::vector<std::string> out;
    for (const FileProblem& p : r.problems) out.push_back(p.ToString());
    return out;
  }

  testing::TestDatabase db_;
  testing::TestClickHouse ch_;
};

TEST_F(FileCheckTest, ASelectWhoseColumnsFitTheTargetIsValid) {
  EXPECT_EQ(Problems(Copy("SELECT id, n, label, at, tags, flag, amount FROM src")),
            std::vector<std::string>{});
}

TEST_F(FileCheckTest, ColumnsWithoutATargetTypesThatCannotConvertAndMissingKeysAreNamed) {
  EXPECT_EQ(Problems(Copy("SELECT id, label AS n, at, meta AS tags, flag, 1 AS extra FROM src",
                          {"created_at", "id"})),
            (std::vector<std::string>{
                "m/20250602_copy.toml: [postgres_to_clickhouse] key column created_at is not an "
                "output column of select; name it in the select list",
                "m/20250602_copy.toml: [postgres_to_clickhouse] column n is text in Postgres and "
                "UInt32 in ClickHouse: a number needs a numeric source; cast it in the SELECT",
                "m/20250602_copy.toml: [postgres_to_clickhouse] select column extra has no column "
                "of that name in tgt; rename it (AS <target column>) or leave it out"}));
  MigrationFile missing = Copy("SELECT id, at FROM src");
  missing.target = "nope";
  EXPECT_EQ(Problems(missing),
            (std::vector<std::string>{
                "m/20250602_copy.toml: [postgres_to_clickhouse] target table nope does not exist "
                "in ClickHouse (CLICKHOUSE_DB); create it with a fast migration first, or fix the "
                "name"}));
}

}  // namespace
}  // namespace bgm
