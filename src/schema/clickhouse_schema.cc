#include "schema/clickhouse_schema.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <map>

#include "clickhouse/insert_source.h"
#include "common/sha256.h"
#include "schema/schema_runner.h"

namespace bgm {

std::vector<std::string> SplitStatements(std::string_view sql) {
  std::vector<std::string> out;
  std::string current;
  size_t pos = 0;
  while (pos < sql.size()) {
    size_t end = sql.find('\n', pos);
    if (end == std::string_view::npos) end = sql.size();
    std::string_view line = sql.substr(pos, end - pos);
    pos = end + 1;
    std::string_view trimmed = line;
    while (!trimmed.empty() && (trimmed.front() == ' ' || trimmed.front() == '\t')) {
      trimmed.remove_prefix(1);
    }
    if (trimmed.starts_with("--")) continue;
    while (!trimmed.empty() && (trimmed.back() == ' ' || trimmed.back() == '\r')) {
      trimmed.remove_suffix(1);
    }
    current.append(line);
    current += '\n';
    if (trimmed.ends_with(";")) {
      current.erase(current.find_last_of(';'));
      out.push_back(std::move(current));
      current.clear();
    }
  }
  if (current.find_first_not_of(" \t\r\n") != std::string::npos) out.push_back(current);
  return out;
}

namespace {

bool ValidDatabaseName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

// version -> checksum of `table` (a bgmigrate_schema_versions table, maybe database-qualified).
Result<std::map<int, std::string>> ReadVersions(ClickHouseClient& client,
                                                const std::string& table) {
  Result<std::string> applied =
      client.Query("SELECT version, name, checksum FROM " + table + " FINAL FORMAT TabSeparated");
  if (!applied.ok()) return applied.status().WithContext("reading applied ClickHouse versions");
  std::map<int, std::string> done;
  size_t pos = 0;
  const std::string& body = *applied;
  while (pos < body.size()) {
    size_t end = body.find('\n', pos);
    if (end == std::string::npos) end = body.size();
    std::string_view line(body.data() + pos, end - pos);
    pos = end + 1;
    const size_t t1 = line.find('\t');
    const size_t t2 = line.rfind('\t');
    if (t1 == std::string_view::npos || t2 == t1) continue;
    int version = 0;
    std::from_chars(line.data(), line.data() + t1, version);
    done[version] = std::string(line.substr(t2 + 1));
  }
  return done;
}

}  // namespace

Status CheckClickHouseSchema(ClickHouseClient& admin, const ClickHouseDialect& dialect,
                             const std::string& database, const std::vector<EmbeddedFile>& files) {
  if (!ValidDatabaseName(database)) {
    return InvalidArgument("CLICKHOUSE_DB='" + database +
                           "' is not a plain database name (letters, digits, _)");
  }
  Result<std::vector<SchemaFile>> parsed = ParseSchemaFiles(files);
  if (!parsed.ok()) return parsed.status().WithContext("application clickhouse schema");
  for (const SchemaFile& file : *parsed) {
    Result<std::string> resolved = dialect.Resolve(file.contents, database);
    if (!resolved.ok()) return resolved.status().WithContext("clickhouse schema file " + file.name);
  }
  Result<std::string> exists =
      admin.Query("SELECT count() FROM system.tables WHERE database = '" + database +
                  "' AND name = 'bgmigrate_schema_versions' FORMAT TabSeparated");
  if (!exists.ok()) return exists.status().WithContext("reading ClickHouse's system.tables");
  if (exists->starts_with("0")) return Status::Ok();
  Result<std::map<int, std::string>> done =
      ReadVersions(admin, "`" + database + "`.bgmigrate_schema_versions");
  if (!done.ok()) return done.status();
  return CheckAppliedChecksums(*parsed, *done, "clickhouse schema");
}

Status EnsureClickHouseDatabase(ClickHouseClient& client, const ClickHouseDialect& dialect,
                                const std::string& database) {
  if (!ValidDatabaseName(database)) {
    return InvalidArgument("CLICKHOUSE_DB='" + database +
                           "' is not a plain database name (letters, digits, _)");
  }
  Result<std::string> sql =
      dialect.Resolve("CREATE DATABASE IF NOT EXISTS `" + database + "` {{ON_CLUSTER}}", database);
  if (!sql.ok()) return sql.status();
  return client.Execute(*sql).WithContext("creating ClickHouse database " + database);
}

Result<int> ApplyClickHouseSchema(PgConnection& lock_conn, ClickHouseClient& client,
                                  const ClickHouseDialect& dialect, const std::string& database,
                                  const std::vector<EmbeddedFile>& files, std::string* held) {
  Result<std::vector<SchemaFile>> parsed = ParseSchemaFiles(files);
  if (!parsed.ok()) return parsed.status();
  Result<PgAdvisoryLock> lock = PgAdvisoryLock::Acquire(lock_conn, kSchemaLockKey);
  if (!lock.ok()) return lock.status();

  Result<std::string> create = dialect.Resolve(R"sql(
      CREATE TABLE IF NOT EXISTS bgmigrate_schema_versions {{ON_CLUSTER}} (
        version UInt32, name String, checksum String, applied_at DateTime DEFAULT now())
      ENGINE = {{VERSIONS_ENGINE}} ORDER BY version)sql",
                                               database);
  if (!create.ok()) return create.status();
  BGM_RETURN_IF_ERROR(client.Execute(*create).WithContext("creating bgmigrate_schema_versions"));

  Result<std::map<int, std::string>> done = ReadVersions(client, "bgmigrate_schema_versions");
  if (!done.ok()) return done.status();
  BGM_RETURN_IF_ERROR(CheckAppliedChecksums(*parsed, *done, "clickhouse schema"));

  int count = 0;
  for (const SchemaFile& file : *parsed) {
    if (done->contains(file.version)) continue;
    Result<std::string> unfinished = UnfinishedRequirements(lock_conn, file, "clickhouse schema");
    if (!unfinished.ok()) return unfinished.status();
    if (!unfinished->empty()) {
      if (held == nullptr) return FailedPrecondition(*unfinished);
      *held = *unfinished;
      spdlog::error("[Fast Migration] {}", *unfinished);
      return count;
    }
    const std::string checksum = Sha256Hex(file.contents);
    Result<std::string> resolved = dialect.Resolve(file.contents, database);
    if (!resolved.ok()) return resolved.status().WithContext("clickhouse schema file " + file.name);
    for (const std::string& statement : SplitStatements(*resolved)) {
      Status s = client.Execute(statement);
      if (!s.ok()) return s.WithContext("applying clickhouse schema file " + file.name);
    }
    const std::string record =
        std::to_string(file.version) + "\t" + file.name + "\t" + checksum + "\n";
    StringInsertSource source(record);
    Status s = client.Insert(
        "INSERT INTO bgmigrate_schema_versions (version, name, checksum) FORMAT TabSeparated",
        source);
    if (!s.ok()) return s.WithContext("recording clickhouse schema file " + file.name);
    spdlog::info("[Fast Migration] Applied clickhouse schema file {} (ClickHouse {})", file.name,
                 dialect.version());
    ++count;
  }
  return count;
}

}  // namespace bgm
