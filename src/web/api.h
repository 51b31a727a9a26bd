// ApiHandler: everything the web server answers, as a function from a request to a response, so
// it is tested without HTTP: the JSON API under /api/, Prometheus metrics at /metrics and the
// embedded UI at / and /ui/<file>. The transport (server.h) only copies requests in and
// responses out.
//
// Reads are open; every change needs `Authorization: Bearer <ADMIN_API_KEY>`. Errors are JSON
// {"error": "<short>", "detail": "<what to do>"} with 400 (bad body or query), 401 (no or wrong
// key), 403 (no key configured), 404 (unknown migration or route), 405 (wrong method), 409 (the
// current state forbids the change), 413 (body over 1 MiB), 415 (a body sent with a
// Content-Type other than application/json), 503 (control store unreachable).
// A change's body is strict: unknown fields, wrong types and JSON nested deeper than
// kMaxBodyDepth are refused with 400 naming the field or the problem; nothing is changed.
// Secrets (the key, the database URL) never appear in responses or logs.
//
// Thread-safe: Handle() may run on many threads at once (each borrows its own store).
//
//   ApiHandler api({.admin_api_key = key, .enabled = true, .registry = &BuiltinRegistry()},
//                  pool, clock);
//   ApiResponse r = api.Handle({"GET", "/api/background-migrations", "", ""});
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "core/registry.h"
#include "web/admin_auth.h"
#include "web/store_pool.h"

namespace bgm {

// Request bodies larger than this are refused with 413.
inline constexpr size_t kMaxBodyBytes = 1024 * 1024;
// Request bodies whose arrays and objects nest deeper than this are refused with 400 (args are
// flat; this keeps a hostile 1 MiB "[[[[..." from exhausting the stack).
inline constexpr int kMaxBodyDepth = 32;

// Recorded as the actor of every change made through the API.
inline constexpr const char* kApiActor = "api";

struct ApiRequest {
  std::string method;         // "GET", "POST", ... (HEAD is answered like GET)
  std::string target;         // the request target as sent: percent-encoded path, maybe "?query"
  std::string authorization;  // the Authorization header; "" when absent
  std::string body;
  std::string content_type = {};  // the Content-Type header; "" when absent
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. Allow, WWW-Authenticate
};

struct ApiOptions {
  std::string admin_api_key;           // ADMIN_API_KEY; empty refuses every change (403)
  bool enabled = true;                 // LANGFUSE_ENABLE_BACKGROUND_MIGRATIONS
  const Registry* registry = nullptr;  // required: validates args before they are saved
};

class ApiHandler {
 public:
  // `pool` and `clock` must outlive the handler.
  ApiHandler(const ApiOptions& options, StorePool& pool, const Clock& clock);

  // Never throws; an unexpected exception becomes a logged 500.
  ApiResponse Handle(const ApiRequest& request) const;

 private:
  ApiResponse Route(const ApiRequest& request) const;
  ApiResponse Health() const;
  ApiResponse List() const;
  ApiResponse Summary() const;
  ApiResponse Metrics() const;
  ApiResponse GetOne(const std::string& name) const;
  // GET .../{name}/chunks?status=&after=&limit=: a page of the migration's chunks.
  ApiResponse Chunks(const std::string& name, const std::string& target) const;
  // GET /api/events?migration=NAME&kind=K1,K2&before=ID&limit=N: events across migrations.
  ApiResponse AllEvents(const std::string& target) const;
  ApiResponse Change(const std::string& action, const std::string& name,
                     const ApiRequest& request) const;

  const AdminAuth auth_;
  const bool enabled_;
  const Registry& registry_;
  StorePool& pool_;
  const Clock& clock_;
};

// The HTTP status for a Status code: kInvalidArgument 400, kNotFound 404, kFailedPrecondition
// and kLeaseLost 409, kUnavailable/kDeadlineExceeded/kResourceExhausted/kCancelled 503,
// anything else 500 (kOk 200).
int HttpStatusFor(StatusCode code);

// {"error": error, "detail": detail} with `status`.
ApiResponse ErrorResponse(int status, const std::string& error, const std::string& detail);

// A migration name the API accepts: ^[A-Za-z0-9_.-]{1,200}$ and not only dots. Anything else
// is answered with 404 before a store is asked.
bool IsValidMigrationName(std::string_view name);

}  // namespace bgm
