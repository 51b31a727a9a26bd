// PgRowStream: reads a query's rows one at a time as they arrive (libpq single-row mode), so
// client memory holds one row, never the whole result. Parameterized like PgConnection::Exec.
// While a stream is open its connection runs nothing else. Not thread-safe.
//
//   PgRowStream rows(conn);
//   BGM_RETURN_IF_ERROR(rows.Start("SELECT id FROM traces WHERE id > $1", {last}));
//   while (true) {
//     Result<bool> more = rows.Next();
//     if (!more.ok()) return more.status();
//     if (!*more) break;
//     use(rows.Get(0));
//   }
#pragma once

#include <string_view>
#include <vector>

#include "postgres/pg_connection.h"

namespace bgm {

class PgRowStream {
 public:
  explicit PgRowStream(PgConnection& conn) : conn_(conn) {}
  ~PgRowStream();  // drains (cancels) an unfinished query so the connection can be reused
  PgRowStream(const PgRowStream&) = delete;
  PgRowStream& operator=(const PgRowStream&) = delete;

  // Sends the query. `binary`: ask for binary results (raw bytes for bytea).
  Status Start(std::string_view sql, const std::vector<PgParam>& params, bool binary = false);
  // Advances to the next row: true with a row, false after the last one, or the query's error.
  Result<bool> Next();

  int columns() const { return PQnfields(row_.get()); }
  bool IsNull(int col) const { return PQgetisnull(row_.get(), 0, col) == 1; }
  std::string_view Get(int col) const {
    return {PQgetvalue(row_.get(), 0, col), static_cast<size_t>(PQgetlength(row_.get(), 0, col))};
  }

 private:
  PgConnection& conn_;
  PgResultPtr row_;
  bool active_ = false;
};

}  // namespace bgm
