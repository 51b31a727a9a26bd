#include "migrations/file_check.h"

#include <sstream>

#include "clickhouse/client_factory.h"
#include "clickhouse/column_type.h"
#include "migrations/clickhouse_partitions.h"
#include "migrations/postgres_batches.h"
#include "postgres/pg_connection.h"

namespace bgm {
namespace {

// Parses and plans `sql` on the server without running it. The error keeps the server's first
// line (the LINE/caret lines that follow quote our PREPARE, not the file).
Status Prepares(PgConnection& conn, const std::string& sql) {
  Status s = conn.Run("PREPARE bgm_check AS " + sql);
  if (s.ok()) {
    (void)conn.Run("DEALLOCATE bgm_check");
    return s;
  }
  return Status(s.code(), s.message().substr(0, s.message().find('\n')));
}

using Columns = std::vector<std::pair<std::string, std::string>>;  // name, type

// The output columns of `select` (name, Postgres type) from a temporary view in a transaction
// that is rolled back: nothing is kept.
Result<Columns> SelectColumns(PgConnection& conn, const std::string& select) {
  BGM_RETURN_IF_ERROR(conn.Run("BEGIN"));
  Status s = conn.Run("CREATE TEMP VIEW bgm_check_select AS " + select);
  Result<PgResult> r =
      s.ok() ? conn.Exec(
                   "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                   "WHERE attrelid = 'bgm_check_select'::regclass AND attnum > 0 "
                   "ORDER BY attnum")
             : Result<PgResult>(s);
  (void)conn.Run("ROLLBACK");
  if (!r.ok())
    return Status(r.status().code(),
                  r.status().message().substr(0, r.status().message().find('\n')));
  Columns out;
  for (int i = 0; i < r->rows(); ++i) out.emplace_back(r->Get(i, 0), r->Get(i, 1));
  return out;
}

// Why a Postgres value of `pg` cannot be written as `ch`, or "" when it can.
std::string Incompatible(const std::string& pg, const ColumnType& ch) {
  const ColumnType* t = &ch;
  while (t->kind == ColumnType::Kind::kNullable || t->kind == ColumnType::Kind::kLowCardinality) {
    t = &t->args[0];
  }
  const bool array = pg.ends_with("[]");
  const bool json = pg == "json" || pg == "jsonb";
  const bool integer = pg == "smallint" || pg == "integer" || pg == "bigint";
  const bool number =
      integer || pg.starts_with("numeric") || pg == "real" || pg == "double precision";
  const bool time = pg.starts_with("timestamp") || pg == "date";
  const bool text = pg == "text" || pg.starts_with("character") || pg == "name";
  using K = ColumnType::Kind;
  switch (t->kind) {
    case K::kString:
    case K::kFixedString:
      return "";
    case K::kInt:  // a boolean writes 1 or 0, as ClickHouse stores flags in UInt8
      return number || pg == "boolean" ? ""
                                       : "a number needs a numeric source; cast it in the SELECT";
    case K::kFloat:
    case K::kDecimal:
      return number ? "" : "a number needs a numeric source; cast it in the SELECT";
    case K::kBool:
      return pg == "boolean" || integer ? "" : "Bool needs a boolean or an integer source";
    case K::kUuid:
      return pg == "uuid" || text ? "" : "UUID needs a uuid or text source";
    case K::kDate:
    case K::kDate32:
    case K::kDateTime:
    case K::kDateTime64:
      return time || text ? "" : "a date or time needs a timestamp, date or text source";
    case K::kEnum:
      return text ? "" : "an Enum needs a text source";
    case K::kArray:
      return array || json ? "" : "an Array needs a Postgres array or a JSON array source";
    case K::kMap:
      return json ? "" : "a Map needs a json or jsonb object source";
    case K::kNullable:
    case K::kLowCardinality:
      break;
  }
  return "";
}

// The target's columns and types as ClickHouse reports them.
Result<Columns> TargetColumns(ClickHouseClient& ch, const std::string& table) {
  Result<std::string> tsv = ch.Query(
      "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '" +
      table + "' FORMAT TabSeparated");
  if (!tsv.ok()) return tsv.status();
  Columns out;
  std::istringstream lines(*tsv);
  for (std::string line; std::getline(lines, line);) {
    const size_t tab = line.find('\t');
    if (tab != std::string::npos) out.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  }
  return out;
}

// A copy's SELECT against its target: every output column names a target column of a type it
// can be written as, and the key columns are among them.
void CheckCopy(PgConnection& conn, ClickHouseClient* ch, const MigrationFile& f,
               FileCheckReport& report) {
  const std::string where = "[postgres_to_clickhouse] ";
  Result<Columns> select = SelectColumns(conn, f.select);
  if (!select.ok()) {
    report.problems.push_back(
        {f.path, 0, where + "select does not prepare: " + select.status().message()});
    return;
  }
  for (const std::string& k : f.key) {
    bool found = false;
    for (const auto& [name, type] : *select) found = found || name == k;
    if (!found)
      report.problems.push_back(
          {f.path, 0, where + "key column " + k + " is not an output column of select"});
  }
  if (ch == nullptr) return;
  Result<Columns> target = TargetColumns(*ch, f.target);
  if (!target.ok()) {
    report.problems.push_back(
        {f.path, 0, where + "reading the target's columns failed: " + target.status().message()});
    return;
  }
  if (target->empty()) {
    report.problems.push_back(
        {f.path, 0,
         where + "target table " + f.target + " does not exist in ClickHouse (CLICKHOUSE_DB)"});
    return;
  }
  for (const auto& [name, pg_type] : *select) {
    const std::string* ch_type = nullptr;
    for (const auto& [tname, ttype] : *target) {
      if (tname == name) ch_type = &ttype;
    }
    if (ch_type == nullptr) {
      report.problems.push_back(
          {f.path, 0,
           where + "select column " + name + " has no column of that name in " + f.target});
      continue;
    }
    Result<ColumnType> parsed = ParseColumnType(*ch_type);
    if (!parsed.ok()) {
      report.problems.push_back(
          {f.path, 0, where + "column " + name + ": " + parsed.status().message()});
      continue;
    }
    if (const std::string why = Incompatible(pg_type, *parsed); !why.empty()) {
      report.problems.push_back({f.path, 0,
                                 where + "column " + name + " is " + pg_type + " in Postgres and " +
                                     *ch_type + " in ClickHouse: " + why});
    }
  }
}

// A partition file's table exists in ClickHouse and its statements parse (EXPLAIN AST, on
// servers that have it: 20.6 on; 18.16 has not, and a note says so).
void CheckPartitions(ClickHouseClient& ch, const MigrationFile& f, FileCheckReport& report) {
  const std::string where = "[clickhouse] ";
  if (Status s = CheckClickHousePartitionTable(ch, f); !s.ok()) {
    report.problems.push_back({f.path, 0, s.message()});
    return;
  }
  Result<std::string> explain = ch.Query("EXPLAIN AST SELECT 1");
  if (!explain.ok()) {
    report.notes.push_back(f.path +
                           ": before and statement not parsed: this ClickHouse has no EXPLAIN "
                           "(added in 20.6); the server parses them when the migration runs");
    return;
  }
  std::vector<std::pair<std::string, std::string>> statements;
  if (f.before) statements.emplace_back("before", *f.before);
  statements.emplace_back("statement", f.statement);
  for (const auto& [key, sql] : statements) {
    Result<std::string> r = ch.Query("EXPLAIN AST " + ClickHousePartitionStatement(sql, "all"));
    if (!r.ok()) {
      report.problems.push_back(
          {f.path, 0, where + key + " does not parse: " + r.status().message()});
    }
  }
}

}  // namespace

FileCheckReport CheckFilesAgainstDatabases(const std::vector<MigrationFile>& files,
                                           const std::string& database_url,
                                           const ClickHouseClientOptions& clickhouse) {
  FileCheckReport report;
  if (database_url.empty()) {
    report.notes.push_back("not checked against Postgres: DATABASE_URL is not set");
    return report;
  }
  Result<PgConnection> conn = PgConnection::Connect(database_url);
  if (!conn.ok()) {
    report.notes.push_back("not checked against Postgres: " + conn.status().message());
    return report;
  }
  std::unique_ptr<ClickHouseClient> ch;
  bool copies = false, partitions = false;
  for (const MigrationFile& f : files) {
    copies = copies || f.kind == MigrationKind::kPostgresToClickHouse;
    partitions = partitions || f.kind == MigrationKind::kClickHouse;
  }
  const std::string what = copies && partitions ? "copies and clickhouse files"
                           : copies             ? "copies"
                                                : "clickhouse files";
  if ((copies || partitions) && clickhouse.url.empty()) {
    report.notes.push_back(what + " not checked against ClickHouse: CLICKHOUSE_URL is not set");
  } else if (copies || partitions) {
    Result<std::unique_ptr<ClickHouseClient>> c = OpenClickHouseClient(clickhouse);
    if (c.ok()) {
      ch = std::move(*c);
    } else {
      report.notes.push_back(what + " not checked against ClickHouse: " + c.status().message());
    }
  }
  for (const MigrationFile& f : files) {
    if (f.kind == MigrationKind::kPostgres) {
      if (Status s = CheckPostgresBatchTable(*conn, f); !s.ok()) {
        report.problems.push_back({f.path, 0, s.message()});
        continue;
      }
      if (Status s = Prepares(*conn, PostgresBatchStatement(f, true)); !s.ok()) {
        report.problems.push_back(
            {f.path, 0, "[postgres] statement does not prepare: " + s.message()});
      }
    } else if (f.kind == MigrationKind::kPostgresToClickHouse) {
      CheckCopy(*conn, ch.get(), f, report);
    } else if (f.kind == MigrationKind::kClickHouse && ch != nullptr) {
      CheckPartitions(*ch, f, report);
    }
  }
  return report;
}

}  // namespace bgm
