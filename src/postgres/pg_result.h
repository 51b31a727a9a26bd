// PgResult: a move-only owner of one libpq PGresult, with typed accessors. Thread-compatible.
//
//   Result<PgResult> r = conn.Exec("SELECT name FROM t WHERE id = $1", {id});
//   for (int i = 0; i < r->rows(); ++i) use(r->Get(i, 0));
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace bgm {

struct PgResultDeleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

class PgResult {
 public:
  explicit PgResult(PgResultPtr res) : res_(std::move(res)) {}

  int rows() const { return PQntuples(res_.get()); }
  int columns() const { return PQnfields(res_.get()); }
  // Rows changed by an INSERT/UPDATE/DELETE (0 when not applicable).
  int64_t affected() const;

  bool IsNull(int row, int col) const { return PQgetisnull(res_.get(), row, col) == 1; }
  // The text value; empty for NULL.
  std::string_view Get(int row, int col) const {
    return {PQgetvalue(res_.get(), row, col),
            static_cast<size_t>(PQgetlength(res_.get(), row, col))};
  }
  std::optional<std::string> GetOpt(int row, int col) const;
  int64_t GetInt(int row, int col) const;  // 0 for NULL
  bool GetBool(int row, int col) const { return Get(row, col) == "t"; }
  // Column index by name, -1 when absent.
  int ColumnIndex(const char* name) const { return PQfnumber(res_.get(), name); }

  PGresult* get() const { return res_.get(); }

 private:
  PgResultPtr res_;
};

}  // namespace bgm
