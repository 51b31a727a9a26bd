// PgConnection: a move-only owner of one libpq connection. Every statement is parameterized:
// values travel as parameters, never spliced into SQL. Not thread-safe: each thread owns its
// connections.
//
//   Result<PgConnection> conn = PgConnection::Connect(url);
//   Result<PgResult> r = conn->Exec("SELECT $1::int + 1", {41});
#pragma once

#include <libpq-fe.h>

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

class PgConnection {
 public:
  // Connects with a libpq URL or key=value string. kUnavailable when the server cannot be
  // reached, kInvalidArgument for a malformed string. The message never contains a password.
  static Result<PgConnection> Connect(const std::string& conninfo);

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

 private:
  explicit PgConnection(PgConnPtr conn) : conn_(std::move(conn)) {}

  PgConnPtr conn_;
};

// Holds a session-level pg_advisory_lock on `conn` until destroyed. The connection must
// outlive the lock.
class PgAdvisoryLock {
 public:
  // Blocks until the lock is held.
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

}  // namespace bgm
