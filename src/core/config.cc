#include "core/config.h"

#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <regex>
#include <tuple>

#include "postgres/pg_connection.h"

namespace bgm {
namespace {

Result<double> ParseSeconds(const char* name, const char* text, double min, double max) {
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !std::isfinite(v) || v < min || v > max) {
    return InvalidArgument(std::string(name) + "='" + text + "' is not a number of seconds in [" +
                           std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return v;
}

Result<double> ParseThreshold(const char* name, const char* text) {
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !std::isfinite(v) || v < 0) {
    return InvalidArgument(std::string(name) + "='" + text +
                           "' is not a threshold; use a number >= 0 (0 turns the signal off)");
  }
  return v;
}

Result<bool> ParseBool(const char* name, const char* text) {
  const std::string v(text);
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  return InvalidArgument(std::string(name) + "='" + v + "' is not a boolean; use true or false");
}

std::string DefaultWorkerId() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%06x", rd() & 0xFFFFFF);
  return std::string(host) + "-" + std::to_string(getpid()) + "-" + suffix;
}

}  // namespace

const std::vector<SettingDoc>& SettingDocs() {
  static const std::vector<SettingDoc> kDocs = {
      {"DATABASE_URL", "(required)", "Postgres connection URL (libpq syntax)"},
      {"BGMIGRATE_CONTROL_SCHEMA", "(none)",
       "a Postgres schema of bgmigrate's own (created when missing) for its control tables, "
       "ahead of the application's tables in the search path: for a database that has another "
       "tool's background_migrations (Langfuse's; docs/langfuse.md)"},
      {"CLICKHOUSE_URL", "(none)",
       "ClickHouse HTTP endpoint (http://127.0.0.1:8123), several replicas separated by commas "
       "(http://ch1:8123,http://ch2:8123: the process moves to the next when it cannot connect or "
       "a request stalls unanswered), or "
       "embedded engine (embedded:///data/dir)"},
      {"CLICKHOUSE_USER", "default", "ClickHouse user (sent as a header, never logged)"},
      {"CLICKHOUSE_PASSWORD", "(empty)", "ClickHouse password (sent as a header, never logged)"},
      {"CLICKHOUSE_DB", "default", "ClickHouse database (created if missing)"},
      {"CLICKHOUSE_CLUSTER_ENABLED", "false",
       "true: ClickHouse DDL runs ON CLUSTER with Replicated engines"},
      {"CLICKHOUSE_CLUSTER_NAME", "default", "cluster name for ON CLUSTER"},
      {"LANGFUSE_AUTO_POSTGRES_MIGRATION_DISABLED", "false",
       "true: skip the Postgres fast migrations at start-up"},
      {"LANGFUSE_AUTO_CLICKHOUSE_MIGRATION_DISABLED", "false",
       "true: skip the ClickHouse fast migrations at start-up"},
      {"LANGFUSE_ENABLE_BACKGROUND_MIGRATIONS", "true",
       "false stops workers from running background migrations (status reports DISABLED)"},
      {"ADMIN_API_KEY", "(none)", "Bearer key required for every change through the API"},
      {"BGMIGRATE_BIND", "127.0.0.1", "address the web server listens on"},
      {"BGMIGRATE_PORT", "3030", "port the web server listens on"},
      {"BGMIGRATE_LEASE_SECONDS", "60",
       "a worker's lease on a migration; a dead worker's lease is taken over after it"},
      {"BGMIGRATE_POLL_SECONDS", "5", "how often an idle worker looks for work"},
      {"BGMIGRATE_OUTAGE_BUDGET_SECONDS", "900",
       "how long a running migration waits (status waiting, retrying with backoff 1-10 s) for "
       "an unreachable Postgres or ClickHouse before it fails"},
      {"BGMIGRATE_PG_CONNECT_TIMEOUT_SECONDS", "5",
       "how long connecting to Postgres may take (libpq connect_timeout; a connect_timeout in "
       "DATABASE_URL wins)"},
      {"BGMIGRATE_PG_READ_TIMEOUT_SECONDS", "5",
       "silence from Postgres during a statement after which a second connection checks that "
       "the server is still working on it; if not, the statement fails as an outage (waiting)"},
      {"BGMIGRATE_CLICKHOUSE_STALL_SECONDS", "30",
       "a ClickHouse request with no bytes moving for this long, and no answer to /ping, fails "
       "as an outage (waiting); 0 turns the check off"},
      {"BGMIGRATE_SHUTDOWN_TIMEOUT_SECONDS", "10",
       "after SIGTERM/SIGINT, how long a worker may take to stop cleanly before it exits anyway "
       "(the batch in flight is then copied again by the next worker)"},
      {"BGMIGRATE_LOG_FORMAT", "text", "text or json (one JSON object per line)"},
      {"BGMIGRATE_WORKER_ID", "host-pid-random", "this worker's name in leases and events"},
      {"BGMIGRATE_MIGRATIONS_DIR", "migrations",
       "folders of background-migration files (*.toml), separated by ':' (default: migrations "
       "when that folder exists); every file is validated at start-up and a bad one stops it; "
       "empty: none"},
      {"BGMIGRATE_SCHEMA_DIR", "schema",
       "the application's fast migrations: a folder with postgres/ and clickhouse/ subfolders of "
       "NNNN_name.sql files, applied in order at start-up (default: schema when that folder "
       "exists; empty: none, only bgmigrate's control tables)"},
      {"BGMIGRATE_THROTTLE_CHECK_SECONDS", "5",
       "how often a running migration reads the health signals of its databases (before a "
       "batch, at most this often)"},
      {"BGMIGRATE_THROTTLE_WAIT_SECONDS", "30",
       "while a signal is at or above its threshold (status throttled), how long the batches "
       "wait before the signals are read again"},
      {"BGMIGRATE_THROTTLE_CLICKHOUSE_PARTS", "100",
       "throttle while the busiest partition of a target ClickHouse table has this many active "
       "parts (ClickHouse delays inserts at 150 and refuses them at 300 by default); 0: off"},
      {"BGMIGRATE_THROTTLE_CLICKHOUSE_MERGES", "16",
       "throttle while ClickHouse runs this many merges (16: every thread of a default "
       "background pool); 0: off"},
      {"BGMIGRATE_THROTTLE_CLICKHOUSE_MEMORY_BYTES", "80% of the server's memory",
       "throttle while ClickHouse's queries and merges use this many bytes (MemoryTracking); "
       "unset: 80% of the server's memory where it reports it (OSMemoryTotal; not 18.16), "
       "otherwise off; 0: off"},
      {"BGMIGRATE_THROTTLE_POSTGRES_REPLICATION_LAG_SECONDS", "30",
       "throttle while a Postgres replica's replay lag (pg_stat_replication) is this long; 0: "
       "off"},
      {"BGMIGRATE_THROTTLE_POSTGRES_TRANSACTION_SECONDS", "600",
       "throttle while a transaction in the migration's Postgres database has been open this "
       "long (it holds back vacuum; bgmigrate's own sessions are not counted); 0: off"},
      {"BGMIGRATE_THROTTLE_POSTGRES_VACUUMS", "1",
       "throttle while this many vacuums (auto or manual) run on the migration's Postgres "
       "tables; 0: off"},
      {"BGMIGRATE_CHDB_LIBRARY", "third_party/chdb/libchdb.so",
       "libchdb.so for CLICKHOUSE_URL=embedded:... (scripts/fetch-chdb.sh installs it)"},
  };
  return kDocs;
}

Result<Config> LoadConfig(const std::function<const char*(const char*)>& getenv) {
  Config c;
  auto get = [&](const char* name) -> const char* {
    const char* v = getenv(name);
    return (v != nullptr && *v != '\0') ? v : nullptr;
  };
  if (const char* v = get("DATABASE_URL")) c.database_url = v;
  if (const char* v = get("BGMIGRATE_CONTROL_SCHEMA")) {
    static const std::regex kSchema("[a-z_][a-z0-9_]{0,62}");
    if (!std::regex_match(v, kSchema)) {
      return InvalidArgument(std::string("BGMIGRATE_CONTROL_SCHEMA='") + v +
                             "' is not a schema name bgmigrate accepts: lower-case letters, "
                             "digits and _, e.g. bgmigrate");
    }
    c.control_schema = v;
    if (!c.database_url.empty()) {
      Result<std::string> url = WithSearchPath(c.database_url, c.control_schema + ",public");
      if (!url.ok()) return url.status();
      c.database_url = *url;
    }
  }
  if (const char* v = get("CLICKHOUSE_URL")) c.clickhouse_url = v;
  c.clickhouse_user = get("CLICKHOUSE_USER") ? get("CLICKHOUSE_USER") : "default";
  if (const char* v = get("CLICKHOUSE_PASSWORD")) c.clickhouse_password = v;
  c.clickhouse_db = get("CLICKHOUSE_DB") ? get("CLICKHOUSE_DB") : "default";
  for (auto [name, field] :
       {std::pair{"CLICKHOUSE_CLUSTER_ENABLED", &c.clickhouse_cluster_enabled},
        std::pair{"LANGFUSE_AUTO_POSTGRES_MIGRATION_DISABLED", &c.auto_postgres_migration},
        std::pair{"LANGFUSE_AUTO_CLICKHOUSE_MIGRATION_DISABLED", &c.auto_clickhouse_migration}}) {
    if (const char* v = get(name)) {
      Result<bool> b = ParseBool(name, v);
      if (!b.ok()) return b.status();
      // The *_DISABLED variables switch the default-on setting off.
      *field = std::string_view(name).ends_with("_DISABLED") ? !*b : *b;
    }
  }
  if (const char* v = get("CLICKHOUSE_CLUSTER_NAME")) c.clickhouse_cluster_name = v;
  if (const char* v = get("LANGFUSE_ENABLE_BACKGROUND_MIGRATIONS")) {
    Result<bool> b = ParseBool("LANGFUSE_ENABLE_BACKGROUND_MIGRATIONS", v);
    if (!b.ok()) return b.status();
    c.background_migrations_enabled = *b;
  }
  if (const char* v = get("ADMIN_API_KEY")) c.admin_api_key = v;
  if (const char* v = get("BGMIGRATE_BIND")) c.bind = v;
  if (const char* v = get("BGMIGRATE_PORT")) {
    int port = -1;
    auto [ptr, ec] = std::from_chars(v, v + std::strlen(v), port);
    if (ec != std::errc() || *ptr != '\0' || port < 0 || port > 65535) {
      return InvalidArgument(std::string("BGMIGRATE_PORT='") + v +
                             "' is not a port number (0-65535)");
    }
    c.port = port;
  }
  if (const char* v = get("BGMIGRATE_LEASE_SECONDS")) {
    Result<double> s = ParseSeconds("BGMIGRATE_LEASE_SECONDS", v, 1, 86400);
    if (!s.ok()) return s.status();
    c.lease = std::chrono::milliseconds(static_cast<int64_t>(*s * 1000));
  }
  if (const char* v = get("BGMIGRATE_POLL_SECONDS")) {
    Result<double> s = ParseSeconds("BGMIGRATE_POLL_SECONDS", v, 0.05, 3600);
    if (!s.ok()) return s.status();
    c.poll = std::chrono::milliseconds(static_cast<int64_t>(*s * 1000));
  }
  if (const char* v = get("BGMIGRATE_OUTAGE_BUDGET_SECONDS")) {
    Result<double> s = ParseSeconds("BGMIGRATE_OUTAGE_BUDGET_SECONDS", v, 0, 7 * 86400);
    if (!s.ok()) return s.status();
    c.outage_budget = std::chrono::milliseconds(static_cast<int64_t>(*s * 1000));
  }
  if (const char* v = get("BGMIGRATE_PG_CONNECT_TIMEOUT_SECONDS")) {
    // Whole seconds: libpq's connect_timeout takes no fraction (and treats 1 as 2).
    Result<double> s = ParseSeconds("BGMIGRATE_PG_CONNECT_TIMEOUT_SECONDS", v, 1, 3600);
    if (!s.ok()) return s.status();
    c.pg_connect_timeout = std::chrono::seconds(static_cast<int64_t>(std::ceil(*s)));
  }
  for (auto [name, field, min] :
       {std::tuple{"BGMIGRATE_PG_READ_TIMEOUT_SECONDS", &c.pg_read_timeout, 0.1},
        std::tuple{"BGMIGRATE_CLICKHOUSE_STALL_SECONDS", &c.clickhouse_stall, 0.0},
        std::tuple{"BGMIGRATE_SHUTDOWN_TIMEOUT_SECONDS", &c.shutdown_timeout, 0.0}}) {
    if (const char* v = get(name)) {
      Result<double> s = ParseSeconds(name, v, min, 86400);
      if (!s.ok()) return s.status();
      *field = std::chrono::milliseconds(static_cast<int64_t>(*s * 1000));
    }
  }
  for (auto [name, field] :
       {std::pair{"BGMIGRATE_THROTTLE_CHECK_SECONDS", &c.throttle.check_interval},
        std::pair{"BGMIGRATE_THROTTLE_WAIT_SECONDS", &c.throttle.wait_interval}}) {
    if (const char* v = get(name)) {
      Result<double> s = ParseSeconds(name, v, 0, 86400);
      if (!s.ok()) return s.status();
      *field = std::chrono::milliseconds(static_cast<int64_t>(*s * 1000));
    }
  }
  for (auto [name, field] : {
           std::pair{"BGMIGRATE_THROTTLE_CLICKHOUSE_PARTS", &c.throttle.clickhouse_parts},
           std::pair{"BGMIGRATE_THROTTLE_CLICKHOUSE_MERGES", &c.throttle.clickhouse_merges},
           std::pair{"BGMIGRATE_THROTTLE_POSTGRES_REPLICATION_LAG_SECONDS",
                     &c.throttle.postgres_replication_lag_seconds},
           std::pair{"BGMIGRATE_THROTTLE_POSTGRES_TRANSACTION_SECONDS",
                     &c.throttle.postgres_transaction_seconds},
           std::pair{"BGMIGRATE_THROTTLE_POSTGRES_VACUUMS", &c.throttle.postgres_vacuums},
       }) {
    if (const char* v = get(name)) {
      Result<double> t = ParseThreshold(name, v);
      if (!t.ok()) return t.status();
      *field = *t;
    }
  }
  if (const char* v = get("BGMIGRATE_THROTTLE_CLICKHOUSE_MEMORY_BYTES")) {
    Result<double> t = ParseThreshold("BGMIGRATE_THROTTLE_CLICKHOUSE_MEMORY_BYTES", v);
    if (!t.ok()) return t.status();
    c.throttle.clickhouse_memory_bytes = *t;
  }
  if (const char* v = get("BGMIGRATE_LOG_FORMAT")) {
    if (!ParseLogFormat(v, &c.log_format)) {
      return InvalidArgument(std::string("BGMIGRATE_LOG_FORMAT='") + v +
                             "' is not a log format; use text or json");
    }
  }
  c.worker_id = get("BGMIGRATE_WORKER_ID") ? get("BGMIGRATE_WORKER_ID") : DefaultWorkerId();
  if (const char* v = get("BGMIGRATE_MIGRATIONS_DIR")) {
    std::string_view rest(v);
    while (!rest.empty()) {
      const size_t colon = rest.find(':');
      if (colon != 0) c.migrations_dirs.emplace_back(rest.substr(0, colon));
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  } else if (std::error_code ec; std::filesystem::is_directory("migrations", ec)) {
    c.migrations_dirs = {"migrations"};
  }
  if (const char* v = getenv("BGMIGRATE_SCHEMA_DIR")) {
    c.schema_dir = v;  // set empty: none
  } else if (std::error_code ec; std::filesystem::is_directory("schema", ec)) {
    c.schema_dir = "schema";
  }
  return c;
}

}  // namespace bgm
