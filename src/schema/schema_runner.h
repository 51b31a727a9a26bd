// Fast migrations: versioned schema files applied in order, each exactly once, under one
// cross-process lock (pg_advisory_lock), so several replicas may start together.
// Not thread-safe; uses the connection it is given.
//
//   Result<int> applied = ApplyPostgresSchema(conn, PostgresSchemaFiles());
#pragma once

#include <cstdint>
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
};

// Parses "NNNN_name.sql" names and sorts by version. kInvalidArgument for a bad name or a
// repeated version.
Result<std::vector<SchemaFile>> ParseSchemaFiles(const std::vector<EmbeddedFile>& files);

// Applies the files not yet recorded in bgmigrate_schema_versions for `store` ("postgres"),
// each in its own transaction with its record. Returns how many were applied.
// kFailedPrecondition when an applied file's checksum changed (names the file and both
// checksums); the server's error (with the file name) when a statement fails.
Result<int> ApplyPostgresSchema(PgConnection& conn, const std::vector<EmbeddedFile>& files);

}  // namespace bgm
