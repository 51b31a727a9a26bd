#include "core/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "core/summary.h"

namespace bgm {
namespace {

Result<Config> Load(const std::map<std::string, std::string>& env) {
  return LoadConfig([&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(ConfigTest, DefaultsMatchTheDocumentation) {
  Result<Config> c = Load({});
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->background_migrations_enabled);
  EXPECT_EQ(c->bind, "127.0.0.1");
  EXPECT_EQ(c->port, 3030);
  EXPECT_EQ(c->lease, std::chrono::seconds(60));
  EXPECT_EQ(c->poll, std::chrono::seconds(5));
  EXPECT_EQ(c->clickhouse_user, "default");
  EXPECT_EQ(c->log_format, LogFormat::kText);
  EXPECT_FALSE(c->worker_id.empty());
}

TEST(ConfigTest, ReadsEverySetting) {
  Result<Config> c = Load({{"DATABASE_URL", "postgresql://x@h/db"},
                           {"LANGFUSE_ENABLE_BACKGROUND_MIGRATIONS", "false"},
                           {"BGMIGRATE_LEASE_SECONDS", "2.5"},
                           {"BGMIGRATE_POLL_SECONDS", "0.2"},
                           {"BGMIGRATE_PORT", "8080"},
                           {"BGMIGRATE_LOG_FORMAT", "json"},
                           {"BGMIGRATE_WORKER_ID", "w7"}});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->database_url, "postgresql://x@h/db");
  EXPECT_FALSE(c->background_migrations_enabled);
  EXPECT_EQ(c->lease, std::chrono::milliseconds(2500));
  EXPECT_EQ(c->poll, std::chrono::milliseconds(200));
  EXPECT_EQ(c->port, 8080);
  EXPECT_EQ(c->log_format, LogFormat::kJson);
  EXPECT_EQ(c->worker_id, "w7");
}

TEST(ConfigTest, BadValuesNameTheVariable) {
  EXPECT_EQ(Load({{"LANGFUSE_ENABLE_BACKGROUND_MIGRATIONS", "nope"}}).status().message(),
            "LANGFUSE_ENABLE_BACKGROUND_MIGRATIONS='nope' is not a boolean; use true or false");
  EXPECT_EQ(Load({{"BGMIGRATE_PORT", "99999"}}).status().message(),
            "BGMIGRATE_PORT='99999' is not a port number (0-65535)");
  EXPECT_EQ(Load({{"BGMIGRATE_LOG_FORMAT", "xml"}}).status().message(),
            "BGMIGRATE_LOG_FORMAT='xml' is not a log format; use text or json");
  EXPECT_EQ(Load({{"BGMIGRATE_LEASE_SECONDS", "0"}}).status().code(), StatusCode::kInvalidArgument);
}

TEST(ConfigTest, ThrottleThresholdsHaveDefaultsAndZeroTurnsASignalOff) {
  Result<Config> d = Load({});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->throttle.check_interval, std::chrono::seconds(5));
  EXPECT_EQ(d->throttle.wait_interval, std::chrono::seconds(30));
  EXPECT_EQ(d->throttle.clickhouse_parts, 100);
  EXPECT_EQ(d->throttle.clickhouse_merges, 16);
  EXPECT_FALSE(d->throttle.clickhouse_memory_bytes.has_value()) << "80% of the server's memory";
  EXPECT_EQ(d->throttle.postgres_replication_lag_seconds, 30);
  EXPECT_EQ(d->throttle.postgres_transaction_seconds, 600);
  EXPECT_EQ(d->throttle.postgres_vacuums, 1);
  Result<Config> c = Load({{"BGMIGRATE_THROTTLE_CHECK_SECONDS", "0.5"},
                           {"BGMIGRATE_THROTTLE_WAIT_SECONDS", "2"},
                           {"BGMIGRATE_THROTTLE_CLICKHOUSE_PARTS", "250"},
                           {"BGMIGRATE_THROTTLE_CLICKHOUSE_MERGES", "0"},
                           {"BGMIGRATE_THROTTLE_CLICKHOUSE_MEMORY_BYTES", "8000000000"},
                           {"BGMIGRATE_THROTTLE_POSTGRES_REPLICATION_LAG_SECONDS", "5"},
                           {"BGMIGRATE_THROTTLE_POSTGRES_TRANSACTION_SECONDS", "60"},
                           {"BGMIGRATE_THROTTLE_POSTGRES_VACUUMS", "0"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->throttle.check_interval, std::chrono::milliseconds(500));
  EXPECT_EQ(c->throttle.wait_interval, std::chrono::seconds(2));
  EXPECT_EQ(c->throttle.clickhouse_parts, 250);
  EXPECT_EQ(c->throttle.clickhouse_merges, 0);
  EXPECT_EQ(c->throttle.clickhouse_memory_bytes, 8e9);
  EXPECT_EQ(c->throttle.postgres_replication_lag_seconds, 5);
  EXPECT_EQ(c->throttle.postgres_transaction_seconds, 60);
  EXPECT_EQ(c->throttle.postgres_vacuums, 0);
  EXPECT_EQ(Load({{"BGMIGRATE_THROTTLE_CLICKHOUSE_PARTS", "-3"}}).status().message(),
            "BGMIGRATE_THROTTLE_CLICKHOUSE_PARTS='-3' is not a threshold; use a number >= 0 (0 "
            "turns the signal off)");
  EXPECT_EQ(Load({{"BGMIGRATE_THROTTLE_WAIT_SECONDS", "soon"}}).status().code(),
            StatusCode::kInvalidArgument);
}

MigrationRow RowWith(MigrationStatus s) {
  MigrationRow r;
  r.status = s;
  return r;
}

TEST(SummaryTest, StatusWordFollowsThePriorities) {
  using S = MigrationStatus;
  EXPECT_EQ(Summarize({}, true)["status"], "FINISHED");
  EXPECT_EQ(Summarize({RowWith(S::kFinished), RowWith(S::kFinished)}, true)["status"], "FINISHED");
  EXPECT_EQ(Summarize({RowWith(S::kFinished), RowWith(S::kPaused)}, true)["status"], "ACTIVE");
  EXPECT_EQ(Summarize({RowWith(S::kRunning), RowWith(S::kFailed)}, true)["status"], "FAILED");
  EXPECT_EQ(Summarize({RowWith(S::kPending), RowWith(S::kFailed)}, false)["status"], "DISABLED");
  EXPECT_EQ(Summarize({RowWith(S::kFinished)}, false)["status"], "FINISHED");
  nlohmann::json s =
      Summarize({RowWith(S::kRunning), RowWith(S::kFailed), RowWith(S::kFailed)}, true);
  EXPECT_EQ(s["counts"]["failed"], 2);
  EXPECT_EQ(s["counts"]["running"], 1);
  EXPECT_EQ(s["total"], 3);
}

TEST(StatusTest, WithContextPrefixesTheMessage) {
  EXPECT_EQ(Unavailable("down").WithContext("copying traces").ToString(),
            "UNAVAILABLE: copying traces: down");
}

TEST(ConfigTest, SchemaDirIsTheNamedFolderNoneWhenEmptyElseSchemaWhenItExists) {
  Result<Config> named = Load({{"BGMIGRATE_SCHEMA_DIR", "examples/langfuse/schema"}});
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->schema_dir, "examples/langfuse/schema");
  Result<Config> none = Load({{"BGMIGRATE_SCHEMA_DIR", ""}});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->schema_dir, "");

  const std::filesystem::path old_cwd = std::filesystem::current_path();
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("bgm_config_cwd_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::current_path(dir);
  Result<Config> without = Load({});
  std::filesystem::create_directories(dir / "schema");
  Result<Config> with = Load({});
  Result<Config> emptied = Load({{"BGMIGRATE_SCHEMA_DIR", ""}});
  std::filesystem::current_path(old_cwd);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(without.ok() && with.ok() && emptied.ok());
  EXPECT_EQ(without->schema_dir, "");
  EXPECT_EQ(with->schema_dir, "schema");
  EXPECT_EQ(emptied->schema_dir, "") << "set empty means none, even when schema/ exists";
}

// BGMIGRATE_CONTROL_SCHEMA puts that schema first in every connection's search path, in
// either form of DATABASE_URL; a name it would have to quote, or a DATABASE_URL that already
// sets options, is refused saying what to do.
TEST(ConfigTest, ControlSchemaLeadsTheSearchPathOfDatabaseUrl) {
  Result<Config> uri = Load({{"DATABASE_URL", "postgresql://u@127.0.0.1:5432/langfuse"},
                             {"BGMIGRATE_CONTROL_SCHEMA", "bgmigrate"}});
  ASSERT_TRUE(uri.ok()) << uri.status().ToString();
  EXPECT_EQ(uri->control_schema, "bgmigrate");
  EXPECT_EQ(uri->database_url,
            "postgresql://u@127.0.0.1:5432/langfuse?options=-c%20search_path%3Dbgmigrate%2Cpublic");
  Result<Config> query = Load(
      {{"DATABASE_URL", "postgres://u@h/db?sslmode=disable"}, {"BGMIGRATE_CONTROL_SCHEMA", "bgm"}});
  ASSERT_TRUE(query.ok());
  EXPECT_EQ(query->database_url,
            "postgres://u@h/db?sslmode=disable&options=-c%20search_path%3Dbgm%2Cpublic");
  Result<Config> words =
      Load({{"DATABASE_URL", "host=h dbname=db"}, {"BGMIGRATE_CONTROL_SCHEMA", "bgmigrate"}});
  ASSERT_TRUE(words.ok());
  EXPECT_EQ(words->database_url, "host=h dbname=db options='-c search_path=bgmigrate,public'");
  Result<Config> none = Load({{"DATABASE_URL", "host=h dbname=db"}});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->database_url, "host=h dbname=db");
  EXPECT_EQ(none->control_schema, "");

  Result<Config> quoted =
      Load({{"DATABASE_URL", "host=h"}, {"BGMIGRATE_CONTROL_SCHEMA", "Bg Migrate"}});
  ASSERT_FALSE(quoted.ok());
  EXPECT_EQ(quoted.status().message(),
            "BGMIGRATE_CONTROL_SCHEMA='Bg Migrate' is not a schema name bgmigrate accepts: "
            "lower-case letters, digits and _, e.g. bgmigrate");
  Result<Config> options = Load({{"DATABASE_URL", "host=h options='-c work_mem=64MB'"},
                                 {"BGMIGRATE_CONTROL_SCHEMA", "bgmigrate"}});
  ASSERT_FALSE(options.ok());
  EXPECT_EQ(options.status().message(),
            "DATABASE_URL already sets options, to which BGMIGRATE_CONTROL_SCHEMA would add '-c "
            "search_path=bgmigrate,public'; add it to DATABASE_URL's options yourself and unset "
            "BGMIGRATE_CONTROL_SCHEMA, or remove the options");
}

}  // namespace
}  // namespace bgm
