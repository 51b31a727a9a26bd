// Checks migration files against the databases they name, without running or changing
// anything: for the postgres kind, the table and key (CheckPostgresBatchTable) and that the
// statement parses; for postgres_to_clickhouse, the SELECT's output columns (from a temporary
// view, rolled back) against the target's columns and types; for clickhouse, the table in
// ClickHouse and that `before` and `statement` parse (EXPLAIN AST, where the server has it).
// Statements are only prepared (PREPARE / DEALLOCATE) or explained, never executed. Used by
// `bgmigrate check`.
#pragma once

#include <string>
#include <vector>

#include "clickhouse/client_factory.h"
#include "migrations/migration_file.h"

namespace bgm {

struct FileCheckReport {
  std::vector<FileProblem> problems;
  std::vector<std::string> notes;  // what could not be checked, and why
};

// `database_url` empty: nothing is checked against Postgres (a note says so). A copy's SELECT
// is also checked against its target's columns and types in ClickHouse (system.columns) when
// `clickhouse.url` is set: every output column must name a target column whose type it can be
// written as (ColumnType); target columns the SELECT leaves out get their defaults.
FileCheckReport CheckFilesAgainstDatabases(const std::vector<MigrationFile>& files,
                                           const std::string& database_url,
                                           const ClickHouseClientOptions& clickhouse = {});

}  // namespace bgm
