#include "migrations/file_check.h"

#include "clickhouse/client_factory.h"
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
  bool copies = false;
  for (const MigrationFile& f : files)
    copies = copies || f.kind == MigrationKind::kPostgresToClickHouse;
  if (copies && clickhouse.url.empty()) {
    report.notes.push_back("copies not checked against ClickHouse: CLICKHOUSE_URL is not set");
  } else if (copies) {
    Result<std::unique_ptr<ClickHouseClient>> c = OpenClickHouseClient(clickhouse);
    if (c.ok()) {
      ch = std::move(*c);
    } else {
      report.notes.push_back("copies not checked against ClickHouse: " + c.status().message());
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
    }
  }
  return report;
}

}  // namespace bgm
