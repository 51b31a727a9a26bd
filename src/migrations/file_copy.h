// The `postgres_to_clickhouse` kind of migration file: the file's SELECT over Postgres, read in
// keyset order on its `key` and copied by the copy engine (migrations/table_copy.h) into the
// `target` table. Types are read from the databases, never assumed: the SELECT's output columns
// and their Postgres types come from a temporary view (rolled back), the target's columns and
// types from ClickHouse's system.columns, and every value is written from its Postgres text by
// the target column's type (clickhouse/column_type.h). A target column the SELECT leaves out
// gets its default; an output column named `m` whose target has `m.key` and `m.value` arrays
// (the Nested stand-in for Map on servers without it) fills both from one JSON object. Text and
// JSON values into String columns may be huge: they are read in pieces, never whole.
// The key must be unique: two rows with one key fail the copy naming the key (a keyset would
// otherwise skip the second).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "clickhouse/clickhouse_client.h"
#include "core/migration.h"
#include "migrations/migration_file.h"
#include "migrations/table_copy.h"
#include "postgres/pg_connection.h"

namespace bgm {

// The file's plan against the databases as they are now, with every problem found (the plan
// is only usable when there is none). `ch` null: only the Postgres side is checked.
struct FileCopyMatch {
  CopyPlan plan;
  // "[postgres_to_clickhouse] column x is ...", at the line of the field concerned.
  std::vector<FileProblem> problems;
};
FileCopyMatch MatchFileCopy(const MigrationFile& file, PgConnection& pg, ClickHouseClient* ch);

// The args the kind accepts for `file`: the copy's own (batchSize, maxBatchBytes,
// targetBatchSeconds, pauseMs, minDate, maxDate), overridden by what the file declares.
std::vector<ArgSpec> FileCopyArgs(const MigrationFile& file);

std::unique_ptr<BackgroundMigration> NewFileCopy(const MigrationFile& file);

}  // namespace bgm
