// PgConnection: a move-only owner of one libpq connection. Every statement is parameterized:
// values travel as parameters, never spliced into SQL. Every wait on the server is bounded:
// connecting by a connect timeout, each statement by a read timeout on the server's silence
// (see PgTimeouts). Not thread-safe: each thread owns its connections.
//
//   Result<PgConnection> conn = PgConnection::Connect(url);
//   Result<PgResult> r = conn->Exec("SELECT $1::int + 1", {41});
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "postgres/pg_result.h"

namespace bgm {

struct PgConnDeleter {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using PgConnPtr = std::unique_ptr<PGconn, PgConnDeleter>;

// One statement parameter in text form; std::nullopt is SQL NULL.
class PgParam {
 public:
  PgParam(std::nullopt_t) {}                                       // NOLINT
  PgParam(std::string v) : value_(std::move(v)) {}                 // NOLINT
  PgParam(std::string_view v) : value_(std::string(v)) {}          // NOLINT
  PgParam(const char* v) : value_(std::string(v)) {}               // NOLINT
  PgParam(int v) : value_(std::to_string(v)) {}                    // NOLINT
  PgParam(int64_t v) : value_(std::to_string(v)) {}                // NOLINT
  PgParam(double v);                                               // NOLINT
  PgParam(bool v) : value_(v ? "true" : "false") {}                // NOLINT
  PgParam(std::optional<std::string> v) : value_(std::move(v)) {}  // NOLINT

  const std::optional<std::string>& value() const { return value_; }

 private:
  std::optional<std::string> value_;
};

// How long a connection waits for the server. A server that is silent for `read` while a
// statement is outstanding is asked, on a second connection, whether that statement is still
// running (a long query, or a lock wait such as pg_advisory_lock); if it is, the wait goes on,
// otherwise (or if that check cannot connect within `connect`) the statement fails with
// kUnavailable and the connection is closed. So a server that stops answering is noticed
// after about read + connect, and a legitimately long statement is never cut short.
struct PgTimeouts {
  std::chrono::seconds connect{10};  // libpq connect_timeout (DATABASE_URL's own value wins)
  std::chrono::milliseconds read{std::chrono::seconds(10)};
};

// The timeouts of connections opened from now on by Connect(conninfo). Set once at start-up
// (from the configuration); thread-safe.
void SetDefaultPgTimeouts(const PgTimeouts& timeouts);
PgTimeouts DefaultPgTimeouts();

class PgConnection {
 public:
  // Connects with a libpq URL or key=value string, adding connect_timeout, TCP keepalives and
  // tcp_user_timeout from `timeouts` where the string does not set them. kUnavailable when the
  // server cannot be reached or does not answer within the connect timeout, kInvalidArgument
  // for a malformed string. The message never contains a password.
  static Result<PgConnection> Connect(const std::string& conninfo);
  static Result<PgConnection> Connect(const std::string& conninfo, const PgTimeouts& timeouts);

  PgConnection(PgConnection&&) = default;
  PgConnection& operator=(PgConnection&&) = default;

  // Runs one statement. Errors carry the SQLSTATE: class 08 and shutdowns are kUnavailable,
  // 40001/40P01 kUnavailable (retriable), 22/23/42 kInvalidArgument, the rest kInternal.
  // `binary_result`: values come back in binary form (raw bytes for bytea).
  Result<PgResult> Exec(std::string_view sql, const std::vector<PgParam>& params = {},
                        bool binary_result = false);
  // Exec for statements whose result is not needed.
  Status Run(std::string_view sql, const std::vector<PgParam>& params = {});
  // Runs a script of several statements (no parameters), e.g. a schema file.
  Status RunScript(std::string_view sql);

  bool healthy() const { return PQstatus(conn_.get()) == CONNECTION_OK; }
  PGconn* get() const { return conn_.get(); }

  // The Status for a failed `res` (or, when `res` is null, the connection's last error), coded
  // from its SQLSTATE as Exec does: "<what> failed (SQLSTATE 23505): <server message>". For
  // code that drives libpq directly on this connection, such as PgCopyIn.
  Status ErrorFrom(const PGresult* res, std::string_view what) const;

  // For code that drives libpq's asynchronous API on this (nonblocking) connection: sends what
  // libpq has queued and waits until PQgetResult will not block. kUnavailable when the server
  // stays silent (see PgTimeouts; the connection is then closed, so later calls fail at once)
  // or the connection breaks. `what` names the operation in messages.
  Status AwaitResult(std::string_view what);
  // Sends what libpq has queued (e.g. by PQputCopyData), waiting as AwaitResult does.
  Status FlushOutput(std::string_view what);
  // The next result of the statement in progress (null after the last), waiting as above.
  Result<PgResultPtr> NextResult(std::string_view what);
  // Asks the server, on a second connection (bounded like this one), to cancel the statement
  // in progress. When that fails, this connection is closed instead, so that nothing waits on
  // it. libpq's PQcancel is not used: it has no timeout.
  Status CancelStatement();

 private:
  PgConnection(PgConnPtr conn, std::string conninfo, PgTimeouts timeouts)
      : conn_(std::move(conn)), conninfo_(std::move(conninfo)), timeouts_(timeouts) {}
  // Waits for the socket until libpq has sent everything and, with `for_result`, a result is
  // ready.
  Status Await(std::string_view what, bool for_result);
  // After `read` of silence: OK when a second connection sees this connection's statement
  // still being worked on by the server; otherwise why not.
  Status StatementStillRunning();
  // "Postgres at host:port".
  std::string Where() const;

  PgConnPtr conn_;
  std::string conninfo_;  // for the liveness check; never shown
  PgTimeouts timeouts_;
  bool probe_ = false;  // this connection is itself a liveness check: no further check
};

// Holds a session-level pg_advisory_lock on `conn` until destroyed. The connection must
// outlive the lock.
class PgAdvisoryLock {
 public:
  // Blocks until the lock is held, however long another session holds it (the wait is a
  // running statement, so the read timeout does not end it); kUnavailable if the server stops
  // answering meanwhile.
  static Result<PgAdvisoryLock> Acquire(PgConnection& conn, int64_t key);
  PgAdvisoryLock(PgAdvisoryLock&& other) noexcept
      : conn_(std::exchange(other.conn_, nullptr)), key_(other.key_) {}
  PgAdvisoryLock& operator=(PgAdvisoryLock&&) = delete;
  ~PgAdvisoryLock();

 private:
  PgAdvisoryLock(PgConnection* conn, int64_t key) : conn_(conn), key_(key) {}
  PgConnection* conn_;
  int64_t key_;
};

// Quotes an identifier for SQL ("my table" -> "\"my table\""). For names that cannot be
// parameters (database names in CREATE DATABASE).
std::string QuoteIdent(std::string_view name);

// `conninfo` (a postgres:// URI or key=value words) whose sessions start with `search_path`
// (e.g. "bgmigrate,public"; no spaces): libpq's options '-c search_path=...' added.
// kInvalidArgument when it is malformed or already sets options (merge them by hand then).
Result<std::string> WithSearchPath(const std::string& conninfo, const std::string& search_path);

}  // namespace bgm
