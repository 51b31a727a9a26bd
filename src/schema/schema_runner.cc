#include "schema/schema_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "common/sha256.h"

namespace bgm {

Result<std::vector<SchemaFile>> ParseSchemaFiles(const std::vector<EmbeddedFile>& files) {
  std::vector<SchemaFile> out;
  for (const EmbeddedFile& f : files) {
    const std::string_view name = f.name;
    const size_t underscore = name.find('_');
    int version = 0;
    auto [ptr, ec] = std::from_chars(name.data(), name.data() + std::min(underscore, name.size()),
                                     version);
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

Result<int> ApplyPostgresSchema(PgConnection& conn, const std::vector<EmbeddedFile>& files) {
  Result<std::vector<SchemaFile>> parsed = ParseSchemaFiles(files);
  if (!parsed.ok()) return parsed.status();

  Result<PgAdvisoryLock> lock = PgAdvisoryLock::Acquire(conn, kSchemaLockKey);
  if (!lock.ok()) return lock.status();

  BGM_RETURN_IF_ERROR(conn.Run(R"sql(
      CREATE TABLE IF NOT EXISTS bgmigrate_schema_versions (
        store      TEXT NOT NULL,
        version    INTEGER NOT NULL,
        name       TEXT NOT NULL,
        checksum   TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (store, version))
  )sql"));

  Result<PgResult> applied = conn.Exec(
      "SELECT version, name, checksum FROM bgmigrate_schema_versions WHERE store = 'postgres'");
  if (!applied.ok()) return applied.status();
  std::map<int, std::pair<std::string, std::string>> done;  // version -> (name, checksum)
  for (int i = 0; i < applied->rows(); ++i) {
    done[static_cast<int>(applied->GetInt(i, 0))] = {std::string(applied->Get(i, 1)),
                                                     std::string(applied->Get(i, 2))};
  }

  int count = 0;
  for (const SchemaFile& file : *parsed) {
    const std::string checksum = Sha256Hex(file.contents);
    auto it = done.find(file.version);
    if (it != done.end()) {
      if (it->second.second != checksum) {
        return FailedPrecondition(
            "applied schema file " + file.name + " was changed after it was applied (checksum " +
            it->second.second + " recorded, " + checksum +
            " now); restore the original file and add the change as a new numbered file");
      }
      continue;
    }
    BGM_RETURN_IF_ERROR(conn.Run("BEGIN"));
    Status s = conn.RunScript(file.contents);
    if (s.ok()) {
      s = conn.Run(
          "INSERT INTO bgmigrate_schema_versions (store, version, name, checksum) "
          "VALUES ('postgres', $1, $2, $3)",
          {file.version, file.name, checksum});
    }
    if (!s.ok()) {
      (void)conn.Run("ROLLBACK");
      return s.WithContext("applying postgres schema file " + file.name);
    }
    BGM_RETURN_IF_ERROR(conn.Run("COMMIT"));
    spdlog::info("[Fast Migration] Applied postgres schema file {}", file.name);
    ++count;
  }
  return count;
}

}  // namespace bgm
