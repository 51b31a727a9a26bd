// PgCopyIn: streams rows into one `COPY table (cols) FROM STDIN` (text format) on a
// PgConnection. Data is buffered and sent in ~1 MB chunks, so a caller may write rows of any
// size without holding more than one chunk. The COPY is one statement: unless a transaction is
// open on the connection, nothing is visible before Finish() succeeds and a failed or abandoned
// COPY leaves nothing behind.
// Not thread-safe. The connection must outlive the PgCopyIn and must not run anything else
// until Finish() returns or the PgCopyIn is destroyed.
//
//   Result<PgCopyIn> copy = PgCopyIn::Begin(conn, "COPY t (id, name) FROM STDIN");
//   std::string& buf = copy->buffer();
//   buf += "1\t"; AppendCopyText(buf, name); buf += '\n';
//   BGM_RETURN_IF_ERROR(copy->FlushIfFull());
//   Result<int64_t> rows = copy->Finish();
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"
#include "postgres/pg_connection.h"

namespace bgm {

class PgCopyIn {
 public:
  // Data is handed to libpq once this much is buffered.
  static constexpr size_t kChunkBytes = size_t{1} << 20;

  // Sends `sql` (a `COPY ... FROM STDIN` statement, text format). Errors as PgConnection::Exec;
  // kInvalidArgument when `sql` is not a COPY FROM STDIN.
  static Result<PgCopyIn> Begin(PgConnection& conn, std::string_view sql);

  PgCopyIn(PgCopyIn&& other) noexcept
      : conn_(std::exchange(other.conn_, nullptr)), buffer_(std::move(other.buffer_)) {}
  PgCopyIn& operator=(PgCopyIn&&) = delete;
  // Abandons an unfinished COPY: the server rolls the statement back.
  ~PgCopyIn();

  // Appends `data` (COPY text: rows ending in '\n', fields escaped with AppendCopyText) and sends
  // full chunks. Rows may be split across calls. Errors as Finish().
  Status Write(std::string_view data);

  // The pending data, for writers that format rows in place. Append, then call FlushIfFull().
  std::string& buffer() { return buffer_; }
  // Sends the buffer when it holds at least kChunkBytes.
  Status FlushIfFull() { return buffer_.size() >= kChunkBytes ? Flush() : Status::Ok(); }

  // Sends what is buffered, ends the COPY and returns the number of rows the server stored.
  // A server error (bad row, duplicate key, ...) carries its SQLSTATE, coded as in
  // PgConnection::Exec (e.g. 22P02, 23505 -> kInvalidArgument; a lost connection ->
  // kUnavailable). After Finish, successful or not, the connection is ready for new statements.
  Result<int64_t> Finish();

  // Ends the COPY with an error so that the server rolls it back. The connection is then ready
  // for new statements. A no-op after Finish or Abort.
  void Abort(std::string_view reason);

 private:
  explicit PgCopyIn(PgConnection* conn) : conn_(conn) {}
  Status Flush();
  Status Send(std::string_view data);
  // The error of a COPY that the server or libpq ended; drains the connection's results.
  Status FailedCopy(std::string_view what);

  PgConnection* conn_;  // null once finished or aborted
  std::string buffer_;
};

// The text-format form of SQL NULL.
inline constexpr std::string_view kCopyNull = "\\N";

// Appends `value` as one COPY text field: backslash, tab, newline and carriage return are
// escaped ("a\tb" -> "a\\tb"), every other byte is copied. `value` must be valid in the
// server's encoding and contain no NUL byte (Postgres text cannot hold one).
void AppendCopyText(std::string& out, std::string_view value);

}  // namespace bgm
