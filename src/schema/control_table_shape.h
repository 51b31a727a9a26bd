// The shape bgmigrate needs its control tables to have (background_migrations,
// background_migration_events, bgmigrate_migration_files, bgmigrate_schema_versions), and the
// read-only check that a table of one of those names already in the database has it: a
// database may hold another tool's table of the same name (Langfuse has its own
// background_migrations), which `CREATE TABLE IF NOT EXISTS` would silently adopt.
// The shape is written here as well as in sql/postgres/*.sql: a column added by a new file
// belongs in kControlTables too (ControlTableShapeTest checks that a fresh database passes).
// Stateless; uses the connection it is given.
#pragma once

#include <set>

#include "common/status.h"
#include "postgres/pg_connection.h"

namespace bgm {

// OK when each control table either does not exist in the schema new tables are created in
// (current_schema()) or has every column bgmigrate reads or writes, of its type, nullability
// and (where bgmigrate leaves a value to the server) with a default, the unique key its
// upserts name, and no NOT NULL column without a default that bgmigrate would not fill.
// A column added by a control-table file not yet in `applied_versions` may be missing (that
// file adds it). kFailedPrecondition naming each table, everything that differs and what to do;
// nothing is written.
Status CheckControlTables(PgConnection& conn, const std::set<int>& applied_versions);

}  // namespace bgm
