#include "schema/control_table_shape.h"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace bgm {
namespace {

struct ColumnShape {
  std::string_view name;
  std::string_view type;  // as format_type() prints it
  bool not_null;
  bool needs_default;  // bgmigrate inserts rows without this column
  int added_by = 0;    // version of the file that adds it with ALTER TABLE; 0: CREATE TABLE
};

struct TableShape {
  std::string_view name;
  std::vector<ColumnShape> columns;
  std::vector<std::string_view> unique_key;  // ON CONFLICT (...) in bgmigrate's upserts
};

constexpr std::string_view kText = "text";
constexpr std::string_view kJsonb = "jsonb";
constexpr std::string_view kTimestamptz = "timestamp with time zone";
constexpr std::string_view kInteger = "integer";
constexpr std::string_view kBigint = "bigint";

const std::vector<TableShape>& ControlTables() {
  static const std::vector<TableShape> kTables = {
      {"background_migrations",
       {{"id", kText, true, true},
        {"name", kText, true, false},
        {"script", kText, true, false},
        {"args", kJsonb, true, true},
        {"state", kJsonb, true, true},
        {"finished_at", kTimestamptz, false, false},
        {"failed_at", kTimestamptz, false, false},
        {"failed_reason", kText, false, false},
        {"worker_id", kText, false, false},
        {"locked_at", kTimestamptz, false, false},
        {"created_at", kTimestamptz, true, true},
        {"started_at", kTimestamptz, false, false},
        {"paused_at", kTimestamptz, false, false},
        {"attempts", kInteger, true, true},
        {"rows_processed", kBigint, true, true},
        {"rows_total_estimate", kBigint, false, false},
        {"last_progress_at", kTimestamptz, false, false},
        {"waiting_reason", kText, false, false, 3},
        {"waiting_since", kTimestamptz, false, false, 3},
        {"next_attempt_at", kTimestamptz, false, false, 3},
        {"skipped_reason", kText, false, false, 6},
        {"cancelled_at", kTimestamptz, false, false, 6},
        {"throttle", kJsonb, false, false, 7},
        {"throttled_since", kTimestamptz, false, false, 7}},
       {"name"}},
      {"background_migration_events",
       {{"id", kBigint, true, true},
        {"migration_name", kText, true, false},
        {"at", kTimestamptz, true, true},
        {"kind", kText, true, false},
        {"worker_id", kText, false, false},
        {"detail", kJsonb, true, true}},
       {}},
      {"background_migration_chunks",
       {{"migration_name", kText, true, false},
        {"chunk", kInteger, true, false},
        {"lower_bound", kJsonb, false, false},
        {"upper_bound", kJsonb, false, false},
        {"status", kText, true, true},
        {"worker_id", kText, false, false},
        {"locked_at", kTimestamptz, false, false},
        {"attempts", kInteger, true, true},
        {"rows_processed", kBigint, true, true},
        {"cursor", kJsonb, false, false},
        {"last_error", kText, false, false},
        {"next_attempt_at", kTimestamptz, false, false},
        {"finished_at", kTimestamptz, false, false}},
       {"migration_name", "chunk"}},
      {"bgmigrate_migration_files",
       {{"name", kText, true, false},
        {"checksum", kText, true, false},
        {"path", kText, true, false},
        {"adopted_at", kTimestamptz, true, true}},
       {"name"}},
      {"bgmigrate_schema_versions",
       {{"store", kText, true, false},
        {"version", kInteger, true, false},
        {"name", kText, true, false},
        {"checksum", kText, true, false},
        {"applied_at", kTimestamptz, true, true}},
       {"store", "version"}},
  };
  return kTables;
}

struct ActualColumn {
  std::string type;
  bool not_null = false;
  bool has_default = false;
};

// What differs between `shape` and the table of that name in current_schema(), one phrase per
// difference; nullopt when there is no such table.
Result<std::optional<std::vector<std::string>>> Differences(PgConnection& conn,
                                                            const TableShape& shape,
                                                            const std::set<int>& applied) {
  Result<PgResult> rel = conn.Exec(
      "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE n.nspname = current_schema() AND c.relname = $1",
      {shape.name});
  if (!rel.ok()) return rel.status();
  if (rel->rows() == 0) return std::optional<std::vector<std::string>>();
  std::vector<std::string> out;
  const std::string_view kind = rel->Get(0, 0);
  if (kind != "r" && kind != "p") {
    out.push_back("it is not a table (pg_class.relkind " + std::string(kind) + ")");
    return std::optional(out);
  }
  Result<PgResult> cols = conn.Exec(R"sql(
      SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
             a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
      FROM pg_attribute a
      WHERE a.attrelid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident($1))
        AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum)sql",
                                    {shape.name});
  if (!cols.ok()) return cols.status();
  std::map<std::string, ActualColumn, std::less<>> actual;
  std::vector<std::string> order;
  for (int i = 0; i < cols->rows(); ++i) {
    order.emplace_back(cols->Get(i, 0));
    actual[order.back()] = {std::string(cols->Get(i, 1)), cols->GetBool(i, 2), cols->GetBool(i, 3)};
  }
  std::set<std::string_view> known;
  std::string missing;
  for (const ColumnShape& want : shape.columns) {
    known.insert(want.name);
    const std::string col = "column " + std::string(want.name);
    auto it = actual.find(want.name);
    if (it == actual.end()) {
      if (want.added_by == 0 || applied.contains(want.added_by)) {
        missing += (missing.empty() ? "" : ", ") + std::string(want.name);
      }
      continue;
    }
    const ActualColumn& got = it->second;
    if (got.type != want.type) {
      out.push_back(col + " is " + got.type + " where bgmigrate needs " + std::string(want.type));
    }
    if (got.not_null != want.not_null) {
      out.push_back(col + (want.not_null ? " allows NULL, bgmigrate's is NOT NULL"
                                         : " is NOT NULL, bgmigrate writes NULL into it"));
    }
    if (want.needs_default && !got.has_default) {
      out.push_back(col + " has no default (bgmigrate inserts rows without it)");
    }
  }
  for (const std::string& name : order) {
    const ActualColumn& got = actual[name];
    if (!known.contains(name) && got.not_null && !got.has_default) {
      out.push_back("column " + name +
                    " is NOT NULL without a default (bgmigrate's inserts do not fill it)");
    }
  }
  if (!missing.empty()) out.push_back("columns missing: " + missing);
  if (!shape.unique_key.empty()) {
    std::string key = "{";
    std::string shown;
    for (std::string_view k : shape.unique_key) {
      if (key.size() > 1) {
        key += ',';
        shown += ", ";
      }
      key += k;
      shown += k;
    }
    key += '}';
    Result<PgResult> unique = conn.Exec(R"sql(
        SELECT count(*) FROM pg_index i
        WHERE i.indrelid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident($1))
          AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
          AND (SELECT array_agg(a.attname::text ORDER BY k.n)
               FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
              = $2::text[])sql",
                                        {shape.name, key});
    if (!unique.ok()) return unique.status();
    if (unique->GetInt(0, 0) == 0) {
      out.push_back("no unique key on (" + shown + ")");
    }
  }
  return std::optional(out);
}

}  // namespace

Status CheckControlTables(PgConnection& conn, const std::set<int>& applied_versions) {
  std::string problems;
  std::string schema;
  for (const TableShape& shape : ControlTables()) {
    Result<std::optional<std::vector<std::string>>> diff =
        Differences(conn, shape, applied_versions);
    if (!diff.ok()) {
      return diff.status().WithContext("checking the shape of table " + std::string(shape.name));
    }
    if (!diff->has_value() || (*diff)->empty()) continue;
    if (!problems.empty()) problems += ". ";
    problems += "table " + std::string(shape.name) + " exists but differs from bgmigrate's: ";
    for (size_t i = 0; i < (*diff)->size(); ++i) {
      if (i > 0) problems += "; ";
      problems += (**diff)[i];
    }
  }
  if (problems.empty()) return Status::Ok();
  Result<PgResult> current = conn.Exec("SELECT current_schema()");
  if (current.ok() && current->rows() == 1) schema = std::string(current->Get(0, 0));
  return FailedPrecondition(
      problems + ". Nothing was changed. It is probably another tool's table of the same name (" +
      "Langfuse has its own background_migrations), in schema " + schema +
      ". Give bgmigrate a schema of its own: set BGMIGRATE_CONTROL_SCHEMA=bgmigrate (created " +
      "when missing; the application's tables stay visible after it in the search path; " +
      "for Langfuse see docs/langfuse.md), or rename that table if nothing uses it");
}

}  // namespace bgm
