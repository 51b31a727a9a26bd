// Unit tests of the web layer without HTTP: ApiHandler on an in-memory control store and a fake
// clock (every endpoint, its refusals with their exact JSON, and that a refused request changes
// nothing), the rate/ETA estimate, ISO timestamps, the store pool, admin-key checks and the
// Prometheus text.
#include <gtest/gtest.h>

#include <atomic>

#include "common/timestamp.h"
#include "core/args.h"
#include "core/chunk_summary.h"
#include "core/readiness.h"
#include "core/summary.h"
#include "testing/memory_control_store.h"
#include "web/admin_auth.h"
#include "web/api.h"
#include "web/metrics.h"
#include "web/progress_rate.h"
#include "web/store_pool.h"
#include "web/ui_assets.h"

namespace bgm {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::MemoryControlStore;
using testing::MemoryDatabase;

constexpr const char* kKey = "s3cret-admin-key";
constexpr const char* kScript = "script_a";

// A migration whose only arg is batchSize in [1, 100000].
class ArgsOnlyMigration final : public BackgroundMigration {
 public:
  ArgsOnlyMigration() { schema_.Int("batchSize", 1, 100000); }
  Status Validate(const json& args) const override { return schema_.Validate(args); }
  Status Run(MigrationContext&) override { return Status::Ok(); }

 private:
  ArgsSchema schema_;
};

const Registry& TestRegistry() {
  static const Registry kRegistry({{kScript, "Copies test rows", {}, [] {
                                      return std::unique_ptr<BackgroundMigration>(
                                          new ArgsOnlyMigration());
                                    }}});
  return kRegistry;
}

// What the stores of one test share: whether the database is "down", and how many calls
// reached a store.
struct StoreProbe {
  std::atomic<bool> down{false};
  std::atomic<int> calls{0};
  std::atomic<int> opened{0};
};

// MemoryControlStore as PgControlStore looks from the outside: event times as ISO-8601 text
// (MemoryControlStore writes milliseconds), and kUnavailable for every call while `down`.
class PgLikeStore final : public ControlStore {
 public:
  PgLikeStore(MemoryDatabase& db, StoreProbe& probe) : inner_(db), probe_(probe) {}

  Result<bool> Register(const std::string& n, const std::string& s) override {
    if (Status d = Gate(); !d.ok()) return d;
    return inner_.Register(n, s);
  }
  Result<std::vector<MigrationRow>> List() override {
    if (Status d = Gate(); !d.ok()) return d;
    return inner_.List();
  }
  Result<MigrationRow> Get(const std::string& n) override {
    if (Status d = Gate(); !d.ok()) return d;
    return inner_.Get(n);
  }
  Result<std::vector<MigrationEvent>> Events(const std::string& n, int limit) override {
    if (Status d = Gate(); !d.ok()) return d;
    Result<std::vector<MigrationEvent>> events = inner_.Events(n, limit);
    if (!events.ok()) return events;
    for (MigrationEvent& e : *events) {
      e.at = FormatIsoTimestamp(std::stoll(e.at));
    }
    return events;
  }
  Result<std::vector<MigrationEvent>> AllEvents(const EventFilter& f) override {
    if (Status d = Gate(); !d.ok()) return d;
    Result<std::vector<MigrationEvent>> events = inner_.AllEvents(f);
    if (!events.ok()) return events;
    for (MigrationEvent& e : *events) {
      e.at = FormatIsoTimestamp(std::stoll(e.at));
    }
    return events;
  }
  Result<std::map<std::string, ChunkCounts>> CountChunks() override {
    if (Status d = Gate(); !d.ok()) return d;
    return inner_.CountChunks();
  }
  Result<std::vector<Chunk>> ListChunks(const std::string& n, const ChunkFilter& f) override {
    if (Status d = Gate(); !d.ok()) return d;
    return inner_.ListChunks(n, f);
  }
  Result<std::optional<Lease>> TryAcquire(const std::string& n, const std::string& w) override {
    return inner_.TryAcquire(n, w);
  }
  Result<Fence> Heartbeat(const std::string& n, const std::string& w) override {
    return inner_.Heartbeat(n, w);
  }
  Result<Fence> Checkpoint(const std::string& n, const std::string& w,
                           const BatchRecord& b) override {
    return inner_.Checkpoint(n, w, b);
  }
  Status SetTotalEstimate(const std::string& n, const std::string& w, int64_t rows) override {
    return inner_.SetTotalEstimate(n, w, rows);
  }
  Status Finish(const std::string& n, const std::string& w) override { return inner_.Finish(n, w); }
  Status Fail(const std::string& n, const std::string& w, const std::string& r) override {
    return inner_.Fail(n, w, r);
  }
  Status Release(const std::string& n, const std::string& w, const std::string& r) override {
    return inner_.Release(n, w, r);
  }
  Status SetWaiting(const std::string& n, const std::string& w, const std::string& r,
                    std::chrono::milliseconds retry_in) override {
    return inner_.SetWaiting(n, w, r, retry_in);
  }
  Status SetThrottled(const std::string& n, const std::string& w,
                      const std::optional<json>& reading) override {
    return inner_.SetThrottled(n, w, reading);
  }
  Status RecordEvent(const std::string& n, const std::string& k,
                     const std::optional<std::string>& w, const json& d) override {
    return inner_.RecordEvent(n, k, w, d);
  }
  Status Retry(const std::string& n, bool from_start, const std::string& actor) override {
    if (Status d = Gate(); !d.ok()) return d;
    return inner_.Retry(n, from_start, actor);
  }
  Status Pause(const std::string& n, const std::string& actor) override {
    if (Status d = Gate(); !d.ok()) return d;
    return inner_.Pause(n, actor);
  }
  Status Resume(const std::string& n, const std::string& actor) override {
    if (Status d = Gate(); !d.ok()) return d;
    return inner_.Resume(n, actor);
  }
  Status Skip(const std::string& n, const std::string& reason, const std::string& actor) override {
    if (Status d = Gate(); !d.ok()) return d;
    return inner_.Skip(n, reason, actor);
  }
  Status Cancel(const std::string& n, const std::string& reason,
                const std::string& actor) override {
    if (Status d = Gate(); !d.ok()) return d;
    return inner_.Cancel(n, reason, actor);
  }
  Status SetArgs(const std::string& n, const json& args, const std::string& actor) override {
    if (Status d = Gate(); !d.ok()) return d;
    return inner_.SetArgs(n, args, actor);
  }

 private:
  Status Gate() {
    probe_.calls++;
    if (probe_.down) return Unavailable("could not connect to Postgres at 127.0.0.1:1");
    return Status::Ok();
  }
  MemoryControlStore inner_;
  StoreProbe& probe_;
};

constexpr const char* kPending = "20240101_0000_pending";
constexpr const char* kFailed = "20240102_0000_failed";
constexpr const char* kFinished = "20240103_0000_finished";
constexpr const char* kRunning = "20240104_0000_running";
constexpr const char* kOrphan = "20240105_0000_orphan";  // its script is not in the registry

class WebApiTest : public ::testing::Test {
 protected:
  WebApiTest() { MakeHandler(kKey, true); }

  void SetUp() override {
    MemoryControlStore setup(db_);
    db_.Insert(kPending, kScript, json::object());
    db_.Insert(kFailed, kScript, {{"batchSize", 10}});
    db_.Insert(kFinished, kScript, json::object());
    db_.Insert(kRunning, kScript, json::object());
    db_.Insert(kOrphan, "gone_script", json::object());
    ASSERT_TRUE(setup.TryAcquire(kFailed, "w1")->has_value());
    ASSERT_TRUE(setup.Fail(kFailed, "w1", "source went away").ok());
    ASSERT_TRUE(setup.TryAcquire(kFinished, "w1")->has_value());
    ASSERT_TRUE(setup.Finish(kFinished, "w1").ok());
    // The running one: 1000 rows estimated, 100-row batches one second apart.
    ASSERT_TRUE(setup.TryAcquire(kRunning, "w2")->has_value());
    ASSERT_TRUE(setup.SetTotalEstimate(kRunning, "w2", 1000).ok());
    for (int i = 0; i < 3; ++i) {
      clock_.Advance(seconds(1));
      BatchRecord batch;
      batch.rows = 100;
      batch.state = {{"next", (i + 1) * 100}};
      ASSERT_TRUE(setup.Checkpoint(kRunning, "w2", batch).ok());
    }
  }

  void MakeHandler(const std::string& key, bool enabled) {
    api_.reset();
    pool_ = std::make_unique<StorePool>([this]() -> Result<std::unique_ptr<ControlStore>> {
      if (probe_.down) return Unavailable("could not connect to Postgres at 127.0.0.1:1");
      probe_.opened++;
      return std::unique_ptr<ControlStore>(new PgLikeStore(db_, probe_));
    });
    api_ = std::make_unique<ApiHandler>(ApiOptions{key, enabled, &TestRegistry()}, *pool_, clock_);
  }

  ApiResponse Call(const std::string& method, const std::string& target,
                   const std::string& body = "",
                   const std::string& authorization = std::string("Bearer ") + kKey) {
    return api_->Handle({method, target, authorization, body});
  }
  static json Body(const ApiResponse& r) { return json::parse(r.body); }
  static std::string Header(const ApiResponse& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return "";
  }
  static std::string Path(const std::string& name, const std::string& action = "") {
    return "/api/background-migrations/" + name + (action.empty() ? "" : "/" + action);
  }

  // Everything a refused request must leave as it was: every row and every event.
  std::string Snapshot() {
    json out = json::array();
    for (const char* n : {kPending, kFailed, kFinished, kRunning, kOrphan}) {
      out.push_back(db_.Row(n).ToJson());
    }
    return out.dump() + "/" + std::to_string(db_.AllEvents().size());
  }

  void ExpectError(const ApiResponse& r, int status, const std::string& error,
                   const std::string& detail) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_EQ(Body(r), (json{{"error", error}, {"detail", detail}})) << r.body;
  }

  FakeClock clock_;
  MemoryDatabase db_{clock_, seconds(60)};
  StoreProbe probe_;
  std::unique_ptr<StorePool> pool_;
  std::unique_ptr<ApiHandler> api_;
};

const std::string kNoName =
    "no background migration has that name (names are 1 to 200 letters, digits, '_', '.' or "
    "'-'); GET /api/background-migrations lists them";
const std::string kNoRoute =
    "there is no endpoint at this path; the API is under /api/background-migrations, the UI at /";

// --- Reads -----------------------------------------------------------------------------------

// GET /api/events: every migration's events newest first, filtered by migration and kinds,
// paged with `before`; a bad parameter is a 400 naming it and the accepted ones.
TEST_F(WebApiTest, EventsAcrossMigrationsAreFilteredAndPagedNewestFirst) {
  const std::vector<MigrationEvent> all = db_.AllEvents();
  ApiResponse r = Call("GET", "/api/events", "", "");
  ASSERT_EQ(r.status, 200) << r.body;
  json body = Body(r);
  ASSERT_EQ(body["events"].size(), all.size());
  EXPECT_EQ(body["events"][0]["id"], all.back().id) << "newest first";
  EXPECT_EQ(body["next_before"], nullptr);

  body =
      Body(Call("GET", std::string("/api/events?migration=") + kRunning + "&kind=batch", "", ""));
  ASSERT_EQ(body["events"].size(), 3u);
  for (const json& e : body["events"]) {
    EXPECT_EQ(e["migration_name"], kRunning);
    EXPECT_EQ(e["kind"], "batch");
  }
  body = Body(Call("GET", "/api/events?kind=failed,finished", "", ""));
  ASSERT_EQ(body["events"].size(), 2u);
  EXPECT_EQ(body["events"][0]["kind"], "finished");
  EXPECT_EQ(body["events"][1]["kind"], "failed");

  json page = Body(Call("GET", "/api/events?limit=2", "", ""));
  ASSERT_EQ(page["events"].size(), 2u);
  ASSERT_TRUE(page["next_before"].is_number());
  json next = Body(Call("GET", "/api/events?limit=2&before=" + page["next_before"].dump(), "", ""));
  ASSERT_EQ(next["events"].size(), 2u);
  EXPECT_EQ(next["events"][0]["id"].get<int64_t>(), page["events"][1]["id"].get<int64_t>() - 1);

  ExpectError(Call("GET", "/api/events?limit=0", "", ""), 400, "invalid query",
              "limit must be 1 to 1000, got '0'; query parameters: migration (a migration name; "
              "default all), kind (event kinds such as batch, failed, throttled, several "
              "separated by commas; default all), before (an event id: the page holds older "
              "ones; default the newest) and limit (1 to 1000, default 100)");
  EXPECT_EQ(Body(Call("GET", "/api/events?kind=Batch", "", ""))["detail"].get<std::string>().rfind(
                "unknown event kind (kinds are lowercase words with _) 'Batch'", 0),
            0u);
  EXPECT_EQ(Call("GET", "/api/events?sort=asc", "", "").status, 400);
  EXPECT_EQ(Call("POST", "/api/events", "", "").status, 405);
}

TEST_F(WebApiTest, HealthAnswersOkWhenTheStoreAnswers) {
  ApiResponse r = Call("GET", "/api/health", "", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Body(r), (json{{"status", "ok"}}));
}

TEST_F(WebApiTest, HealthAnswers503WhenTheStoreIsDown) {
  probe_.down = true;
  ApiResponse r = Call("GET", "/api/health", "", "");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Body(r)["status"], "unavailable");
  EXPECT_EQ(Body(r)["error"], "store unavailable");
}

TEST_F(WebApiTest, ListShowsEveryRowWithRateEtaAndSummary) {
  ApiResponse r = Call("GET", "/api/background-migrations", "", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Header(r, "Cache-Control"), "no-store");
  const json body = Body(r);
  EXPECT_EQ(body["enabled"], true);
  ASSERT_EQ(body["migrations"].size(), 5u);
  std::vector<std::string> names, statuses;
  for (const json& m : body["migrations"]) {
    names.push_back(m["name"]);
    statuses.push_back(m["status"]);
  }
  EXPECT_EQ(names, (std::vector<std::string>{kPending, kFailed, kFinished, kRunning, kOrphan}));
  EXPECT_EQ(statuses,
            (std::vector<std::string>{"pending", "failed", "finished", "running", "unknown"}));
  const json& running = body["migrations"][3];
  // Batches at +1 s, +2 s, +3 s of 100 rows: 200 rows over 2 s after the first.
  EXPECT_EQ(running["rate_rows_per_second"], 100.0);
  EXPECT_EQ(running["eta_seconds"], 7);  // (1000 - 300) / 100
  EXPECT_EQ(running["rows_processed"], 300);
  EXPECT_EQ(running["rows_total_estimate"], 1000);
  EXPECT_EQ(running["description"], "Copies test rows");
  EXPECT_EQ(body["migrations"][4]["description"], nullptr);
  for (size_t i : {0u, 1u, 2u, 4u}) {
    EXPECT_EQ(body["migrations"][i]["rate_rows_per_second"], nullptr) << i;
    EXPECT_EQ(body["migrations"][i]["eta_seconds"], nullptr) << i;
  }
  EXPECT_EQ(body["migrations"][1]["failed_reason"], "source went away");
  EXPECT_EQ(body["summary"]["status"], "FAILED");
}

TEST_F(WebApiTest, RateIsUnknownOnceTheLastBatchesAreOverAMinuteOld) {
  clock_.Advance(seconds(50));  // lease (60 s) still live, batches 50-52 s old
  ASSERT_TRUE(MemoryControlStore(db_).Heartbeat(kRunning, "w2").ok());
  clock_.Advance(seconds(11));
  ASSERT_TRUE(MemoryControlStore(db_).Heartbeat(kRunning, "w2").ok());
  const json running = Body(Call("GET", Path(kRunning), "", ""));
  EXPECT_EQ(running["status"], "running");
  EXPECT_EQ(running["rate_rows_per_second"], nullptr);
  EXPECT_EQ(running["eta_seconds"], nullptr);
}

TEST_F(WebApiTest, ListSaysWhenMigrationsAreDisabled) {
  MakeHandler(kKey, false);
  const json body = Body(Call("GET", "/api/background-migrations", "", ""));
  EXPECT_EQ(body["enabled"], false);
  EXPECT_EQ(body["summary"]["status"], "DISABLED");
}

TEST_F(WebApiTest, StatusIsTheSummaryOfAllRows) {
  ApiResponse r = Call("GET", "/api/background-migrations/status", "", "");
  ASSERT_EQ(r.status, 200);
  std::vector<MigrationRow> rows = *MemoryControlStore(db_).List();
  JudgeReadiness(rows, TestRegistry());  // the orphan row's script is unknown
  EXPECT_EQ(Body(r), Summarize(rows, true));
  EXPECT_EQ(Body(r)["counts"]["unknown"], 1);
  EXPECT_EQ(Body(r)["status"], "FAILED");
  EXPECT_EQ(Body(r)["counts"]["running"], 1);
  EXPECT_EQ(Body(r)["total"], 5);
}

TEST_F(WebApiTest, GetShowsOneRowWithItsRecentEventsNewestFirst) {
  ApiResponse r = Call("GET", Path(kRunning), "", "");
  ASSERT_EQ(r.status, 200) << r.body;
  const json body = Body(r);
  EXPECT_EQ(body["name"], kRunning);
  EXPECT_EQ(body["state"], (json{{"next", 300}}));
  ASSERT_EQ(body["events"].size(), 4u);  // acquired + 3 batches
  EXPECT_EQ(body["events"][0]["kind"], "batch");
  EXPECT_EQ(body["events"][3]["kind"], "acquired");
  EXPECT_EQ(body["events"][0]["at"], FormatIsoTimestamp(clock_.Now().time_since_epoch().count()));
  EXPECT_EQ(body["rate_rows_per_second"], 100.0);
}

// Four chunks of kRunning, one in each status; chunk 1 was retried after a timeout.
std::vector<Chunk> FourChunks() {
  std::vector<Chunk> c(4);
  c[0] = {0, nullptr, {{"id", 100}}, {{"id", 99}}, "done", "", 1, 100, ""};
  c[1] = {1, {{"id", 100}}, {{"id", 200}}, {{"id", 150}}, "running", "w2#0", 2, 50, "timeout"};
  c[2] = {2, {{"id", 200}}, {{"id", 300}}, nullptr, "failed", "", 3, 0, "cannot convert 'x'"};
  c[3] = {3, {{"id", 300}}, nullptr, nullptr, "pending", "", 0, 0, ""};
  return c;
}

TEST_F(WebApiTest, AChunkedMigrationShowsItsChunksAndTheRateOfEachWorker) {
  db_.SetChunks(kRunning, FourChunks());
  // A second worker's batch at +3 s: 40 rows in 400 ms.
  ASSERT_TRUE(MemoryControlStore(db_)
                  .RecordEvent(kRunning, "batch", "w3", {{"rows", 40}, {"ms", 400}})
                  .ok());
  const json expected = {
      {"pending", 1},
      {"running", 1},
      {"done", 1},
      {"failed", 1},
      {"total", 4},
      {"list",
       {{{"chunk", 1},
         {"lower", {{"id", 100}}},
         {"upper", {{"id", 200}}},
         {"status", "running"},
         {"worker_id", "w2#0"},
         {"attempts", 2},
         {"rows", 50},
         {"cursor", {{"id", 150}}},
         {"last_error", "timeout"}},
        {{"chunk", 2},
         {"lower", {{"id", 200}}},
         {"upper", {{"id", 300}}},
         {"status", "failed"},
         {"worker_id", nullptr},
         {"attempts", 3},
         {"rows", 0},
         {"cursor", nullptr},
         {"last_error", "cannot convert 'x'"}}}},
      {"list_truncated", false},
      // w2: 100-row batches at +1, +2 and +3 s; w3: one batch of 40 rows in 400 ms.
      {"workers",
       {{{"worker_id", "w2"}, {"rate_rows_per_second", 100.0}, {"rows", 300}, {"batches", 3}},
        {{"worker_id", "w3"}, {"rate_rows_per_second", 100.0}, {"rows", 40}, {"batches", 1}}}}};
  const json list = Body(Call("GET", "/api/background-migrations", "", ""));
  ASSERT_EQ(list["migrations"][3]["name"], kRunning);
  EXPECT_EQ(list["migrations"][3]["chunks"], expected);
  // The copy's rate sums the workers': 240 rows over the 2 s after the first batch.
  EXPECT_EQ(list["migrations"][3]["rate_rows_per_second"], 120.0);
  for (size_t i : {0u, 1u, 2u, 4u}) EXPECT_EQ(list["migrations"][i]["chunks"], nullptr) << i;
  const json one = Body(Call("GET", Path(kRunning), "", ""));
  EXPECT_EQ(one["chunks"], expected);
  EXPECT_EQ(Body(Call("GET", Path(kPending), "", ""))["chunks"], nullptr);
}

TEST_F(WebApiTest, ASummaryListsAtMostOneHundredRunningOrFailedChunks) {
  std::vector<Chunk> chunks;
  for (int i = 0; i < 150; ++i) {
    chunks.push_back({i, nullptr, nullptr, nullptr, i % 2 ? "failed" : "done", "", 1, 0, "e"});
  }
  db_.SetChunks(kFailed, chunks);  // 75 done, 75 failed
  json c = Body(Call("GET", Path(kFailed), "", ""))["chunks"];
  EXPECT_EQ(c["failed"], 75);
  EXPECT_EQ(c["list"].size(), 75u);
  EXPECT_EQ(c["list_truncated"], false);
  EXPECT_EQ(c["workers"], json::array());  // not running: no rate
  for (Chunk& chunk : chunks) chunk.status = "failed";
  db_.SetChunks(kFailed, chunks);
  c = Body(Call("GET", Path(kFailed), "", ""))["chunks"];
  EXPECT_EQ(c["failed"], 150);
  ASSERT_EQ(c["list"].size(), 100u);
  EXPECT_EQ(c["list"][99]["chunk"], 99);
  EXPECT_EQ(c["list_truncated"], true);
}

TEST_F(WebApiTest, TheChunksEndpointPagesThroughChunksInKeyOrder) {
  std::vector<Chunk> chunks = FourChunks();
  chunks.push_back({4, nullptr, nullptr, nullptr, "done", "", 1, 7, ""});
  db_.SetChunks(kPending, chunks);
  auto page = [&](const std::string& query) {
    ApiResponse r = Call("GET", Path(kPending, "chunks") + query, "", "");
    EXPECT_EQ(r.status, 200) << query << ": " << r.body;
    const json body = Body(r);
    std::vector<int> numbers;
    for (const json& c : body["chunks"]) numbers.push_back(c["chunk"]);
    return std::make_pair(numbers, body["next_after"]);
  };
  EXPECT_EQ(page("?limit=2"), std::make_pair(std::vector<int>{0, 1}, json(1)));
  EXPECT_EQ(page("?after=1&limit=2"), std::make_pair(std::vector<int>{2, 3}, json(3)));
  EXPECT_EQ(page("?after=3&limit=2"), std::make_pair(std::vector<int>{4}, json(nullptr)));
  EXPECT_EQ(page("?after=2&limit=2"), std::make_pair(std::vector<int>{3, 4}, json(nullptr)));
  EXPECT_EQ(page(""), std::make_pair(std::vector<int>{0, 1, 2, 3, 4}, json(nullptr)));
  EXPECT_EQ(page("?status=done"), std::make_pair(std::vector<int>{0, 4}, json(nullptr)));
  EXPECT_EQ(page("?status=running%2Cfailed"),
            std::make_pair(std::vector<int>{1, 2}, json(nullptr)));
  const json body = Body(Call("GET", Path(kPending, "chunks") + "?status=failed", "", ""));
  EXPECT_EQ(body["name"], kPending);
  EXPECT_EQ(body["counts"],
            (json{{"pending", 1}, {"running", 1}, {"done", 2}, {"failed", 1}, {"total", 5}}));
  EXPECT_EQ(body["chunks"][0]["last_error"], "cannot convert 'x'");
  // Without chunks: zero counts, no chunks.
  const json none = Body(Call("GET", Path(kFinished, "chunks"), "", ""));
  EXPECT_EQ(none["counts"]["total"], 0);
  EXPECT_EQ(none["chunks"], json::array());
}

TEST_F(WebApiTest, TheChunksEndpointRefusesABadQueryNamingIt) {
  const std::string usage =
      "; query parameters: status (pending, running, done or failed, several separated by "
      "commas; default all), after (a chunk number: the page starts after it; default -1) and "
      "limit (1 to 1000, default 100)";
  auto refused = [&](const std::string& query) {
    ApiResponse r = Call("GET", Path(kPending, "chunks") + query, "", "");
    EXPECT_EQ(r.status, 400) << query;
    EXPECT_EQ(Body(r)["error"], "invalid query") << query;
    return Body(r)["detail"].get<std::string>();
  };
  EXPECT_EQ(refused("?status=finished"), "unknown chunk status 'finished'" + usage);
  EXPECT_EQ(refused("?status=done,"), "unknown chunk status ''" + usage);
  EXPECT_EQ(refused("?limit=0"), "limit must be 1 to 1000, got '0'" + usage);
  EXPECT_EQ(refused("?limit=1001"), "limit must be 1 to 1000, got '1001'" + usage);
  EXPECT_EQ(refused("?limit=ten"), "limit must be 1 to 1000, got 'ten'" + usage);
  EXPECT_EQ(refused("?after=-2"), "after must be a chunk number (-1 or more), got '-2'" + usage);
  EXPECT_EQ(refused("?after=99999999999"),
            "after must be a chunk number (-1 or more), got '99999999999'" + usage);
  EXPECT_EQ(refused("?sort=desc"), "unknown query parameter 'sort'" + usage);
  EXPECT_EQ(refused("?status=%zz"), "malformed %-escape" + usage);
  EXPECT_EQ(Call("GET", Path("no_such_migration", "chunks"), "", "").status, 404);
  ApiResponse post = Call("POST", Path(kPending, "chunks"));
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(Header(post, "Allow"), "GET");
}

TEST_F(WebApiTest, ChangesAnswerWithTheChunkSummaryToo) {
  db_.SetChunks(kPending, FourChunks());
  ApiResponse paused = Call("POST", Path(kPending, "pause"));
  ASSERT_EQ(paused.status, 200) << paused.body;
  EXPECT_EQ(Body(paused)["migration"]["chunks"]["total"], 4);
  ApiResponse args = Call("PUT", Path(kFailed, "args"), R"({"batchSize": 5})");
  ASSERT_EQ(args.status, 200) << args.body;
  EXPECT_EQ(Body(args)["migration"]["chunks"], nullptr);
}

TEST(ChunkSummaryTest, TextCountsDoneOfTotalThenTheRest) {
  EXPECT_EQ(ChunkSummaryText({0, 2, 7, 1}), "chunks 7/10 done, 2 running, 1 failed");
  EXPECT_EQ(ChunkSummaryText({3, 0, 0, 0}), "chunks 0/3 done, 3 pending");
  EXPECT_EQ(ChunkSummaryText({0, 0, 4, 0}), "chunks 4/4 done");
}

TEST_F(WebApiTest, GetShowsAtMostFiftyEvents) {
  for (int i = 0; i < 70; ++i) {
    ASSERT_TRUE(MemoryControlStore(db_).RecordEvent(kPending, "note", std::nullopt, {}).ok());
  }
  EXPECT_EQ(Body(Call("GET", Path(kPending), "", ""))["events"].size(), 50u);
}

TEST_F(WebApiTest, GetOfAnUnknownMigrationIs404) {
  ExpectError(Call("GET", Path("20990101_nope"), "", ""), 404, "not found",
              "no background migration named '20990101_nope'");
}

TEST_F(WebApiTest, NamesThatAreNotNamesNeverReachTheStore) {
  const int calls = probe_.calls;
  for (const char* target : {
           "/api/background-migrations/..%2F..%2Fetc",
           "/api/background-migrations/..",
           "/api/background-migrations/x%27%3B%20DROP%20TABLE%20background_migrations%3B--",
           "/api/background-migrations/x';DROP",
           "/api/background-migrations/%00",
           "/api/background-migrations/caf%C3%A9",
       }) {
    ExpectError(Call("GET", target, "", ""), 404, "not found", kNoName);
    ExpectError(Call("POST", std::string(target) + "/pause"), 404, "not found", kNoName);
  }
  ExpectError(Call("GET", "/api/background-migrations/" + std::string(201, 'a'), "", ""), 404,
              "not found", kNoName);
  ExpectError(Call("POST", "/api/background-migrations/..%2F..%2Fetc/retry"), 404, "not found",
              kNoName);
  EXPECT_EQ(probe_.calls, calls);
}

TEST_F(WebApiTest, UnknownRoutesAre404) {
  for (const char* target :
       {"/api", "/api/nope", "/api/background-migrations/../../etc/passwd",
        "/api/background-migrations/a/b/c", "/nope", "/ui/..%2Fapi.cc", "/ui/missing.js",
        "relative", "/api//background-migrations", "/api/background-migrations/%zz"}) {
    ExpectError(Call("GET", target, "", ""), 404, "not found", kNoRoute);
  }
  ExpectError(Call("POST", Path(kFailed, "explode")), 404, "not found", kNoRoute);
}

TEST_F(WebApiTest, WrongMethodsAre405WithAllow) {
  struct Case {
    const char* method;
    std::string target;
    const char* allow;
  };
  for (const Case& c : std::vector<Case>{{"POST", "/api/background-migrations", "GET"},
                                         {"DELETE", Path(kFailed), "GET"},
                                         {"GET", Path(kFailed, "retry"), "POST"},
                                         {"PUT", Path(kFailed, "pause"), "POST"},
                                         {"POST", Path(kFailed, "args"), "PUT"},
                                         {"PATCH", Path(kFailed, "args"), "PUT"},
                                         {"POST", "/api/background-migrations/status", "GET"},
                                         {"POST", "/metrics", "GET"},
                                         {"DELETE", "/", "GET"}}) {
    const std::string before = Snapshot();
    ApiResponse r = Call(c.method, c.target, "{}");
    ExpectError(r, 405, "method not allowed",
                std::string("this endpoint answers ") + c.allow + " only");
    EXPECT_EQ(Header(r, "Allow"), c.allow) << c.target;
    EXPECT_EQ(Snapshot(), before);
  }
}

TEST_F(WebApiTest, QueryStringsAndTrailingSlashesAreIgnored) {
  EXPECT_EQ(Call("GET", "/api/background-migrations/?x=1", "", "").status, 200);
  EXPECT_EQ(Body(Call("GET", Path(kFailed) + "?verbose=1", "", ""))["name"], kFailed);
}

TEST_F(WebApiTest, StoreDownIs503) {
  probe_.down = true;
  ApiResponse r = Call("GET", "/api/background-migrations", "", "");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Body(r)["error"], "store unavailable");
  EXPECT_EQ(Body(r)["detail"],
            "could not connect to Postgres at 127.0.0.1:1; check that Postgres runs and "
            "DATABASE_URL points to it, then try again");
}

// --- Changes ---------------------------------------------------------------------------------

TEST_F(WebApiTest, RetryOfAFailedMigrationKeepsItsCursor) {
  ApiResponse r = Call("POST", Path(kFailed, "retry"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["message"], std::string(kFailed) + " will run again from its saved cursor");
  EXPECT_EQ(Body(r)["migration"]["status"], "pending");
  EXPECT_EQ(db_.Row(kFailed).status, MigrationStatus::kPending);
  const MigrationEvent last = db_.AllEvents().back();
  EXPECT_EQ(last.kind, "retried");
  EXPECT_EQ(last.detail, (json{{"from_start", false}, {"by", "api"}}));
}

TEST_F(WebApiTest, RetryFromStartRerunsAFinishedMigration) {
  ApiResponse r = Call("POST", Path(kFinished, "retry"), R"({"fromStart": true})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["message"], std::string(kFinished) + " will run again from the start");
  EXPECT_EQ(db_.Row(kFinished).status, MigrationStatus::kPending);
  EXPECT_EQ(db_.AllEvents().back().detail, (json{{"from_start", true}, {"by", "api"}}));
}

TEST_F(WebApiTest, RetryWithAnExplicitFalseIsAPlainRetry) {
  EXPECT_EQ(Call("POST", Path(kFailed, "retry"), R"({"fromStart": false})").status, 200);
  EXPECT_EQ(db_.AllEvents().back().detail["from_start"], false);
}

TEST_F(WebApiTest, RetryThatTheStateForbidsIs409AndChangesNothing) {
  const std::string before = Snapshot();
  ExpectError(Call("POST", Path(kPending, "retry")), 409, "conflict",
              std::string("cannot retry background migration ") + kPending +
                  ": it is pending; only a failed or cancelled migration can be retried (a "
                  "finished or skipped one with --from-start)");
  ExpectError(Call("POST", Path(kFinished, "retry"), "{}"), 409, "conflict",
              std::string("cannot retry background migration ") + kFinished +
                  ": it is finished; only a failed or cancelled migration can be retried (a "
                  "finished or skipped one with --from-start)");
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(WebApiTest, RetryOfAnUnknownMigrationIs404) {
  ExpectError(Call("POST", Path("20990101_nope", "retry")), 404, "not found",
              "no background migration named '20990101_nope'");
}

TEST_F(WebApiTest, BadRetryBodiesAre400AndChangeNothing) {
  struct Case {
    std::string body;
    std::string error;
    std::string detail;
  };
  const std::vector<Case> cases = {
      {R"({"fromStart":"yes"})", "invalid body", "fromStart must be true or false, got \"yes\""},
      {R"({"fromStart":1})", "invalid body", "fromStart must be true or false, got 1"},
      {R"({"fromStart":null})", "invalid body", "fromStart must be true or false, got null"},
      {R"({"fromStart":true,"force":1})", "invalid body",
       "unknown field 'force'; the body may only have fromStart (true or false)"},
      {R"({"from_start":true})", "invalid body",
       "unknown field 'from_start'; the body may only have fromStart (true or false)"},
      {R"([true])", "invalid body",
       "the body must be a JSON object such as {\"fromStart\": true}, or empty; got [true]"},
      {R"("fromStart")", "invalid body",
       "the body must be a JSON object such as {\"fromStart\": true}, or empty; got "
       "\"fromStart\""},
      {R"({"fromStart": tr)", "invalid JSON",
       "the body is not valid JSON (the error is at byte 17); send for example "
       "{\"fromStart\": true}"},
      {R"({"fromStart": true)", "invalid JSON",
       "the body is not valid JSON (the error is at byte 19); send for example "
       "{\"fromStart\": true}"},
      {"{\"fromStart\": true}}", "invalid JSON",
       "the body is not valid JSON (the error is at byte 20); send for example "
       "{\"fromStart\": true}"},
  };
  for (const Case& c : cases) {
    const std::string before = Snapshot();
    ExpectError(Call("POST", Path(kFailed, "retry"), c.body), 400, c.error, c.detail);
    EXPECT_EQ(Snapshot(), before) << c.body;
  }
}

TEST_F(WebApiTest, PauseAndResumeTakeNoBody) {
  const std::string before = Snapshot();
  ExpectError(Call("POST", Path(kPending, "pause"), R"({"now": true})"), 400, "invalid body",
              "POST pause takes no body; send it empty (unknown fields are refused, not "
              "ignored)");
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(WebApiTest, PauseThenResume) {
  ApiResponse paused = Call("POST", Path(kRunning, "pause"));
  ASSERT_EQ(paused.status, 200) << paused.body;
  EXPECT_EQ(Body(paused)["migration"]["status"], "paused");
  EXPECT_EQ(Body(paused)["message"],
            std::string(kRunning) + " paused; a running batch finishes first");
  EXPECT_EQ(db_.AllEvents().back().detail, (json{{"by", "api"}}));

  ExpectError(Call("POST", Path(kRunning, "pause")), 409, "conflict",
              std::string("cannot pause background migration ") + kRunning +
                  ": it is paused; only a pending or running one can be paused");

  ApiResponse resumed = Call("POST", Path(kRunning, "resume"));
  ASSERT_EQ(resumed.status, 200) << resumed.body;
  EXPECT_EQ(Body(resumed)["message"], std::string(kRunning) + " resumed");
  EXPECT_NE(db_.Row(kRunning).status, MigrationStatus::kPaused);

  ExpectError(Call("POST", Path(kPending, "resume")), 409, "conflict",
              std::string("cannot resume background migration ") + kPending +
                  ": it is pending; only a paused one can be resumed (a cancelled one is "
                  "run again with retry)");
  ExpectError(Call("POST", Path(kFinished, "pause")), 409, "conflict",
              std::string("cannot pause background migration ") + kFinished +
                  ": it is finished; only a pending or running one can be paused");
}

// Skip: needs a non-blank reason; refused while a worker holds the lease; a skipped migration
// is done (its reason kept, an event with the actor and the reason), and retry --from-start
// brings it back.
TEST_F(WebApiTest, SkipNeedsAReasonAndIsRefusedWhileAWorkerRunsIt) {
  const std::string before = Snapshot();
  ExpectError(Call("POST", Path(kPending, "skip")), 400, "invalid body",
              "skip needs a reason: send {\"reason\": \"migrated by hand in 2024\"}");
  ExpectError(Call("POST", Path(kPending, "skip"), R"({"reason": "  "})"), 400, "invalid body",
              "skip needs a reason that is not blank: say why no row needs copying (it is kept "
              "with the migration and in its events)");
  ExpectError(Call("POST", Path(kPending, "skip"), R"({"reason": 5})"), 400, "invalid body",
              "reason must be a string, got 5");
  ExpectError(Call("POST", Path(kPending, "skip"), R"({"reason": "x", "force": true})"), 400,
              "invalid body", "unknown field 'force'; the body may only have reason (a string)");
  ExpectError(Call("POST", Path(kPending, "skip"), R"({"reason": "x"})", ""), 401,
              "missing API key", "send the header 'Authorization: Bearer <ADMIN_API_KEY>'");
  ExpectError(Call("POST", Path(kRunning, "skip"), R"({"reason": "x"})"), 409, "conflict",
              std::string("cannot skip background migration ") + kRunning +
                  ": it is running; a finished one needs no skip, and a running one must stop "
                  "first: cancel or pause it, then skip it once its worker has let it go");
  ExpectError(Call("POST", Path(kFinished, "skip"), R"({"reason": "x"})"), 409, "conflict",
              std::string("cannot skip background migration ") + kFinished +
                  ": it is finished; a finished one needs no skip, and a running one must stop "
                  "first: cancel or pause it, then skip it once its worker has let it go");
  EXPECT_EQ(Snapshot(), before);

  ApiResponse r = Call("POST", Path(kFailed, "skip"), R"({"reason": "copied by hand"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["message"], std::string(kFailed) +
                                    " skipped: marked done without running; migrations that "
                                    "need it may run");
  EXPECT_EQ(Body(r)["migration"]["status"], "skipped");
  EXPECT_EQ(Body(r)["migration"]["skipped_reason"], "copied by hand");
  EXPECT_EQ(Body(r)["migration"]["failed_reason"], nullptr);
  EXPECT_EQ(db_.AllEvents().back().kind, "skipped");
  EXPECT_EQ(db_.AllEvents().back().detail, (json{{"by", "api"}, {"reason", "copied by hand"}}));
  ASSERT_EQ(Call("POST", Path(kFailed, "retry"), R"({"fromStart": true})").status, 200);
  EXPECT_EQ(db_.Row(kFailed).status, MigrationStatus::kPending);
  EXPECT_EQ(db_.Row(kFailed).skipped_reason, std::nullopt);
}

// Cancel: a running migration is told to stop (its next fenced write says so), is `cancelled`
// with its cursor kept, cannot be resumed or acquired, and `retry` makes it pending again.
TEST_F(WebApiTest, CancelStopsARunningMigrationAndRetryBringsItBack) {
  ApiResponse r = Call("POST", Path(kRunning, "cancel"), R"({"reason": "too slow today"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["message"], std::string(kRunning) +
                                    " cancelled; a running batch finishes first, the cursor is "
                                    "kept (retry runs it again)");
  EXPECT_EQ(Body(r)["migration"]["status"], "cancelled");
  EXPECT_EQ(Body(r)["migration"]["state"], (json{{"next", 300}}));
  EXPECT_EQ(db_.AllEvents().back().detail, (json{{"by", "api"}, {"reason", "too slow today"}}));
  MemoryControlStore worker(db_);
  Result<Fence> fence = worker.Heartbeat(kRunning, "w2");
  ASSERT_TRUE(fence.ok());
  EXPECT_TRUE(fence->paused) << "the holder stops after its batch";
  ASSERT_TRUE(worker.Release(kRunning, "w2", "cancelled").ok());
  EXPECT_FALSE(worker.TryAcquire(kRunning, "w3")->has_value());
  ExpectError(Call("POST", Path(kRunning, "resume")), 409, "conflict",
              std::string("cannot resume background migration ") + kRunning +
                  ": it is cancelled; only a paused one can be resumed (a cancelled one is run "
                  "again with retry)");
  ExpectError(Call("POST", Path(kRunning, "cancel")), 409, "conflict",
              std::string("cannot cancel background migration ") + kRunning +
                  ": it is cancelled; only a pending, running or paused one can be cancelled");
  ApiResponse plain = Call("POST", Path(kPending, "cancel"));  // no body: no reason
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_EQ(db_.AllEvents().back().detail, (json{{"by", "api"}, {"reason", nullptr}}));

  ASSERT_EQ(Call("POST", Path(kRunning, "retry")).status, 200);
  EXPECT_EQ(db_.Row(kRunning).status, MigrationStatus::kPending);
  EXPECT_EQ(db_.Row(kRunning).state, (json{{"next", 300}})) << "the cursor was kept";
  EXPECT_TRUE(worker.TryAcquire(kRunning, "w3")->has_value());
}

TEST_F(WebApiTest, SetArgsValidatesThenSaves) {
  ApiResponse r = Call("PUT", Path(kFailed, "args"), R"({"batchSize": 2500})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["message"], std::string("args of ") + kFailed +
                                    " set to {\"batchSize\":2500}; they take effect when it "
                                    "next starts");
  EXPECT_EQ(Body(r)["migration"]["args"], (json{{"batchSize", 2500}}));
  EXPECT_EQ(db_.Row(kFailed).args, (json{{"batchSize", 2500}}));
  const MigrationEvent last = db_.AllEvents().back();
  EXPECT_EQ(last.kind, "args_changed");
  EXPECT_EQ(last.detail,
            (json{{"old", {{"batchSize", 10}}}, {"new", {{"batchSize", 2500}}}, {"by", "api"}}));
  // An empty object clears them.
  EXPECT_EQ(Call("PUT", Path(kFailed, "args"), "{}").status, 200);
  EXPECT_EQ(db_.Row(kFailed).args, json::object());
}

TEST_F(WebApiTest, BadArgsAre400AndChangeNothing) {
  struct Case {
    std::string body;
    std::string error;
    std::string detail;
  };
  const std::vector<Case> cases = {
      {R"({"batchSize": -1})", "invalid args",
       "batchSize must be an integer in [1, 100000], got -1"},
      {R"({"batchSize": "2500"})", "invalid args",
       "batchSize must be an integer in [1, 100000], got \"2500\""},
      {R"({"batchSise": 2500})", "invalid args",
       "unknown arg 'batchSise' (value 2500); accepted args: batchSize"},
      {R"([1])", "invalid args",
       "args must be a JSON object such as {\"batchSize\": 2500}, got [1]"},
      {R"(null)", "invalid args",
       "args must be a JSON object such as {\"batchSize\": 2500}, got null"},
      {"", "invalid JSON",
       "the body is empty; send a JSON object, for example {\"batchSize\": 2500}"},
      {R"({"batchSize": 25)", "invalid JSON",
       "the body is not valid JSON (the error is at byte 17); send for example "
       "{\"batchSize\": 2500}"},
  };
  for (const Case& c : cases) {
    const std::string before = Snapshot();
    ExpectError(Call("PUT", Path(kFailed, "args"), c.body), 400, c.error, c.detail);
    EXPECT_EQ(Snapshot(), before) << c.body;
  }
}

// Regression: nlohmann throws out_of_range (not parse_error) for a number beyond a double,
// which the handler answered with 500.
TEST_F(WebApiTest, ANumberBeyondADoubleIs400NotA500) {
  const std::string before = Snapshot();
  ExpectError(Call("PUT", Path(kFailed, "args"), R"({"batchSize": 1e400})"), 400, "invalid JSON",
              "the body has a value this server cannot read (number overflow parsing '1e400'); "
              "send for example {\"batchSize\": 2500}");
  EXPECT_EQ(Snapshot(), before);
}

// Regression: a deeply nested body was dumped (recursively) into the error message.
TEST_F(WebApiTest, BodiesNestedDeeperThan32LevelsAre400BeforeParsing) {
  const std::string before = Snapshot();
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  ExpectError(Call("PUT", Path(kFailed, "args"), deep), 400, "invalid JSON",
              "the body nests arrays and objects 100000 levels deep; at most 32 are accepted; "
              "send for example {\"batchSize\": 2500}");
  ExpectError(Call("POST", Path(kFailed, "retry"), "{\"fromStart\": " + deep + "}"), 400,
              "invalid JSON",
              "the body nests arrays and objects 100001 levels deep; at most 32 are accepted; "
              "send for example {\"fromStart\": true}");
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(WebApiTest, ABodyWithANonJsonContentTypeIs415) {
  const std::string before = Snapshot();
  ApiRequest request{"PUT", Path(kFailed, "args"), std::string("Bearer ") + kKey,
                     R"({"batchSize": 5})", "text/plain; charset=utf-8"};
  ExpectError(api_->Handle(request), 415, "unsupported media type",
              "the body must be JSON sent with 'Content-Type: application/json', got "
              "Content-Type 'text/plain; charset=utf-8'");
  EXPECT_EQ(Snapshot(), before);
  // Without a body the Content-Type does not matter; with a JSON one the body is read.
  request = {"POST", Path(kFailed, "retry"), std::string("Bearer ") + kKey, "", "text/plain"};
  EXPECT_EQ(api_->Handle(request).status, 200);
  request = {"PUT", Path(kFailed, "args"), std::string("Bearer ") + kKey, R"({"batchSize": 5})",
             "Application/JSON ; charset=utf-8"};
  EXPECT_EQ(api_->Handle(request).status, 200);
}

// Regression: a bad value was echoed whole; a 900 KB string came back in the error.
TEST_F(WebApiTest, ABadValueIsCutTo200BytesInTheError) {
  const ApiResponse r =
      Call("PUT", Path(kFailed, "args"), "{\"batchSize\": \"" + std::string(900000, 'x') + "\"}");
  ExpectError(r, 400, "invalid args",
              "batchSize must be an integer in [1, 100000], got \"" + std::string(199, 'x') +
                  "... (900002 bytes)");
}

TEST_F(WebApiTest, SetArgsOfAnUnknownScriptIs409) {
  const std::string before = Snapshot();
  ExpectError(Call("PUT", Path(kOrphan, "args"), R"({"batchSize": 5})"), 409, "unknown script",
              std::string("migration ") + kOrphan +
                  " runs the script 'gone_script', which this server does not know, so its "
                  "args cannot be checked; known scripts: script_a");
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(WebApiTest, SetArgsOfAnUnknownMigrationIs404) {
  ExpectError(Call("PUT", Path("20990101_nope", "args"), R"({"batchSize": 5})"), 404, "not found",
              "no background migration named '20990101_nope'");
}

TEST_F(WebApiTest, BodiesOverOneMebibyteAre413) {
  const std::string before = Snapshot();
  const std::string big =
      "{\"batchSize\": 1, \"pad\": \"" + std::string(kMaxBodyBytes, 'x') + "\"}";
  ExpectError(Call("PUT", Path(kFailed, "args"), big), 413, "body too large",
              "request bodies are limited to 1 MiB");
  ExpectError(Call("POST", Path(kFailed, "retry"), std::string(kMaxBodyBytes + 1, ' ')), 413,
              "body too large", "request bodies are limited to 1 MiB");
  EXPECT_EQ(Snapshot(), before);
}

// --- Auth ------------------------------------------------------------------------------------

TEST_F(WebApiTest, ChangesWithoutAKeyAre401AndChangeNothing) {
  const std::string before = Snapshot();
  for (const char* auth : {"", "Bearer", "Bearer ", "Basic czNjcmV0", kKey}) {
    ApiResponse r = Call("POST", Path(kFailed, "retry"), "", auth);
    ExpectError(r, 401, "missing API key",
                "send the header 'Authorization: Bearer <ADMIN_API_KEY>'");
    EXPECT_EQ(Header(r, "WWW-Authenticate"), "Bearer");
  }
  for (const char* auth : {"Bearer wrong", "Bearer s3cret-admin-ke", "Bearer s3cret-admin-key2"}) {
    ApiResponse r = Call("PUT", Path(kFailed, "args"), R"({"batchSize": 5})", auth);
    ExpectError(r, 401, "invalid API key", "the bearer key is not the server's ADMIN_API_KEY");
    EXPECT_EQ(r.body.find(kKey), std::string::npos);
  }
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(WebApiTest, TheKeyIsCheckedBeforeTheBody) {
  ExpectError(Call("POST", Path(kFailed, "retry"), R"({"fromStart":"yes"})", ""), 401,
              "missing API key", "send the header 'Authorization: Bearer <ADMIN_API_KEY>'");
}

TEST_F(WebApiTest, WithoutAConfiguredKeyChangesAre403) {
  MakeHandler("", true);
  const std::string before = Snapshot();
  for (const char* auth : {"", "Bearer anything"}) {
    ExpectError(Call("POST", Path(kFailed, "retry"), "", auth), 403, "changes disabled",
                "changes through the API are disabled: set ADMIN_API_KEY for the server "
                "(bgmigrate web or up) and send it as 'Authorization: Bearer <key>'");
  }
  EXPECT_EQ(Snapshot(), before);
  EXPECT_EQ(Call("GET", "/api/background-migrations", "", "").status, 200);  // reads stay open
}

TEST(AdminAuthTest, AcceptsOnlyTheBearerKey) {
  AdminAuth auth("k3y");
  EXPECT_EQ(auth.Check("Bearer k3y"), AuthOutcome::kAllowed);
  EXPECT_EQ(auth.Check("bearer k3y"), AuthOutcome::kAllowed);
  EXPECT_EQ(auth.Check("  Bearer   k3y  "), AuthOutcome::kAllowed);
  EXPECT_EQ(auth.Check("Bearer K3Y"), AuthOutcome::kInvalid);
  EXPECT_EQ(auth.Check("Bearer k3y k3y"), AuthOutcome::kInvalid);
  EXPECT_EQ(auth.Check("Bearerk3y"), AuthOutcome::kMissing);
  EXPECT_EQ(auth.Check("k3y"), AuthOutcome::kMissing);
  EXPECT_EQ(auth.Check(""), AuthOutcome::kMissing);
  EXPECT_EQ(AdminAuth("").Check("Bearer "), AuthOutcome::kNotConfigured);
  EXPECT_FALSE(AdminAuth("").configured());
}

// --- Store pool ------------------------------------------------------------------------------

TEST_F(WebApiTest, StoresAreReusedAndABrokenOneIsDropped) {
  ASSERT_EQ(Call("GET", "/api/background-migrations", "", "").status, 200);
  ASSERT_EQ(Call("GET", "/api/background-migrations", "", "").status, 200);
  EXPECT_EQ(probe_.opened, 1);
  EXPECT_EQ(pool_->idle(), 1u);

  probe_.down = true;  // the open store's calls now fail with kUnavailable
  EXPECT_EQ(Call("POST", Path(kFailed, "retry")).status, 503);
  EXPECT_EQ(pool_->idle(), 0u);
  EXPECT_EQ(Call("GET", "/api/background-migrations", "", "").status, 503);  // cannot open
  probe_.down = false;
  EXPECT_EQ(Call("POST", Path(kFailed, "retry")).status, 200);
  EXPECT_EQ(probe_.opened, 2);
}

TEST(StorePoolTest, KeepsAtMostMaxIdleStores) {
  FakeClock clock;
  MemoryDatabase db(clock, seconds(60));
  int opened = 0;
  StorePool pool(
      [&]() -> Result<std::unique_ptr<ControlStore>> {
        ++opened;
        return std::unique_ptr<ControlStore>(new MemoryControlStore(db));
      },
      /*max_idle=*/2);
  {
    std::vector<BorrowedStore> held;
    for (int i = 0; i < 3; ++i) held.push_back(pool.Borrow().value());
    EXPECT_EQ(opened, 3);
  }
  EXPECT_EQ(pool.idle(), 2u);
  { BorrowedStore again = pool.Borrow().value(); }
  EXPECT_EQ(opened, 3);
}

// --- Metrics and UI through the handler ------------------------------------------------------

TEST_F(WebApiTest, MetricsAreServedAsPrometheusText) {
  ApiResponse r = Call("GET", "/metrics", "", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("bgmigrate_migration_status{name=\"20240104_0000_running\","
                        "status=\"running\"} 1\n"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("bgmigrate_lease_held{name=\"20240104_0000_running\",worker=\"w2\"} 1\n"),
            std::string::npos);
  EXPECT_NE(r.body.find("bgmigrate_background_migrations_enabled 1\n"), std::string::npos);
  EXPECT_EQ(r.body.find("bgmigrate_chunks{"), std::string::npos);  // no migration has chunks
}

TEST_F(WebApiTest, MetricsCountTheChunksOfEachChunkedMigration) {
  db_.SetChunks(kRunning, FourChunks());
  const std::string body = Call("GET", "/metrics", "", "").body;
  for (const char* status : {"pending", "running", "done", "failed"}) {
    EXPECT_NE(body.find(std::string("bgmigrate_chunks{name=\"20240104_0000_running\",status=\"") +
                        status + "\"} 1\n"),
              std::string::npos)
        << status << "\n"
        << body;
  }
  EXPECT_EQ(body.find("bgmigrate_chunks{name=\"20240101_0000_pending\""), std::string::npos);
}

TEST_F(WebApiTest, TheUiIsServedWithItsContentTypes) {
  ApiResponse index = Call("GET", "/", "", "");
  ASSERT_EQ(index.status, 200);
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_NE(index.body.find("<table"), std::string::npos);
  EXPECT_EQ(Call("GET", "/index.html", "", "").body, index.body);
  EXPECT_EQ(Call("HEAD", "/", "", "").status, 200);
  EXPECT_EQ(Call("GET", "/ui/app.js", "", "").content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(Call("GET", "/ui/style.css", "", "").content_type, "text/css; charset=utf-8");
  for (const EmbeddedFile& f : WebUiFiles()) {
    ApiResponse r = Call("GET", "/ui/" + std::string(f.name), "", "");
    EXPECT_EQ(r.status, 200) << f.name;
    EXPECT_EQ(r.body, f.contents);
  }
}

TEST(UiAssetsTest, NoFileUsesInnerHtmlOrAnotherOrigin) {
  ASSERT_NE(FindUiFile("index.html"), nullptr);
  ASSERT_NE(FindUiFile("app.js"), nullptr);
  ASSERT_NE(FindUiFile("style.css"), nullptr);
  for (const EmbeddedFile& f : WebUiFiles()) {
    EXPECT_EQ(f.contents.find("innerHTML"), std::string_view::npos) << f.name;
    EXPECT_EQ(f.contents.find("outerHTML"), std::string_view::npos) << f.name;
    EXPECT_EQ(f.contents.find("insertAdjacentHTML"), std::string_view::npos) << f.name;
    if (f.name.ends_with(".svg")) continue;  // its xmlns is a name, not a fetch
    // The SVG namespace (app.js draws the throughput chart) is a name too; no other URL.
    std::string text(f.contents);
    for (size_t at; (at = text.find("http://www.w3.org/2000/svg")) != std::string::npos;) {
      text.erase(at, std::string_view("http://www.w3.org/2000/svg").size());
    }
    EXPECT_EQ(text.find("http://"), std::string::npos) << f.name;
    EXPECT_EQ(f.contents.find("https://"), std::string_view::npos) << f.name;
    EXPECT_EQ(f.contents.find("localStorage"), std::string_view::npos) << f.name;
  }
}

// --- Status mapping --------------------------------------------------------------------------

TEST(HttpStatusForTest, MapsEveryCode) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kOk), 200);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(StatusCode::kFailedPrecondition), 409);
  EXPECT_EQ(HttpStatusFor(StatusCode::kLeaseLost), 409);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kDeadlineExceeded), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kResourceExhausted), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kCancelled), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInternal), 500);
}

TEST(MigrationNameTest, AcceptsOnlyTheNameAlphabet) {
  EXPECT_TRUE(IsValidMigrationName("20241024_1730_migrate_traces_from_pg_to_ch"));
  EXPECT_TRUE(IsValidMigrationName("a.b-c_D9"));
  EXPECT_TRUE(IsValidMigrationName(std::string(200, 'a')));
  EXPECT_FALSE(IsValidMigrationName(std::string(201, 'a')));
  EXPECT_FALSE(IsValidMigrationName(""));
  EXPECT_FALSE(IsValidMigrationName("."));
  EXPECT_FALSE(IsValidMigrationName(".."));
  EXPECT_FALSE(IsValidMigrationName("../etc"));
  EXPECT_FALSE(IsValidMigrationName("a b"));
  EXPECT_FALSE(IsValidMigrationName("a'b"));
  EXPECT_FALSE(IsValidMigrationName(std::string("a\0b", 3)));
}

// --- Rate and ETA ----------------------------------------------------------------------------

Clock::TimePoint At(int64_t ms) { return Clock::TimePoint(milliseconds(ms)); }

TEST(ProgressRateTest, UsesTheSpanFromTheOldestToTheNewestBatch) {
  const std::vector<BatchSample> s = {
      {At(10'000), 500, 0}, {At(12'000), 100, 0}, {At(14'000), 300, 0}};
  // 400 rows after the first, over 4 s.
  EXPECT_EQ(RowsPerSecond(s, At(15'000)), 100.0);
}

TEST(ProgressRateTest, IgnoresBatchesOlderThanTheWindow) {
  const std::vector<BatchSample> s = {
      {At(0), 1'000'000, 0}, {At(70'000), 100, 0}, {At(71'000), 100, 0}, {At(72'000), 100, 0}};
  EXPECT_EQ(RowsPerSecond(s, At(75'000)), 100.0);
  EXPECT_FALSE(RowsPerSecond(s, At(200'000)).has_value());
  EXPECT_EQ(RowsPerSecond(s, At(80'000), seconds(10)), 100.0);  // 71 s and 72 s only
}

TEST(ProgressRateTest, OneBatchUsesItsOwnDuration) {
  EXPECT_EQ(RowsPerSecond({{At(1'000), 500, 250}}, At(2'000)), 2000.0);
  EXPECT_FALSE(RowsPerSecond({{At(1'000), 500, 0}}, At(2'000)).has_value());
  EXPECT_FALSE(RowsPerSecond({}, At(2'000)).has_value());
}

TEST(ProgressRateTest, SimultaneousBatchesGiveNoRate) {
  EXPECT_FALSE(RowsPerSecond({{At(1'000), 5, 0}, {At(1'000), 5, 0}}, At(2'000)).has_value());
}

TEST(ProgressRateTest, BatchesStampedInTheFutureCountAsNow) {
  // Skewed clocks: the newest batch claims to be 5 s ahead of `now`.
  EXPECT_EQ(RowsPerSecond({{At(8'000), 100, 0}, {At(15'000), 200, 0}}, At(10'000)), 100.0);
}

TEST(ProgressRateTest, SamplesComeFromBatchEventsOnly) {
  std::vector<MigrationEvent> events(4);
  events[0].kind = "batch";
  events[0].at = "2024-10-24T17:30:02.000Z";
  events[0].detail = {{"rows", 100}, {"ms", 40}};
  events[1].kind = "acquired";
  events[1].at = "2024-10-24T17:30:01.000Z";
  events[2].kind = "batch";
  events[2].at = "2024-10-24T17:30:01.000Z";
  events[2].detail = {{"rows", 50}};
  events[3].kind = "batch";
  events[3].at = "not a time";
  events[3].detail = {{"rows", 7}};
  const std::vector<BatchSample> s = BatchSamples(events);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].rows, 50);  // oldest first
  EXPECT_EQ(s[1].rows, 100);
  EXPECT_EQ(s[1].duration_ms, 40);
  EXPECT_EQ(RowsPerSecond(s, At(*ParseTimestampMillis("2024-10-24T17:30:03.000Z"))), 100.0);
}

TEST(ProgressRateTest, RatesByWorkerGroupTheLastMinutesBatchesByWorker) {
  auto batch = [](const std::string& at, std::optional<std::string> worker, int64_t rows,
                  int64_t ms) {
    MigrationEvent e;
    e.kind = "batch";
    e.at = at;
    e.worker_id = std::move(worker);
    e.detail = {{"rows", rows}, {"ms", ms}};
    return e;
  };
  std::vector<MigrationEvent> events = {
      batch("2024-10-24T17:29:00.000Z", "a", 1000, 10),  // 60 s before now: out of the window
      batch("2024-10-24T17:29:30.000Z", "a", 100, 0),
      batch("2024-10-24T17:29:40.000Z", "a", 300, 0),
      batch("2024-10-24T17:29:50.000Z", "b", 50, 250),
      batch("2024-10-24T17:29:55.000Z", std::nullopt, 9, 9),  // no worker: left out
      batch("2024-10-24T17:29:10.000Z", "c", 5, 0),           // only one, and no duration
  };
  events.push_back(events[1]);
  events.back().kind = "acquired";
  const std::vector<WorkerRate> rates =
      RatesByWorker(events, At(*ParseTimestampMillis("2024-10-24T17:30:00.000Z")));
  ASSERT_EQ(rates.size(), 3u);
  EXPECT_EQ(rates[0].worker_id, "a");
  EXPECT_EQ(rates[0].rows_per_second, 30.0);  // 300 rows over the 10 s after the first
  EXPECT_EQ(rates[0].rows, 400);
  EXPECT_EQ(rates[0].batches, 2);
  EXPECT_EQ(rates[1].worker_id, "b");
  EXPECT_EQ(rates[1].rows_per_second, 200.0);  // 50 rows in 250 ms
  EXPECT_EQ(rates[2].worker_id, "c");
  EXPECT_FALSE(rates[2].rows_per_second.has_value());
  EXPECT_EQ(rates[2].rows, 5);
}

TEST(ProgressRateTest, EtaNeedsATotalAndAPositiveRate) {
  EXPECT_EQ(EtaSeconds(300, 1000, 100.0), 7.0);
  EXPECT_EQ(EtaSeconds(1200, 1000, 100.0), 0.0);  // past the estimate
  EXPECT_FALSE(EtaSeconds(300, std::nullopt, 100.0).has_value());
  EXPECT_FALSE(EtaSeconds(300, 1000, std::nullopt).has_value());
  EXPECT_FALSE(EtaSeconds(300, 1000, 0.0).has_value());
}

// --- Prometheus text -------------------------------------------------------------------------

TEST(MetricsTest, RendersAKnownStateExactly) {
  MigrationRow running;
  running.name = "20241024_1730_migrate_traces";
  running.status = MigrationStatus::kRunning;
  running.rows_processed = 4200;
  running.rows_total_estimate = 10000;
  running.last_progress_at = "2024-10-24T17:30:00.250Z";
  running.worker_id = "host-1-\"a\"";
  running.lease_live = true;
  MigrationRow failed;
  failed.name = "20241105_1200_backfill";
  failed.status = MigrationStatus::kFailed;
  failed.worker_id = "gone";  // no live lease: no lease line
  const std::string text = RenderMetrics(
      {{running, {120, 80, 100}, ChunkCounts{3, 2, 4, 1}}, {failed, {}, std::nullopt}},
      /*enabled=*/true);
  EXPECT_EQ(
      text,
      "# HELP bgmigrate_background_migrations_enabled 1 when workers may run background "
      "migrations (LANGFUSE_ENABLE_BACKGROUND_MIGRATIONS).\n"
      "# TYPE bgmigrate_background_migrations_enabled gauge\n"
      "bgmigrate_background_migrations_enabled 1\n"
      "# HELP bgmigrate_migration_status 1 for the current status of each background "
      "migration, 0 for the others.\n"
      "# TYPE bgmigrate_migration_status gauge\n"
      "bgmigrate_migration_status{name=\"20241024_1730_migrate_traces\",status=\"pending\"} 0\n"
      "bgmigrate_migration_status{name=\"20241024_1730_migrate_traces\",status=\"running\"} 1\n"
      "bgmigrate_migration_status{name=\"20241024_1730_migrate_traces\",status=\"waiting\"} 0\n"
      "bgmigrate_migration_status{name=\"20241024_1730_migrate_traces\",status=\"paused\"} 0\n"
      "bgmigrate_migration_status{name=\"20241024_1730_migrate_traces\",status=\"finished\"} 0\n"
      "bgmigrate_migration_status{name=\"20241024_1730_migrate_traces\",status=\"failed\"} 0\n"
      "bgmigrate_migration_status{name=\"20241024_1730_migrate_traces\",status=\"blocked\"} 0\n"
      "bgmigrate_migration_status{name=\"20241024_1730_migrate_traces\",status=\"gated\"} 0\n"
      "bgmigrate_migration_status{name=\"20241024_1730_migrate_traces\",status=\"unknown\"} 0\n"
      "bgmigrate_migration_status{name=\"20241024_1730_migrate_traces\",status=\"skipped\"} 0\n"
      "bgmigrate_migration_status{name=\"20241024_1730_migrate_traces\",status=\"cancelled\"} 0\n"
      "bgmigrate_migration_status{name=\"20241024_1730_migrate_traces\",status=\"throttled\"} 0\n"
      "bgmigrate_migration_status{name=\"20241105_1200_backfill\",status=\"pending\"} 0\n"
      "bgmigrate_migration_status{name=\"20241105_1200_backfill\",status=\"running\"} 0\n"
      "bgmigrate_migration_status{name=\"20241105_1200_backfill\",status=\"waiting\"} 0\n"
      "bgmigrate_migration_status{name=\"20241105_1200_backfill\",status=\"paused\"} 0\n"
      "bgmigrate_migration_status{name=\"20241105_1200_backfill\",status=\"finished\"} 0\n"
      "bgmigrate_migration_status{name=\"20241105_1200_backfill\",status=\"failed\"} 1\n"
      "bgmigrate_migration_status{name=\"20241105_1200_backfill\",status=\"blocked\"} 0\n"
      "bgmigrate_migration_status{name=\"20241105_1200_backfill\",status=\"gated\"} 0\n"
      "bgmigrate_migration_status{name=\"20241105_1200_backfill\",status=\"unknown\"} 0\n"
      "bgmigrate_migration_status{name=\"20241105_1200_backfill\",status=\"skipped\"} 0\n"
      "bgmigrate_migration_status{name=\"20241105_1200_backfill\",status=\"cancelled\"} 0\n"
      "bgmigrate_migration_status{name=\"20241105_1200_backfill\",status=\"throttled\"} 0\n"
      "# HELP bgmigrate_rows_processed Rows processed so far (reset by a retry from the "
      "start).\n"
      "# TYPE bgmigrate_rows_processed gauge\n"
      "bgmigrate_rows_processed{name=\"20241024_1730_migrate_traces\"} 4200\n"
      "bgmigrate_rows_processed{name=\"20241105_1200_backfill\"} 0\n"
      "# HELP bgmigrate_rows_total_estimate Estimated rows in total, when the migration "
      "has reported an estimate.\n"
      "# TYPE bgmigrate_rows_total_estimate gauge\n"
      "bgmigrate_rows_total_estimate{name=\"20241024_1730_migrate_traces\"} 10000\n"
      "# HELP bgmigrate_last_progress_timestamp_seconds Unix time of the last committed "
      "batch.\n"
      "# TYPE bgmigrate_last_progress_timestamp_seconds gauge\n"
      "bgmigrate_last_progress_timestamp_seconds{name=\"20241024_1730_migrate_traces\"} "
      "1729791000.25\n"
      "# HELP bgmigrate_lease_held 1 while the named worker holds a live lease on the "
      "migration.\n"
      "# TYPE bgmigrate_lease_held gauge\n"
      "bgmigrate_lease_held{name=\"20241024_1730_migrate_traces\",worker=\"host-1-\\\"a\\\"\"}"
      " 1\n"
      "# HELP bgmigrate_batch_duration_milliseconds Duration of recent batches (the last "
      "one, and the mean and max of the recent ones).\n"
      "# TYPE bgmigrate_batch_duration_milliseconds gauge\n"
      "bgmigrate_batch_duration_milliseconds{name=\"20241024_1730_migrate_traces\","
      "stat=\"last\"} 120\n"
      "bgmigrate_batch_duration_milliseconds{name=\"20241024_1730_migrate_traces\","
      "stat=\"mean\"} 100\n"
      "bgmigrate_batch_duration_milliseconds{name=\"20241024_1730_migrate_traces\","
      "stat=\"max\"} 120\n"
      "# HELP bgmigrate_chunks Chunks (key ranges) of a migration split into chunks, by "
      "status.\n"
      "# TYPE bgmigrate_chunks gauge\n"
      "bgmigrate_chunks{name=\"20241024_1730_migrate_traces\",status=\"pending\"} 3\n"
      "bgmigrate_chunks{name=\"20241024_1730_migrate_traces\",status=\"running\"} 2\n"
      "bgmigrate_chunks{name=\"20241024_1730_migrate_traces\",status=\"done\"} 4\n"
      "bgmigrate_chunks{name=\"20241024_1730_migrate_traces\",status=\"failed\"} 1\n");
}

TEST(MetricsTest, DisabledAndEmpty) {
  const std::string text = RenderMetrics({}, /*enabled=*/false);
  EXPECT_NE(text.find("\nbgmigrate_background_migrations_enabled 0\n"), std::string::npos);
  EXPECT_EQ(text.find("{"), std::string::npos);
}

TEST(MetricsTest, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
}

}  // namespace
}  // namespace bgm
