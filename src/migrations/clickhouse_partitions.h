// The `clickhouse` kind of migration file: a statement run inside ClickHouse once per partition
// of the file's table. Each partition (distinct partition_id of the table's active parts in
// CLICKHOUSE_DB) is a chunk (core/chunk_store.h, bounds = the id): the lease holder adds the
// partitions it has no chunk for yet at the start of each run, then claims them one at a time
// (helpers too, up to maxWorkers processes). For each it runs the optional `before` statement,
// then `statement`, with {partition} replaced by the partition id as a quoted string literal
// ('202401'), and saves the partition as done. An ALTER statement's mutations are waited for
// until done. A failed partition is tried again with lighter settings up to `attempts`, then
// failed alone while the others go on; the migration fails at the end naming each failed one
// (`retry` runs only those). A wrong statement fails the migration at once. On a server each
// try runs under its own query_id (bgm:<database>:<name>:<partition>:<try>), so a worker that
// takes over a partition waits for a try still running instead of sending it again.
//
// Args: the kind's own attempts (1-10, default 3), pauseMs (0-60000, default 0) and maxWorkers
// (1-256, default 1), unless the file declares them itself, plus the file's other args.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "clickhouse/clickhouse_client.h"
#include "core/migration.h"
#include "migrations/migration_file.h"

namespace bgm {

// The args the kind accepts for `file`: its own, overridden by what the file declares.
std::vector<ArgSpec> ClickHousePartitionArgs(const MigrationFile& file);

std::unique_ptr<BackgroundMigration> NewClickHousePartitions(const MigrationFile& file);

// `text` as a ClickHouse string literal: 'a\'b' (quotes and backslashes escaped).
std::string ClickHouseStringLiteral(std::string_view text);

// `sql` with its {partition} replaced by ClickHouseStringLiteral(partition_id).
std::string ClickHousePartitionStatement(const std::string& sql, const std::string& partition_id);

// "bgm:<database>:<migration>:<partition>:" — the start of every query_id a partition's tries
// run under (characters other than letters, digits, '_', '.' and '-' become '_'). The database
// keeps apart the same migration run against two databases of one server.
std::string ClickHousePartitionQueryIdPrefix(const std::string& database,
                                             const std::string& migration,
                                             const std::string& partition_id);

// OK when `file`'s table exists in the client's database; kInvalidArgument saying what to fix
// otherwise ("[clickhouse] table t does not exist ...").
Status CheckClickHousePartitionTable(ClickHouseClient& ch, const MigrationFile& file);

}  // namespace bgm
