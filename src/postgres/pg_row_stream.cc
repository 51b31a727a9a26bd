#include "postgres/pg_row_stream.h"

namespace bgm {

PgRowStream::~PgRowStream() {
  if (!active_) return;
  if (PGcancel* cancel = PQgetCancel(conn_.get())) {
    char err[256];
    PQcancel(cancel, err, sizeof err);
    PQfreeCancel(cancel);
  }
  while (PGresult* r = PQgetResult(conn_.get())) PQclear(r);
}

Status PgRowStream::Start(std::string_view sql, const std::vector<PgParam>& params, bool binary) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const PgParam& p : params) values.push_back(p.value() ? p.value()->c_str() : nullptr);
  const std::string query(sql);
  if (PQsendQueryParams(conn_.get(), query.c_str(), static_cast<int>(values.size()), nullptr,
                        values.data(), nullptr, nullptr, binary ? 1 : 0) != 1) {
    return Unavailable(std::string("sending a query to Postgres failed: ") +
                       PQerrorMessage(conn_.get()));
  }
  PQsetSingleRowMode(conn_.get());
  active_ = true;
  return Status::Ok();
}

Result<bool> PgRowStream::Next() {
  if (!active_) return false;
  row_.reset(PQgetResult(conn_.get()));
  if (row_ == nullptr) {
    active_ = false;
    return false;
  }
  const ExecStatusType st = PQresultStatus(row_.get());
  if (st == PGRES_SINGLE_TUPLE) return true;
  if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
    // End of rows: collect the terminating NULL.
    while (PGresult* r = PQgetResult(conn_.get())) PQclear(r);
    active_ = false;
    row_.reset();
    return false;
  }
  Status error = conn_.ErrorFrom(row_.get(), "streaming query");
  while (PGresult* r = PQgetResult(conn_.get())) PQclear(r);
  active_ = false;
  row_.reset();
  return error;
}

}  // namespace bgm
