#include "migrations/file_check.h"

#include "clickhouse/client_factory.h"
#include "migrations/clickhouse_partitions.h"
#include "migrations/file_copy.h"
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

// A partition file's table exists in ClickHouse and its statements parse (EXPLAIN AST, on
// servers that have it: 20.6 on; 18.16 has not, and a note says so).
void CheckPartitions(ClickHouseClient& ch, const MigrationFile& f, FileCheckReport& report) {
  const std::string where = "[clickhouse] ";
  if (Status s = CheckClickHousePartitionTable(ch, f); !s.ok()) {
    report.problems.push_back({f.path, f.LineOf("table"), s.message()});
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
          {f.path, f.LineOf(key), where + key + " does not parse: " + r.status().message()});
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
        const bool about_table = s.message().starts_with("[postgres] table ");
        report.problems.push_back({f.path, f.LineOf(about_table ? "table" : "key"), s.message()});
        continue;
      }
      if (Status s = Prepares(*conn, PostgresBatchStatement(f, true)); !s.ok()) {
        report.problems.push_back({f.path, f.LineOf("statement"),
                                   "[postgres] statement does not prepare: " + s.message()});
      }
    } else if (f.kind == MigrationKind::kPostgresToClickHouse) {
      for (FileProblem& p : MatchFileCopy(f, *conn, ch.get()).problems) {
        report.problems.push_back(std::move(p));
      }
    } else if (f.kind == MigrationKind::kClickHouse && ch != nullptr) {
      CheckPartitions(*ch, f, report);
    }
  }
  return report;
}

}  // namespace bgm
