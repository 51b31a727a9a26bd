// Fast migrations for ClickHouse: the application's files (BGMIGRATE_SCHEMA_DIR/clickhouse/, see
// ApplicationSchema; bgmigrate itself keeps nothing in ClickHouse), with their placeholders
// resolved for the connected server (see ClickHouseDialect), applied in order under the same
// pg_advisory_lock as the Postgres files, since ClickHouse has no lock of its own. Each applied
// file is recorded with its checksum in ClickHouse's bgmigrate_schema_versions table. Every
// statement in the files is re-runnable (IF NOT EXISTS), so a run killed in the middle of a file
// completes it on the next start instead of leaving a "dirty" version.
// Not thread-safe; uses the connections it is given.
#pragma once

#include <string>
#include <vector>

#include "clickhouse/clickhouse_client.h"
#include "clickhouse/dialect.h"
#include "common/embedded_file.h"
#include "common/status.h"
#include "postgres/pg_connection.h"

namespace bgm {

// Splits a schema file into statements at ';' that end a line (comments dropped).
std::vector<std::string> SplitStatements(std::string_view sql);

// Read-only, before anything is changed anywhere: every file's name, version and placeholders
// resolve for this server, and each file recorded in `database`.bgmigrate_schema_versions (when
// that table exists) still has its recorded checksum. `admin` is bound to no database.
// kInvalidArgument for a bad name or placeholder, kFailedPrecondition for a changed file.
Status CheckClickHouseSchema(ClickHouseClient& admin, const ClickHouseDialect& dialect,
                             const std::string& database, const std::vector<EmbeddedFile>& files);

// Applies the files not yet recorded. Returns how many were applied. kFailedPrecondition when an
// applied file's checksum changed (names the file and both checksums); the server's error with
// the file name when a statement fails. A file that requires background migrations not finished
// yet (see ApplyPostgresSchema, read through `lock_conn`) stops the files from it on: *held says
// why, or without `held` it is a kFailedPrecondition error.
Result<int> ApplyClickHouseSchema(PgConnection& lock_conn, ClickHouseClient& client,
                                  const ClickHouseDialect& dialect, const std::string& database,
                                  const std::vector<EmbeddedFile>& files,
                                  std::string* held = nullptr);

// CREATE DATABASE IF NOT EXISTS for `database` through a client not bound to any database.
// kInvalidArgument for a name other than [A-Za-z0-9_]+.
Status EnsureClickHouseDatabase(ClickHouseClient& client, const ClickHouseDialect& dialect,
                                const std::string& database);

}  // namespace bgm
