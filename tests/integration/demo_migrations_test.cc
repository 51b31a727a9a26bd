// The main command's demo folder (examples/langfuse/demo/): one migration of each kind beyond
// the example application's own, run by a real worker after the example's copies, with exact
// results on both sides (the same rows backfilled in Postgres and in ClickHouse).
#include <gtest/gtest.h>

#include "seed/seeder.h"
#include "testing/example_app.h"
#include "testing/process.h"
#include "testing/test_clickhouse.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

TEST(DemoMigrationsTest, EachKindRunsAfterTheCopiesWithTheSameRowsChangedOnBothSides) {
  testing::TestDatabase pg;
  testing::TestClickHouse ch;
  ASSERT_TRUE(pg.ok());
  ASSERT_TRUE(ch.ok());
  const std::map<std::string, std::string> env = {
      {"DATABASE_URL", pg.url()},
      {"CLICKHOUSE_URL", ch.url()},
      {"CLICKHOUSE_DB", ch.database()},
      {"BGMIGRATE_MIGRATIONS_DIR",
       testing::ExampleMigrationsDir() + ":" + BGM_SOURCE_DIR + "/examples/langfuse/demo"}};
  testing::ProcessResult migrate = testing::RunProcess(BGM_BINARY, {"migrate"}, env);
  ASSERT_EQ(migrate.exit_code, 0) << migrate.err;
  EXPECT_NE(migrate.out.find("6 background migrations registered"), std::string::npos)
      << migrate.out;
  PgConnection conn = pg.Connect();
  SeedOptions o;
  o.traces = 2000;
  o.observations = 1000;
  o.scores = 500;
  o.random_seed = 5;
  ASSERT_TRUE(Seed(conn, o).ok());
  Result<PgResult> nulls = conn.Exec("SELECT count(*) FROM traces WHERE release IS NULL");
  ASSERT_TRUE(nulls.ok());
  const std::string backfilled(nulls->Get(0, 0));
  ASSERT_NE(backfilled, "0") << "the seed leaves some releases NULL";

  testing::ProcessResult run = testing::RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, env,
                                                   std::chrono::seconds(180));
  ASSERT_EQ(run.exit_code, 0) << run.err.substr(run.err.size() > 3000 ? run.err.size() - 3000 : 0);
  Result<PgResult> pg_counts = conn.Exec(
      "SELECT count(*) FILTER (WHERE release IS NULL), count(*) FILTER (WHERE release = "
      "'unknown'), (SELECT count(*) FROM background_migrations WHERE finished_at IS NOT NULL) "
      "FROM traces");
  ASSERT_TRUE(pg_counts.ok());
  EXPECT_EQ(std::string(pg_counts->Get(0, 0)) + " " + std::string(pg_counts->Get(0, 1)) + " " +
                std::string(pg_counts->Get(0, 2)),
            "0 " + backfilled + " 6");
  EXPECT_EQ(ch.Scalar("SELECT toString(countIf(release IS NULL)) || ' ' || "
                      "toString(countIf(release = 'unknown')) FROM traces FINAL"),
            "0 " + backfilled);
}

}  // namespace
}  // namespace bgm
