#include "postgres/pg_connection.h"

#include <cstdio>
#include <cstring>

namespace bgm {
namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

StatusCode CodeForSqlState(std::string_view state) {
  if (state.size() != 5) return StatusCode::kUnavailable;  // no SQLSTATE: connection trouble
  const std::string_view cls = state.substr(0, 2);
  if (cls == "08" || state == "57P01" || state == "57P02" || state == "57P03") {
    return StatusCode::kUnavailable;
  }
  if (state == "40001" || state == "40P01") return StatusCode::kUnavailable;
  if (cls == "53") return StatusCode::kResourceExhausted;
  if (state == "57014") return StatusCode::kCancelled;
  if (cls == "22" || cls == "23" || cls == "42") return StatusCode::kInvalidArgument;
  return StatusCode::kInternal;
}

}  // namespace

PgParam::PgParam(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  value_ = buf;
}

Result<PgConnection> PgConnection::Connect(const std::string& conninfo) {
  if (conninfo.empty()) {
    return InvalidArgument(
        "no Postgres connection string: set DATABASE_URL, e.g. "
        "postgresql://user:password@127.0.0.1:5432/langfuse");
  }
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (opts == nullptr) {
    std::string msg = err ? Trim(err) : "unparseable";
    PQfreemem(err);
    return InvalidArgument("malformed DATABASE_URL (" + msg +
                           "); expected postgresql://user:password@host:port/dbname");
  }
  PQconninfoFree(opts);
  PgConnPtr conn(PQconnectdb(conninfo.c_str()));
  if (conn == nullptr) return Internal("libpq could not allocate a connection");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    const char* host = PQhost(conn.get());
    const char* port = PQport(conn.get());
    return Unavailable(std::string("could not connect to Postgres at ") + (host ? host : "?") +
                       ":" + (port ? port : "?") + ": " + Trim(PQerrorMessage(conn.get())) +
                       "; check DATABASE_URL and that the server is running");
  }
  // Quiet NOTICEs such as "relation already exists, skipping".
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  return PgConnection(std::move(conn));
}

Status PgConnection::ErrorFrom(const PGresult* res, std::string_view what) const {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = Trim(res ? PQresultErrorMessage(res) : PQerrorMessage(conn_.get()));
  if (msg.empty()) msg = Trim(PQerrorMessage(conn_.get()));
  StatusCode code = CodeForSqlState(state ? state : "");
  if (PQstatus(conn_.get()) != CONNECTION_OK) code = StatusCode::kUnavailable;
  std::string out = "Postgres ";
  out += what;
  out += " failed";
  if (state) {
    out += " (SQLSTATE ";
    out += state;
    out += ")";
  }
  out += ": ";
  out += msg;
  return Status(code, std::move(out));
}

Result<PgResult> PgConnection::Exec(std::string_view sql, const std::vector<PgParam>& params,
                                    bool binary_result) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const PgParam& p : params) values.push_back(p.value() ? p.value()->c_str() : nullptr);
  const std::string query(sql);
  PgResultPtr res(PQexecParams(conn_.get(), query.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, binary_result ? 1 : 0));
  const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ErrorFrom(res.get(), "query");
  return PgResult(std::move(res));
}

Status PgConnection::Run(std::string_view sql, const std::vector<PgParam>& params) {
  Result<PgResult> r = Exec(sql, params);
  return r.ok() ? Status::Ok() : r.status();
}

Status PgConnection::RunScript(std::string_view sql) {
  const std::string query(sql);
  PgResultPtr res(PQexec(conn_.get(), query.c_str()));
  const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ErrorFrom(res.get(), "script");
  return Status::Ok();
}

Result<PgAdvisoryLock> PgAdvisoryLock::Acquire(PgConnection& conn, int64_t key) {
  Status s = conn.Run("SELECT pg_advisory_lock($1)", {key});
  if (!s.ok()) return s.WithContext("taking the migration lock");
  return PgAdvisoryLock(&conn, key);
}

PgAdvisoryLock::~PgAdvisoryLock() {
  if (conn_ != nullptr && conn_->healthy()) {
    Status s = conn_->Run("SELECT pg_advisory_unlock($1)", {key_});
    (void)s;  // a broken connection releases the lock by itself
  }
}

std::string QuoteIdent(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace bgm
