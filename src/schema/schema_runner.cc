#include "schema/schema_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <set>

#include "common/sha256.h"
#include "postgres/pg_text.h"
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
    SchemaFile file{version, std::string(name), f.contents, {}};
    constexpr std::string_view kRequires = "-- bgmigrate: requires";
    for (size_t at = 0; at < f.contents.size();) {
      const size_t end = std::min(f.contents.find('\n', at), f.contents.size());
      std::string_view line = f.contents.substr(at, end - at);
      at = end + 1;
      if (!line.starts_with(kRequires)) continue;
      line.remove_prefix(kRequires.size());
      std::string word;
      size_t names = 0;
      for (size_t i = 0; i <= line.size(); ++i) {
        const char c = i < line.size() ? line[i] : ',';
        if (c == ',' || c == ' ' || c == '\t' || c == '\r') {
          if (!word.empty()) {
            file.required.push_back(word);
            ++names;
          }
          word.clear();
        } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
                   c == '-') {
          word += c;
        } else {
          return InvalidArgument("schema file '" + file.name + "': '" + std::string(kRequires) +
                                 "' lists background migration names separated by commas; '" +
                                 std::string(1, c) + "' is not part of one");
        }
      }
      if (names == 0) {
        return InvalidArgument("schema file '" + file.name + "': '" + std::string(kRequires) +
                               "' names no background migration");
      }
    }
    out.push_back(std::move(file));
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

Result<std::string> UnfinishedRequirements(PgConnection& conn, const SchemaFile& file,
                                           std::string_view what) {
  if (file.required.empty()) return std::string();
  const std::string names = PgTextArrayLiteral(file.required);
  Result<PgResult> r = conn.Exec(R"sql(
      SELECT n.name,
             CASE WHEN m.name IS NULL THEN 'not registered (no such background migration in '
                                           || 'this database: is its file deployed?)'
                  WHEN m.finished_at IS NOT NULL THEN NULL
                  WHEN m.failed_at IS NOT NULL THEN 'failed: ' || coalesce(m.failed_reason, '')
                  WHEN m.cancelled_at IS NOT NULL THEN 'cancelled'
                  WHEN m.paused_at IS NOT NULL THEN 'paused'
                  WHEN m.worker_id IS NOT NULL THEN 'running, ' || m.rows_processed || ' rows done'
                       || coalesce(' of about ' || m.rows_total_estimate, '')
                  ELSE 'pending, ' || m.rows_processed || ' rows done' END
      FROM unnest($1::text[]) WITH ORDINALITY AS n(name, i)
      LEFT JOIN background_migrations m ON m.name = n.name
      ORDER BY n.i)sql",
                                 {names});
  if (!r.ok())
    return r.status().WithContext("reading the background migrations " + file.name + " requires");
  std::string unfinished, list;
  for (int i = 0; i < r->rows(); ++i) {
    if (r->IsNull(i, 1)) continue;
    unfinished += (unfinished.empty() ? "" : "; ") + std::string(r->Get(i, 0)) + " (" +
                  std::string(r->Get(i, 1)) + ")";
    list += " " + std::string(r->Get(i, 0));
  }
  if (unfinished.empty()) return std::string();
  return std::string(what) + " file " + file.name +
         " requires background migrations that have not finished: " + unfinished +
         ". It and the files after it are not applied. Let them finish (`bgmigrate gate" + list +
         "` exits 0 once they have; retry or resume a failed or paused one, or `bgmigrate skip` "
         "one whose data was migrated another way), then run `bgmigrate migrate` again";
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

// Applies `files` not in `done`, each in a transaction with its record under `store`, up to
// the first whose required background migrations have not finished (`held` says so; without
// `held` that is an error).
Result<int> ApplyPending(PgConnection& conn, const std::vector<SchemaFile>& files,
                         const std::map<int, std::string>& done, std::string_view store,
                         std::string_view what, std::string* held = nullptr) {
  int count = 0;
  for (const SchemaFile& file : files) {
    if (done.contains(file.version)) continue;
    Result<std::string> unfinished = UnfinishedRequirements(conn, file, what);
    if (!unfinished.ok()) return unfinished.status();
    if (!unfinished->empty()) {
      if (held == nullptr) return FailedPrecondition(*unfinished);
      *held = *unfinished;
      spdlog::error("[Fast Migration] {}", *unfinished);
      return count;
    }
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
                                const std::vector<EmbeddedFile>& application, std::string* held) {
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
      ApplyPending(conn, *app, *app_done, kApplicationStore, "application postgres schema", held);
  if (!app_count.ok()) return app_count.status();
  return *own_count + *app_count;
}

}  // namespace bgm
