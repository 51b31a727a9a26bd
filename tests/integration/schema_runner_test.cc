// Fast migrations on a real Postgres: exactly once, checksums, concurrent starts.
#include "schema/schema_runner.h"

#include <gtest/gtest.h>

#include <thread>

#include "testing/example_app.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using testing::TestDatabase;

TEST(SchemaRunnerTest, FreshDatabaseGetsEveryFileOnceAndRerunAppliesNothing) {
  TestDatabase db;  // applies the files once
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  Result<PgResult> versions = conn.Exec(
      "SELECT version, name FROM bgmigrate_schema_versions WHERE store = 'postgres' "
      "ORDER BY version");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->rows(), static_cast<int>(PostgresSchemaFiles().size()));
  EXPECT_EQ(versions->Get(0, 1), "0001_background_migrations.sql");

  Result<int> again =
      ApplyPostgresSchema(conn, PostgresSchemaFiles(), testing::ExampleSchema().postgres());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, 0);
}

TEST(SchemaRunnerTest, ChangedAppliedFileIsRefusedNamingFileAndChecksums) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  std::vector<EmbeddedFile> files = PostgresSchemaFiles();
  const std::string edited = std::string(files[0].contents) + "\n-- edited\n";
  files[0].contents = edited;
  Result<int> r = ApplyPostgresSchema(conn, files);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("0001_background_migrations.sql was changed"),
            std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("checksum"), std::string::npos);
}

TEST(SchemaRunnerTest, FailingFileRollsBackAndNamesTheFile) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  std::vector<EmbeddedFile> files = PostgresSchemaFiles();
  files.push_back({"0999_broken.sql", "CREATE TABLE half_done (id int); SELEC 1;"});
  Result<int> r = ApplyPostgresSchema(conn, files);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("applying postgres schema file 0999_broken.sql"),
            std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("SQLSTATE 42601"), std::string::npos);
  Result<PgResult> t = conn.Exec("SELECT to_regclass('half_done') IS NULL");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->GetBool(0, 0)) << "the failed file must leave nothing behind";
}

TEST(SchemaRunnerTest, ConcurrentRunnersApplyEachVersionOnce) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  std::vector<EmbeddedFile> files = PostgresSchemaFiles();
  files.push_back(
      {"0998_counter.sql",
       "CREATE TABLE applied_counter (n int); INSERT INTO applied_counter VALUES (1);"});
  std::vector<int> applied(3, -1);
  {
    std::vector<std::jthread> runners;
    for (int i = 0; i < 3; ++i) {
      runners.emplace_back([&, i] {
        PgConnection c = db.Connect();
        Result<int> r = ApplyPostgresSchema(c, files);
        applied[static_cast<size_t>(i)] = r.ok() ? *r : -1;
      });
    }
  }
  EXPECT_EQ(applied[0] + applied[1] + applied[2], 1);
  Result<PgResult> n = conn.Exec("SELECT count(*) FROM applied_counter");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->GetInt(0, 0), 1);
}

TEST(PgConnectionTest, UnreachableServerIsUnavailableWithoutPassword) {
  Result<PgConnection> c =
      PgConnection::Connect("postgresql://u:s3cret@127.0.0.1:1/db?connect_timeout=2");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(c.status().message().find("127.0.0.1:1"), std::string::npos);
  EXPECT_EQ(c.status().message().find("s3cret"), std::string::npos);
}

TEST(PgConnectionTest, MalformedUrlIsInvalidArgument) {
  Result<PgConnection> c = PgConnection::Connect("postgresql://[oops");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
}

TEST(PgConnectionTest, ParametersAreNeverSplicedIntoSql) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  const std::string hostile = "x'); DROP TABLE traces; --";
  Result<PgResult> r = conn.Exec("SELECT $1::text", {hostile});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Get(0, 0), hostile);
  Result<PgResult> t = conn.Exec("SELECT to_regclass('traces') IS NOT NULL");
  EXPECT_TRUE(t->GetBool(0, 0));
}

}  // namespace
}  // namespace bgm
