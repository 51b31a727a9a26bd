// The `clickhouse` kind of migration file: a statement run inside ClickHouse once per partition
// of the file's table. The partitions (distinct partition_id of the table's active parts in
// CLICKHOUSE_DB) are listed at the start of a run, sorted; each one not done yet runs the
// optional `before` statement, then `statement`, with {partition} replaced by the partition id
// as a quoted string literal ('202401'), and is checkpointed (cursor: the last done id). An
// ALTER statement's mutations are waited for until done. A failed partition is tried again with
// lighter settings up to `attempts`; on a server each try runs under its own query_id
// (bgm:<database>:<name>:<partition>:<try>), so a worker that restarts waits for a try still
// running instead of sending it again. One Run on one thread; nothing shared.
//
// Args: the kind's own attempts (1-10, default 3) and pauseMs (0-60000, default 0), unless the
// file declares them itself, plus the file's other args.
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
