#include "schema/schema_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include "common/sha256.h"
#include "schema/control_table_shape.h"

namespace bgm {

Result<std::vector<SchemaFile>> ParseSchemaFiles(const std::vector<EmbeddedFile>& files) {
  std::vector<SchemaFile> out;
  for (const EmbeddedFile& f : files) {
    const std::string_view name = f.name;
    const size_t underscore = name.find('_');
    int version = 0;
    auto [ptr, ec] =
        std::from_chars(name.data(), name.data() + std::min(underscore, name.size()), version);
    if (underscore == std::string_view::npos || ec != std::errc() ||
        ptr != name.data() + underscore || !name.ends_with(".sql") || version <= 0) {
      return InvalidArgument("schema file '" + std::string(name) +
                             "' is not named NNNN_description.sql");
    }
    out.push_back(SchemaFile{version, std::string(name), f.contents});
  }
  std::sort(out.begin(), out.end(),
            [](const SchemaFile& a, const SchemaFile& b) { return a.version < b.version; });
  for (size_t i = 1; i < out.size(); ++i) {
    if (out[i].version == out[i - 1].version) {
      return InvalidArgument("schema files '" + out[i - 1].name + "' and '" + out[i].name +
                             "' share version " + std::to_string(out[i].version));
    }
  }
  return out;
}

Status CheckAppliedChecksums(const std::vector<SchemaFile>& files,
                             const std::map<int, std::string>& applied, std::string_view what) {
  for (const SchemaFile& file : files) {
    auto it = applied.find(file.version);
    if (it == applied.end()) continue;
    const std::string checksum = Sha256Hex(file.contents);
    if (it->second != checksum) {
      return FailedPrecondition(
          "applied " + std::string(what) + " file " + file.name +
          " was changed after it was applied (checksum " + it->second + " recorded, " + checksum +
          " now); restore the original file and add the change as a new numbered file");
    }
  }
  return Status::Ok();
}

namespace {

// The checksums recorded under `store`, version -> checksum; empty when the table is not there.
Result<std::map<int, std::string>> RecordedVersions(PgConnection& conn, std::string_view store,
                                                    bool table_exists) {
  std::map<int, std::string> done;
  if (!table_exists) return done;
  Result<PgResult> applied = conn.Exec(
      "SELECT version, checksum FROM bgmigrate_schema_versions WHERE store = $1", {store});
  if (!applied.ok()) return applied.status().WithContext("reading bgmigrate_schema_versions");
  for (int i = 0; i < applied->rows(); ++i) {
    done[static_cast<int>(applied->GetInt(i, 0))] = std::string(applied->Get(i, 1));
  }
  return done;
}

// Applies `files` not in `done`, each in a transaction with its record under `store`.
Result<int> ApplyPending(PgConnection& conn, const std::vector<SchemaFile>& files,
                         const std::map<int, std::string>& done, std::string_view store,
                         std::string_view what) {
  int count = 0;
  for (const SchemaFile& file : files) {
    if (done.contains(file.version)) continue;
    const std::string checksum = Sha256Hex(file.contents);
    BGM_RETURN_IF_ERROR(conn.Run("BEGIN"));
    Status s = conn.RunScript(file.contents);
    if (s.ok()) {
      s = conn.Run(
          "INSERT INTO bgmigrate_schema_versions (store, version, name, checksum) "
          "VALUES ($1, $2, $3, $4)",
          {store, file.version, file.name, checksum});
    }
    if (!s.ok()) {
      (void)conn.Run("ROLLBACK");
      return s.WithContext("applying " + std::string(what) + " file " + file.name);
    }
    BGM_RETURN_IF_ERROR(conn.Run("COMMIT"));
    spdlog::info("[Fast Migration] Applied {} file {}", what, file.name);
    ++count;
  }
  return count;
}

}  // namespace

Result<int> ApplyPostgresSchema(PgConnection& conn, const std::vector<EmbeddedFile>& internal,
                                const std::vector<EmbeddedFile>& application) {
  Result<std::vector<SchemaFile>> own = ParseSchemaFiles(internal);
  if (!own.ok()) return own.status();
  Result<std::vector<SchemaFile>> app = ParseSchemaFiles(application);
  if (!app.ok()) return app.status().WithContext("application schema");

  Result<PgAdvisoryLock> lock = PgAdvisoryLock::Acquire(conn, kSchemaLockKey);
  if (!lock.ok()) return lock.status();

  // Everything below up to CREATE TABLE only reads.
  Result<PgResult> exists = conn.Exec(
      "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE n.nspname = current_schema() AND c.relname = 'bgmigrate_schema_versions')");
  if (!exists.ok()) return exists.status();
  const bool has_versions = exists->GetBool(0, 0);
  std::set<int> own_versions;
  if (has_versions) {
    // The version table itself first: the reads below need its columns.
    BGM_RETURN_IF_ERROR(CheckControlTables(conn, {}));
  }
  Result<std::map<int, std::string>> own_done =
      RecordedVersions(conn, kInternalStore, has_versions);
  if (!own_done.ok()) return own_done.status();
  Result<std::map<int, std::string>> app_done =
      RecordedVersions(conn, kApplicationStore, has_versions);
  if (!app_done.ok()) return app_done.status();
  BGM_RETURN_IF_ERROR(CheckAppliedChecksums(*own, *own_done, "postgres schema"));
  BGM_RETURN_IF_ERROR(CheckAppliedChecksums(*app, *app_done, "application postgres schema"));
  for (const auto& [version, checksum] : *own_done) own_versions.insert(version);
  BGM_RETURN_IF_ERROR(CheckControlTables(conn, own_versions));

  BGM_RETURN_IF_ERROR(conn.Run(R"sql(
      CREATE TABLE IF NOT EXISTS bgmigrate_schema_versions (
        store      TEXT NOT NULL,
        version    INTEGER NOT NULL,
        name       TEXT NOT NULL,
        checksum   TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (store, version))
  )sql"));
  Result<int> own_count = ApplyPending(conn, *own, *own_done, kInternalStore, "postgres schema");
  if (!own_count.ok()) return own_count.status();
  Result<int> app_count =
      ApplyPending(conn, *app, *app_done, kApplicationStore, "application postgres schema");
  if (!app_count.ok()) return app_count.status();
  return *own_count + *app_count;
}

}  // namespace bgm
