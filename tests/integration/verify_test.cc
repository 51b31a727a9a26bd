// `bgmigrate verify` of a `postgres_to_clickhouse` migration file through the real binary, on a
// real Postgres and ClickHouse (both engines): counts and key hashes per month, the content of
// sampled or all rows compared value by value with the target (FINAL), the migration's
// minDate/maxDate window, and the errors for names it cannot verify.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "migrations/file_copy.h"
#include "testing/process.h"
#include "testing/recording_context.h"
#include "testing/test_clickhouse.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using testing::ProcessResult;
using testing::RecordingContext;
using testing::RunProcess;

constexpr const char* kCopy = "20250601_1200_copy_events";

// 3,000 events an hour apart from 2024-03-01 01:00 (March to July 2024), keyed on (at, id).
constexpr const char* kCopyFile = R"(description = "Copies events"
kind = "postgres_to_clickhouse"
[postgres_to_clickhouse]
target = "events"
key = ["at", "id"]
select = "SELECT id, at, name, n FROM events"
)";

class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg_.ok());
    ASSERT_TRUE(ch_.ok());
    conn_.emplace(pg_.Connect());
    dir_ = std::filesystem::temp_directory_path() /
           ("bgm-verify-" + std::to_string(::getpid()) + "-" + pg_.name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / (std::string(kCopy) + ".toml")) << kCopyFile;
    Pg("CREATE TABLE events (id text PRIMARY KEY, at timestamp(3) NOT NULL, name text, n int)");
    Pg("INSERT INTO events SELECT 'e' || lpad(g::text, 5, '0'), timestamp '2024-03-01' + g * "
       "interval '1 hour', 'name ' || g, g FROM generate_series(1, 3000) g");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Pg(const std::string& sql) {
    Status s = conn_->Run(sql);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void Ch(const std::string& sql) {
    Status s = ch_.client().Execute(sql);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  MigrationFile File() {
    std::vector<FileProblem> problems;
    std::optional<MigrationFile> f =
        ParseMigrationFile((dir_ / (std::string(kCopy) + ".toml")).string(), kCopyFile, problems);
    EXPECT_TRUE(f.has_value());
    return f ? *f : MigrationFile{};
  }

  // Copies the file with `args` as the engine would.
  void Copy(const nlohmann::json& args = nlohmann::json::object()) {
    MigrationEnv env;
    env.database_url = pg_.url();
    env.clickhouse_url = ch_.url();
    env.clickhouse_db = ch_.database();
    RecordingContext ctx(env, args);
    std::unique_ptr<BackgroundMigration> m = NewFileCopy(File());
    ASSERT_TRUE(m->Validate(args).ok());
    Status s = m->Run(ctx);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::map<std::string, std::string> Env() {
    return {{"DATABASE_URL", pg_.url()},
            {"CLICKHOUSE_URL", ch_.url()},
            {"CLICKHOUSE_DB", ch_.database()},
            {"BGMIGRATE_MIGRATIONS_DIR", dir_.string()}};
  }
  ProcessResult Cli(const std::vector<std::string>& args) {
    return RunProcess(BGM_BINARY, args, Env());
  }

  nlohmann::json Json(const ProcessResult& r) {
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.out << r.err;
    return j;
  }

  testing::TestDatabase pg_;
  testing::TestClickHouse ch_;
  std::optional<PgConnection> conn_;
  std::filesystem::path dir_;
};

// A ReplacingMergeTree target: a newer version of a row replaces it under FINAL, with the same
// key and count, so only the content comparison can see it.
TEST_F(VerifyTest, ACopyMatchesThenANewerRowVersionIsNamedWithItsColumnAndBothValues) {
  Ch("CREATE TABLE events (id String, at DateTime, name Nullable(String), n Int32) "
     "ENGINE = ReplacingMergeTree ORDER BY (at, id)");
  Copy();
  ProcessResult same = Cli({"verify", kCopy, "--json"});
  ASSERT_EQ(same.exit_code, 0) << same.out << same.err;
  nlohmann::json report = Json(same);
  EXPECT_EQ(report["match"], true);
  EXPECT_EQ(report["source_rows"], 3000);
  EXPECT_EQ(report["target_rows"], 3000);
  EXPECT_EQ(report["final"], true);
  EXPECT_EQ(report["months"].size(), 5u) << "March to July";
  EXPECT_EQ(report["content"],
            (nlohmann::json{{"mode", "sample"}, {"rows", 2000}, {"differing", 0}, {"missing", 0}}));

  // e01500 (2024-05-02 12:00) gets a newer version with another name.
  Ch("INSERT INTO events SELECT id, at, 'changed', n FROM events WHERE id = 'e01500'");
  ProcessResult changed = Cli({"verify", kCopy, "--full"});
  EXPECT_EQ(changed.exit_code, 1) << changed.out << changed.err;
  EXPECT_EQ(changed.out,
            "content: 1 of 3000 rows differ; first: (at, id) = (2024-05-02 12:00:00, e01500): "
            "column name is 'name 1500' in the copy, 'changed' in the target\n"
            "20250601_1200_copy_events: DIFFERENT — source 3000 rows, target 3000 rows (FINAL), "
            "5 months compared; content of 3000 rows (all) compared, 1 differ\n")
      << changed.err;
  ProcessResult sampled = Cli({"verify", kCopy, "--json", "--sample", "3000"});
  EXPECT_EQ(sampled.exit_code, 1) << sampled.out << sampled.err;
  EXPECT_EQ(Json(sampled)["content"],
            (nlohmann::json{{"mode", "sample"},
                            {"rows", 3000},
                            {"differing", 1},
                            {"missing", 0},
                            {"first_difference",
                             {{"key", {{"at", "2024-05-02 12:00:00"}, {"id", "e01500"}}},
                              {"missing", false},
                              {"column", "name"},
                              {"source_value", "'name 1500'"},
                              {"target_value", "'changed'"}}}}));
}

// A MergeTree target (no FINAL there): a differing duplicate is an extra row in its month and
// a differing row; a row only in Postgres is missing, in its month and by content.
TEST_F(VerifyTest, FullComparesEveryRowInChunksNamingDuplicatesAndMissingRows) {
  Ch("CREATE TABLE events (id String, at DateTime, name Nullable(String), n Int32) "
     "ENGINE = MergeTree ORDER BY id");
  Copy();
  ProcessResult same = Cli({"verify", kCopy, "--full", "--json"});
  ASSERT_EQ(same.exit_code, 0) << same.out << same.err;
  nlohmann::json report = Json(same);
  EXPECT_EQ(report["final"], false);
  EXPECT_EQ(report["content"],
            (nlohmann::json{{"mode", "full"}, {"rows", 3000}, {"differing", 0}, {"missing", 0}}));

  Ch("INSERT INTO events SELECT id, at, name, n + 1 FROM events WHERE id = 'e00010'");
  Pg("INSERT INTO events VALUES ('late', '2024-07-20 10:00:00.250', NULL, 0)");
  ProcessResult r = Cli({"verify", kCopy, "--full"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.out,
            "2024-03: source 743 rows, target 744 rows\n"
            "2024-07: source 74 rows, target 73 rows\n"
            "content: 2 of 3001 rows differ (1 missing); first: (at, id) = (2024-03-01 10:00:00, "
            "e00010): column n is 10 in the copy, 11 in the target\n"
            "20250601_1200_copy_events: DIFFERENT — source 3001 rows, target 3001 rows, 5 months "
            "compared, 2 differ; content of 3001 rows (all) compared, 2 differ\n")
      << r.err;
}

// Rows outside the migration's minDate/maxDate (read from the control table) were never meant
// to be copied: they are neither counted nor compared.
TEST_F(VerifyTest, RowsOutsideTheMigrationsWindowAreNotMissing) {
  Ch("CREATE TABLE events (id String, at DateTime, name Nullable(String), n Int32) "
     "ENGINE = ReplacingMergeTree ORDER BY (at, id)");
  const nlohmann::json window = {{"minDate", "2024-04-01"}, {"maxDate", "2024-05-01T00:00:00Z"}};
  Copy(window);
  ProcessResult migrate = Cli({"migrate"});
  ASSERT_EQ(migrate.exit_code, 0) << migrate.err;
  // Not yet told the window: everything else is missing.
  ProcessResult unbounded = Cli({"verify", kCopy, "--json", "--sample", "0"});
  EXPECT_EQ(unbounded.exit_code, 1) << unbounded.out << unbounded.err;
  EXPECT_EQ(Json(unbounded)["source_rows"], 3000);
  EXPECT_EQ(Json(unbounded)["target_rows"], 720);

  ProcessResult set = Cli({"set-args", kCopy, window.dump()});
  ASSERT_EQ(set.exit_code, 0) << set.out << set.err;
  ProcessResult bounded = Cli({"verify", kCopy, "--full", "--json"});
  EXPECT_EQ(bounded.exit_code, 0) << bounded.out << bounded.err;
  nlohmann::json report = Json(bounded);
  EXPECT_EQ(report["source_rows"], 720);
  EXPECT_EQ(report["target_rows"], 720);
  EXPECT_EQ(
      report["months"],
      (nlohmann::json::array(
          {{{"month", "2024-04"}, {"source_rows", 720}, {"target_rows", 720}, {"match", true}}})));
  EXPECT_EQ(report["content"]["rows"], 720);
}

// 40 rows of 3 MiB: the scratch table takes them 32 MiB at a time, so verify's memory stays
// far under the 120 MiB of the rows, a difference in the last rows is found in a later piece,
// and nothing is counted twice.
TEST_F(VerifyTest, LargeRowsAreComparedThirtyTwoMegabytesAtATime) {
  std::ofstream(dir_ / "20250601_1300_copy_docs.toml") << R"(description = "Copies docs"
kind = "postgres_to_clickhouse"
[postgres_to_clickhouse]
target = "docs"
key = ["id"]
select = "SELECT id, body FROM docs"
)";
  Pg("CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL)");
  Pg("INSERT INTO docs SELECT g, repeat(md5(g::text), 98304) FROM generate_series(1, 40) g");
  Ch("CREATE TABLE docs (id Int32, body String) ENGINE = MergeTree ORDER BY id");
  // The same rows as the copy would write them (the body is ASCII text).
  for (int id = 1; id <= 40; ++id) {
    Result<PgResult> row = conn_->Exec("SELECT body FROM docs WHERE id = $1", {id});
    ASSERT_TRUE(row.ok()) << row.status().ToString();
    Ch("INSERT INTO docs VALUES (" + std::to_string(id) + ", '" + std::string(row->Get(0, 0)) +
       "')");
  }
  {
    testing::ChildProcess same(BGM_BINARY, {"verify", "20250601_1300_copy_docs", "--full"}, Env());
    ASSERT_EQ(same.Wait(std::chrono::seconds(120)), 0) << same.Stdout() << same.Stderr();
    EXPECT_NE(same.Stdout().find("content of 40 rows (all) compared, 0 differ"), std::string::npos)
        << same.Stdout();
    std::printf("[ measure  ] peak RSS of verify --full over 40 rows of 3 MiB: %ld MiB\n",
                same.max_rss_kib() / 1024);
    std::fflush(stdout);  // before the next fork, or the child prints it again
#if defined(__SANITIZE_ADDRESS__)
    // ASan's shadow memory and its 256 MiB quarantine of freed blocks inflate RSS (355 MiB seen
    // in CI); the 100 MiB bound is asserted in the normal build.
    EXPECT_LT(same.max_rss_kib() / 1024, 700);
#else
    // The embedded engine's code and blocks live in the process (~200 MiB and more).
    if (!testing::TestClickHouseIsEmbedded()) {
      EXPECT_LT(same.max_rss_kib() / 1024, 100);
    }
#endif
  }

  Ch("ALTER TABLE docs DELETE WHERE id = 39");
  Ch("INSERT INTO docs VALUES (39, 'short')");
  // ALTER ... DELETE runs in the background: wait (at most 10 s) until row 39 is the new one.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (ch_.Scalar("SELECT count() FROM docs WHERE id = 39") != "1") {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the DELETE did not finish in 10 s";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ProcessResult changed = Cli({"verify", "20250601_1300_copy_docs", "--full", "--json"});
  EXPECT_EQ(changed.exit_code, 1) << changed.out << changed.err;
  nlohmann::json content = Json(changed)["content"];
  EXPECT_EQ(content["rows"], 40);
  EXPECT_EQ(content["differing"], 1);
  EXPECT_EQ(content["first_difference"]["key"], (nlohmann::json{{"id", "39"}}));
  EXPECT_EQ(content["first_difference"]["column"], "body");
  EXPECT_EQ(content["first_difference"]["target_value"], "'short'");
}

TEST_F(VerifyTest, ANameThatIsNotACopyExitsTwoNamingTheCopies) {
  for (const std::string name : {"nope", "20241105_1200_backfill_observation_costs"}) {
    ProcessResult r = Cli({"verify", name});
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_EQ(r.err,
              "bgmigrate: verify compares the copies only: 20250601_1200_copy_events; "
              "got '" +
                  name + "'\n");
    EXPECT_EQ(r.out, "");
  }
  ProcessResult negative = Cli({"verify", kCopy, "--sample", "-1"});
  EXPECT_EQ(negative.exit_code, 2) << negative.out << negative.err;
}

}  // namespace
}  // namespace bgm
