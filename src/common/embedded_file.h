// EmbeddedFile: a file compiled into the binary (SQL schema files, UI assets); see
// cmake/embed_files.cmake. Immutable, so thread-safe.
#pragma once

#include <string_view>
#include <vector>

namespace bgm {

struct EmbeddedFile {
  std::string_view name;  // file name without folders, e.g. "0001_background_migrations.sql"
  std::string_view contents;
};

// The files of sql/postgres and sql/clickhouse, sorted by name.
const std::vector<EmbeddedFile>& PostgresSchemaFiles();
const std::vector<EmbeddedFile>& ClickHouseSchemaFiles();

}  // namespace bgm
