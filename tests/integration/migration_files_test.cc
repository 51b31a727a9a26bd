// Migration files through the real binary: `check`, start-up loading (all valid or nothing
// registered), and a postgres-kind file run by workers to the end across a kill -9.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "testing/process.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ChildProcess;
using testing::ProcessResult;
using testing::RunProcess;
using testing::TestDatabase;

constexpr const char* kFill = "20250601_1200_label_items";

constexpr const char* kFillFile = R"(description = "Labels every item"
kind = "postgres"

[args]
batchSize = { type = "int", default = 500, min = 1, max = 100000 }

[postgres]
table = "items"
key = ["created_at", "id"]
statement = '''
UPDATE items SET label = 'label of ' || id
WHERE {batch}
'''
)";

class MigrationFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    conn_.emplace(db_.Connect());
    ASSERT_TRUE(conn_
                    ->RunScript(R"sql(
      CREATE TABLE items (id text PRIMARY KEY, created_at timestamp NOT NULL, label text);
      INSERT INTO items (id, created_at)
      SELECT 'i' || lpad(g::text, 6, '0'), timestamp '2024-05-02 12:00:00' + (g / 100) * interval '1 second'
      FROM generate_series(1, 30000) g;
    )sql")
                    .ok());
    dir_ = std::filesystem::temp_directory_path() /
           ("bgm-files-" + std::to_string(::getpid()) + "-" + db_.name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / (name + ".toml")) << text;
  }
  std::map<std::string, std::string> Env(const std::string& worker) {
    return {{"DATABASE_URL", db_.url()},
            {"BGMIGRATE_MIGRATIONS_DIR", dir_.string()},
            {"BGMIGRATE_LEASE_SECONDS", "2"},
            {"BGMIGRATE_POLL_SECONDS", "0.2"},
            {"BGMIGRATE_WORKER_ID", worker}};
  }
  ProcessResult Cli(const std::vector<std::string>& args) {
    return RunProcess(BGM_BINARY, args, Env("cli"));
  }
  std::string Query(const std::string& sql) {
    Result<PgResult> r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->rows() > 0 && !r->IsNull(0, 0) ? std::string(r->Get(0, 0)) : "NULL";
  }
  // Registers everything and pauses the built-in copies and backfill, which need ClickHouse.
  void MigrateAndPauseBuiltins() {
    ProcessResult m = Cli({"migrate"});
    ASSERT_EQ(m.exit_code, 0) << m.out << m.err;
    ASSERT_TRUE(
        conn_->Run("UPDATE background_migrations SET paused_at = now() WHERE name <> $1", {kFill})
            .ok());
  }

  TestDatabase db_;
  std::optional<PgConnection> conn_;
  std::filesystem::path dir_;
};

TEST_F(MigrationFilesTest, APostgresFileRunsToTheEndAcrossAKillNineWithExactResults) {
  Write(kFill, kFillFile);
  MigrateAndPauseBuiltins();
  ASSERT_EQ(
      Query(std::string("SELECT script FROM background_migrations WHERE name = '") + kFill + "'"),
      kFill);
  ASSERT_TRUE(conn_
                  ->Run("UPDATE background_migrations SET args = '{\"pauseMs\": 20}' WHERE "
                        "name = $1",
                        {kFill})
                  .ok());
  const std::string rows_sql =
      std::string("SELECT rows_processed FROM background_migrations WHERE name = '") + kFill + "'";
  {
    ChildProcess w(BGM_BINARY, {"worker"}, Env("w1"));
    const auto deadline = std::chrono::steady_clock::now() + seconds(60);
    while (std::stoll(Query(rows_sql)) < 2000) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no progress";
      std::this_thread::sleep_for(milliseconds(20));
    }
    w.Signal(SIGKILL);
    ASSERT_TRUE(w.Wait(seconds(10)).has_value());
  }
  const int64_t at_kill = std::stoll(Query(rows_sql));
  EXPECT_LT(at_kill, 30000) << "the kill landed after the end";
  std::this_thread::sleep_for(milliseconds(2100));  // the dead worker's lease expires

  ProcessResult rest = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w2"));
  EXPECT_EQ(rest.exit_code, 0) << rest.err;
  EXPECT_EQ(Query("SELECT count(*) FROM items WHERE label = 'label of ' || id"), "30000");
  EXPECT_EQ(Query(std::string("SELECT rows_processed FROM background_migrations WHERE name = '") +
                  kFill + "'"),
            "30000");
  EXPECT_NE(Query(std::string("SELECT finished_at FROM background_migrations WHERE name = '") +
                  kFill + "'"),
            "NULL");
  // The file's default batchSize (500) shaped the batches.
  EXPECT_EQ(Query(std::string("SELECT min((detail->>'rows')::int) FILTER (WHERE "
                              "(detail->>'rows')::int > 0) FROM background_migration_events "
                              "WHERE kind = 'batch' AND migration_name = '") +
                  kFill + "'"),
            "500");
}

TEST_F(MigrationFilesTest, ABadFileStopsStartUpNamingFileAndLineAndRegistersNothing) {
  Write(kFill, kFillFile);
  Write("20250601_1300_bad",
        "description = \"bad\"\nkind = \"postgres\"\n[postgres]\n"
        "table = \"items\"\nkey = [\"id\"]\nstatement = \"DELETE FROM items\"\n");
  ProcessResult m = Cli({"migrate"});
  EXPECT_EQ(m.exit_code, 2);
  EXPECT_NE(m.err.find("the migration files have 1 problem; nothing was registered or run:\n  " +
                       (dir_ / "20250601_1300_bad.toml").string() +
                       ":6: statement in [postgres] must contain {batch} exactly once (found 0)"),
            std::string::npos)
      << m.err;
  EXPECT_EQ(Query("SELECT count(*) FROM background_migrations"), "0");
  ProcessResult w = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w"));
  EXPECT_EQ(w.exit_code, 2);
  EXPECT_EQ(Query("SELECT count(*) FROM items WHERE label IS NOT NULL"), "0");
}

TEST_F(MigrationFilesTest, CheckListsEveryProblemAndRunsNothing) {
  Write(kFill, kFillFile);
  ProcessResult ok = Cli({"check", dir_.string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "check: 1 migration file is valid in " + dir_.string() + "\n");

  Write("20250601_1300_typo",
        "description = \"d\"\nkind = \"postgres\"\n[postgres]\n"
        "table = \"items\"\nkey = [\"id\"]\n"
        "statement = \"UPDATE items SET lable = 1 WHERE {batch}\"\n");
  Write("20250601_1400_nokey",
        "description = \"d\"\nkind = \"postgres\"\n[postgres]\n"
        "table = \"items\"\nkey = [\"created_at\"]\n"
        "statement = \"UPDATE items SET label = 1 WHERE {batch}\"\n");
  ProcessResult bad = Cli({"check", dir_.string()});
  EXPECT_EQ(bad.exit_code, 2);
  const std::string d = dir_.string();
  EXPECT_EQ(bad.err,
            d +
                "/20250601_1300_typo.toml:6: [postgres] statement does not prepare: Postgres query "
                "failed (SQLSTATE 42703): ERROR:  column \"lable\" of relation \"items\" does "
                "not exist\n" +
                d +
                "/20250601_1400_nokey.toml:5: [postgres] key (created_at) is not unique in "
                "items: no unique index lies within these columns, so rows sharing a key could "
                "be skipped; add the primary key's columns (e.g. id) to key\n"
                "check: 2 problems in " +
                d + "\n");
  EXPECT_EQ(Query("SELECT count(*) FROM items WHERE label IS NOT NULL"), "0");
  EXPECT_EQ(Query("SELECT count(*) FROM background_migrations"), "0");
}

TEST_F(MigrationFilesTest, AFileChangedAfterItsMigrationStartedIsRefusedUntilRetryFromStart) {
  Write(kFill, kFillFile);
  MigrateAndPauseBuiltins();
  ProcessResult run = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w1"));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string old_sum = Query(
      std::string("SELECT checksum FROM bgmigrate_migration_files WHERE name = '") + kFill + "'");
  ASSERT_EQ(old_sum.size(), 64u);

  std::string changed = kFillFile;
  changed.replace(changed.find("'label of '"), 11, "'new label '");
  Write(kFill, changed);
  ProcessResult refused = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w2"));
  EXPECT_EQ(refused.exit_code, 2);
  const std::string path = (dir_ / (std::string(kFill) + ".toml")).string();
  EXPECT_NE(refused.err.find("migration files changed under running migrations; nothing was "
                             "registered or run:\n  " +
                             path + ": changed after its migration started (checksum " + old_sum +
                             " when adopted, "),
            std::string::npos)
      << refused.err;
  EXPECT_NE(
      refused.err.find("now); restore the file, or run `bgmigrate retry " + std::string(kFill) +
                       " --from-start` to run the new content from the beginning"),
      std::string::npos)
      << refused.err;
  EXPECT_EQ(Query("SELECT count(*) FROM items WHERE label LIKE 'new label %'"), "0");

  ProcessResult retry = Cli({"retry", kFill, "--from-start"});
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  ProcessResult rerun = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w3"));
  EXPECT_EQ(rerun.exit_code, 0) << rerun.err;
  EXPECT_EQ(Query("SELECT count(*) FROM items WHERE label = 'new label ' || id"), "30000");
  EXPECT_NE(Query(std::string("SELECT checksum FROM bgmigrate_migration_files WHERE name = '") +
                  kFill + "'"),
            old_sum);
}

TEST_F(MigrationFilesTest, ARowWhoseFileDisappearedIsShownUnknownAndLeftAlone) {
  Write(kFill, kFillFile);
  MigrateAndPauseBuiltins();
  std::filesystem::remove(dir_ / (std::string(kFill) + ".toml"));
  ProcessResult w = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w1"));
  EXPECT_EQ(w.exit_code, 0) << w.err;
  ProcessResult list = Cli({"list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  bool seen = false;
  for (const nlohmann::json& row : nlohmann::json::parse(list.out)) {
    if (row["name"] != kFill) continue;
    seen = true;
    EXPECT_EQ(row["status"], "unknown");
    EXPECT_EQ(row["failed_reason"], nullptr);
    EXPECT_EQ(row["unknown_reason"],
              "its script '20250601_1200_label_items' is neither a built-in nor a migration file "
              "of this bgmigrate; it is left as it is (restore its file to run it)");
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(Query("SELECT count(*) FROM items WHERE label IS NOT NULL"), "0");
}

TEST_F(MigrationFilesTest, TheGateOpensOnlyWhenTheNamedMigrationsHaveFinished) {
  Write(kFill, kFillFile);
  MigrateAndPauseBuiltins();
  ProcessResult closed = Cli({"gate", kFill});
  EXPECT_EQ(closed.exit_code, 1);
  EXPECT_EQ(closed.out, std::string(kFill) +
                            ": pending: no worker has taken it yet\n"
                            "gate: closed: 1 of 1 background migrations have not finished\n");
  ProcessResult all = Cli({"gate"});
  EXPECT_EQ(all.exit_code, 1);
  // Without names: every registered migration, here only the folder's one file.
  EXPECT_EQ(all.out, closed.out);

  ProcessResult run = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w1"));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ProcessResult open = Cli({"gate", kFill});
  EXPECT_EQ(open.exit_code, 0) << open.out;
  EXPECT_EQ(open.out, "gate: open: all 1 background migrations have finished\n");
  ProcessResult typo = Cli({"gate", "20250601_1200_typo"});
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_EQ(typo.err,
            "bgmigrate: no background migration named '20250601_1200_typo' is registered; "
            "`bgmigrate list` shows their names\n");
}

}  // namespace
}  // namespace bgm
