// The engine of the Postgres -> ClickHouse copies (built-in mappings and `postgres_to_clickhouse`
// files alike). A reader thread streams the source rows in keyset order on a unique key (e.g.
// (created_at, id)) with a strict row comparison (so any number of rows sharing one timestamp
// pass), encodes each to RowBinary as it arrives into ~1 MiB
// chunks, and hands them through a bounded queue to the migration's thread, which streams them
// into one INSERT per batch. A batch ends at `batchSize` rows or `maxBatchBytes`, whichever comes
// first (a row larger than the budget goes alone). The checkpoint of a batch is written only
// after ClickHouse acknowledged it, while the reader already reads the next one.
//
// Memory is bounded whatever the row sizes: the queue holds at most ~16 MiB, and a JSON value
// larger than 64 KiB stored is not read inline: its text is fetched in 4 MiB pieces from a
// second connection that shares the reading transaction's snapshot, and streamed on.
//
// With `chunkRows` the key is split on the first run into ranges of about that many rows
// (boundaries read from the data, kept in background_migration_chunks via ChunkStore), and
// `concurrency` threads each claim a range and copy it as above from its own cursor; a range that
// keeps failing is failed alone after `chunkAttempts` tries while the others finish. Other
// worker processes help (up to `maxWorkers`). A copy that ran as one range (chunkRows 0, or an
// older bgmigrate) goes on in ranges from its cursor.
//
// Replaying a batch writes identical rows (event_ts comes from the row itself), so a batch
// re-sent after a crash changes nothing once ReplacingMergeTree has merged (or with FINAL).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "clickhouse/clickhouse_client.h"
#include "clickhouse/dialect.h"
#include "clickhouse/row_binary.h"
#include "core/args.h"
#include "core/migration.h"
#include "postgres/pg_row_stream.h"

namespace bgm {

// The current source row as the mapping sees it: its own select-list columns by index.
class SourceRow {
 public:
  SourceRow(const PgRowStream& stream, const std::vector<std::string>& select_list)
      : stream_(stream), select_list_(select_list) {}
  bool IsNull(int col) const { return stream_.IsNull(col); }
  std::string_view Get(int col) const { return stream_.Get(col); }

 private:
  const PgRowStream& stream_;
  const std::vector<std::string>& select_list_;
};

// What a mapping writes a row into.
class RowSink {
 public:
  virtual ~RowSink() = default;
  virtual RowBinaryWriter& writer() = 0;
  // Writes blob `k` (the k-th of CopyPlan::blob_list) as Nullable(String), or as String when
  // not `nullable` (NULL is then refused), reading it in pieces when it is large, compacted
  // when CopyPlan::blob_json says it is JSON.
  virtual Status WriteBlob(int k, bool nullable = true) = 0;
};

// One run of a copy, resolved once ClickHouse is connected: what to read, in which key order,
// and how each row becomes RowBinary for which INSERT.
struct CopyPlan {
  std::string source;          // names the source in messages ("traces", a file's name)
  std::string estimate_table;  // its reltuples estimate the rows; empty: EXPLAIN of the read
  std::string from;            // "traces s LEFT JOIN prompts p ON ...", "(SELECT ...) q"
  std::vector<std::string> select_list;  // expressions read by index by `encode`
  std::vector<std::string> blob_list;    // text values that may be huge: RowSink::WriteBlob(k)
  // For each blob: true when it is JSON text, written without the whitespace outside strings
  // (Postgres's jsonb output {"a": 1} as {"a":1}); empty: none is.
  std::vector<bool> blob_json;
  bool BlobIsJson(int k) const {
    return static_cast<size_t>(k) < blob_json.size() && blob_json[static_cast<size_t>(k)];
  }
  // The unique ordered key: expressions, and their names in the checkpointed cursor
  // ({"created_at": "...", "id": "..."}). minDate/maxDate bound key_list[0].
  std::vector<std::string> key_list;
  std::vector<std::string> key_names;
  std::string target_table;
  std::string insert_columns;
  std::function<Status(const SourceRow&, RowSink&)> encode;
};

// Builds a run's plan from the migration's args once ClickHouse is connected.
using CopyPlanner = std::function<Result<CopyPlan>(ClickHouseClient&, const ClickHouseDialect&,
                                                   const nlohmann::json& args)>;

// A BackgroundMigration that copies what `planner` plans, with args validated by `schema`
// (which must accept minDate and maxDate).
std::unique_ptr<BackgroundMigration> NewPlannedCopy(ArgsSchema schema, CopyPlanner planner);

}  // namespace bgm
