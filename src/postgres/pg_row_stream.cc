#include "postgres/pg_row_stream.h"

namespace bgm {

PgRowStream::~PgRowStream() {
  if (!active_) return;
  (void)conn_.CancelStatement();
  while (true) {
    Result<PgResultPtr> r = conn_.NextResult("streaming query");
    if (!r.ok() || *r == nullptr) break;
  }
}

Status PgRowStream::Start(std::string_view sql, const std::vector<PgParam>& params, bool binary) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const PgParam& p : params) values.push_back(p.value() ? p.value()->c_str() : nullptr);
  const std::string query(sql);
  if (PQsendQueryParams(conn_.get(), query.c_str(), static_cast<int>(values.size()), nullptr,
                        values.data(), nullptr, nullptr, binary ? 1 : 0) != 1) {
    return conn_.ErrorFrom(nullptr, "streaming query");
  }
  PQsetSingleRowMode(conn_.get());
  active_ = true;
  return Status::Ok();
}

Result<bool> PgRowStream::Next() {
  if (!active_) return false;
  Result<PgResultPtr> next = conn_.NextResult("streaming query");
  if (!next.ok()) {
    active_ = false;
    row_.reset();
    return next.status();
  }
  row_ = std::move(*next);
  if (row_ == nullptr) {
    active_ = false;
    return false;
  }
  const ExecStatusType st = PQresultStatus(row_.get());
  if (st == PGRES_SINGLE_TUPLE) return true;
  if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
    // End of rows: collect the terminating NULL.
    while (true) {
      Result<PgResultPtr> r = conn_.NextResult("streaming query");
      if (!r.ok() || *r == nullptr) break;
    }
    active_ = false;
    row_.reset();
    return false;
  }
  Status error = conn_.ErrorFrom(row_.get(), "streaming query");
  while (true) {
    Result<PgResultPtr> r = conn_.NextResult("streaming query");
    if (!r.ok() || *r == nullptr) break;
  }
  active_ = false;
  row_.reset();
  return error;
}

}  // namespace bgm
