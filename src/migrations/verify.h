// Verification of a copy (a built-in mapping or a `postgres_to_clickhouse` file, both as the
// CopyPlan the engine runs): the Postgres source against the ClickHouse target, inside the
// migration's minDate/maxDate window on the key's first column.
//  - Counts and an order-independent hash of the keys (sum of 64-bit FNV-1a) month by month of
//    the key's first column when it is a date or time (else one bucket "all"); the target read
//    with FINAL when its engine collapses rows (ReplacingMergeTree and the like). The hash
//    covers the key columns whose target type is String, UUID or an integer.
//  - Content: a sample of rows (or all of them) re-read through the plan, encoded as the copy
//    would write them now into a scratch table (ENGINE = Memory, dropped afterwards) and
//    compared there by ClickHouse with the target, row by row and column by column.
// Memory holds one month of target keys, or up to 2,000 rows / 32 MiB of encoded rows (and the
// sampled keys), at a time; a huge value is held whole while its row is compared.
// Not thread-safe; sets the Postgres session's DateStyle and TimeZone (ISO, UTC).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "clickhouse/clickhouse_client.h"
#include "migrations/table_copy.h"
#include "postgres/pg_connection.h"

namespace bgm {

struct MonthComparison {
  std::string month;  // "2024-05", or "all" when the key's first column is not a date
  int64_t source_rows = 0;
  int64_t target_rows = 0;
  uint64_t source_hash = 0;
  uint64_t target_hash = 0;
  bool match() const { return source_rows == target_rows && source_hash == target_hash; }
};

// The first row whose content differs: its key as the target prints it, and either the first
// differing column with both values as ClickHouse literals ('text', 12, NULL, [...]) or
// `missing` (no row with that key in the target).
struct RowDifference {
  std::vector<std::pair<std::string, std::string>> key;  // (name, value)
  bool missing = false;
  std::string column;
  std::string source_value;  // the row as the copy writes it now
  std::string target_value;
};

struct ContentComparison {
  bool full = false;  // every row in the window, or a sample
  int64_t rows = 0;   // source rows compared
  // Of which differ or are missing; a key the target holds twice (a MergeTree without FINAL)
  // counts once per differing copy.
  int64_t differing = 0;
  int64_t missing = 0;  // of which have no row in the target
  std::optional<RowDifference> first;
};

struct VerifyReport {
  std::string table;                    // the plan's source: "traces", a file's name
  std::vector<MonthComparison> months;  // sorted; months present on either side
  int64_t source_rows = 0;
  int64_t target_rows = 0;
  bool final_read = true;  // the target was read with FINAL
  ContentComparison content;
  bool match() const;
  nlohmann::json ToJson() const;
  std::string ToText() const;  // one line per differing month, the first differing row, summary
};

struct VerifyOptions {
  int64_t sample = 2000;  // rows compared by content, spread at random over the window
  bool full = false;      // compare every row instead
  nlohmann::json args = nlohmann::json::object();  // the migration's args: minDate, maxDate
};

// kInvalidArgument for bad args or a target that does not exist; database errors as they come.
Result<VerifyReport> VerifyPlan(const CopyPlan& plan, PgConnection& pg, ClickHouseClient& ch,
                                const VerifyOptions& options);

// The args stored for migration `name` in the control table; {} when it is not registered.
Result<nlohmann::json> StoredArgs(PgConnection& pg, const std::string& name);

uint64_t IdHash(std::string_view id);
// The hash of a key of several columns; IdHash(values[0]) for one column.
uint64_t KeyHash(const std::vector<std::string_view>& values);

}  // namespace bgm
