// Bad input (issue 7), on a real Postgres (and ClickHouse where a copy must run):
//  - the JSON API of the real web server (RunWebServer, as `bgmigrate web` runs it) fed
//    malformed, truncated, oversized, deeply nested and wrongly typed bodies, unknown fields,
//    hostile names, missing or wrong keys, wrong Content-Types and methods: every request gets
//    its exact 4xx with a JSON error saying what is wrong, the control tables stay byte for byte
//    the same, and the server answers afterwards;
//  - `args` of every wrong shape written straight into background_migrations (as the seed tells
//    operators to do) and a real `bgmigrate worker --exit-when-idle`: the migration fails with a
//    reason naming the bad key and value, its cursor and progress are kept, and the other
//    migrations run as if nothing happened.
// Regression tests for the bugs these found are named after them (see
// docs/reliability.md).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/pg_control_store.h"
#include "core/registry.h"
#include "testing/example_app.h"
#include "testing/process.h"
#include "testing/running_web_server.h"
#include "testing/test_clickhouse.h"
#include "testing/test_database.h"
#include "web/api.h"
#include "web/server.h"

namespace bgm {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using testing::RunProcess;
using testing::TestClickHouse;
using testing::TestDatabase;

constexpr const char* kKey = "reliability-admin-key";
constexpr const char* kPending = testing::kBackfillObservationCosts;  // builtin backfill, pending
constexpr const char* kFailed = "20240102_0000_traces_failed";        // traces copy, failed
constexpr const char* kPaused = "20240103_0000_backfill_paused";
constexpr const char* kFinished = "20240104_0000_scores_finished";

// Sends `bytes` on a fresh TCP connection and returns all the server answers until it closes
// the connection (or 10 s pass). Send "Connection: close" to have it close after one answer.
std::string RawExchange(int port, const std::string& bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "socket failed";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// Sends `head`, then `chunk` `times` times (stopping when the server stops reading), on one
// connection, and returns the answer. Nothing but one chunk is held in memory.
std::string StreamedExchange(int port, const std::string& head, const std::string& chunk, int times,
                             const std::string& tail) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "socket failed";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  std::string out;
  const auto send_all = [fd](const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  };
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && send_all(head)) {
    bool open = true;
    for (int i = 0; open && i < times; ++i) open = send_all(chunk);
    if (open) send_all(tail);
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string Path(const std::string& name, const std::string& action = "") {
  return "/api/background-migrations/" + name + (action.empty() ? "" : "/" + action);
}

// ---------------------------------------------------------------------------------------------
// The JSON API.

struct ApiCase {
  std::string what;
  std::string method;
  std::string target;
  std::string body;
  std::string content_type;  // "" sends none
  std::string auth;          // the Authorization header; "" sends none
  int status;
  std::string error;
  std::string detail;  // a part of the detail that says what is wrong
};

class BadApiInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    conn_.emplace(db_.Connect());
    ASSERT_TRUE(conn_
                    ->RunScript(std::string(R"sql(
      INSERT INTO background_migrations (name, script) VALUES
        (')sql") + kPending + "', '" +
                                testing::kBackfillObservationCosts + R"sql('),
        (')sql" + kFailed + "', '" +
                                testing::kCopyTraces + R"sql('),
        (')sql" + kPaused + "', '" +
                                testing::kBackfillObservationCosts + R"sql('),
        (')sql" + kFinished + "', '" +
                                testing::kCopyScores + R"sql(');
      UPDATE background_migrations SET args = '{"batchSize": 10}',
        state = '{"cursor": {"column": "created_at", "value": "2024-05-03 00:00:00", "id": "t9"}}',
        rows_processed = 500, failed_at = now(), failed_reason = 'source went away', attempts = 1
        WHERE name = ')sql" + kFailed +
                                R"sql(';
      UPDATE background_migrations SET paused_at = now() WHERE name = ')sql" +
                                kPaused + R"sql(';
      UPDATE background_migrations SET finished_at = now(), rows_processed = 7
        WHERE name = ')sql" + kFinished +
                                R"sql(';
      INSERT INTO background_migration_events (migration_name, kind)
        SELECT name, 'registered' FROM background_migrations;
    )sql")
                    .ok());
    WebOptions o;
    o.bind = "127.0.0.1";
    o.port = 0;
    o.admin_api_key = kKey;
    o.factory = testing::PgStoreFactory(db_.url());
    o.registry = &testing::ExampleRegistry();
    o.request_timeout = seconds(5);  // a body cut short is answered when it passes
    server_.emplace(o);
    ASSERT_GT(server_->port(), 0);
    client_.emplace("127.0.0.1", server_->port());
    client_->set_read_timeout(20, 0);
    client_->set_url_encode(false);  // send targets exactly as written
  }

  std::string Query(const std::string& sql) {
    Result<PgResult> r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->rows() > 0 && !r->IsNull(0, 0) ? std::string(r->Get(0, 0)) : "NULL";
  }
  // Every column of every row, and how many events there are.
  std::string Snapshot() {
    return Query("SELECT json_agg(b ORDER BY name)::text FROM background_migrations b") + " / " +
           Query("SELECT count(*) FROM background_migration_events") + " events";
  }

  // Sends `c`, checks its answer, that nothing changed and that the server still answers.
  void Expect(const ApiCase& c) {
    SCOPED_TRACE(c.what + ": " + c.method + " " + c.target.substr(0, 120));
    const std::string before = Snapshot();
    httplib::Request req;
    req.method = c.method;
    req.path = c.target;
    req.body = c.body;
    if (!c.content_type.empty()) req.set_header("Content-Type", c.content_type);
    if (!c.auth.empty()) req.set_header("Authorization", c.auth);
    httplib::Result r = client_->send(req);
    ++requests_;
    ASSERT_TRUE(r) << "no answer: " << httplib::to_string(r.error());
    EXPECT_EQ(r->status, c.status) << r->body.substr(0, 500);
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    const json body = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(body.is_object()) << r->body.substr(0, 500);
    EXPECT_EQ(body.value("error", ""), c.error) << r->body.substr(0, 500);
    EXPECT_NE(body.value("detail", "").find(c.detail), std::string::npos)
        << "detail: " << body.value("detail", "") << "\nexpected to contain: " << c.detail;
    EXPECT_LT(r->body.size(), 2000u) << "the error echoes too much of the request";
    EXPECT_EQ(r->body.find(kKey), std::string::npos);
    EXPECT_EQ(Snapshot(), before) << "a refused request changed the control tables";
    httplib::Result health = client_->Get("/api/health");
    ASSERT_TRUE(health) << "the server stopped answering";
    EXPECT_EQ(health->status, 200);
  }

  void TearDown() override {
    RecordProperty("requests", requests_);
    std::printf("[ counts   ] %d requests sent; no refused one changed a row\n", requests_);
  }

  const std::string auth_ = std::string("Bearer ") + kKey;
  TestDatabase db_;
  std::optional<PgConnection> conn_;
  std::optional<testing::RunningWebServer> server_;
  std::optional<httplib::Client> client_;
  int requests_ = 0;
};

const char* kJson = "application/json";

TEST_F(BadApiInputTest, MalformedAndTruncatedJsonIs400InvalidJson) {
  const std::string args = Path(kFailed, "args");
  const std::string retry = Path(kFailed, "retry");
  const std::vector<ApiCase> cases = {
      {"malformed", "PUT", args, R"({"batchSize": 25OO})", kJson, auth_, 400, "invalid JSON",
       "the body is not valid JSON (the error is at byte 17)"},
      {"truncated object", "PUT", args, R"({"batchSize": 2500)", kJson, auth_, 400, "invalid JSON",
       "the body is not valid JSON (the error is at byte 19)"},
      {"truncated key", "PUT", args, R"({"batchSi)", kJson, auth_, 400, "invalid JSON",
       "not valid JSON"},
      {"single quotes", "PUT", args, "{'batchSize': 2500}", kJson, auth_, 400, "invalid JSON",
       "not valid JSON"},
      {"trailing garbage", "PUT", args, R"({"batchSize": 2500} x)", kJson, auth_, 400,
       "invalid JSON", "not valid JSON"},
      {"two objects", "PUT", args, R"({"batchSize": 1}{"batchSize": 2})", kJson, auth_, 400,
       "invalid JSON", "not valid JSON"},
      {"empty args body", "PUT", args, "", kJson, auth_, 400, "invalid JSON",
       "the body is empty; send a JSON object, for example {\"batchSize\": 2500}"},
      {"whitespace args body", "PUT", args, " \n\t ", kJson, auth_, 400, "invalid JSON",
       "the body is empty"},
      {"invalid UTF-8", "PUT", args, "{\"batchSize\": \"\xff\xfe\"}", kJson, auth_, 400,
       "invalid JSON", "not valid JSON"},
      {"NUL byte in body", "PUT", args, std::string("{\"batchSize\": 1\0}", 17), kJson, auth_, 400,
       "invalid JSON", "not valid JSON"},
      {"malformed retry", "POST", retry, R"({"fromStart": tru})", kJson, auth_, 400, "invalid JSON",
       "send for example {\"fromStart\": true}"},
      {"truncated retry", "POST", retry, R"({"fromStart":)", kJson, auth_, 400, "invalid JSON",
       "not valid JSON"},
      // Regression: a number beyond a double made nlohmann throw out_of_range, answered 500.
      {"number overflow in args", "PUT", args, R"({"batchSize": 1e400})", kJson, auth_, 400,
       "invalid JSON",
       "the body has a value this server cannot read (number overflow parsing '1e400')"},
      {"number overflow in retry", "POST", retry, R"({"fromStart": -1e999})", kJson, auth_, 400,
       "invalid JSON", "number overflow parsing '-1e999'"},
  };
  for (const ApiCase& c : cases) Expect(c);
}

// Regression: "[[[[..." 1 MiB deep parsed fine, then dumping it into the error message
// recursed half a million frames deep and crashed the server.
TEST_F(BadApiInputTest, DeeplyNestedBodiesAre400WithoutExhaustingTheStack) {
  const size_t depth = kMaxBodyBytes / 2;
  const std::string deep = std::string(depth, '[') + std::string(depth, ']');
  const std::string deep_value = "{\"fromStart\": " + std::string(depth / 2 - 10, '[') +
                                 std::string(depth / 2 - 10, ']') + "}";
  const std::string just_over =
      "{\"batchSize\": " + std::string(kMaxBodyDepth, '[') + std::string(kMaxBodyDepth, ']') + "}";
  const std::vector<ApiCase> cases = {
      {"deep args", "PUT", Path(kFailed, "args"), deep, kJson, auth_, 400, "invalid JSON",
       "the body nests arrays and objects 524288 levels deep; at most 32 are accepted"},
      {"deep retry value", "POST", Path(kFailed, "retry"), deep_value, kJson, auth_, 400,
       "invalid JSON", "levels deep; at most 32 are accepted"},
      {"33 levels", "PUT", Path(kFailed, "args"), just_over, kJson, auth_, 400, "invalid JSON",
       "the body nests arrays and objects 33 levels deep"},
      // Brackets inside strings do not count.
      {"brackets in a string", "PUT", Path(kFailed, "args"),
       "{\"batchSize\": \"" + std::string(100, '[') + "\\\"" + "\"}", kJson, auth_, 400,
       "invalid args", "batchSize must be an integer in [1, 500000], got \"[[[["},
  };
  for (const ApiCase& c : cases) Expect(c);
}

TEST_F(BadApiInputTest, BodiesOverOneMebibyteAre413OnEveryEndpoint) {
  const std::string over = "{\"batchSize\": 10" + std::string(kMaxBodyBytes, ' ') + "}";
  for (const auto& [method, action] : std::vector<std::pair<std::string, std::string>>{
           {"PUT", "args"}, {"POST", "retry"}, {"POST", "pause"}, {"POST", "resume"}}) {
    Expect({"2 MiB " + action, method, Path(kFailed, action), over + over, kJson, auth_, 413,
            "body too large", "request bodies are limited to 1 MiB"});
    Expect({"1 MiB + 1 byte " + action, method, Path(kFailed, action),
            std::string(kMaxBodyBytes + 1, ' '), kJson, auth_, 413, "body too large",
            "request bodies are limited to 1 MiB"});
  }
  // Even without a key: the size is refused before anything else is looked at.
  Expect({"oversized without a key", "PUT", Path(kFailed, "args"), over, kJson, "", 413,
          "body too large", "1 MiB"});
  // A Content-Length that promises too much: httplib reads and drops the promised body (so that
  // a client still sending it can read the 413); one that never comes is answered 408 once the
  // request timeout has passed.
  const std::string answer = RawExchange(
      server_->port(), "PUT " + Path(kFailed, "args") +
                           " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           "Authorization: " +
                           auth_ + "\r\nConnection: close\r\nContent-Length: 5000000000\r\n\r\n{}");
  ++requests_;
  EXPECT_EQ(answer.substr(0, 12), "HTTP/1.1 408") << answer;
  EXPECT_NE(answer.find("the request did not arrive whole within 5 s"), std::string::npos)
      << answer;

  // The limit is exactly 1 MiB: a valid body of that size is read (and refused on its merits).
  std::string exact = R"({"batchSize": -5})";
  exact += std::string(kMaxBodyBytes - exact.size(), ' ');
  ASSERT_EQ(exact.size(), kMaxBodyBytes);
  Expect({"exactly 1 MiB", "PUT", Path(kFailed, "args"), exact, kJson, auth_, 400, "invalid args",
          "batchSize must be an integer in [1, 500000], got -5"});
}

TEST_F(BadApiInputTest, WronglyTypedBodiesAre400NamingTheFieldAndValue) {
  const std::string args = Path(kFailed, "args");
  const std::string backfill_args = Path(kPaused, "args");
  const std::string retry = Path(kFailed, "retry");
  const std::string object = "args must be a JSON object such as {\"batchSize\": 2500}, got ";
  const std::vector<ApiCase> cases = {
      {"args array", "PUT", args, "[2500]", kJson, auth_, 400, "invalid args", object + "[2500]"},
      {"args string", "PUT", args, R"("batchSize=2500")", kJson, auth_, 400, "invalid args",
       object + "\"batchSize=2500\""},
      {"args number", "PUT", args, "2500", kJson, auth_, 400, "invalid args", object + "2500"},
      {"args null", "PUT", args, "null", kJson, auth_, 400, "invalid args", object + "null"},
      {"args bool", "PUT", args, "true", kJson, auth_, 400, "invalid args", object + "true"},
      {"batchSize string", "PUT", args, R"({"batchSize": "10"})", kJson, auth_, 400, "invalid args",
       "batchSize must be an integer in [1, 500000], got \"10\""},
      {"batchSize negative", "PUT", args, R"({"batchSize": -1})", kJson, auth_, 400, "invalid args",
       "batchSize must be an integer in [1, 500000], got -1"},
      {"batchSize zero", "PUT", args, R"({"batchSize": 0})", kJson, auth_, 400, "invalid args",
       "batchSize must be an integer in [1, 500000], got 0"},
      {"batchSize huge", "PUT", args, R"({"batchSize": 99999999999999999999999})", kJson, auth_,
       400, "invalid args",
       "batchSize must be an integer in [1, 500000], got 9.999999999999999e+22"},
      {"batchSize above max", "PUT", backfill_args, R"({"batchSize": 100001})", kJson, auth_, 400,
       "invalid args", "batchSize must be an integer in [1, 100000], got 100001"},
      {"batchSize float", "PUT", args, R"({"batchSize": 2.5})", kJson, auth_, 400, "invalid args",
       "batchSize must be an integer in [1, 500000], got 2.5"},
      {"batchSize null", "PUT", args, R"({"batchSize": null})", kJson, auth_, 400, "invalid args",
       "batchSize must be an integer in [1, 500000], got null"},
      {"batchSize object", "PUT", args, R"({"batchSize": {"value": 10}})", kJson, auth_, 400,
       "invalid args", "batchSize must be an integer in [1, 500000], got {\"value\":10}"},
      {"batchSize array", "PUT", args, R"({"batchSize": [10]})", kJson, auth_, 400, "invalid args",
       "batchSize must be an integer in [1, 500000], got [10]"},
      {"batchSize bool", "PUT", args, R"({"batchSize": true})", kJson, auth_, 400, "invalid args",
       "batchSize must be an integer in [1, 500000], got true"},
      {"pauseMs negative", "PUT", backfill_args, R"({"pauseMs": -5})", kJson, auth_, 400,
       "invalid args", "pauseMs must be an integer in [0, 60000], got -5"},
      {"targetBatchSeconds string", "PUT", args, R"({"targetBatchSeconds": "2"})", kJson, auth_,
       400, "invalid args", "targetBatchSeconds must be a number in [0.1, 60.0], got \"2\""},
      {"cursorColumn SQL", "PUT", args, R"({"cursorColumn": "id; DROP TABLE traces"})", kJson,
       auth_, 400, "invalid args",
       "unknown arg 'cursorColumn' (value \"id; DROP TABLE traces\"); accepted args: batchSize, "
       "maxBatchBytes, targetBatchSeconds, pauseMs, minDate, maxDate"},
      // Regression: dates the regex accepted but the calendar does not were saved, and the
      // copy failed later on a Postgres error that did not name the arg.
      {"minDate not on the calendar", "PUT", args, R"({"minDate": "2024-02-30"})", kJson, auth_,
       400, "invalid args",
       "minDate must be a date or time that exists, like \"2024-05-03\" or "
       "\"2024-05-03T10:00:00Z\", got \"2024-02-30\""},
      {"maxDate hour 25", "PUT", args, R"({"maxDate": "2024-05-03T25:00:00Z"})", kJson, auth_, 400,
       "invalid args", "maxDate must be a date or time that exists"},
      {"minDate after maxDate", "PUT", args,
       R"({"minDate": "2024-06-01", "maxDate": "2024-01-01"})", kJson, auth_, 400, "invalid args",
       "minDate must be before maxDate, got \"2024-06-01\" and \"2024-01-01\""},
      // Regression: the whole value was echoed; a 1 MiB string came back in the error.
      {"huge string value", "PUT", args, "{\"batchSize\": \"" + std::string(900000, 'x') + "\"}",
       kJson, auth_, 400, "invalid args", "got \"" + std::string(199, 'x') + "... (900002 bytes)"},
      {"retry array", "POST", retry, "[]", kJson, auth_, 400, "invalid body",
       "the body must be a JSON object such as {\"fromStart\": true}, or empty; got []"},
      {"retry string", "POST", retry, R"("fromStart")", kJson, auth_, 400, "invalid body",
       "got \"fromStart\""},
      {"retry number", "POST", retry, "1", kJson, auth_, 400, "invalid body", "or empty; got 1"},
      {"retry null", "POST", retry, "null", kJson, auth_, 400, "invalid body",
       "or empty; got null"},
      {"fromStart string", "POST", retry, R"({"fromStart": "true"})", kJson, auth_, 400,
       "invalid body", "fromStart must be true or false, got \"true\""},
      {"fromStart number", "POST", retry, R"({"fromStart": 1})", kJson, auth_, 400, "invalid body",
       "fromStart must be true or false, got 1"},
      {"fromStart null", "POST", retry, R"({"fromStart": null})", kJson, auth_, 400, "invalid body",
       "fromStart must be true or false, got null"},
  };
  for (const ApiCase& c : cases) Expect(c);
}

// Unknown fields are refused (400 naming the field), never ignored: a typo such as
// "fromstart" must not silently retry from the saved cursor.
TEST_F(BadApiInputTest, UnknownFieldsAre400NamingTheField) {
  const std::vector<ApiCase> cases = {
      {"retry typo", "POST", Path(kFailed, "retry"), R"({"fromstart": true})", kJson, auth_, 400,
       "invalid body",
       "unknown field 'fromstart'; the body may only have fromStart (true or false)"},
      {"retry extra", "POST", Path(kFailed, "retry"), R"({"fromStart": true, "force": true})",
       kJson, auth_, 400, "invalid body", "unknown field 'force'"},
      {"args typo", "PUT", Path(kFailed, "args"), R"({"batchsize": 2500})", kJson, auth_, 400,
       "invalid args",
       "unknown arg 'batchsize' (value 2500); accepted args: batchSize, maxBatchBytes, "
       "targetBatchSeconds, pauseMs, minDate, maxDate"},
      {"args of another script", "PUT", Path(kPaused, "args"),
       R"({"batchSize": 10, "cursorColumn": "created_at"})", kJson, auth_, 400, "invalid args",
       "unknown arg 'cursorColumn' (value \"created_at\"); accepted args: batchSize, pauseMs, "
       "statementTimeoutMs"},
      {"args empty key", "PUT", Path(kFailed, "args"), R"({"": 1})", kJson, auth_, 400,
       "invalid args", "unknown arg '' (value 1)"},
      {"args key with a NUL", "PUT", Path(kFailed, "args"), R"({"batch\u0000Size": 1})", kJson,
       auth_, 400, "invalid args", "unknown arg 'batch\\u0000Size' (value 1)"},
      {"pause with a body", "POST", Path(kPending, "pause"), R"({"reason": "deploy"})", kJson,
       auth_, 400, "invalid body",
       "POST pause takes no body; send it empty (unknown fields are refused, not ignored)"},
      {"resume with {}", "POST", Path(kPaused, "resume"), "{}", kJson, auth_, 400, "invalid body",
       "POST resume takes no body"},
  };
  for (const ApiCase& c : cases) Expect(c);
}

TEST_F(BadApiInputTest, HostileNamesAre404BeforeAnyStoreIsAsked) {
  const std::string detail = "no background migration has that name (names are 1 to 200";
  const std::vector<std::string> names = {
      "..",
      "%2e%2e",
      "%2E%2E",
      "..%2F..%2Fetc%2Fpasswd",
      "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
      "x%27%3B%20DROP%20TABLE%20background_migrations%3B%20--",
      "%27%3B%20DROP%20TABLE%20background_migrations%3B%20--",
      "a%00b",
      "%00",
      std::string(kFailed) + "%00",
      std::string(201, 'a'),
      "name%20with%20spaces",
      "%C3%A9t%C3%A9",
      "a%2Fb",
  };
  for (const std::string& name : names) {
    Expect({"GET one", "GET", Path(name), "", "", "", 404, "not found", detail});
    Expect({"retry", "POST", Path(name, "retry"), "", "", auth_, 404, "not found", detail});
    Expect({"pause", "POST", Path(name, "pause"), "", "", auth_, 404, "not found", detail});
    Expect({"resume", "POST", Path(name, "resume"), "", "", auth_, 404, "not found", detail});
    Expect({"args", "PUT", Path(name, "args"), R"({"batchSize": 10})", kJson, auth_, 404,
            "not found", detail});
  }
  const std::string route = "there is no endpoint at this path";
  const std::vector<ApiCase> cases = {
      // A well-formed name nobody registered: the store answers.
      {"unknown name", "POST", Path("20990101_0000_nope", "retry"), "", "", auth_, 404, "not found",
       "no background migration named '20990101_0000_nope'"},
      {"empty name", "POST", "/api/background-migrations//retry", "", "", auth_, 404, "not found",
       route},
      {"raw ../", "POST", "/api/background-migrations/../retry", "", "", auth_, 404, "not found",
       detail},
      {"raw ../../", "PUT", "/api/background-migrations/x/../../../etc/passwd",
       R"({"batchSize": 10})", kJson, auth_, 404, "not found", route},
      {"malformed escape", "POST", "/api/background-migrations/%zz/retry", "", "", auth_, 404,
       "not found", route},
      {"truncated escape", "GET", "/api/background-migrations/abc%2", "", "", "", 404, "not found",
       route},
      {"unknown action", "POST", Path(kFailed, "delete"), "", "", auth_, 404, "not found", route},
  };
  for (const ApiCase& c : cases) Expect(c);

  // A target over httplib's 8 KiB limit.
  Expect({"very long target", "GET", Path(std::string(20000, 'a')), "", "", "", 414, "URI too long",
          "the request target is too long"});
  // A raw NUL byte in the request line.
  static constexpr char kNulTarget[] =
      "GET /api/background-migrations/a\0b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const std::string answer =
      RawExchange(server_->port(), std::string(kNulTarget, sizeof kNulTarget - 1));
  ++requests_;
  EXPECT_EQ(answer.substr(0, 12), "HTTP/1.1 400") << answer;
  EXPECT_EQ(Query("SELECT count(*) FROM background_migrations"), "4");  // the table survived
}

TEST_F(BadApiInputTest, MissingOrWrongKeysAre401OnEveryChange) {
  for (const auto& [method, action, body] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"PUT", "args", R"({"batchSize": 2500})"},
           {"POST", "retry", ""},
           {"POST", "pause", ""},
           {"POST", "resume", ""}}) {
    const std::string target = Path(kFailed, action);
    const std::string send = "send the header 'Authorization: Bearer <ADMIN_API_KEY>'";
    const std::string wrong = "the bearer key is not the server's ADMIN_API_KEY";
    Expect({"no key", method, target, body, kJson, "", 401, "missing API key", send});
    Expect({"empty bearer", method, target, body, kJson, "Bearer ", 401, "missing API key", send});
    Expect({"basic auth", method, target, body, kJson, "Basic YWRtaW46YWRtaW4=", 401,
            "missing API key", send});
    Expect({"key without scheme", method, target, body, kJson, kKey, 401, "missing API key", send});
    Expect(
        {"wrong key", method, target, body, kJson, "Bearer wrong", 401, "invalid API key", wrong});
    Expect({"key with a suffix", method, target, body, kJson, auth_ + "x", 401, "invalid API key",
            wrong});
    Expect({"key prefix", method, target, body, kJson, "Bearer " + std::string(kKey).substr(0, 5),
            401, "invalid API key", wrong});
    Expect({"SQL as key", method, target, body, kJson, "Bearer ' OR '1'='1", 401, "invalid API key",
            wrong});
    // Authentication comes before the body is read: a bad body without a key is a 401.
    Expect(
        {"bad body, no key", method, target, "{not json", kJson, "", 401, "missing API key", send});
  }
}

TEST_F(BadApiInputTest, BodiesThatAreNotDeclaredJsonAre415) {
  const std::string detail =
      "the body must be JSON sent with 'Content-Type: application/json', got Content-Type ";
  const std::vector<ApiCase> cases = {
      {"text/plain args", "PUT", Path(kFailed, "args"), R"({"batchSize": 2500})", "text/plain",
       auth_, 415, "unsupported media type", detail + "'text/plain'"},
      {"form args", "PUT", Path(kFailed, "args"), "batchSize=2500",
       "application/x-www-form-urlencoded", auth_, 415, "unsupported media type",
       detail + "'application/x-www-form-urlencoded'"},
      // httplib would parse these as form parts: refused before the body is read.
      {"multipart retry", "POST", Path(kFailed, "retry"), R"({"fromStart": true})",
       "multipart/form-data; boundary=x", auth_, 415, "unsupported media type",
       "the body must be JSON sent with 'Content-Type: application/json', got a "
       "multipart/form-data body"},
      {"json-ish args", "PUT", Path(kFailed, "args"), R"({"batchSize": 2500})", "application/jsonp",
       auth_, 415, "unsupported media type", "'application/jsonp'"},
      {"xml pause", "POST", Path(kPending, "pause"), "<pause/>", "application/xml", auth_, 415,
       "unsupported media type", "'application/xml'"},
  };
  for (const ApiCase& c : cases) Expect(c);

  // application/json in any case, with parameters, is JSON; so is a body without a
  // Content-Type.
  for (const char* type : {"application/json; charset=utf-8", "Application/JSON"}) {
    httplib::Request req;
    req.method = "PUT";
    req.path = Path(kFailed, "args");
    req.body = R"({"batchSize": 77})";
    req.set_header("Content-Type", type);
    req.set_header("Authorization", auth_);
    httplib::Result r = client_->send(req);
    ++requests_;
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << type << ": " << r->body;
  }
  const std::string untyped = RawExchange(
      server_->port(),
      "PUT " + Path(kFailed, "args") + " HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth_ +
          "\r\nConnection: close\r\nContent-Length: 17\r\n\r\n" + R"({"batchSize": 78})");
  ++requests_;
  EXPECT_EQ(untyped.substr(0, 12), "HTTP/1.1 200") << untyped;
  EXPECT_EQ(Query("SELECT args::text FROM background_migrations WHERE name = '" +
                  std::string(kFailed) + "'"),
            "{\"batchSize\": 78}");
}

// Regression: httplib 0.11 enforces its payload limit only against a Content-Length; a chunked
// body was buffered whole (a 200 MiB body took the server to 429 MiB RSS) before the API
// refused it. Now reading stops at 1 MiB.
TEST_F(BadApiInputTest, ChunkedBodiesOverOneMebibyteAre413WithoutBeingBuffered) {
  const std::string before = Snapshot();
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const long peak_before_kib = usage.ru_maxrss;
  const std::string chunk = "100000\r\n" + std::string(0x100000, ' ') + "\r\n";  // 1 MiB
  const std::string head = "PUT " + Path(kFailed, "args") +
                           " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           "Authorization: " +
                           auth_ + "\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string answer = StreamedExchange(server_->port(), head, chunk, 100, "0\r\n\r\n");
  ++requests_;
  EXPECT_EQ(answer.substr(0, 12), "HTTP/1.1 413") << answer.substr(0, 300);
  EXPECT_NE(
      answer.find(R"({"detail":"request bodies are limited to 1 MiB","error":"body too large"})"),
      std::string::npos)
      << answer.substr(0, 600);
  ::getrusage(RUSAGE_SELF, &usage);
  // Before the fix the server held all 100 MiB; now at most 1 MiB of it (ASan adds its own).
  EXPECT_LT(usage.ru_maxrss - peak_before_kib, 48 * 1024)
      << "peak RSS grew by " << (usage.ru_maxrss - peak_before_kib) / 1024 << " MiB";
  // A small chunked body is read and answered on its merits.
  const std::string small =
      RawExchange(server_->port(), "PUT " + Path(kFailed, "args") +
                                       " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                       "Authorization: " +
                                       auth_ +
                                       "\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
                                       "5\r\n{\"bat\r\nd\r\nchSize\": -3}\r\n0\r\n\r\n");
  ++requests_;
  EXPECT_EQ(small.substr(0, 12), "HTTP/1.1 400") << small;
  EXPECT_NE(small.find("batchSize must be an integer in [1, 500000], got -3"), std::string::npos)
      << small;
  EXPECT_EQ(Snapshot(), before);
  EXPECT_EQ(client_->Get("/api/health")->status, 200);
}

// Regression: `curl -X POST URL` (the README's retry example) sends neither a Content-Length
// nor a chunked body; httplib waited for the connection to close and answered 400 after its
// 5 s read timeout. Such a request has no body (RFC 9112 6.3) and is answered at once.
TEST_F(BadApiInputTest, APostWithoutContentLengthHasNoBodyAndIsAnsweredAtOnce) {
  const auto started = std::chrono::steady_clock::now();
  const std::string refused = RawExchange(server_->port(), "POST " + Path(kFailed, "retry") +
                                                               " HTTP/1.1\r\nHost: x\r\n"
                                                               "Connection: close\r\n\r\n");
  ++requests_;
  EXPECT_EQ(refused.substr(0, 12), "HTTP/1.1 401") << refused;
  const std::string retried =
      RawExchange(server_->port(), "POST " + Path(kFailed, "retry") +
                                       " HTTP/1.1\r\nHost: x\r\n"
                                       "Authorization: " +
                                       auth_ + "\r\nConnection: close\r\n\r\n");
  ++requests_;
  EXPECT_EQ(retried.substr(0, 12), "HTTP/1.1 200") << retried;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
  EXPECT_EQ(Query("SELECT failed_at IS NULL FROM background_migrations WHERE name = '" +
                  std::string(kFailed) + "'"),
            "t");
}

TEST_F(BadApiInputTest, WrongMethodsAre405WithAllow) {
  const std::vector<std::pair<std::string, std::string>> posts = {
      {"retry", "POST"}, {"pause", "POST"}, {"resume", "POST"}, {"args", "PUT"}};
  for (const auto& [action, allowed] : posts) {
    for (const char* method : {"GET", "DELETE", "PATCH", "OPTIONS", "PUT", "POST"}) {
      if (method == allowed) continue;
      Expect({"wrong method", method, Path(kFailed, action), "", "", auth_, 405,
              "method not allowed", "this endpoint answers " + allowed + " only"});
    }
  }
  for (const std::string& target :
       {std::string("/api/background-migrations"), std::string("/api/background-migrations/status"),
        Path(kFailed), std::string("/api/health"), std::string("/metrics")}) {
    for (const char* method : {"POST", "PUT", "DELETE", "PATCH"}) {
      Expect({"read endpoint", method, target, R"({"batchSize": 1})", kJson, auth_, 405,
              "method not allowed", "this endpoint answers GET only"});
    }
  }
  httplib::Request req;
  req.method = "DELETE";
  req.path = Path(kFailed, "retry");
  req.set_header("Authorization", auth_);
  httplib::Result r = client_->send(req);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("Allow"), "POST");
}

TEST_F(BadApiInputTest, ReadEndpointsIgnoreJunkQueriesAndAnswerAfterTheAbuse) {
  // Garbage on the wire first: answered 400 (or dropped, for bytes that are not HTTP at all).
  const std::string close = "Connection: close\r\n";
  const std::vector<std::pair<std::string, std::string>> junk = {
      {"HELLO\r\n\r\n", "HTTP/1.1 400"},
      {"GET\r\n\r\n", "HTTP/1.1 400"},
      {"GET / HTTP/9.9\r\n" + close + "\r\n", "HTTP/1.1 400"},
      {"BREW /api/health HTTP/1.1\r\n" + close + "\r\n", "HTTP/1.1 400"},
      {"POST " + Path(kFailed, "retry") + " HTTP/1.1\r\n" + close + "Content-Length: abc\r\n\r\n",
       "HTTP/1.1 401"},
      {"PUT " + Path(kFailed, "args") + " HTTP/1.1\r\n" + close + "Authorization: " + auth_ +
           "\r\nContent-Length: 40\r\n\r\n{\"batchSize\":",
       "HTTP/1.1 408"},  // the body ends before its Content-Length: 408 after the request timeout
      {std::string("\x16\x03\x01\x02\x00", 5), ""},  // a TLS hello: dropped
  };
  for (const auto& [bytes, expected] : junk) {
    const std::string before = Snapshot();
    const std::string answer = RawExchange(server_->port(), bytes);
    ++requests_;
    EXPECT_EQ(answer.substr(0, expected.size()), expected) << bytes.substr(0, 80) << "\n" << answer;
    if (!expected.empty()) {
      EXPECT_NE(answer.find("{\"detail\":"), std::string::npos) << answer;
    }
    EXPECT_EQ(Snapshot(), before);
  }
  for (const std::string& target :
       {std::string("/api/background-migrations?limit=abc&name=%27%3B--"),
        std::string("/api/background-migrations/status?x=") + std::string(1000, 'y'),
        Path(kFailed) + "?events=-1", std::string("/api/health?%zz")}) {
    httplib::Result r = client_->Get(target.c_str());
    ++requests_;
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 200) << target << ": " << r->body.substr(0, 300);
  }
  const json list = json::parse(client_->Get("/api/background-migrations")->body);
  ASSERT_EQ(list["migrations"].size(), 4u);
  EXPECT_EQ(list["migrations"][0]["name"], kFailed);
  EXPECT_EQ(list["migrations"][0]["args"], (json{{"batchSize", 10}}));
  EXPECT_EQ(list["migrations"][0]["status"], "failed");
}

// ---------------------------------------------------------------------------------------------
// Args written straight into the table.

struct ArgsShape {
  std::string label;
  std::string args;  // the jsonb literal written into the args column
  // The failed_reason after "invalid args: " for a copy (with "@CURSORS@" for its cursor
  // columns), and for the backfill. A leading "*" means "starts with the rest".
  std::string copy_reason;
  std::string backfill_reason;
};

constexpr const char* kObject = "args must be a JSON object such as {\"batchSize\": 2500}, got ";
constexpr const char* kCopyKeys =
    "accepted args: batchSize, maxBatchBytes, targetBatchSeconds, pauseMs, minDate, maxDate";
constexpr const char* kBackfillKeys = "accepted args: batchSize, pauseMs, statementTimeoutMs";

std::vector<ArgsShape> ArgsShapes() {
  const std::string batch_copy = "batchSize must be an integer in [1, 500000], got ";
  const std::string batch_fill = "batchSize must be an integer in [1, 100000], got ";
  const auto both_batch = [&](std::string label, std::string args, std::string got) {
    return ArgsShape{std::move(label), std::move(args), batch_copy + got, batch_fill + got};
  };
  const auto both = [](std::string label, std::string args, std::string reason) {
    return ArgsShape{std::move(label), std::move(args), reason, reason};
  };
  const std::string long_string(5000, 'x');
  const std::string deep = std::string(1000, '[') + std::string(1000, ']');
  return {
      both("JsonString", R"("batchSize=2500")", kObject + std::string("\"batchSize=2500\"")),
      both("JsonArray", "[2500]", kObject + std::string("[2500]")),
      both("JsonNumber", "2500", kObject + std::string("2500")),
      both("JsonNull", "null", kObject + std::string("null")),
      both("JsonBool", "true", kObject + std::string("true")),
      both_batch("BatchSizeString", R"({"batchSize": "2500"})", "\"2500\""),
      both_batch("BatchSizeNegative", R"({"batchSize": -1})", "-1"),
      both_batch("BatchSizeZero", R"({"batchSize": 0})", "0"),
      both_batch("BatchSizeTooLarge", R"({"batchSize": 100000000})", "100000000"),
      both_batch("BatchSizeFloat", R"({"batchSize": 2.5})", "2.5"),
      both_batch("BatchSizeNull", R"({"batchSize": null})", "null"),
      both_batch("BatchSizeObject", R"({"batchSize": {"value": 2500}})", "{\"value\":2500}"),
      both_batch("BatchSizeArray", R"({"batchSize": [2500]})", "[2500]"),
      both_batch("BatchSizeBool", R"({"batchSize": true})", "true"),
      both_batch("BatchSizeLongString", "{\"batchSize\": \"" + long_string + "\"}",
                 "\"" + std::string(199, 'x') + "... (5002 bytes)"),
      both_batch("BatchSizeDeeplyNested", "{\"batchSize\": " + deep + "}",
                 std::string(200, '[') + "... (2000 bytes)"),
      // Postgres keeps the last of duplicate keys.
      both_batch("DuplicateKeyLastWins", R"({"batchSize": 2500, "batchSize": -7})", "-7"),
      both("UnknownKey", R"({"batchsize": 2500})", "*unknown arg 'batchsize' (value 2500); "),
      both("EmptyKey", R"({"": 1})", "*unknown arg '' (value 1); "),
      // Regression: Postgres keeps 1e400 exactly; the worker read the column as null and said
      // "got null", hiding what was wrong.
      both("NumberBeyondDouble", R"({"batchSize": 1e400})",
           "*the args column cannot be read (number overflow parsing '1000000"),
      both("PauseMsNegative", R"({"pauseMs": -5})",
           "pauseMs must be an integer in [0, 60000], got -5"),
      both("CursorColumnSql", R"({"cursorColumn": "id; DROP TABLE traces"})",
           "*unknown arg 'cursorColumn' (value \"id; DROP TABLE traces\"); accepted args: "
           "batchSize, "),
      {"TargetSecondsString", R"({"targetBatchSeconds": "2"})",
       "targetBatchSeconds must be a number in [0.1, 60.0], got \"2\"",
       std::string("unknown arg 'targetBatchSeconds' (value \"2\"); ") + kBackfillKeys},
      {"MaxBatchBytesTooSmall", R"({"maxBatchBytes": 1})",
       "maxBatchBytes must be an integer in [1048576, 1073741824], got 1",
       std::string("unknown arg 'maxBatchBytes' (value 1); ") + kBackfillKeys},
      // Regression: accepted by the regex, refused by Postgres only when the copy ran.
      {"MinDateNotOnTheCalendar", R"({"minDate": "2024-02-30"})",
       "minDate must be a date or time that exists, like \"2024-05-03\" or "
       "\"2024-05-03T10:00:00Z\", got \"2024-02-30\"",
       std::string("unknown arg 'minDate' (value \"2024-02-30\"); ") + kBackfillKeys},
      {"MinDateAfterMaxDate", R"({"minDate": "2024-06-01", "maxDate": "2024-01-01"})",
       "minDate must be before maxDate, got \"2024-06-01\" and \"2024-01-01\" (as UTC: "
       "2024-06-01T00:00:00.000Z and 2024-01-01T00:00:00.000Z)",
       "*unknown arg 'maxDate' (value \"2024-01-01\"); "},
  };
}

struct Script {
  const char* name;
  const char* cursors;  // its cursorColumn choices
  bool copy;
};
const Script kScripts[] = {
    {testing::kCopyTraces, "created_at, timestamp", true},
    {testing::kCopyObservations, "created_at, start_time", true},
    {testing::kCopyScores, "created_at, timestamp", true},
    {testing::kBackfillObservationCosts, "", false},
};

// A realistic saved cursor for `script`, kept through a failure.
std::string StateFor(const Script& s) {
  return s.copy
             ? R"({"cursor": {"column": "created_at", "value": "2024-05-03 10:00:00.000000", "id": "row-42"}})"
             : R"({"cursor": {"start_time": "2024-05-03 10:00:00.000000", "id": "o42"}})";
}

std::string Expected(const ArgsShape& shape, const Script& s) {
  std::string r = s.copy ? shape.copy_reason : shape.backfill_reason;
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"@CURSORS@", s.cursors}}) {
    if (const size_t at = r.find(from); at != std::string::npos) r.replace(at, from.size(), to);
  }
  return "invalid args: " + r;
}

class ArgsInTheTableTest : public ::testing::TestWithParam<ArgsShape> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    conn_.emplace(db_.Connect());
  }

  std::map<std::string, std::string> Env(const std::string& clickhouse_url = "",
                                         const std::string& clickhouse_db = "") {
    std::map<std::string, std::string> env = {{"DATABASE_URL", db_.url()},
                                              {"BGMIGRATE_LEASE_SECONDS", "5"},
                                              {"BGMIGRATE_POLL_SECONDS", "0.2"},
                                              {"BGMIGRATE_WORKER_ID", "bad-args-worker"},
                                              {"CLICKHOUSE_URL", clickhouse_url}};
    if (!clickhouse_db.empty()) env["CLICKHOUSE_DB"] = clickhouse_db;
    return env;
  }
  std::string Query(const std::string& sql, const std::vector<PgParam>& params = {}) {
    Result<PgResult> r = conn_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->rows() > 0 && !r->IsNull(0, 0) ? std::string(r->Get(0, 0)) : "NULL";
  }
  std::string Column(const std::string& name, const std::string& column) {
    return Query("SELECT " + column + "::text FROM background_migrations WHERE name = $1", {name});
  }

  TestDatabase db_;
  std::optional<PgConnection> conn_;
};

// Every built-in script gets the bad shape (each validates with its own schema); one worker run.
// The backfill's bad row runs under a name of its own, so that the observations copy, which
// waits for the built-in backfill (finished here), is tested too.
std::string RowName(const Script& s) {
  return s.copy ? s.name : "20241106_0000_backfill_observation_costs_by_hand";
}

TEST_P(ArgsInTheTableTest, TheMigrationFailsNamingTheKeyAndValueAndKeepsItsCursor) {
  const ArgsShape& shape = GetParam();
  ASSERT_TRUE(conn_
                  ->Run("INSERT INTO background_migrations (name, script, finished_at) "
                        "VALUES ($1, $1, now())",
                        {testing::kBackfillObservationCosts})
                  .ok());
  for (const Script& s : kScripts) {
    ASSERT_TRUE(conn_
                    ->Run("INSERT INTO background_migrations (name, script, args, state, "
                          "rows_processed) VALUES ($1, $2, $3::jsonb, $4::jsonb, 1234)",
                          {RowName(s), s.name, shape.args, StateFor(s)})
                    .ok())
        << shape.args.substr(0, 200);
  }
  const testing::ProcessResult worker =
      RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env());
  EXPECT_EQ(worker.exit_code, 1) << worker.err;  // 1: a migration failed
  for (const Script& s : kScripts) {
    const std::string name = RowName(s);
    SCOPED_TRACE(name);
    const std::string expected = Expected(shape, s);
    const std::string reason = Column(name, "failed_reason");
    const std::string wildcard = "invalid args: *";
    if (expected.starts_with(wildcard)) {
      const std::string prefix = "invalid args: " + expected.substr(wildcard.size());
      EXPECT_EQ(reason.substr(0, prefix.size()), prefix) << reason;
    } else {
      EXPECT_EQ(reason, expected);
    }
    EXPECT_LT(reason.size(), 600u) << "the reason repeats too much of the value";
    EXPECT_NE(Column(name, "failed_at"), "NULL");
    // Nothing else of the row moved: args as written, cursor and progress kept, lease released.
    EXPECT_EQ(Column(name, "state"), Query("SELECT $1::jsonb::text", {StateFor(s)}));
    EXPECT_EQ(Column(name, "args"), Query("SELECT $1::jsonb::text", {shape.args}));
    EXPECT_EQ(Column(name, "rows_processed"), "1234");
    EXPECT_EQ(Column(name, "worker_id"), "NULL");
    EXPECT_EQ(Column(name, "last_progress_at"), "NULL");
    EXPECT_EQ(Query("SELECT count(*) FROM background_migration_events WHERE migration_name = $1 "
                    "AND kind = 'batch'",
                    {name}),
              "0");
    EXPECT_EQ(Query("SELECT detail->>'reason' FROM background_migration_events "
                    "WHERE migration_name = $1 AND kind = 'failed'",
                    {name}),
              reason);
  }
  // `bgmigrate list` shows it too, and does not choke on the args.
  const testing::ProcessResult list = RunProcess(BGM_BINARY, {"list", "--json"}, Env());
  ASSERT_EQ(list.exit_code, 0) << list.err;
  const json rows = json::parse(list.out, nullptr, false);
  ASSERT_TRUE(rows.is_array()) << list.out.substr(0, 300);
  ASSERT_EQ(rows.size(), 5u);
  for (const json& row : rows) {
    EXPECT_EQ(row.value("status", ""),
              row["name"] == testing::kBackfillObservationCosts ? "finished" : "failed")
        << row.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(EveryShape, ArgsInTheTableTest, ::testing::ValuesIn(ArgsShapes()),
                         [](const ::testing::TestParamInfo<ArgsShape>& p) {
                           return p.param.label;
                         });

// One migration's bad args touch nobody else: the others (with their own args) run to the end
// on a real ClickHouse, and after the operator fixes the args and retries, the failed one
// finishes from its saved cursor.
class OneBadMigrationTest : public ::testing::TestWithParam<Script> {};

TEST_P(OneBadMigrationTest, OthersRunToTheEndAndAFixPlusRetryFinishesIt) {
  const Script& bad = GetParam();
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  TestClickHouse ch;
  ASSERT_TRUE(ch.ok());
  PgConnection conn = db.Connect();
  const auto query = [&](const std::string& sql, const std::vector<PgParam>& params) {
    Result<PgResult> r = conn.Exec(sql, params);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->rows() > 0 && !r->IsNull(0, 0) ? std::string(r->Get(0, 0)) : "NULL";
  };
  const std::map<std::string, std::string> env = {{"DATABASE_URL", db.url()},
                                                  {"CLICKHOUSE_URL", ch.url()},
                                                  {"CLICKHOUSE_DB", ch.database()},
                                                  {"BGMIGRATE_LEASE_SECONDS", "5"},
                                                  {"BGMIGRATE_POLL_SECONDS", "0.2"}};
  ASSERT_EQ(RunProcess(BGM_BINARY, {"migrate"}, env).exit_code, 0);
  ASSERT_TRUE(conn.Run("UPDATE background_migrations SET args = '{\"batchSize\": 2500}'").ok());
  ASSERT_TRUE(conn.Run("UPDATE background_migrations SET args = '{\"batchSize\": \"2500\"}' "
                       "WHERE name = $1",
                       {bad.name})
                  .ok());

  const testing::ProcessResult first = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, env);
  EXPECT_EQ(first.exit_code, 1) << first.err;
  const std::string range = bad.copy ? "500000" : "100000";
  EXPECT_EQ(query("SELECT failed_reason FROM background_migrations WHERE name = $1", {bad.name}),
            "invalid args: batchSize must be an integer in [1, " + range + "], got \"2500\"");
  for (const Script& s : kScripts) {
    if (s.name == bad.name) continue;
    SCOPED_TRACE(s.name);
    // The observations copy waits for the backfill (its prerequisite): pending, not failed.
    const bool blocked = bad.name == std::string(testing::kBackfillObservationCosts) &&
                         s.name == std::string(testing::kCopyObservations);
    EXPECT_EQ(query("SELECT CASE WHEN finished_at IS NOT NULL THEN 'finished' "
                    "WHEN failed_at IS NOT NULL THEN 'failed' ELSE 'pending' END "
                    "FROM background_migrations WHERE name = $1",
                    {s.name}),
              blocked ? "pending" : "finished");
    EXPECT_EQ(query("SELECT args::text FROM background_migrations WHERE name = $1", {s.name}),
              "{\"batchSize\": 2500}");
    EXPECT_EQ(query("SELECT failed_reason FROM background_migrations WHERE name = $1", {s.name}),
              "NULL");
  }

  // The seed's fix: edit args by hand, retry, and it runs.
  ASSERT_TRUE(
      conn.Run("UPDATE background_migrations SET args = '{\"batchSize\": 2500}' WHERE name = $1",
               {bad.name})
          .ok());
  const testing::ProcessResult retry = RunProcess(BGM_BINARY, {"retry", bad.name}, env);
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  const testing::ProcessResult second = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, env);
  EXPECT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(query("SELECT count(*) FROM background_migrations WHERE finished_at IS NOT NULL", {}),
            "4");
}

INSTANTIATE_TEST_SUITE_P(EachScript, OneBadMigrationTest, ::testing::ValuesIn(kScripts),
                         [](const ::testing::TestParamInfo<Script>& p) {
                           std::string n = p.param.name;
                           return n.substr(n.find('_', 9) + 1);
                         });

}  // namespace
}  // namespace bgm
