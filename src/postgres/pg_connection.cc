#include "postgres/pg_connection.h"

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace bgm {
namespace {

using SteadyClock = std::chrono::steady_clock;

std::atomic<int64_t> g_connect_seconds{PgTimeouts{}.connect.count()};
std::atomic<int64_t> g_read_ms{PgTimeouts{}.read.count()};

std::string Seconds(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

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

void SetDefaultPgTimeouts(const PgTimeouts& timeouts) {
  g_connect_seconds = timeouts.connect.count();
  g_read_ms = timeouts.read.count();
}

PgTimeouts DefaultPgTimeouts() {
  return PgTimeouts{std::chrono::seconds(g_connect_seconds.load()),
                    std::chrono::milliseconds(g_read_ms.load())};
}

PgParam::PgParam(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  value_ = buf;
}

namespace {

// DATABASE_URL's options as libpq reads them, freed with the pointer.
using ConninfoOptions = std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)>;
Result<ConninfoOptions> ParseConninfo(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (opts == nullptr) {
    std::string msg = err ? Trim(err) : "unparseable";
    PQfreemem(err);
    return InvalidArgument("malformed DATABASE_URL (" + msg +
                           "); expected postgresql://user:password@host:port/dbname");
  }
  return ConninfoOptions(opts, &PQconninfoFree);
}

}  // namespace

Result<std::string> WithSearchPath(const std::string& conninfo, const std::string& search_path) {
  Result<ConninfoOptions> parsed = ParseConninfo(conninfo);
  if (!parsed.ok()) return parsed.status();
  PQconninfoOption* opts = parsed->get();
  bool has_options = false;
  for (const PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (std::strcmp(o->keyword, "options") == 0 && o->val != nullptr && *o->val != '\0') {
      has_options = true;
    }
  }
  if (has_options) {
    return InvalidArgument(
        "DATABASE_URL already sets options, to which BGMIGRATE_CONTROL_SCHEMA would add "
        "'-c search_path=" +
        search_path +
        "'; add it to DATABASE_URL's options yourself and unset "
        "BGMIGRATE_CONTROL_SCHEMA, or remove the options");
  }
  const std::string option = "-c search_path=" + search_path;
  if (conninfo.starts_with("postgresql://") || conninfo.starts_with("postgres://")) {
    std::string encoded;
    for (char c : option) {
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') {
        encoded += c;
      } else {
        char hex[4];
        std::snprintf(hex, sizeof hex, "%%%02X", static_cast<unsigned char>(c));
        encoded += hex;
      }
    }
    return conninfo + (conninfo.find('?') == std::string::npos ? "?" : "&") + "options=" + encoded;
  }
  return conninfo + " options='" + option + "'";
}

Result<PgConnection> PgConnection::Connect(const std::string& conninfo) {
  return Connect(conninfo, DefaultPgTimeouts());
}

Result<PgConnection> PgConnection::Connect(const std::string& conninfo,
                                           const PgTimeouts& timeouts) {
  if (conninfo.empty()) {
    return InvalidArgument(
        "no Postgres connection string: set DATABASE_URL, e.g. "
        "postgresql://user:password@127.0.0.1:5432/langfuse");
  }
  Result<ConninfoOptions> parsed = ParseConninfo(conninfo);
  if (!parsed.ok()) return parsed.status();
  PQconninfoOption* opts = parsed->get();
  // Bounds for the waits libpq does itself, unless DATABASE_URL sets them. The user's value
  // wins: its dbname (the whole string, expanded) comes after our defaults.
  const std::string connect_s = std::to_string(timeouts.connect.count());
  const std::string user_timeout_ms = std::to_string(timeouts.read.count());
  const std::pair<const char*, const char*> defaults[] = {
      {"connect_timeout", connect_s.c_str()},
      {"keepalives", "1"},
      {"keepalives_idle", "30"},
      {"keepalives_interval", "10"},
      {"keepalives_count", "3"},
      {"tcp_user_timeout", user_timeout_ms.c_str()},
      // How our sessions are told apart in pg_stat_activity (the long-transaction signal of
      // core/health_signals.h leaves them out); an application_name in DATABASE_URL wins.
      {"fallback_application_name", "bgmigrate"},
  };
  std::vector<const char*> keys, values;
  for (const auto& [key, value] : defaults) {
    bool set = false;
    for (const PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
      if (std::strcmp(o->keyword, key) == 0 && o->val != nullptr) set = true;
    }
    if (!set) {
      keys.push_back(key);
      values.push_back(value);
    }
  }
  keys.push_back("dbname");
  values.push_back(conninfo.c_str());
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PgConnPtr conn(PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1));
  if (conn == nullptr) return Internal("libpq could not allocate a connection");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    const char* host = PQhost(conn.get());
    const char* port = PQport(conn.get());
    std::string detail = Trim(PQerrorMessage(conn.get()));
    if (detail.find("timeout expired") != std::string::npos) {
      detail +=
          " (the server accepted no connection or sent no answer within the connect "
          "timeout, BGMIGRATE_PG_CONNECT_TIMEOUT_SECONDS or connect_timeout in DATABASE_URL)";
    }
    return Unavailable(std::string("could not connect to Postgres at ") + (host ? host : "?") +
                       ":" + (port ? port : "?") + ": " + detail +
                       "; check DATABASE_URL and that the server is running");
  }
  // Quiet NOTICEs such as "relation already exists, skipping".
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  // Nonblocking: sending never blocks either, so every wait goes through Await's deadline.
  if (PQsetnonblocking(conn.get(), 1) != 0) {
    return Internal("libpq could not switch the connection to nonblocking mode");
  }
  return PgConnection(std::move(conn), conninfo, timeouts);
}

std::string PgConnection::Where() const {
  const char* host = PQhost(conn_.get());
  const char* port = PQport(conn_.get());
  return std::string("Postgres at ") + (host ? host : "?") + ":" + (port ? port : "?");
}

Status PgConnection::Await(std::string_view what, bool for_result) {
  PGconn* c = conn_.get();
  if (PQstatus(c) != CONNECTION_OK) return ErrorFrom(nullptr, what);
  auto silent_since = SteadyClock::now();
  for (;;) {
    const int pending = PQflush(c);  // 0: all sent, 1: more to send, -1: failed
    if (pending < 0) return ErrorFrom(nullptr, what);
    if (pending == 0 && (!for_result || PQisBusy(c) == 0)) return Status::Ok();
    const auto deadline = silent_since + timeouts_.read;
    const auto now = SteadyClock::now();
    if (now >= deadline) {
      Status running =
          probe_ ? Unavailable("this is the liveness check itself") : StatementStillRunning();
      if (running.ok()) {
        silent_since = SteadyClock::now();
        continue;
      }
      const std::string where = Where();
      // Closing our side makes libpq fail the statement and every later call at once.
      shutdown(PQsocket(c), SHUT_RDWR);
      (void)PQconsumeInput(c);
      std::string msg = where;
      msg += " stopped answering: nothing received for ";
      msg += Seconds(timeouts_.read);
      msg += " s during a ";
      msg += what;
      msg +=
          " (BGMIGRATE_PG_READ_TIMEOUT_SECONDS) and the server did not confirm it is still "
          "working on it (";
      msg += running.message();
      msg += "); the connection was closed";
      return Unavailable(std::move(msg));
    }
    pollfd p{};
    p.fd = PQsocket(c);
    p.events = static_cast<short>(POLLIN | (pending > 0 ? POLLOUT : 0));
    const auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    const int n = poll(&p, 1, static_cast<int>(std::min<int64_t>(wait_ms, 60000)));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status failed =
          Unavailable(Where() + ": waiting for the server failed: " + std::strerror(errno));
      shutdown(PQsocket(c), SHUT_RDWR);
      (void)PQconsumeInput(c);
      return failed;
    }
    if (n == 0) continue;
    silent_since = SteadyClock::now();
    if ((p.revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) != 0 && PQconsumeInput(c) == 0) {
      return ErrorFrom(nullptr, what);
    }
  }
}

Status PgConnection::AwaitResult(std::string_view what) { return Await(what, true); }

Status PgConnection::FlushOutput(std::string_view what) { return Await(what, false); }

Result<PgResultPtr> PgConnection::NextResult(std::string_view what) {
  Status s = Await(what, true);
  if (!s.ok()) {
    // Collect what libpq kept of the failed statement so the connection is idle again.
    while (PgResultPtr rest{PQgetResult(conn_.get())}) {
      const ExecStatusType st = PQresultStatus(rest.get());
      if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) break;
    }
    return s;
  }
  return PgResultPtr(PQgetResult(conn_.get()));
}

Status PgConnection::StatementStillRunning() {
  Result<PgConnection> check = Connect(conninfo_, timeouts_);
  if (!check.ok()) return check.status();
  check->probe_ = true;
  Result<PgResult> r =
      check->Exec("SELECT state, coalesce(wait_event, '') FROM pg_stat_activity WHERE pid = $1",
                  {static_cast<int>(PQbackendPID(conn_.get()))});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return Unavailable("its server session is gone");
  const std::string state(r->Get(0, 0));
  const std::string wait(r->Get(0, 1));
  // ClientWrite: the server is blocked sending us data that does not arrive.
  if (state == "active" && wait != "ClientWrite") return Status::Ok();
  return Unavailable("its server session is '" + state + "'" +
                     (wait.empty() ? "" : " waiting on " + wait) +
                     ", so data between us is being lost");
}

Status PgConnection::CancelStatement() {
  if (PQstatus(conn_.get()) != CONNECTION_OK) return Status::Ok();
  Result<PgConnection> other = Connect(conninfo_, timeouts_);
  Status s = other.ok() ? other->Run("SELECT pg_cancel_backend($1)",
                                     {static_cast<int>(PQbackendPID(conn_.get()))})
                        : other.status();
  if (!s.ok()) {
    shutdown(PQsocket(conn_.get()), SHUT_RDWR);  // rather lose the connection than hang on it
    (void)PQconsumeInput(conn_.get());
  }
  return s;
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

namespace {

bool IsCopyState(ExecStatusType st) {
  return st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH;
}

bool IsError(ExecStatusType st) {
  return st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR;
}

}  // namespace

Result<PgResult> PgConnection::Exec(std::string_view sql, const std::vector<PgParam>& params,
                                    bool binary_result) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const PgParam& p : params) values.push_back(p.value() ? p.value()->c_str() : nullptr);
  const std::string query(sql);
  if (PQsendQueryParams(conn_.get(), query.c_str(), static_cast<int>(values.size()), nullptr,
                        values.data(), nullptr, nullptr, binary_result ? 1 : 0) != 1) {
    return ErrorFrom(nullptr, "query");
  }
  // As PQexec: the first error, else the last result.
  PgResultPtr kept;
  for (;;) {
    Result<PgResultPtr> next = NextResult("query");
    if (!next.ok()) return next.status();
    if (*next == nullptr) break;
    const ExecStatusType st = PQresultStatus(next->get());
    if (kept == nullptr || !IsError(PQresultStatus(kept.get()))) kept = std::move(*next);
    if (IsCopyState(st)) break;
  }
  const ExecStatusType st = kept ? PQresultStatus(kept.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ErrorFrom(kept.get(), "query");
  return PgResult(std::move(kept));
}

Status PgConnection::Run(std::string_view sql, const std::vector<PgParam>& params) {
  Result<PgResult> r = Exec(sql, params);
  return r.ok() ? Status::Ok() : r.status();
}

Status PgConnection::RunScript(std::string_view sql) {
  const std::string query(sql);
  if (PQsendQuery(conn_.get(), query.c_str()) != 1) return ErrorFrom(nullptr, "script");
  PgResultPtr error;
  for (;;) {
    Result<PgResultPtr> next = NextResult("script");
    if (!next.ok()) return next.status();
    if (*next == nullptr) break;
    const ExecStatusType st = PQresultStatus(next->get());
    if (IsError(st) && error == nullptr) error = std::move(*next);
    if (IsCopyState(st)) break;
  }
  if (error != nullptr) return ErrorFrom(error.get(), "script");
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
