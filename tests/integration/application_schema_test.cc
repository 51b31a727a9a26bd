// bgmigrate's own schema (control tables, compiled in) versus the application's schema folder
// (BGMIGRATE_SCHEMA_DIR, read at run time) on a real Postgres: what a fresh database gets, the
// separate version records, refusals before anything is written, and the upgrade from releases
// that compiled the example application's tables in as version 2.
#include "schema/application_schema.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "common/sha256.h"
#include "schema/control_table_shape.h"
#include "schema/schema_runner.h"
#include "testing/example_app.h"
#include "testing/process.h"
#include "testing/test_clickhouse.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

namespace fs = std::filesystem;
using testing::ExampleSchema;
using testing::ProcessResult;
using testing::RunProcess;
using testing::TestDatabase;

// A schema folder under /tmp, removed afterwards.
class TempSchemaDir {
 public:
  TempSchemaDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("bgm_schema_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempSchemaDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  void Write(const std::string& relative, const std::string& text) const {
    fs::create_directories((path_ / relative).parent_path());
    std::ofstream(path_ / relative, std::ios::binary | std::ios::trunc) << text;
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

std::string Column(PgConnection& conn, const std::string& sql) {
  Result<PgResult> r = conn.Exec(sql);
  if (!r.ok()) return "ERROR " + r.status().ToString();
  std::string out;
  for (int i = 0; i < r->rows(); ++i) {
    for (int j = 0; j < r->columns(); ++j) {
      if (j > 0) out += '|';
      out += r->IsNull(i, j) ? "NULL" : std::string(r->Get(i, j));
    }
    out += '\n';
  }
  return out;
}

std::string Tables(PgConnection& conn) {
  return Column(conn,
                "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM "
                "information_schema.tables WHERE table_schema NOT IN "
                "('pg_catalog', 'information_schema')");
}

// Every table, column, default, index and row count outside the catalogs.
std::string Snapshot(PgConnection& conn) {
  std::string out = Column(conn, R"sql(
      SELECT table_schema, table_name, column_name, data_type, is_nullable, column_default
      FROM information_schema.columns
      WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
      ORDER BY 1, 2, ordinal_position)sql");
  out += Column(conn, R"sql(
      SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes
      WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3)sql");
  Result<PgResult> tables = conn.Exec(
      "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM "
      "information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
      "ORDER BY 1");
  for (int i = 0; tables.ok() && i < tables->rows(); ++i) {
    const std::string t(tables->Get(i, 0));
    out += t + " " + Column(conn, "SELECT count(*) FROM " + t);
  }
  return out;
}

constexpr const char* kControlTables =
    "background_migration_chunks,background_migration_events,background_migrations,"
    "bgmigrate_migration_files,"
    "bgmigrate_schema_versions\n";

TEST(ApplicationSchemaTest, WithoutAnApplicationFolderAFreshDatabaseGetsOnlyTheControlTables) {
  TestDatabase db(/*apply_schema=*/false);
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  Result<int> applied = ApplyPostgresSchema(conn, PostgresSchemaFiles());
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(*applied, static_cast<int>(PostgresSchemaFiles().size()));
  EXPECT_EQ(Tables(conn), kControlTables);
  EXPECT_EQ(Column(conn, "SELECT store, version, name FROM bgmigrate_schema_versions ORDER BY 2"),
            "postgres|1|0001_background_migrations.sql\n"
            "postgres|3|0003_waiting.sql\n"
            "postgres|4|0004_migration_files.sql\n"
            "postgres|5|0005_chunks.sql\n"
            "postgres|6|0006_skip_cancel.sql\n"
            "postgres|7|0007_throttle.sql\n");
}

TEST(ApplicationSchemaTest, MigrateWithAnEmptyOrNoFolderCreatesOnlyControlTablesAndNoClickHouseDb) {
  TempSchemaDir empty;
  empty.Write("README.md", "nothing yet\n");
  fs::create_directories(fs::path(empty.path()) / "postgres");
  testing::TestClickHouse ch;
  ASSERT_TRUE(ch.ok());
  for (const std::string& dir : {std::string(), empty.path()}) {
    TestDatabase db(/*apply_schema=*/false);
    ASSERT_TRUE(db.ok());
    const std::string ch_db = ch.database() + "_none";
    ProcessResult r = RunProcess(BGM_BINARY, {"migrate"},
                                 {{"DATABASE_URL", db.url()},
                                  {"CLICKHOUSE_URL", ch.url()},
                                  {"CLICKHOUSE_DB", ch_db},
                                  {"BGMIGRATE_SCHEMA_DIR", dir}});
    ASSERT_EQ(r.exit_code, 0) << "BGMIGRATE_SCHEMA_DIR='" << dir << "': " << r.err;
    PgConnection conn = db.Connect();
    EXPECT_EQ(Tables(conn), kControlTables) << "BGMIGRATE_SCHEMA_DIR='" << dir << "'";
    EXPECT_EQ(ch.Scalar("SELECT count() FROM system.databases WHERE name = '" + ch_db + "'"), "0")
        << "no application ClickHouse files: nothing is created in ClickHouse";
  }
}

TEST(ApplicationSchemaTest, SeederWithoutTheExampleTablesSaysWhichSettingCreatesThem) {
  TestDatabase db(/*apply_schema=*/false);
  ASSERT_TRUE(db.ok());
  ProcessResult r = RunProcess(BGM_SEED_BINARY, {"--traces", "1"}, {{"DATABASE_URL", db.url()}});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("langfuse-seed: this database has no traces, observations, scores: the "
                       "example application's tables come from its schema files; run "
                       "`BGMIGRATE_SCHEMA_DIR=examples/langfuse/schema bgmigrate migrate` first"),
            std::string::npos)
      << r.err;
  ProcessResult migrated =
      RunProcess(BGM_BINARY, {"migrate"}, {{"DATABASE_URL", db.url()}, {"CLICKHOUSE_URL", ""}});
  ASSERT_EQ(migrated.exit_code, 0) << migrated.err;
  ProcessResult seeded =
      RunProcess(BGM_SEED_BINARY, {"--traces", "2"}, {{"DATABASE_URL", db.url()}});
  EXPECT_EQ(seeded.exit_code, 0) << seeded.err;
  PgConnection conn = db.Connect();
  Result<PgResult> counts = conn.Exec(
      "SELECT (SELECT count(*) FROM traces) || ' ' || (SELECT count(*) FROM observations) || ' ' "
      "|| (SELECT count(*) FROM scores)");
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  EXPECT_EQ(counts->Get(0, 0), "2 6 2") << "3 observations and 1 score per trace by default";
}

TEST(ApplicationSchemaTest, ApplicationVersionsAreRecordedApartFromControlVersions) {
  TestDatabase db(/*apply_schema=*/false);
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  TempSchemaDir dir;
  // Versions 1 and 3, as bgmigrate's own files have.
  dir.Write("postgres/0001_app_one.sql", "CREATE TABLE app_one (id int);");
  dir.Write("postgres/0003_app_three.sql", "CREATE TABLE app_three (id int);");
  Result<ApplicationSchema> app = ApplicationSchema::Load(dir.path());
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  Result<int> applied = ApplyPostgresSchema(conn, PostgresSchemaFiles(), app->postgres());
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(*applied, 8);
  EXPECT_EQ(
      Column(conn, "SELECT store, version, name FROM bgmigrate_schema_versions ORDER BY 1, 2"),
      "application|1|0001_app_one.sql\n"
      "application|3|0003_app_three.sql\n"
      "postgres|1|0001_background_migrations.sql\n"
      "postgres|3|0003_waiting.sql\n"
      "postgres|4|0004_migration_files.sql\n"
      "postgres|5|0005_chunks.sql\n"
      "postgres|6|0006_skip_cancel.sql\n"
      "postgres|7|0007_throttle.sql\n");
  Result<int> again = ApplyPostgresSchema(conn, PostgresSchemaFiles(), app->postgres());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, 0);
}

// A file that requires a background migration is applied only once that migration finished
// (or was skipped); until then neither it nor any file after it is, and the message names the
// migration, its state and what to do.
TEST(ApplicationSchemaTest, AFileRequiringAnUnfinishedBackgroundMigrationWaitsWithTheFilesAfterIt) {
  TestDatabase db(/*apply_schema=*/false);
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  TempSchemaDir dir;
  dir.Write("postgres/0001_app_one.sql", "CREATE TABLE app_one (id int);");
  dir.Write("postgres/0002_drop_legacy.sql",
            "-- Needs the copy out of legacy first.\n"
            "-- bgmigrate: requires 20250101_copy_legacy, 20250102_backfill\n"
            "ALTER TABLE app_one ADD COLUMN moved boolean;\n");
  dir.Write("postgres/0003_app_three.sql", "CREATE TABLE app_three (id int);");
  Result<ApplicationSchema> app = ApplicationSchema::Load(dir.path());
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  Result<std::vector<SchemaFile>> parsed = ParseSchemaFiles(app->postgres());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ((*parsed)[1].required,
            (std::vector<std::string>{"20250101_copy_legacy", "20250102_backfill"}));

  std::string held;
  Result<int> first = ApplyPostgresSchema(conn, PostgresSchemaFiles(), app->postgres(), &held);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, 7) << "bgmigrate's 6 files and 0001";
  EXPECT_EQ(held,
            "application postgres schema file 0002_drop_legacy.sql requires background migrations "
            "that have not finished: 20250101_copy_legacy (not registered (no such background "
            "migration in this database: is its file deployed?)); 20250102_backfill (not "
            "registered (no such background migration in this database: is its file "
            "deployed?)). It and the files after it are not applied. Let them finish (`bgmigrate "
            "gate 20250101_copy_legacy 20250102_backfill` exits 0 once they have; retry or "
            "resume a failed or paused one, or `bgmigrate skip` one whose data was migrated "
            "another way), then run `bgmigrate migrate` again");
  EXPECT_EQ(Column(conn, "SELECT to_regclass('app_three') IS NULL"), "t\n");

  ASSERT_TRUE(conn.RunScript(R"sql(
      INSERT INTO background_migrations (id, name, script, rows_processed, rows_total_estimate,
                                         worker_id, locked_at)
      VALUES ('1', '20250101_copy_legacy', 'x', 1200, 5000, 'w1', now()),
             ('2', '20250102_backfill', 'y', 0, NULL, NULL, NULL);
      UPDATE background_migrations SET failed_at = now(), failed_reason = 'bad row 7'
      WHERE name = '20250102_backfill';)sql")
                  .ok());
  Result<int> refused = ApplyPostgresSchema(conn, PostgresSchemaFiles(), app->postgres());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find(
                "not finished: 20250101_copy_legacy (running, 1200 rows done of about 5000); "
                "20250102_backfill (failed: bad row 7). It and the files after it"),
            std::string::npos)
      << refused.status().message();

  ASSERT_TRUE(conn.RunScript("UPDATE background_migrations SET finished_at = now(), "
                             "failed_at = NULL, worker_id = NULL;")
                  .ok());
  held.clear();
  Result<int> rest = ApplyPostgresSchema(conn, PostgresSchemaFiles(), app->postgres(), &held);
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  EXPECT_EQ(*rest, 2);
  EXPECT_EQ(held, "");
  EXPECT_EQ(Column(conn, "SELECT to_regclass('app_three') IS NOT NULL"), "t\n");

  dir.Write("postgres/0004_bad.sql", "-- bgmigrate: requires\nSELECT 1;");
  Result<ApplicationSchema> bad = ApplicationSchema::Load(dir.path());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find(
                "schema file '0004_bad.sql': '-- bgmigrate: requires' names no background "
                "migration"),
            std::string::npos)
      << bad.status().message();
}

TEST(ApplicationSchemaTest, ChangedAppliedApplicationFileIsRefusedWithBothChecksumsBeforeAnyWrite) {
  TestDatabase db(/*apply_schema=*/false);
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  TempSchemaDir dir;
  const std::string original = "CREATE TABLE app_one (id int);";
  dir.Write("postgres/0001_app_one.sql", original);
  {
    Result<ApplicationSchema> app = ApplicationSchema::Load(dir.path());
    ASSERT_TRUE(app.ok());
    ASSERT_TRUE(ApplyPostgresSchema(conn, PostgresSchemaFiles(), app->postgres()).ok());
  }
  const std::string edited = "CREATE TABLE app_one (id bigint);";
  dir.Write("postgres/0001_app_one.sql", edited);
  dir.Write("postgres/0002_app_two.sql", "CREATE TABLE app_two (id int);");
  // A new control-table file would be applied too, were nothing checked first.
  std::vector<EmbeddedFile> internal = PostgresSchemaFiles();
  internal.push_back({"0999_new_control.sql", "CREATE TABLE new_control (id int);"});
  const std::string before = Snapshot(conn);

  Result<ApplicationSchema> app = ApplicationSchema::Load(dir.path());
  ASSERT_TRUE(app.ok());
  Result<int> r = ApplyPostgresSchema(conn, internal, app->postgres());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status().message(),
            "applied application postgres schema file 0001_app_one.sql was changed after it was "
            "applied (checksum " +
                Sha256Hex(original) + " recorded, " + Sha256Hex(edited) +
                " now); restore the original file and add the change as a new numbered file");
  EXPECT_EQ(Snapshot(conn), before) << "nothing may be written when a check fails";
}

TEST(ApplicationSchemaTest, ChangedAppliedClickHouseFileStopsMigrateBeforePostgresIsWritten) {
  TestDatabase db(/*apply_schema=*/false);
  testing::TestClickHouse ch;
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(ch.ok());
  TempSchemaDir dir;
  const std::string original =
      "CREATE TABLE IF NOT EXISTS app_events (id String) ENGINE = MergeTree ORDER BY id;\n";
  dir.Write("clickhouse/0001_app_events.sql", original);
  const std::map<std::string, std::string> env = {{"DATABASE_URL", db.url()},
                                                  {"CLICKHOUSE_URL", ch.url()},
                                                  {"CLICKHOUSE_DB", ch.database()},
                                                  {"BGMIGRATE_SCHEMA_DIR", dir.path()}};
  ProcessResult first = RunProcess(BGM_BINARY, {"migrate"}, env);
  ASSERT_EQ(first.exit_code, 0) << first.err;

  const std::string edited = original + "-- edited\n";
  dir.Write("clickhouse/0001_app_events.sql", edited);
  dir.Write("postgres/0001_app_one.sql", "CREATE TABLE app_one (id int);");
  PgConnection conn = db.Connect();
  const std::string before = Snapshot(conn);
  ProcessResult second = RunProcess(BGM_BINARY, {"migrate"}, env);
  EXPECT_EQ(second.exit_code, 2) << second.err;
  EXPECT_NE(second.err.find("applied clickhouse schema file 0001_app_events.sql was changed after "
                            "it was applied (checksum " +
                            Sha256Hex(original) + " recorded, " + Sha256Hex(edited) + " now)"),
            std::string::npos)
      << second.err;
  EXPECT_EQ(Snapshot(conn), before) << "the new Postgres file must not run";
}

TEST(ApplicationSchemaTest, BadFileNameIsRefusedNamingItAndMigrateWritesNothing) {
  TempSchemaDir dir;
  dir.Write("postgres/0001_app_one.sql", "CREATE TABLE app_one (id int);");
  dir.Write("postgres/2-app-two.sql", "CREATE TABLE app_two (id int);");
  Result<ApplicationSchema> app = ApplicationSchema::Load(dir.path());
  ASSERT_FALSE(app.ok());
  EXPECT_EQ(app.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(app.status().message(), "schema folder " + dir.path() +
                                        "/postgres: schema file '2-app-two.sql' is not named "
                                        "NNNN_description.sql");

  TestDatabase db(/*apply_schema=*/false);
  ASSERT_TRUE(db.ok());
  ProcessResult r = RunProcess(BGM_BINARY, {"migrate"},
                               {{"DATABASE_URL", db.url()}, {"BGMIGRATE_SCHEMA_DIR", dir.path()}});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("'2-app-two.sql' is not named NNNN_description.sql"), std::string::npos)
      << r.err;
  PgConnection conn = db.Connect();
  EXPECT_EQ(Tables(conn), "NULL\n") << "nothing is created";

  // A folder that is not there, and a stray subfolder, are refused too.
  ProcessResult missing =
      RunProcess(BGM_BINARY, {"migrate"},
                 {{"DATABASE_URL", db.url()}, {"BGMIGRATE_SCHEMA_DIR", dir.path() + "/nope"}});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("BGMIGRATE_SCHEMA_DIR='" + dir.path() + "/nope' is not a folder"),
            std::string::npos)
      << missing.err;
  TempSchemaDir stray;
  stray.Write("postgress/0001_a.sql", "SELECT 1;");
  Result<ApplicationSchema> typo = ApplicationSchema::Load(stray.path());
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find(stray.path() +
                                         "/postgress is neither postgres/ nor clickhouse/"),
            std::string::npos)
      << typo.status().message();
  TempSchemaDir flat;
  flat.Write("0001_a.sql", "SELECT 1;");
  Result<ApplicationSchema> beside = ApplicationSchema::Load(flat.path());
  ASSERT_FALSE(beside.ok());
  EXPECT_EQ(beside.status().message(), "schema file " + flat.path() +
                                           "/0001_a.sql is directly in the schema folder; move "
                                           "it into " +
                                           flat.path() + "/postgres or " + flat.path() +
                                           "/clickhouse");
}

TEST(ApplicationSchemaTest, TwoRunnersRacingApplyTheApplicationFolderOnce) {
  TestDatabase db(/*apply_schema=*/false);
  ASSERT_TRUE(db.ok());
  TempSchemaDir dir;
  dir.Write("postgres/0001_counter.sql",
            "CREATE TABLE applied_counter (n int); INSERT INTO applied_counter VALUES (1);");
  dir.Write("postgres/0002_more.sql", "INSERT INTO applied_counter VALUES (2);");
  Result<ApplicationSchema> app = ApplicationSchema::Load(dir.path());
  ASSERT_TRUE(app.ok());
  std::vector<int> applied(2, -1);
  {
    std::vector<std::jthread> runners;
    for (size_t i = 0; i < 2; ++i) {
      runners.emplace_back([&, i] {
        PgConnection c = db.Connect();
        Result<int> r = ApplyPostgresSchema(c, PostgresSchemaFiles(), app->postgres());
        applied[i] = r.ok() ? *r : -1;
      });
    }
  }
  EXPECT_EQ(applied[0] + applied[1], static_cast<int>(PostgresSchemaFiles().size()) + 2);
  EXPECT_TRUE(applied[0] == 0 || applied[1] == 0) << applied[0] << " " << applied[1];
  PgConnection conn = db.Connect();
  EXPECT_EQ(Column(conn, "SELECT n FROM applied_counter ORDER BY n"), "1\n2\n");
}

// Releases before the example application moved out compiled its tables in as control-table
// version 2 (0002_application_tables.sql). Such a database keeps that record and upgrades.
TEST(ApplicationSchemaTest, DatabaseThatAppliedTheOldVersionTwoUpgradesWithoutChange) {
  TestDatabase db(/*apply_schema=*/false);
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  const std::vector<EmbeddedFile>& example = ExampleSchema().postgres();
  ASSERT_EQ(example.size(), 1u);
  std::vector<EmbeddedFile> old_release = PostgresSchemaFiles();
  old_release.push_back({"0002_application_tables.sql", example[0].contents});
  ASSERT_TRUE(ApplyPostgresSchema(conn, old_release).ok());
  ASSERT_TRUE(conn.Run("INSERT INTO traces (id, project_id) VALUES ('t1', 'p1')").ok());
  const std::string tables = Tables(conn);

  Result<int> upgraded = ApplyPostgresSchema(conn, PostgresSchemaFiles(), example);
  ASSERT_TRUE(upgraded.ok()) << upgraded.status().ToString();
  EXPECT_EQ(*upgraded, 1) << "the example file runs once under its new record (IF NOT EXISTS)";
  EXPECT_EQ(Tables(conn), tables);
  EXPECT_EQ(Column(conn, "SELECT count(*) FROM traces"), "1\n");
  EXPECT_EQ(Column(conn, "SELECT store, version FROM bgmigrate_schema_versions ORDER BY 1, 2"),
            "application|1\npostgres|1\npostgres|2\npostgres|3\npostgres|4\npostgres|5\n"
            "postgres|6\npostgres|7\n");
  Result<int> again = ApplyPostgresSchema(conn, PostgresSchemaFiles(), example);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, 0);
}

TEST(ControlTableShapeTest, FreshControlTablesPassTheCheck) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  Status s = CheckControlTables(conn, {1, 3, 4});
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(ControlTableShapeTest, ControlTablesBeforeVersionThreeMayLackItsColumns) {
  TestDatabase db(/*apply_schema=*/false);
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  ASSERT_TRUE(ApplyPostgresSchema(conn, {PostgresSchemaFiles()[0]}).ok());
  Status before = CheckControlTables(conn, {1});
  EXPECT_TRUE(before.ok()) << before.ToString();
  Status claimed = CheckControlTables(conn, {1, 3});
  EXPECT_EQ(claimed.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(
      claimed.message().find("columns missing: waiting_reason, waiting_since, next_attempt_at"),
      std::string::npos)
      << claimed.message();
  Result<int> rest = ApplyPostgresSchema(conn, PostgresSchemaFiles());
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  EXPECT_EQ(*rest, 5);  // 0003, 0004, 0005, 0006 and 0007
}

// Langfuse v3's own background_migrations (id without a default, timestamps without a zone,
// none of bgmigrate's lease or progress columns), as found in a Langfuse database.
constexpr const char* kLangfuseTable = R"sql(
    CREATE TABLE background_migrations (
      id            TEXT NOT NULL PRIMARY KEY,
      name          TEXT NOT NULL UNIQUE,
      script        TEXT NOT NULL,
      args          JSONB NOT NULL,
      state         JSONB NOT NULL DEFAULT '{}',
      finished_at   TIMESTAMP(3),
      failed_at     TIMESTAMP(3),
      failed_reason TEXT,
      worker_id     TEXT,
      locked_at     TIMESTAMP(3));
    INSERT INTO background_migrations (id, name, script, args) VALUES
      ('c1', '20241024_1730_migrate_traces_from_pg_to_ch',
       'migrateTracesFromPostgresToClickhouse', '{}');)sql";

TEST(ControlTableShapeTest, ForeignBackgroundMigrationsTableIsRefusedAndNothingIsWritten) {
  TestDatabase db(/*apply_schema=*/false);
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  ASSERT_TRUE(conn.RunScript(kLangfuseTable).ok());
  const std::string before = Snapshot(conn);

  ProcessResult r = RunProcess(BGM_BINARY, {"migrate"}, {{"DATABASE_URL", db.url()}});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  for (const char* expected :
       {"table background_migrations exists but differs from bgmigrate's: ",
        "column id has no default (bgmigrate inserts rows without it)",
        "column args has no default",
        "column finished_at is timestamp(3) without time zone where "
        "bgmigrate needs timestamp with time zone",
        "columns missing: created_at, started_at, paused_at, attempts, rows_processed, "
        "rows_total_estimate, last_progress_at.",
        "Nothing was changed.", "in schema public",
        "set BGMIGRATE_CONTROL_SCHEMA=bgmigrate (created when missing"}) {
    EXPECT_NE(r.err.find(expected), std::string::npos) << expected << "\n" << r.err;
  }
  EXPECT_EQ(r.err.find("waiting_reason"), std::string::npos)
      << "columns a pending file adds are not asked for: " << r.err;
  EXPECT_EQ(Snapshot(conn), before) << "nothing may be written";

  // The advice works: bgmigrate gets its own schema; the other table is left as it was.
  const std::string foreign_rows = Column(conn, "SELECT * FROM public.background_migrations");
  ProcessResult own =
      RunProcess(BGM_BINARY, {"migrate"},
                 {{"DATABASE_URL", db.url()}, {"BGMIGRATE_CONTROL_SCHEMA", "bgmigrate"}});
  EXPECT_EQ(own.exit_code, 0) << own.err;
  EXPECT_EQ(Column(conn, "SELECT count(*) FROM bgmigrate.background_migrations"), "4\n");
  EXPECT_EQ(Column(conn, "SELECT * FROM public.background_migrations"), foreign_rows);
}

}  // namespace
}  // namespace bgm
