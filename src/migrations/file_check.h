// Checks migration files against the databases they name, without running or changing
// anything: for the postgres kind, the table and key (CheckPostgresBatchTable) and that the
// statement parses; for postgres_to_clickhouse, that the SELECT parses. Statements are only
// prepared (PREPARE / DEALLOCATE), never executed. Used by `bgmigrate check`.
#pragma once

#include <string>
#include <vector>

#include "migrations/migration_file.h"

namespace bgm {

struct FileCheckReport {
  std::vector<FileProblem> problems;
  std::vector<std::string> notes;  // what could not be checked, and why
};

// `database_url` empty: nothing is checked against Postgres (a note says so).
FileCheckReport CheckFilesAgainstDatabases(const std::vector<MigrationFile>& files,
                                           const std::string& database_url);

}  // namespace bgm
