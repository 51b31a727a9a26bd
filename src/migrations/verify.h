// Verification of a copy: compares the Postgres source with the ClickHouse target month by
// month (the target's partitions): row counts (target read with FINAL, so replayed batches
// count once) and an order-independent hash of the ids (sum of 64-bit FNV-1a), so a missing,
// extra or substituted row shows up as a difference in its month. Ids may hold any byte (both
// sides are read length-prefixed, never split on newlines). Memory holds one month of the
// target's ids at a time. Not thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "clickhouse/clickhouse_client.h"
#include "migrations/table_copy.h"
#include "postgres/pg_connection.h"

namespace bgm {

struct MonthComparison {
  std::string month;  // "2024-05"
  int64_t source_rows = 0;
  int64_t target_rows = 0;
  uint64_t source_hash = 0;
  uint64_t target_hash = 0;
  bool match() const { return source_rows == target_rows && source_hash == target_hash; }
};

struct VerifyReport {
  std::string table;
  std::vector<MonthComparison> months;  // sorted; months present on either side
  int64_t source_rows = 0;
  int64_t target_rows = 0;
  bool match() const;
  nlohmann::json ToJson() const;
  std::string ToText() const;  // one line per differing month, then a summary line
};

Result<VerifyReport> VerifyCopy(const TableMapping& mapping, PgConnection& pg,
                                ClickHouseClient& ch);

// The mapping of a copy migration by its name; nullptr for other migrations.
const TableMapping* CopyMappingByName(const std::string& name);

uint64_t IdHash(std::string_view id);

}  // namespace bgm
