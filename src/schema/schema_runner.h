// Fast migrations: versioned schema files applied in order, each exactly once, under one
// cross-process lock (pg_advisory_lock), so several replicas may start together. Two sets:
// bgmigrate's control tables (compiled in) and the application's files (BGMIGRATE_SCHEMA_DIR),
// with separate version records. Not thread-safe; uses the connection it is given.
//
//   Result<int> applied = ApplyPostgresSchema(conn, PostgresSchemaFiles(), app.postgres());
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/embedded_file.h"
#include "common/status.h"
#include "postgres/pg_connection.h"

namespace bgm {

// The advisory-lock key guarding every fast migration (Postgres and ClickHouse files).
inline constexpr int64_t kSchemaLockKey = 0x62676d6967726174;  // "bgmigrat"

struct SchemaFile {
  int version = 0;
  std::string name;  // file name
  std::string_view contents;
  // Background migrations that must have finished (or been skipped) before this file is applied:
  // the names on its "-- bgmigrate: requires NAME[, NAME...]" lines.
  std::vector<std::string> required;
};

// Parses "NNNN_name.sql" names (and each file's "-- bgmigrate: requires" lines) and sorts by
// version. kInvalidArgument for a bad name, a repeated version or a requires line without
// migration names.
Result<std::vector<SchemaFile>> ParseSchemaFiles(const std::vector<EmbeddedFile>& files);

// The `store` values of bgmigrate_schema_versions: bgmigrate's own control-table files keep
// "postgres" (the value every earlier release recorded), the application's Postgres files
// "application", so the two numberings never collide.
inline constexpr std::string_view kInternalStore = "postgres";
inline constexpr std::string_view kApplicationStore = "application";

// kFailedPrecondition when a file of `files` has a version in `applied` (version -> checksum)
// with another checksum: names `what` and the file, both checksums and what to do.
Status CheckAppliedChecksums(const std::vector<SchemaFile>& files,
                             const std::map<int, std::string>& applied, std::string_view what);

// Checks everything first, then applies. Under the lock: every file's name and version, the
// checksum of each applied file (both sets), and the shape of existing control tables
// (CheckControlTables); any problem returns before anything is written. Then applies the
// `internal` files not yet recorded under kInternalStore, then the `application` files not yet
// recorded under kApplicationStore, each in its own transaction with its record. Returns how
// many were applied. A recorded version with no file (bgmigrate's old 0002, which held the
// example application's tables) is kept and ignored. kFailedPrecondition for a changed file or
// a foreign control table; kInvalidArgument for a bad file name; the server's error (with the
// file name) when a statement fails (earlier files stay applied).
//
// An application file that requires background migrations not finished yet is not applied,
// nor any file after it: with `held` set, the files before it are applied and *held says which
// file waits and for what (and how to go on); without it that is a kFailedPrecondition error.
Result<int> ApplyPostgresSchema(PgConnection& conn, const std::vector<EmbeddedFile>& internal,
                                const std::vector<EmbeddedFile>& application = {},
                                std::string* held = nullptr);

// "" when every migration `file` requires has finished or was skipped; otherwise the message
// naming `what` file, each unfinished migration with its state (running with progress, failed
// with reason, paused, cancelled, pending, not registered) and what to do.
Result<std::string> UnfinishedRequirements(PgConnection& conn, const SchemaFile& file,
                                           std::string_view what);

}  // namespace bgm
