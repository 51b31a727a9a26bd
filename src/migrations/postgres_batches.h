// The `postgres` kind of migration file: one statement run in keyset batches over one table's
// unique ordered key. Each batch takes the next batchSize keys after the cursor, runs the
// file's statement with {batch} replaced by the bound key range
//   ((k1, k2) > ($1, $2) AND (k1, k2) <= ($3, $4))
// in its own transaction under statementTimeoutMs, and checkpoints the range's upper end.
// Bounds travel as parameters in the key columns' own text form, never spliced into SQL.
// A batch may run twice (kill -9 between its commit and its checkpoint): write statements
// whose replay is harmless (SET to computed values, INSERT ... ON CONFLICT DO NOTHING, ...).
//
// Args: the kind's own batchSize (1-1000000, default 1000), pauseMs (0-60000, default 0) and
// statementTimeoutMs (100-3600000, default 60000), unless the file declares them itself, plus
// the file's other args.
#pragma once

#include <memory>

#include "core/migration.h"
#include "migrations/migration_file.h"
#include "postgres/pg_connection.h"

namespace bgm {

// The args the kind accepts for `file`: its own, overridden by what the file declares.
std::vector<ArgSpec> PostgresBatchArgs(const MigrationFile& file);

std::unique_ptr<BackgroundMigration> NewPostgresBatches(const MigrationFile& file);

// OK when `file`'s table exists, its key columns exist and are NOT NULL, and a unique index
// (no expressions, not partial) lies within them, so the key orders every row exactly once.
// kInvalidArgument saying what to fix otherwise ("[postgres] table t does not exist ...").
Status CheckPostgresBatchTable(PgConnection& conn, const MigrationFile& file);

// The file's statement with {batch} replaced by the key range over parameters: ($1..$n] keys
// of the upper end, preceded by the lower end's when `with_lower`.
std::string PostgresBatchStatement(const MigrationFile& file, bool with_lower);

}  // namespace bgm
