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

}  // namespace
}  // namespace bgm
