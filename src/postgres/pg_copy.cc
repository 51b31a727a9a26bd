#include "postgres/pg_copy.h"

#include <cstdlib>

namespace bgm {

Result<PgCopyIn> PgCopyIn::Begin(PgConnection& conn, std::string_view sql) {
  const std::string query(sql);
  if (PQsendQuery(conn.get(), query.c_str()) != 1) return conn.ErrorFrom(nullptr, "COPY");
  Result<PgResultPtr> first = conn.NextResult("COPY");
  if (!first.ok()) return first.status();
  PgResultPtr res = std::move(*first);
  const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COPY_IN) {
    PgCopyIn copy(&conn);
    copy.buffer_.reserve(kChunkBytes + kChunkBytes / 4);
    return copy;
  }
  if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
    Status error = conn.ErrorFrom(res.get(), "COPY");
    res.reset();
    while (true) {
      Result<PgResultPtr> rest = conn.NextResult("COPY");
      if (!rest.ok() || *rest == nullptr) break;
    }
    return error;
  }
  // Some other statement ran, or a COPY TO / COPY BOTH started: leave the connection usable.
  if (st == PGRES_COPY_OUT) {
    char* buf = nullptr;
    while (PQgetCopyData(conn.get(), &buf, 0) > 0) PQfreemem(buf);
  }
  res.reset();
  while (true) {
    Result<PgResultPtr> rest = conn.NextResult("COPY");
    if (!rest.ok() || *rest == nullptr) break;
  }
  return InvalidArgument("PgCopyIn needs a COPY ... FROM STDIN statement, got: " + query);
}

PgCopyIn::~PgCopyIn() { Abort("copy abandoned by the client"); }

void PgCopyIn::Abort(std::string_view reason) {
  if (conn_ == nullptr) return;
  const std::string msg(reason);
  // Nonblocking: 0 means "queue full"; flush and try again (FlushOutput bounds the wait).
  int rc;
  while ((rc = PQputCopyEnd(conn_->get(), msg.c_str())) == 0) {
    if (!conn_->FlushOutput("COPY").ok()) break;
  }
  while (true) {
    Result<PgResultPtr> res = conn_->NextResult("COPY");
    if (!res.ok() || *res == nullptr) break;
  }
  conn_ = nullptr;
  buffer_.clear();
}

Status PgCopyIn::Write(std::string_view data) {
  if (conn_ == nullptr) return FailedPrecondition("COPY already finished");
  if (buffer_.size() + data.size() < kChunkBytes) {
    buffer_.append(data);
    return Status::Ok();
  }
  BGM_RETURN_IF_ERROR(Flush());
  if (data.size() >= kChunkBytes) return Send(data);
  buffer_.append(data);
  return Status::Ok();
}

Status PgCopyIn::Flush() {
  if (conn_ == nullptr) return FailedPrecondition("COPY already finished");
  if (buffer_.empty()) return Status::Ok();
  Status s = Send(buffer_);
  buffer_.clear();
  return s;
}

Status PgCopyIn::Send(std::string_view data) {
  // libpq takes an int length: send very large pieces in slices.
  while (!data.empty()) {
    const size_t n = data.size() < kChunkBytes * 64 ? data.size() : kChunkBytes * 64;
    int rc;
    while ((rc = PQputCopyData(conn_->get(), data.data(), static_cast<int>(n))) == 0) {
      // libpq's buffer is full (nonblocking connection): wait until the server takes more.
      if (Status s = conn_->FlushOutput("COPY"); !s.ok()) {
        Abort("client error");
        return s;
      }
    }
    if (rc != 1) return FailedCopy("COPY");
    data.remove_prefix(n);
  }
  return Status::Ok();
}

Status PgCopyIn::FailedCopy(std::string_view what) {
  // When the server rejected a row, libpq has left COPY mode and the reason is in the next
  // result; otherwise the connection itself failed.
  Result<PgResultPtr> next = conn_->NextResult(what);
  if (!next.ok()) {
    Abort("client error");
    return next.status();
  }
  PgResultPtr res = std::move(*next);
  Status s = (res && PQresultStatus(res.get()) == PGRES_FATAL_ERROR)
                 ? conn_->ErrorFrom(res.get(), what)
                 : conn_->ErrorFrom(nullptr, what);
  Abort("client error");
  return s;
}

Result<int64_t> PgCopyIn::Finish() {
  if (conn_ == nullptr) return FailedPrecondition("COPY already finished");
  BGM_RETURN_IF_ERROR(Flush());
  int rc;
  while ((rc = PQputCopyEnd(conn_->get(), nullptr)) == 0) {
    if (Status s = conn_->FlushOutput("COPY"); !s.ok()) {
      Abort("client error");
      return s;
    }
  }
  if (rc != 1) return FailedCopy("COPY");
  Result<PgResultPtr> next = conn_->NextResult("COPY");
  if (!next.ok()) {
    conn_ = nullptr;
    return next.status();
  }
  PgResultPtr res = std::move(*next);
  const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  Status error;
  int64_t rows = 0;
  if (st == PGRES_COMMAND_OK) {
    const char* n = PQcmdTuples(res.get());
    if (n != nullptr && *n != '\0') rows = std::strtoll(n, nullptr, 10);
  } else {
    error = conn_->ErrorFrom(res.get(), "COPY");
  }
  res.reset();
  while (true) {
    Result<PgResultPtr> rest = conn_->NextResult("COPY");
    if (!rest.ok() || *rest == nullptr) break;
  }
  conn_ = nullptr;
  if (!error.ok()) return error;
  return rows;
}

void AppendCopyText(std::string& out, std::string_view value) {
  const char* p = value.data();
  const char* const end = p + value.size();
  const char* run = p;
  for (; p != end; ++p) {
    char esc;
    switch (*p) {
      case '\\':
        esc = '\\';
        break;
      case '\t':
        esc = 't';
        break;
      case '\n':
        esc = 'n';
        break;
      case '\r':
        esc = 'r';
        break;
      default:
        continue;
    }
    out.append(run, static_cast<size_t>(p - run));
    out.push_back('\\');
    out.push_back(esc);
    run = p + 1;
  }
  out.append(run, static_cast<size_t>(end - run));
}

}  // namespace bgm
