// Status and Result<T>: the value every expected failure is returned as.
//
// A Status is a code plus a message written for the operator (what went wrong and what to do).
// Whether an operation may be retried depends on the code alone (see IsRetriable).
// Thread-compatible: distinct objects may be used from distinct threads.
//
//   Result<PgConnection> conn = PgConnection::Connect(url);
//   if (!conn.ok()) return conn.status();
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace bgm {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input from an operator or caller; retrying will not help
  kNotFound,            // the named thing does not exist
  kFailedPrecondition,  // the current state forbids the change (e.g. retry of a running migration)
  kUnavailable,         // a server could not be reached or dropped the connection; retriable
  kDeadlineExceeded,    // a timeout; retriable
  kResourceExhausted,   // memory limit, too many parts; retriable after a pause
  kLeaseLost,           // this worker no longer holds the migration's lease; stop writing
  kCancelled,           // a stop was requested
  kInternal,            // a server-side error that is not one of the above
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "UNAVAILABLE: could not connect to ..." ; "OK" for success.
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context`: "context: message".
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string msg) {
  return Status(StatusCode::kInvalidArgument, std::move(msg));
}
inline Status NotFound(std::string msg) { return Status(StatusCode::kNotFound, std::move(msg)); }
inline Status FailedPrecondition(std::string msg) {
  return Status(StatusCode::kFailedPrecondition, std::move(msg));
}
inline Status Unavailable(std::string msg) {
  return Status(StatusCode::kUnavailable, std::move(msg));
}
inline Status Internal(std::string msg) { return Status(StatusCode::kInternal, std::move(msg)); }
inline Status LeaseLost(std::string msg) { return Status(StatusCode::kLeaseLost, std::move(msg)); }
inline Status Cancelled(std::string msg) { return Status(StatusCode::kCancelled, std::move(msg)); }

// True for failures that may succeed when tried again unchanged: kUnavailable,
// kDeadlineExceeded, kResourceExhausted. A running migration waits these out (status
// `waiting`); every other code fails it at once.
bool IsRetriable(StatusCode code);

// Either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  // An OK `status` carries no value: that is a programming error, kept as kInternal in every
  // build (not only under assert) so that `return r.status()` can never report success.
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) {
      status_ = Status(StatusCode::kInternal,
                       "internal error: a result was built from an OK status without a value");
    }
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace bgm

// Returns early from the calling function when `expr` is not OK.
#define BGM_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::bgm::Status bgm_status_ = (expr);        \
    if (!bgm_status_.ok()) return bgm_status_; \
  } while (false)
