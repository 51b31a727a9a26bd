// Migration files: the fields of each kind, the args they declare, and every malformed file
// refused with the file and the line.
#include "migrations/migration_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "migrations/file_registry.h"

namespace bgm {
namespace {

constexpr const char* kPath = "migrations/20250601_1200_backfill_environment.toml";

constexpr const char* kPostgresFile = R"(description = "Sets environment on old traces"
kind = "postgres"
prerequisites = ["20250101_0000_earlier"]
gate = "LANGFUSE_ENABLE_ENVIRONMENT_BACKFILL"

[args]
batchSize = { type = "int", default = 1000, min = 1, max = 100000 }
pauseMs = { type = "int", default = 0, min = 0, max = 60000 }
minDate = { type = "timestamp" }
mode = { type = "enum", values = ["fast", "careful"], default = "careful" }

[postgres]
table = "traces"
key = ["created_at", "id"]
statement = '''
UPDATE traces SET environment = 'default'
WHERE environment IS NULL AND {batch}
'''
)";

// The problems of `content` as "line: message" strings.
std::vector<std::string> Problems(const std::string& content) {
  std::vector<FileProblem> problems;
  EXPECT_FALSE(ParseMigrationFile(kPath, content, problems).has_value());
  std::vector<std::string> out;
  for (const FileProblem& p : problems) {
    EXPECT_EQ(p.path, kPath);
    out.push_back(std::to_string(p.line) + ": " + p.message);
  }
  return out;
}

TEST(MigrationFileTest, APostgresFileGivesEveryField) {
  std::vector<FileProblem> problems;
  std::optional<MigrationFile> f = ParseMigrationFile(kPath, kPostgresFile, problems);
  ASSERT_TRUE(f.has_value()) << (problems.empty() ? "" : problems[0].ToString());
  EXPECT_EQ(f->name, "20250601_1200_backfill_environment");
  EXPECT_EQ(f->description, "Sets environment on old traces");
  EXPECT_EQ(f->kind, MigrationKind::kPostgres);
  EXPECT_EQ(f->prerequisites, (std::vector<std::string>{"20250101_0000_earlier"}));
  EXPECT_EQ(f->gate, "LANGFUSE_ENABLE_ENVIRONMENT_BACKFILL");
  EXPECT_EQ(f->table, "traces");
  EXPECT_EQ(f->key, (std::vector<std::string>{"created_at", "id"}));
  EXPECT_EQ(f->statement,
            "UPDATE traces SET environment = 'default'\nWHERE environment IS NULL AND {batch}\n");
  EXPECT_EQ(f->Defaults(),
            (nlohmann::json{{"batchSize", 1000}, {"pauseMs", 0}, {"mode", "careful"}}));
  EXPECT_EQ(f->checksum.size(), 64u);
  const ArgsSchema schema = f->Schema();
  EXPECT_TRUE(schema.Validate({{"batchSize", 2500}, {"minDate", "2024-05-03"}}).ok());
  EXPECT_EQ(schema.Validate({{"batchSize", 0}}).message(),
            "batchSize must be an integer in [1, 100000], got 0");
  EXPECT_EQ(schema.Validate({{"mode", "quick"}}).code(), StatusCode::kInvalidArgument);
}

TEST(MigrationFileTest, TheOtherTwoKindsGiveTheirFields) {
  std::vector<FileProblem> problems;
  std::optional<MigrationFile> copy = ParseMigrationFile("x/20250602_0000_copy_scores.toml", R"(
description = "Copies scores"
kind = "postgres_to_clickhouse"
[postgres_to_clickhouse]
target = "scores"
key = ["created_at", "id"]
select = "SELECT id, name, value, created_at FROM scores"
)",
                                                         problems);
  ASSERT_TRUE(copy.has_value()) << (problems.empty() ? "" : problems[0].ToString());
  EXPECT_EQ(copy->kind, MigrationKind::kPostgresToClickHouse);
  EXPECT_EQ(copy->target, "scores");
  EXPECT_EQ(copy->select, "SELECT id, name, value, created_at FROM scores");
  EXPECT_TRUE(copy->Defaults().empty());

  std::optional<MigrationFile> ch = ParseMigrationFile("x/20250603_0000_resort_traces.toml", R"(
description = "Rebuilds traces into a new sort order"
kind = "clickhouse"
[clickhouse]
table = "traces"
before = "ALTER TABLE traces_v2 DROP PARTITION {partition}"
statement = "INSERT INTO traces_v2 SELECT * FROM traces WHERE _partition_id = {partition}"
)",
                                                       problems);
  ASSERT_TRUE(ch.has_value()) << (problems.empty() ? "" : problems[0].ToString());
  EXPECT_EQ(ch->kind, MigrationKind::kClickHouse);
  EXPECT_EQ(ch->before, "ALTER TABLE traces_v2 DROP PARTITION {partition}");
  EXPECT_EQ(MigrationKindName(ch->kind), std::string("clickhouse"));
}

TEST(MigrationFileTest, ThrottleProbesAreReadAndEachBadFieldIsNamed) {
  std::vector<FileProblem> problems;
  std::optional<MigrationFile> f = ParseMigrationFile(kPath, std::string(kPostgresFile) + R"(
[[throttle]]
name = "queued jobs"
database = "postgres"
query = "SELECT count(*) FROM jobs WHERE state = 'queued'"
threshold = 1000

[[throttle]]
name = "replica delay"
database = "clickhouse"
query = "SELECT max(absolute_delay) FROM system.replicas"
threshold = 2.5
)",
                                                      problems);
  ASSERT_TRUE(f.has_value()) << (problems.empty() ? "" : problems[0].ToString());
  ASSERT_EQ(f->probes.size(), 2u);
  EXPECT_EQ(f->probes[0].name, "queued jobs");
  EXPECT_EQ(f->probes[0].database, "postgres");
  EXPECT_EQ(f->probes[0].query, "SELECT count(*) FROM jobs WHERE state = 'queued'");
  EXPECT_EQ(f->probes[0].threshold, 1000);
  EXPECT_EQ(f->probes[1].database, "clickhouse");
  EXPECT_EQ(f->probes[1].threshold, 2.5);

  EXPECT_EQ(Problems(std::string(kPostgresFile) + R"(
[[throttle]]
name = "a"
database = "mysql"
query = "SELECT 1"
threshold = 0

[[throttle]]
name = "a"
database = "postgres"
query = "SELECT 1"
threshold = 5
limit = 3

[[throttle]]
name = "b"
database = "postgres"
)"),
            (std::vector<std::string>{
                "22: database in [[throttle]] is postgres or clickhouse, got 'mysql'",
                "24: threshold in [[throttle]] must be a number > 0",
                "27: two [[throttle]] probes are named 'a'",
                "31: unknown key 'limit' in [[throttle]]; accepted keys: name, database, query, "
                "threshold",
                "33: [[throttle]] needs query (a string)",
                "33: [[throttle]] needs threshold (a number > 0: batches wait while the query "
                "returns it or more)"}));
  EXPECT_EQ(Problems("throttle = 5\n" + std::string(kPostgresFile)),
            (std::vector<std::string>{"1: throttle must be an array of tables: [[throttle]] with "
                                      "name, database, query and threshold"}));
}

TEST(MigrationFileTest, InvalidTomlNamesTheLine) {
  EXPECT_EQ(Problems("description = \"x\"\nkind = \"postgres\n"),
            (std::vector<std::string>{
                "2: not valid TOML: Error while parsing string: unescaped control characters "
                "other than TAB (U+0009) are explicitly prohibited"}));
}

TEST(MigrationFileTest, EveryMissingOrMalformedFieldIsListedWithItsLine) {
  EXPECT_EQ(Problems(R"(kind = "sql"
descripton = "typo"
prerequisites = "20250101_0000_earlier"
gate = "NOT A VARIABLE"
)"),
            (std::vector<std::string>{
                "1: the file needs description (a string)",
                "1: unknown kind 'sql'; kind is postgres, postgres_to_clickhouse or clickhouse",
                "2: unknown key 'descripton' in the file; accepted keys: description, kind, "
                "prerequisites, gate, application_script, args, throttle, postgres, "
                "postgres_to_clickhouse, clickhouse",
                "3: prerequisites must be an array of migration names",
                "4: gate must name an environment variable (letters, digits, _), got 'NOT A "
                "VARIABLE'"}));
}

// application_script names the migration's row in the application's own control table
// (Langfuse's script names); anything but a plain name is refused with its line.
TEST(MigrationFileTest, ApplicationScriptNamesTheApplicationsRow) {
  const std::string body = R"(description = "d"
kind = "postgres"
application_script = SCRIPT
[postgres]
table = "traces"
key = ["id"]
statement = "UPDATE traces SET x = 1 WHERE {batch}"
)";
  auto with = [&body](const std::string& script) {
    std::string s = body;
    return s.replace(s.find("SCRIPT"), 6, script);
  };
  std::vector<FileProblem> problems;
  std::optional<MigrationFile> f =
      ParseMigrationFile(kPath, with("\"migrateTracesFromPostgresToClickhouse\""), problems);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->application_script, "migrateTracesFromPostgresToClickhouse");
  EXPECT_EQ(
      Problems(with("\"migrate traces\"")),
      std::vector<std::string>{"3: application_script must name a script of the application's own "
                               "background_migrations (letters, digits, _), got 'migrate traces'"});
}

TEST(MigrationFileTest, NamesWithQuotesOrSemicolonsAreRefused) {
  EXPECT_EQ(Problems(R"(description = "d"
kind = "postgres"
[postgres]
table = "traces; DROP TABLE traces"
key = ["id", "\"id\"", "id"]
statement = "UPDATE traces SET x = 1 WHERE {batch}"
)"),
            (std::vector<std::string>{
                "4: table in [postgres] must be a plain name (letters, digits, _; at most 63), got "
                "'traces; DROP TABLE traces'; quotes, dots and semicolons are not accepted",
                "5: key in [postgres] must list plain column names (letters, digits, _)",
                "5: key in [postgres] names id twice"}));
}

TEST(MigrationFileTest, EachKindNeedsItsSectionAndPlaceholders) {
  EXPECT_EQ(Problems("description = \"d\"\nkind = \"postgres\"\n"),
            (std::vector<std::string>{"1: kind postgres needs a [postgres] section"}));
  EXPECT_EQ(Problems(R"(description = "d"
kind = "postgres"
[postgres]
table = "traces"
key = []
statement = "UPDATE traces SET x = 1"
[clickhouse]
table = "traces"
)"),
            (std::vector<std::string>{
                "5: [postgres] needs key: a non-empty array of column names, e.g. [\"id\"]",
                "6: statement in [postgres] must contain {batch} exactly once (found 0)",
                "7: a migration of kind postgres has no [clickhouse] section; move its fields to "
                "[postgres]"}));
  EXPECT_EQ(Problems(R"(description = "d"
kind = "clickhouse"
[clickhouse]
table = "traces"
statement = "OPTIMIZE TABLE traces PARTITION {partition} FINAL; -- {partition}"
wait = true
)"),
            (std::vector<std::string>{
                "5: statement in [clickhouse] must contain {partition} exactly once (found 2)",
                "6: unknown key 'wait' in [clickhouse]; accepted keys: table, before, statement"}));
  EXPECT_EQ(Problems(R"(description = "d"
kind = "postgres_to_clickhouse"
[postgres_to_clickhouse]
target = "scores"
key = ["id"]
select = "  "
)"),
            (std::vector<std::string>{"6: select in [postgres_to_clickhouse] is empty"}));
}

TEST(MigrationFileTest, ArgsNeedATypeARangeAndADefaultThatFits) {
  EXPECT_EQ(Problems(R"(description = "d"
kind = "clickhouse"
[args]
batchSize = { type = "int", default = 0, min = 1, max = 10 }
pauseMs = { type = "int", min = 5, max = 1 }
label = { type = "text" }
mode = { type = "enum" }
limit = 5
[clickhouse]
table = "t"
statement = "ALTER TABLE t DELETE IN PARTITION {partition} WHERE x"
)"),
            (std::vector<std::string>{
                "4: [args.batchSize]: the default does not fit: batchSize must be an integer in "
                "[1, 10], got 0",
                "5: [args.pauseMs]: min is above max",
                "6: [args.label]: type must be int, number, timestamp or enum, got 'text'",
                "7: [args.mode] needs values: a non-empty array of strings",
                "8: arg limit must be a table such as { type = \"int\", default = 1000, min = 1, "
                "max = 100000 }"}));
}

TEST(MigrationFileTest, AFileNameThatIsNoMigrationNameIsRefused) {
  std::vector<FileProblem> problems;
  EXPECT_FALSE(ParseMigrationFile("m/has space.toml", kPostgresFile, problems).has_value());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].ToString(),
            "m/has space.toml: the file name 'has space' is not a migration name: letters, "
            "digits, _ . - (at most 200), starting with a letter or digit, e.g. "
            "20250601_1200_backfill_environment.toml");
}

class MigrationDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("bgm-migration-files-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "a");
    std::filesystem::create_directories(dir_ / "b");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& text) { std::ofstream(dir_ / rel) << text; }
  static std::string Clickhouse(const std::string& prerequisites) {
    return "description = \"d\"\nkind = \"clickhouse\"\nprerequisites = " + prerequisites +
           "\n[clickhouse]\ntable = \"t\"\nstatement = \"OPTIMIZE TABLE t PARTITION "
           "{partition}\"\n";
  }
  static std::string Postgres(const std::string& prerequisites) {
    return "description = \"d\"\nkind = \"postgres\"\nprerequisites = " + prerequisites +
           "\n[postgres]\ntable = \"t\"\nkey = [\"id\"]\nstatement = \"UPDATE t SET x = 1 WHERE "
           "{batch}\"\n";
  }
  std::filesystem::path dir_;
};

TEST_F(MigrationDirTest, LoadsEveryTomlFileOfEveryFolderInNameOrder) {
  Write("a/20250602_b.toml", Clickhouse("[\"20250601_a\"]"));
  Write("b/20250601_a.toml", Clickhouse("[]"));
  Write("a/README.md", "not a migration");
  LoadedMigrations loaded = LoadMigrationDirs({(dir_ / "a").string(), (dir_ / "b").string()});
  ASSERT_TRUE(loaded.problems.empty()) << loaded.problems[0].ToString();
  ASSERT_EQ(loaded.files.size(), 2u);
  EXPECT_EQ(loaded.files[0].name, "20250601_a");
  EXPECT_EQ(loaded.files[1].name, "20250602_b");
}

TEST_F(MigrationDirTest, DuplicateNamesAndMissingFoldersAreProblems) {
  Write("a/20250601_a.toml", Clickhouse("[]"));
  Write("b/20250601_a.toml", Clickhouse("[]"));
  LoadedMigrations loaded =
      LoadMigrationDirs({(dir_ / "a").string(), (dir_ / "b").string(), (dir_ / "nope").string()});
  std::vector<std::string> got;
  for (const FileProblem& p : loaded.problems) got.push_back(p.ToString());
  EXPECT_EQ(
      got,
      (std::vector<std::string>{
          (dir_ / "b/20250601_a.toml").string() + ": the migration 20250601_a is also defined in " +
              (dir_ / "a/20250601_a.toml").string() + "; names must be unique",
          (dir_ / "nope").string() + ": no such folder of migration files; create it or fix "
                                     "BGMIGRATE_MIGRATIONS_DIR"}));
}

TEST_F(MigrationDirTest, TheRegistryAddsFilesToTheBuiltInsAndRefusesAnyProblemWhole) {
  Write("a/20250601_a.toml", Postgres("[\"20240101_builtin\"]"));
  Write("a/20250602_b.toml", Postgres("[\"20250601_a\"]"));
  Registry builtins({{"20240101_builtin", "built in", {}, nullptr}});
  Result<Registry> registry = LoadRegistry({(dir_ / "a").string()}, builtins);
  ASSERT_TRUE(registry.ok()) << registry.status().ToString();
  ASSERT_EQ(registry->specs().size(), 3u);
  EXPECT_EQ(registry->specs()[1].name, "20250601_a");
  EXPECT_EQ(registry->specs()[1].description, "d");
  EXPECT_NE(registry->specs()[1].create(), nullptr);

  Write("a/20250603_c.toml", Postgres("[\"20250101_missing\"]"));
  Write("a/20250604_d.toml", Clickhouse("[]"));
  Write("a/20240101_builtin.toml", Postgres("[]"));
  Result<Registry> refused = LoadRegistry({(dir_ / "a").string()}, builtins);
  const std::string a = (dir_ / "a").string();
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(),
            "the migration files have 2 problems; nothing was registered or run:\n  " + a +
                "/20240101_builtin.toml: the name 20240101_builtin is a built-in migration of "
                "bgmigrate; rename the file\n  " +
                a +
                "/20250603_c.toml: background migration 20250603_c has the prerequisite "
                "'20250101_missing', which is not a known background migration (known: "
                "20240101_builtin, 20250601_a, 20250602_b, 20250603_c, 20250604_d); fix the name "
                "or add the missing migration");
}

}  // namespace
}  // namespace bgm
