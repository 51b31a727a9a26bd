// Config: every setting of bgmigrate, read from the environment (Langfuse's names where
// Langfuse has one, BGMIGRATE_* otherwise). Immutable after loading; thread-safe to share.
//
//   Result<Config> config = LoadConfig(std::getenv);
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/logging.h"
#include "common/status.h"
#include "core/throttle.h"

namespace bgm {

struct Config {
  // DATABASE_URL; with BGMIGRATE_CONTROL_SCHEMA, its search path starts with that schema.
  std::string database_url;
  // BGMIGRATE_CONTROL_SCHEMA: a Postgres schema of bgmigrate's own for its control tables,
  // ahead of the application's in every connection's search path ("": the database's default).
  std::string control_schema;
  std::string clickhouse_url;                       // CLICKHOUSE_URL
  std::string clickhouse_user;                      // CLICKHOUSE_USER
  std::string clickhouse_password;                  // CLICKHOUSE_PASSWORD
  std::string clickhouse_db;                        // CLICKHOUSE_DB
  bool clickhouse_cluster_enabled = false;          // CLICKHOUSE_CLUSTER_ENABLED
  std::string clickhouse_cluster_name = "default";  // CLICKHOUSE_CLUSTER_NAME
  bool auto_postgres_migration = true;              // !LANGFUSE_AUTO_POSTGRES_MIGRATION_DISABLED
  bool auto_clickhouse_migration = true;            // !LANGFUSE_AUTO_CLICKHOUSE_MIGRATION_DISABLED
  bool background_migrations_enabled = true;        // LANGFUSE_ENABLE_BACKGROUND_MIGRATIONS
  std::string admin_api_key;                        // ADMIN_API_KEY
  std::string bind = "127.0.0.1";                   // BGMIGRATE_BIND
  int port = 3030;                                  // BGMIGRATE_PORT
  std::chrono::milliseconds lease{std::chrono::seconds(60)};  // BGMIGRATE_LEASE_SECONDS
  std::chrono::milliseconds poll{std::chrono::seconds(5)};    // BGMIGRATE_POLL_SECONDS
  std::chrono::milliseconds outage_budget{
      std::chrono::minutes(15)};               // BGMIGRATE_OUTAGE_BUDGET_SECONDS
  std::chrono::seconds pg_connect_timeout{5};  // BGMIGRATE_PG_CONNECT_TIMEOUT_SECONDS
  std::chrono::milliseconds pg_read_timeout{
      std::chrono::seconds(5)};  // BGMIGRATE_PG_READ_TIMEOUT_SECONDS
  std::chrono::milliseconds clickhouse_stall{
      std::chrono::seconds(30)};  // BGMIGRATE_CLICKHOUSE_STALL_SECONDS
  std::chrono::milliseconds shutdown_timeout{
      std::chrono::seconds(10)};            // BGMIGRATE_SHUTDOWN_TIMEOUT_SECONDS
  LogFormat log_format = LogFormat::kText;  // BGMIGRATE_LOG_FORMAT
  std::string worker_id;                    // BGMIGRATE_WORKER_ID (default host-pid-random)
  // BGMIGRATE_MIGRATIONS_DIR (':'-separated); unset: "migrations" when that folder exists.
  std::vector<std::string> migrations_dirs;
  // BGMIGRATE_SCHEMA_DIR: the application's fast migrations (postgres/, clickhouse/); unset:
  // "schema" when that folder exists; set empty, or no folder: none ("").
  std::string schema_dir;
  ThrottleSettings throttle;  // BGMIGRATE_THROTTLE_*
  // Not from the environment: (name, application_script) of each registered migration that
  // has a row in the application's own background_migrations, filled in once the migration
  // files are loaded (core/application_ledger.h).
  std::vector<std::pair<std::string, std::string>> application_scripts;
};

// One documented setting, for --help and the README table.
struct SettingDoc {
  const char* name;
  const char* default_value;
  const char* meaning;
};
const std::vector<SettingDoc>& SettingDocs();

// Reads the settings through `getenv` (std::getenv in production, a map in tests).
// kInvalidArgument names the variable, the bad value and what is accepted.
Result<Config> LoadConfig(const std::function<const char*(const char*)>& getenv);

}  // namespace bgm
