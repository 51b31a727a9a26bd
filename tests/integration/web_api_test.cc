// The web server over real HTTP on a real Postgres: every endpoint's success and refusals, the
// headers every response carries, a port already in use, a database that is down, and a retry
// through the API that a running worker (the real bgmigrate binary) picks up without a restart.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/pg_control_store.h"
#include "core/registry.h"
#include "testing/example_app.h"
#include "testing/process.h"
#include "testing/running_web_server.h"
#include "testing/test_database.h"
#include "web/api.h"
#include "web/server.h"

namespace bgm {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ChildProcess;
using testing::TestDatabase;

constexpr const char* kKey = "integration-admin-key";
constexpr const char* kBuiltin = testing::kBackfillObservationCosts;
constexpr const char* kFailed = "20240102_0000_copy_failed";
constexpr const char* kPending = "20240103_0000_copy_pending";

class WebServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    conn_.emplace(db_.Connect());
    for (const char* name : {kBuiltin, kFailed, kPending}) {
      ASSERT_TRUE(conn_
                      ->Run("INSERT INTO background_migrations (name, script) VALUES ($1, $2)",
                            {name, kBuiltin})
                      .ok());
    }
    ASSERT_TRUE(conn_
                    ->Run("UPDATE background_migrations SET args = '{\"batchSize\": 10}', "
                          "failed_at = now(), failed_reason = 'source went away', "
                          "started_at = now() - interval '1 minute', attempts = 1 "
                          "WHERE name = $1",
                          {kFailed})
                    .ok());
    server_.emplace(Options(kKey));
    ASSERT_GT(server_->port(), 0);
    client_.emplace("127.0.0.1", server_->port());
    client_->set_read_timeout(10, 0);
    client_->set_url_encode(false);  // send percent-escapes exactly as written
  }

  WebOptions Options(const std::string& key) {
    WebOptions o;
    o.bind = "127.0.0.1";
    o.port = 0;
    o.admin_api_key = key;
    o.enabled = true;
    o.factory = testing::PgStoreFactory(db_.url());
    o.registry = &testing::ExampleRegistry();
    return o;
  }

  httplib::Headers Auth(const std::string& key = kKey) {
    return {{"Authorization", "Bearer " + key}};
  }
  static json Body(const httplib::Result& r) { return json::parse(r->body); }
  static std::string Path(const std::string& name, const std::string& action = "") {
    return "/api/background-migrations/" + name + (action.empty() ? "" : "/" + action);
  }

  std::string Query(const std::string& sql, const std::vector<PgParam>& params = {}) {
    Result<PgResult> r = conn_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->rows() > 0 && !r->IsNull(0, 0) ? std::string(r->Get(0, 0)) : "NULL";
  }
  std::string Column(const std::string& name, const std::string& column) {
    return Query("SELECT " + column + "::text FROM background_migrations WHERE name = $1", {name});
  }
  // Every row and event, to check that a refused request changed nothing.
  std::string Snapshot() {
    return Query("SELECT json_agg(b ORDER BY name)::text FROM background_migrations b") + "/" +
           Query("SELECT count(*) FROM background_migration_events");
  }
  bool WaitFor(const std::function<bool()>& done, milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return done();
  }

  TestDatabase db_;
  std::optional<PgConnection> conn_;
  std::optional<testing::RunningWebServer> server_;
  std::optional<httplib::Client> client_;
};

TEST_F(WebServerTest, ListGetAndStatusAnswerFromTheDatabase) {
  httplib::Result list = client_->Get("/api/background-migrations");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200) << list->body;
  EXPECT_EQ(list->get_header_value("Content-Type"), "application/json");
  const json body = Body(list);
  EXPECT_EQ(body["enabled"], true);
  ASSERT_EQ(body["migrations"].size(), 3u);
  EXPECT_EQ(body["migrations"][0]["name"], kFailed);  // by name, so in run order
  EXPECT_EQ(body["migrations"][0]["status"], "failed");
  EXPECT_EQ(body["migrations"][0]["failed_reason"], "source went away");
  EXPECT_EQ(body["migrations"][0]["args"], (json{{"batchSize", 10}}));
  EXPECT_EQ(body["migrations"][1]["name"], kPending);
  EXPECT_EQ(body["migrations"][1]["status"], "pending");
  EXPECT_EQ(body["migrations"][2]["name"], kBuiltin);
  EXPECT_EQ(body["migrations"][2]["description"],
            testing::ExampleRegistry().Find(kBuiltin)->description);
  EXPECT_EQ(body["summary"]["status"], "FAILED");

  httplib::Result one = client_->Get(Path(kFailed).c_str());
  ASSERT_EQ(one->status, 200) << one->body;
  EXPECT_EQ(Body(one)["name"], kFailed);
  EXPECT_TRUE(Body(one)["events"].is_array());

  httplib::Result status = client_->Get("/api/background-migrations/status");
  ASSERT_EQ(status->status, 200);
  EXPECT_EQ(Body(status)["status"], "FAILED");
  EXPECT_EQ(Body(status)["counts"]["failed"], 1);
  EXPECT_EQ(Body(status)["counts"]["pending"], 2);

  httplib::Result health = client_->Get("/api/health");
  ASSERT_EQ(health->status, 200);
  EXPECT_EQ(Body(health), (json{{"status", "ok"}}));
}

TEST_F(WebServerTest, ABlockedMigrationNamesTheFailedPrerequisiteItWaitsOn) {
  // The observations copy has the cost backfill (kBuiltin, registered by SetUp) as its
  // prerequisite.
  const std::string copy = "20241024_1737_migrate_observations_from_pg_to_ch";
  const std::string backfill = kBuiltin;
  ASSERT_TRUE(
      conn_->Run("INSERT INTO background_migrations (name, script) VALUES ($1, $1)", {copy}).ok());
  ASSERT_TRUE(conn_
                  ->Run("UPDATE background_migrations SET failed_at = now(), "
                        "failed_reason = 'models missing' WHERE name = $1",
                        {backfill})
                  .ok());
  httplib::Result one = client_->Get(Path(copy).c_str());
  ASSERT_EQ(one->status, 200) << one->body;
  EXPECT_EQ(Body(one)["status"], "blocked");
  EXPECT_EQ(Body(one)["blocked_by"], backfill);
  EXPECT_EQ(Body(one)["blocked_by_status"], "failed");
  httplib::Result status = client_->Get("/api/background-migrations/status");
  EXPECT_EQ(Body(status)["counts"]["blocked"], 1);

  // Once the prerequisite is retried the copy is pending again and names what it waits for.
  ASSERT_EQ(client_->Post(Path(backfill, "retry").c_str(), Auth(), "", "application/json")->status,
            200);
  httplib::Result list = client_->Get("/api/background-migrations");
  ASSERT_EQ(list->status, 200) << list->body;
  const json body = Body(list);
  bool seen = false;
  for (const json& m : body["migrations"]) {
    if (m["name"] != copy) continue;
    seen = true;
    EXPECT_EQ(m["status"], "pending");
    EXPECT_EQ(m["blocked_by"], nullptr);
    EXPECT_EQ(m["waits_for"], backfill);
    EXPECT_EQ(m["waits_for_status"], "pending");
  }
  EXPECT_TRUE(seen);
}

TEST_F(WebServerTest, RunningMigrationsShowTheirRateFromBatchEvents) {
  ASSERT_TRUE(conn_
                  ->Run("UPDATE background_migrations SET worker_id = 'w1', locked_at = now(), "
                        "started_at = now(), rows_processed = 3000, rows_total_estimate = 10000 "
                        "WHERE name = $1",
                        {kPending})
                  .ok());
  // Three batches of 1000 rows, one second apart, the newest a second ago.
  ASSERT_TRUE(conn_
                  ->Run("INSERT INTO background_migration_events "
                        "(migration_name, at, kind, worker_id, detail) "
                        "SELECT $1, now() - (4 - g) * interval '1 second', 'batch', 'w1', "
                        "jsonb_build_object('rows', 1000, 'ms', 900) FROM generate_series(1, 3) g",
                        {kPending})
                  .ok());
  httplib::Result one = client_->Get(Path(kPending).c_str());
  ASSERT_EQ(one->status, 200) << one->body;
  EXPECT_EQ(Body(one)["status"], "running");
  EXPECT_EQ(Body(one)["rate_rows_per_second"], 1000.0);  // 2000 rows in the 2 s after the first
  EXPECT_EQ(Body(one)["eta_seconds"], 7);
}

// Chunks of kFailed as a chunked copy leaves them: [start, i000100) done, [i000100, i000200)
// running on w1#0 after a timeout, [i000200, i000300) failed for good, [i000300, end) pending.
void InsertChunks(PgConnection& conn, const std::string& name) {
  ASSERT_TRUE(conn.Run(R"sql(
      INSERT INTO background_migration_chunks (migration_name, chunk, lower_bound, upper_bound,
          status, worker_id, locked_at, attempts, rows_processed, cursor, last_error) VALUES
        ($1, 0, NULL, '{"id": "i000100"}', 'done', NULL, NULL, 1, 100, '{"id": "i000099"}', NULL),
        ($1, 1, '{"id": "i000100"}', '{"id": "i000200"}', 'running', 'w1#0', now(), 2, 40,
         '{"id": "i000140"}', 'timeout after 30 s'),
        ($1, 2, '{"id": "i000200"}', '{"id": "i000300"}', 'failed', NULL, NULL, 3, 0, NULL,
         'cannot convert ''x'' to UInt8'),
        ($1, 3, '{"id": "i000300"}', NULL, 'pending', NULL, NULL, 0, 0, NULL, NULL))sql",
                       {name})
                  .ok());
}

const json kRunningAndFailedChunks = {{{"chunk", 1},
                                       {"lower", {{"id", "i000100"}}},
                                       {"upper", {{"id", "i000200"}}},
                                       {"status", "running"},
                                       {"worker_id", "w1#0"},
                                       {"attempts", 2},
                                       {"rows", 40},
                                       {"cursor", {{"id", "i000140"}}},
                                       {"last_error", "timeout after 30 s"}},
                                      {{"chunk", 2},
                                       {"lower", {{"id", "i000200"}}},
                                       {"upper", {{"id", "i000300"}}},
                                       {"status", "failed"},
                                       {"worker_id", nullptr},
                                       {"attempts", 3},
                                       {"rows", 0},
                                       {"cursor", nullptr},
                                       {"last_error", "cannot convert 'x' to UInt8"}}};

TEST_F(WebServerTest, AChunkedMigrationShowsItsChunksFromTheChunksTable) {
  InsertChunks(*conn_, kFailed);
  const json expected = {{"pending", 1},
                         {"running", 1},
                         {"done", 1},
                         {"failed", 1},
                         {"total", 4},
                         {"list", kRunningAndFailedChunks},
                         {"list_truncated", false},
                         {"workers", json::array()}};
  httplib::Result list = client_->Get("/api/background-migrations");
  ASSERT_EQ(list->status, 200) << list->body;
  EXPECT_EQ(Body(list)["migrations"][0]["name"], kFailed);
  EXPECT_EQ(Body(list)["migrations"][0]["chunks"], expected);
  EXPECT_EQ(Body(list)["migrations"][1]["chunks"], nullptr);
  httplib::Result one = client_->Get(Path(kFailed).c_str());
  ASSERT_EQ(one->status, 200) << one->body;
  EXPECT_EQ(Body(one)["chunks"], expected);

  httplib::Result page = client_->Get((Path(kFailed, "chunks") + "?after=0&limit=2").c_str());
  ASSERT_EQ(page->status, 200) << page->body;
  EXPECT_EQ(Body(page)["chunks"], kRunningAndFailedChunks);
  EXPECT_EQ(Body(page)["next_after"], 2);
  EXPECT_EQ(Body(page)["counts"],
            (json{{"pending", 1}, {"running", 1}, {"done", 1}, {"failed", 1}, {"total", 4}}));
  httplib::Result some = client_->Get((Path(kFailed, "chunks") + "?status=done,pending").c_str());
  ASSERT_EQ(some->status, 200) << some->body;
  ASSERT_EQ(Body(some)["chunks"].size(), 2u);
  EXPECT_EQ(Body(some)["chunks"][0], (json{{"chunk", 0},
                                           {"lower", nullptr},
                                           {"upper", {{"id", "i000100"}}},
                                           {"status", "done"},
                                           {"worker_id", nullptr},
                                           {"attempts", 1},
                                           {"rows", 100},
                                           {"cursor", {{"id", "i000099"}}},
                                           {"last_error", nullptr}}));
  EXPECT_EQ(Body(some)["chunks"][1]["chunk"], 3);
  EXPECT_EQ(Body(some)["chunks"][1]["upper"], nullptr);
  EXPECT_EQ(Body(some)["next_after"], nullptr);
  httplib::Result bad = client_->Get((Path(kFailed, "chunks") + "?limit=5000").c_str());
  EXPECT_EQ(bad->status, 400);
}

TEST_F(WebServerTest, ARunningChunkedMigrationShowsTheRateOfEachWorker) {
  InsertChunks(*conn_, kPending);
  ASSERT_TRUE(conn_
                  ->Run("UPDATE background_migrations SET worker_id = 'w1', locked_at = now(), "
                        "started_at = now() WHERE name = $1",
                        {kPending})
                  .ok());
  // w1: three batches of 1000 rows one second apart; w2: one of 500 rows in 250 ms; and one
  // of w3 two minutes ago, out of the last minute.
  ASSERT_TRUE(conn_
                  ->RunScript("INSERT INTO background_migration_events "
                              "(migration_name, at, kind, worker_id, detail) "
                              "SELECT '" +
                              std::string(kPending) +
                              "', now() - (4 - g) * interval '1 second', 'batch', 'w1', "
                              "jsonb_build_object('rows', 1000, 'ms', 900) "
                              "FROM generate_series(1, 3) g; "
                              "INSERT INTO background_migration_events "
                              "(migration_name, at, kind, worker_id, detail) VALUES ('" +
                              kPending +
                              "', now() - interval '2 seconds', 'batch', 'w2', "
                              "'{\"rows\": 500, \"ms\": 250}'), ('" +
                              kPending +
                              "', now() - interval '2 minutes', 'batch', 'w3', "
                              "'{\"rows\": 7, \"ms\": 7}')")
                  .ok());
  httplib::Result one = client_->Get(Path(kPending).c_str());
  ASSERT_EQ(one->status, 200) << one->body;
  EXPECT_EQ(Body(one)["status"], "running");
  EXPECT_EQ(
      Body(one)["chunks"]["workers"],
      (json{
          {{"worker_id", "w1"}, {"rate_rows_per_second", 1000.0}, {"rows", 3000}, {"batches", 3}},
          {{"worker_id", "w2"}, {"rate_rows_per_second", 2000.0}, {"rows", 500}, {"batches", 1}}}));
  // The migration's rate sums them: 2500 rows in the 2 s after the first batch.
  EXPECT_EQ(Body(one)["rate_rows_per_second"], 1250.0);
  httplib::Result list = client_->Get("/api/background-migrations");
  EXPECT_EQ(Body(list)["migrations"][1]["chunks"]["workers"], Body(one)["chunks"]["workers"]);
}

TEST_F(WebServerTest, ListJsonAndTextOfTheCliCarryTheChunks) {
  InsertChunks(*conn_, kFailed);
  const std::map<std::string, std::string> env = {{"DATABASE_URL", db_.url()}};
  testing::ProcessResult json_list = testing::RunProcess(BGM_BINARY, {"list", "--json"}, env);
  ASSERT_EQ(json_list.exit_code, 0) << json_list.err;
  const json rows = json::parse(json_list.out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["name"], kFailed);
  EXPECT_EQ(rows[0]["chunks"], (json{{"pending", 1},
                                     {"running", 1},
                                     {"done", 1},
                                     {"failed", 1},
                                     {"total", 4},
                                     {"list", kRunningAndFailedChunks},
                                     {"list_truncated", false}}));
  EXPECT_EQ(rows[1]["chunks"], nullptr);
  testing::ProcessResult text = testing::RunProcess(BGM_BINARY, {"list"}, env);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("chunks 1/4 done, 1 running, 1 failed, 1 pending; source went away"),
            std::string::npos)
      << text.out;
  testing::ProcessResult status = testing::RunProcess(BGM_BINARY, {"status"}, env);
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find(std::string("  ") + kFailed +
                            ": chunks 1/4 done, 1 running, 1 failed, 1 pending\n"),
            std::string::npos)
      << status.out;
}

TEST_F(WebServerTest, EveryResponseCarriesTheSecurityHeadersAndNoCors) {
  for (const char* path : {"/", "/ui/app.js", "/api/background-migrations", "/nope", "/metrics"}) {
    httplib::Result r = client_->Get(path, {{"Origin", "http://evil.example"}});
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff") << path;
    EXPECT_EQ(r->get_header_value("X-Frame-Options"), "DENY") << path;
    EXPECT_NE(r->get_header_value("Content-Security-Policy").find("default-src 'self'"),
              std::string::npos)
        << path;
    EXPECT_FALSE(r->has_header("Access-Control-Allow-Origin")) << path;
  }
  httplib::Result preflight = client_->Options(Path(kFailed, "retry").c_str());
  ASSERT_TRUE(preflight);
  EXPECT_EQ(preflight->status, 405);
  EXPECT_FALSE(preflight->has_header("Access-Control-Allow-Origin"));
}

TEST_F(WebServerTest, TheUiAndMetricsAreServed) {
  httplib::Result index = client_->Get("/");
  ASSERT_EQ(index->status, 200);
  EXPECT_EQ(index->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(index->body.find("<table"), std::string::npos);
  EXPECT_EQ(client_->Get("/ui/app.js")->get_header_value("Content-Type"),
            "text/javascript; charset=utf-8");
  EXPECT_EQ(client_->Get("/ui/style.css")->get_header_value("Content-Type"),
            "text/css; charset=utf-8");

  httplib::Result metrics = client_->Get("/metrics");
  ASSERT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(metrics->body.find(std::string("bgmigrate_migration_status{name=\"") + kFailed +
                               "\",status=\"failed\"} 1\n"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("bgmigrate_background_migrations_enabled 1\n"), std::string::npos);
}

TEST_F(WebServerTest, RetryPauseResumeAndArgsChangeTheDatabase) {
  httplib::Result retry = client_->Post(Path(kFailed, "retry").c_str(), Auth(), "", "");
  ASSERT_EQ(retry->status, 200) << retry->body;
  EXPECT_EQ(Body(retry)["migration"]["status"], "pending");
  EXPECT_EQ(Column(kFailed, "failed_at"), "NULL");
  EXPECT_EQ(Column(kFailed, "args"), "{\"batchSize\": 10}");  // kept

  httplib::Result args = client_->Put(Path(kFailed, "args").c_str(), Auth(),
                                      R"({"batchSize": 2500})", "application/json");
  ASSERT_EQ(args->status, 200) << args->body;
  EXPECT_EQ(Column(kFailed, "args"), "{\"batchSize\": 2500}");
  EXPECT_EQ(Query("SELECT detail->>'by' FROM background_migration_events "
                  "WHERE kind = 'args_changed'"),
            "api");

  httplib::Result pause = client_->Post(Path(kPending, "pause").c_str(), Auth(), "", "");
  ASSERT_EQ(pause->status, 200) << pause->body;
  EXPECT_EQ(Body(pause)["migration"]["status"], "paused");
  EXPECT_NE(Column(kPending, "paused_at"), "NULL");

  httplib::Result resume = client_->Post(Path(kPending, "resume").c_str(), Auth(), "", "");
  ASSERT_EQ(resume->status, 200) << resume->body;
  EXPECT_EQ(Column(kPending, "paused_at"), "NULL");

  httplib::Result from_start = client_->Post(Path(kFailed, "retry").c_str(), Auth(),
                                             R"({"fromStart": true})", "application/json");
  EXPECT_EQ(from_start->status, 409);  // pending now: nothing to retry
}

TEST_F(WebServerTest, RefusalsAreJsonWithTheRightStatusAndChangeNothing) {
  struct Case {
    std::string method;
    std::string path;
    std::string body;
    httplib::Headers headers;
    int status;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"POST", Path(kFailed, "retry"), "", {}, 401, "missing API key"},
      {"POST", Path(kFailed, "retry"), "", Auth("wrong"), 401, "invalid API key"},
      {"PUT", Path(kFailed, "args"), R"({"batchSize": -1})", Auth(), 400, "invalid args"},
      {"PUT", Path(kFailed, "args"), R"({"batchSize": 25)", Auth(), 400, "invalid JSON"},
      {"POST", Path(kFailed, "retry"), R"({"fromStart":"yes"})", Auth(), 400, "invalid body"},
      {"POST", Path(kFailed, "retry"), R"({"force":true})", Auth(), 400, "invalid body"},
      {"POST", Path("20990101_nope", "retry"), "", Auth(), 404, "not found"},
      {"PUT", Path("20990101_nope", "args"), "{}", Auth(), 404, "not found"},
      {"POST", Path(kPending, "retry"), "", Auth(), 409, "conflict"},
      {"POST", Path(kPending, "resume"), "", Auth(), 409, "conflict"},
      {"GET", Path(kFailed, "retry"), "", Auth(), 405, "method not allowed"},
      {"DELETE", Path(kFailed), "", Auth(), 405, "method not allowed"},
      {"GET", "/api/background-migrations/..%2F..%2Fetc%2Fpasswd", "", {}, 404, "not found"},
      {"GET",
       "/api/background-migrations/x%27%3B%20DROP%20TABLE%20background_migrations%3B--",
       "",
       {},
       404,
       "not found"},
      {"GET", Path("20990101_nope"), "", {}, 404, "not found"},
      {"GET", "/api/nothing-here", "", {}, 404, "not found"},
  };
  for (const Case& c : cases) {
    const std::string before = Snapshot();
    httplib::Request req;
    req.method = c.method;
    req.path = c.path;
    req.headers = c.headers;
    req.body = c.body;
    if (!c.body.empty()) req.set_header("Content-Type", "application/json");
    httplib::Result r = client_->send(req);
    ASSERT_TRUE(r) << c.method << " " << c.path;
    EXPECT_EQ(r->status, c.status) << c.method << " " << c.path << ": " << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json") << c.path;
    const json body = json::parse(r->body, nullptr, false);
    EXPECT_EQ(body.value("error", ""), c.error) << c.path << ": " << r->body;
    EXPECT_FALSE(body.value("detail", "").empty()) << c.path;
    EXPECT_EQ(r->body.find(kKey), std::string::npos);
    EXPECT_EQ(Snapshot(), before) << c.method << " " << c.path;
  }
  EXPECT_EQ(Query("SELECT count(*) FROM background_migrations"), "3");  // the table survived
}

TEST_F(WebServerTest, BodiesOverOneMebibyteAre413Json) {
  const std::string before = Snapshot();
  const std::string big = "{\"pad\": \"" + std::string(2 * kMaxBodyBytes, 'x') + "\"}";
  httplib::Result r = client_->Put(Path(kFailed, "args").c_str(), Auth(), big, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(json::parse(r->body, nullptr, false),
            (json{{"error", "body too large"}, {"detail", "request bodies are limited to 1 MiB"}}))
      << r->body;
  EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(WebServerTest, WithoutAnAdminKeyChangesAre403) {
  testing::RunningWebServer keyless(Options(""));
  ASSERT_GT(keyless.port(), 0);
  httplib::Client client("127.0.0.1", keyless.port());
  const std::string before = Snapshot();
  httplib::Result r = client.Post(Path(kFailed, "retry").c_str(), Auth(), "", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(Body(r)["error"], "changes disabled");
  EXPECT_NE(Body(r)["detail"].get<std::string>().find("set ADMIN_API_KEY"), std::string::npos);
  EXPECT_EQ(Snapshot(), before);
  EXPECT_EQ(client.Get("/api/background-migrations")->status, 200);
}

TEST_F(WebServerTest, APortInUseIsAClearError) {
  WebOptions options = Options(kKey);
  options.port = server_->port();
  const Status s = RunWebServer(options, std::stop_token());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "port " + std::to_string(server_->port()) +
                             " on 127.0.0.1 is in use; set BGMIGRATE_PORT to a free port (0 "
                             "picks one)");
}

TEST_F(WebServerTest, ADatabaseThatIsDownIs503) {
  WebOptions options = Options(kKey);
  options.factory = testing::PgStoreFactory("host=127.0.0.1 port=1 dbname=nope connect_timeout=2");
  testing::RunningWebServer down(options);
  ASSERT_GT(down.port(), 0);
  httplib::Client client("127.0.0.1", down.port());
  httplib::Result health = client.Get("/api/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_EQ(Body(health)["status"], "unavailable");
  httplib::Result list = client.Get("/api/background-migrations");
  EXPECT_EQ(list->status, 503);
  EXPECT_EQ(Body(list)["error"], "store unavailable");
  EXPECT_EQ(down.Stop().code(), StatusCode::kOk);
}

TEST_F(WebServerTest, StopsWhenAsked) {
  const int port = server_->port();
  EXPECT_TRUE(server_->Stop().ok());
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1, 0);
  EXPECT_FALSE(client.Get("/api/health"));
}

// The seed's promise: restart a failed migration from the UI and a running worker (not a
// restarted one) picks it up.
TEST_F(WebServerTest, ARetryThroughTheApiIsPickedUpByARunningWorker) {
  // Only the built-in migration stays runnable.
  ASSERT_TRUE(conn_->Run("DELETE FROM background_migrations WHERE name <> $1", {kBuiltin}).ok());
  ChildProcess worker(BGM_BINARY, {"worker"},
                      {{"DATABASE_URL", db_.url()},
                       {"BGMIGRATE_POLL_SECONDS", "0.2"},
                       {"BGMIGRATE_LEASE_SECONDS", "2"},
                       {"BGMIGRATE_WORKER_ID", "web-test-worker"}});
  // The worker is alive and polling once it has run the migration to its end.
  ASSERT_TRUE(WaitFor([&] { return Column(kBuiltin, "finished_at") != "NULL"; }, seconds(30)))
      << worker.Stderr();

  // The migration fails (as if a batch had hit an error) ...
  ASSERT_TRUE(conn_
                  ->Run("UPDATE background_migrations SET finished_at = NULL, failed_at = now(), "
                        "failed_reason = 'simulated failure' WHERE name = $1",
                        {kBuiltin})
                  .ok());
  ASSERT_EQ(Body(client_->Get(Path(kBuiltin).c_str()))["status"], "failed");

  // ... an operator retries it through the API ...
  httplib::Result retry = client_->Post(Path(kBuiltin, "retry").c_str(), Auth(), "", "");
  ASSERT_EQ(retry->status, 200) << retry->body;

  // ... and the same worker process runs it again to the end.
  ASSERT_TRUE(WaitFor(
      [&] {
        return Column(kBuiltin, "finished_at") != "NULL" && Column(kBuiltin, "failed_at") == "NULL";
      },
      seconds(30)))
      << worker.Stderr();
  EXPECT_FALSE(worker.Wait(milliseconds(0)).has_value()) << "the worker exited";
  EXPECT_EQ(Query("SELECT count(*) FROM background_migration_events WHERE kind = 'acquired' "
                  "AND worker_id = 'web-test-worker' AND migration_name = $1",
                  {kBuiltin}),
            "2");
  EXPECT_EQ(Query("SELECT detail->>'by' FROM background_migration_events WHERE kind = 'retried'"),
            "api");
  const json shown = Body(client_->Get(Path(kBuiltin).c_str()));
  EXPECT_EQ(shown["status"], "finished");
  EXPECT_EQ(shown["events"][0]["kind"], "finished");

  worker.Signal(SIGTERM);
  EXPECT_EQ(worker.Wait(seconds(10)), 0);
}

}  // namespace
}  // namespace bgm
