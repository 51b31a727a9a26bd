// The worker as operators run it: real bgmigrate processes against a real Postgres, several at
// once, killed with SIGKILL, stopped with SIGTERM, disabled, retried; the cost backfill as the
// migration under test.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "testing/example_app.h"
#include "testing/process.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ChildProcess;
using testing::RunProcess;
using testing::TestDatabase;

constexpr const char* kName = testing::kBackfillObservationCosts;
constexpr int kRows = 20000;

class WorkerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    conn_.emplace(db_.Connect());
    // 50 observations share each start_time, so the keyset cursor must break ties by id.
    ASSERT_TRUE(conn_
                    ->RunScript(R"sql(
      INSERT INTO models (id, project_id, model_name, match_pattern, input_price, output_price,
                          total_price) VALUES
        ('m-gpt4o', NULL, 'gpt-4o', '^gpt-4o$', 0.0000025, 0.00001, NULL),
        ('m-gpt4o-p1', 'p1', 'gpt-4o', '^gpt-4o$', 0.000002, 0.000008, NULL),
        ('m-claude', NULL, 'claude', '^claude', NULL, NULL, 0.00001);
      INSERT INTO observations (id, project_id, type, start_time, model, prompt_tokens,
                                completion_tokens, total_tokens, input_cost)
      SELECT 'o' || lpad(g::text, 6, '0'), CASE WHEN g % 2 = 0 THEN 'p1' ELSE 'p2' END,
             'GENERATION', timestamp '2024-05-02 12:00:00' + (g / 50) * interval '1 second',
             CASE g % 4 WHEN 0 THEN 'gpt-4o' WHEN 1 THEN 'claude-3' WHEN 2 THEN NULL
                        ELSE 'unknown-model' END,
             g % 100, (g % 7) - 1, g % 100 + (g % 7) - 1,
             CASE WHEN g % 10 = 5 THEN 1.5 END
      FROM generate_series(1, 20000) g;
    )sql")
                    .ok());
    ASSERT_EQ(Cli({"migrate"}).exit_code, 0);
    // These tests exercise the engine with the Postgres-only backfill; the ClickHouse copies
    // (tests/integration/copy_test.cc) are paused out of the way.
    ASSERT_TRUE(
        conn_->Run("UPDATE background_migrations SET paused_at = now() WHERE name <> $1", {kName})
            .ok());
  }

  // The backfill's entry of `list --json`.
  nlohmann::json Listed() {
    for (const nlohmann::json& row : nlohmann::json::parse(Cli({"list", "--json"}).out)) {
      if (row["name"] == kName) return row;
    }
    ADD_FAILURE() << kName << " not listed";
    return nullptr;
  }

  std::map<std::string, std::string> Env(const std::string& worker) {
    return {{"DATABASE_URL", db_.url()},
            {"BGMIGRATE_LEASE_SECONDS", "2"},
            {"BGMIGRATE_POLL_SECONDS", "0.2"},
            {"BGMIGRATE_WORKER_ID", worker}};
  }

  testing::ProcessResult Cli(const std::vector<std::string>& args,
                             std::map<std::string, std::string> extra = {}) {
    auto env = Env("cli");
    for (auto& [k, v] : extra) env[k] = v;
    return RunProcess(BGM_BINARY, args, env);
  }

  void SetArgsSql(const nlohmann::json& args) {
    ASSERT_TRUE(conn_
                    ->Run("UPDATE background_migrations SET args = $1::jsonb WHERE name = $2",
                          {args.dump(), kName})
                    .ok());
  }

  std::string Query(const std::string& sql) {
    Result<PgResult> r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->rows() > 0 ? std::string(r->Get(0, 0)) : "";
  }
  int64_t RowsProcessed() {
    return std::stoll(Query(std::string("SELECT rows_processed FROM background_migrations "
                                        "WHERE name = '") +
                            kName + "'"));
  }
  bool WaitForRows(int64_t at_least, milliseconds timeout = milliseconds(30000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (RowsProcessed() >= at_least) return true;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return false;
  }
  // Batch events in order, as (worker, from, to, rows).
  std::vector<nlohmann::json> Batches() {
    Result<PgResult> r = conn_->Exec(
        "SELECT worker_id, detail::text FROM background_migration_events "
        "WHERE migration_name = $1 AND kind = 'batch' ORDER BY id",
        {kName});
    std::vector<nlohmann::json> out;
    for (int i = 0; i < r->rows(); ++i) {
      nlohmann::json d = nlohmann::json::parse(r->Get(i, 1));
      d["worker"] = std::string(r->Get(i, 0));
      out.push_back(d);
    }
    return out;
  }
  int CountEvents(const std::string& kind) {
    return std::stoi(Query("SELECT count(*) FROM background_migration_events WHERE kind = '" +
                           kind + "' AND migration_name = '" + kName + "'"));
  }
  // The priced result must match what the prices say, row for row.
  void ExpectAllPriced() {
    EXPECT_EQ(Query("SELECT count(*) FROM observations WHERE internal_model_id = 'm-gpt4o-p1'"),
              "5000");
    EXPECT_EQ(Query("SELECT count(*) FROM observations WHERE internal_model_id = 'm-claude'"),
              "5000");
    EXPECT_EQ(Query("SELECT count(*) FROM observations WHERE internal_model_id IS NULL"), "10000");
    // o000008: gpt-4o in p1, 8 prompt and 0 completion tokens.
    EXPECT_EQ(Query("SELECT calculated_input_cost::float8 || '/' || calculated_output_cost::float8"
                    " || '/' || calculated_total_cost::float8 FROM observations "
                    "WHERE id = 'o000008'"),
              "1.6e-05/0/1.6e-05");
    // o000005: claude with a user-provided input cost; 9 total tokens at the total price.
    EXPECT_EQ(Query("SELECT calculated_input_cost::float8 || '/' || calculated_total_cost::float8 "
                    "FROM observations WHERE id = 'o000005'"),
              "1.5/9e-05");
    // Every batch continues exactly where the one before stopped: no row twice, none skipped.
    std::vector<nlohmann::json> batches = Batches();
    ASSERT_FALSE(batches.empty());
    int64_t rows = 0;
    for (size_t i = 0; i < batches.size(); ++i) {
      if (i > 0) {
        EXPECT_EQ(batches[i]["from"], batches[i - 1]["to"]) << "batch " << i;
      }
      rows += batches[i]["rows"].get<int64_t>();
    }
    EXPECT_EQ(batches.front()["from"], nullptr) << "the first batch starts at the beginning";
    EXPECT_EQ(rows, kRows);
    EXPECT_EQ(RowsProcessed(), kRows);
    EXPECT_EQ(Query(std::string("SELECT finished_at IS NOT NULL FROM background_migrations "
                                "WHERE name = '") +
                    kName + "'"),
              "t");
  }

  TestDatabase db_;
  std::optional<PgConnection> conn_;
};

class ConcurrentWorkersTest : public WorkerProcessTest,
                              public ::testing::WithParamInterface<int> {};

TEST_P(ConcurrentWorkersTest, OneHolderAtATimeAndTheMigrationFinishesOnce) {
  SetArgsSql({{"batchSize", 500}, {"pauseMs", 10}});
  std::vector<std::unique_ptr<ChildProcess>> workers;
  for (int i = 0; i < GetParam(); ++i) {
    workers.push_back(std::make_unique<ChildProcess>(
        BGM_BINARY, std::vector<std::string>{"worker", "--exit-when-idle"},
        Env("w" + std::to_string(i))));
  }
  for (auto& w : workers) {
    std::optional<int> code = w->Wait(seconds(60));
    ASSERT_TRUE(code.has_value()) << "worker did not exit";
    EXPECT_EQ(*code, 0) << w->Stderr();
  }
  EXPECT_EQ(CountEvents("acquired"), 1);
  EXPECT_EQ(CountEvents("finished"), 1);
  std::set<std::string> holders;
  for (const nlohmann::json& b : Batches()) holders.insert(b["worker"].get<std::string>());
  EXPECT_EQ(holders.size(), 1u);
  ExpectAllPriced();
}

INSTANTIATE_TEST_SUITE_P(Workers, ConcurrentWorkersTest, ::testing::Values(2, 4));

TEST_F(WorkerProcessTest, KilledHolderIsTakenOverFromItsCheckpointAfterTheLease) {
  SetArgsSql({{"batchSize", 200}, {"pauseMs", 30}});
  ChildProcess w1(BGM_BINARY, {"worker"}, Env("w1"));
  ASSERT_TRUE(WaitForRows(2000)) << w1.Stderr();
  w1.Signal(SIGKILL);
  ASSERT_TRUE(w1.Wait(seconds(5)).has_value());
  const std::string state_at_kill = Query(
      std::string("SELECT state::text FROM background_migrations WHERE name = '") + kName + "'");
  const auto killed_at = std::chrono::steady_clock::now();

  ChildProcess w2(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w2"));
  std::optional<int> code = w2.Wait(seconds(90));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << w2.Stderr();
  EXPECT_GE(std::chrono::steady_clock::now() - killed_at, milliseconds(1500))
      << "the dead worker's lease must expire before the takeover";

  std::vector<nlohmann::json> batches = Batches();
  size_t first_w2 = 0;
  while (first_w2 < batches.size() && batches[first_w2]["worker"] != "w2") ++first_w2;
  ASSERT_LT(first_w2, batches.size());
  EXPECT_EQ(batches[first_w2]["from"], nlohmann::json::parse(state_at_kill)["cursor"])
      << "w2 resumes from the last checkpoint";
  EXPECT_EQ(CountEvents("lease_taken_over"), 1);
  EXPECT_NE(
      w2.Stderr().find("Took over the expired lease of " + std::string(kName) + " from worker w1"),
      std::string::npos);
  ExpectAllPriced();
}

TEST_F(WorkerProcessTest, SigtermSavesTheCheckpointAndReleasesTheLeaseWithinFiveSeconds) {
  SetArgsSql({{"batchSize", 200}, {"pauseMs", 30}});
  ChildProcess w1(BGM_BINARY, {"worker"}, Env("w1"));
  ASSERT_TRUE(WaitForRows(1000)) << w1.Stderr();
  const auto sent = std::chrono::steady_clock::now();
  w1.Signal(SIGTERM);
  std::optional<int> code = w1.Wait(seconds(5));
  ASSERT_TRUE(code.has_value()) << "worker still running 5 s after SIGTERM";
  EXPECT_EQ(*code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - sent, seconds(5));
  const std::string sql = std::string(
                              "SELECT worker_id IS NULL, locked_at IS NULL, "
                              "state->'cursor'->>'id', rows_processed, "
                              "(SELECT count(*) FROM observations WHERE (start_time, id) "
                              "<= ((b.state->'cursor'->>'start_time')::timestamp, "
                              "b.state->'cursor'->>'id')) "
                              "FROM background_migrations b WHERE name = '") +
                          kName + "'";
  Result<PgResult> r = conn_->Exec(sql);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->GetBool(0, 0));
  EXPECT_TRUE(r->GetBool(0, 1));
  EXPECT_FALSE(r->IsNull(0, 2));
  // The saved cursor covers exactly the rows counted as processed.
  EXPECT_EQ(r->GetInt(0, 3), r->GetInt(0, 4));
  EXPECT_LT(r->GetInt(0, 3), kRows);
  EXPECT_EQ(
      Query(std::string("SELECT kind FROM background_migration_events WHERE migration_name = '") +
            kName + "' ORDER BY id DESC LIMIT 1"),
      "released");
  EXPECT_NE(w1.Stderr().find("Received SIGTERM"), std::string::npos);

  // A new worker continues from there and the result is exact.
  EXPECT_EQ(RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w2")).exit_code, 0);
  ExpectAllPriced();
}

TEST_F(WorkerProcessTest, DisabledFlagRunsNothingAndStatusSaysDisabled) {
  std::map<std::string, std::string> disabled = {
      {"LANGFUSE_ENABLE_BACKGROUND_MIGRATIONS", "false"}};
  auto env = Env("w1");
  env.insert(disabled.begin(), disabled.end());
  testing::ProcessResult r = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, env);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.err.find("Background migrations are disabled"), std::string::npos) << r.err;
  EXPECT_EQ(CountEvents("acquired"), 0);
  EXPECT_EQ(Cli({"status"}, disabled).out.substr(0, 9), "DISABLED\n");
  nlohmann::json status = nlohmann::json::parse(Cli({"status", "--json"}, disabled).out);
  EXPECT_EQ(status["status"], "DISABLED");
  EXPECT_EQ(status["counts"]["pending"], 1);
  EXPECT_EQ(nlohmann::json::parse(Cli({"status", "--json"}).out)["status"], "ACTIVE");
}

TEST_F(WorkerProcessTest, RetryKeepsTheCursorAndFromStartResetsIt) {
  SetArgsSql({{"batchSize", 200}, {"pauseMs", 30}});
  ChildProcess w1(BGM_BINARY, {"worker"}, Env("w1"));
  ASSERT_TRUE(WaitForRows(1000));
  w1.Signal(SIGTERM);
  ASSERT_EQ(w1.Wait(seconds(5)), 0);

  testing::ProcessResult refused = Cli({"retry", kName});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("it is pending; only a failed or cancelled migration can be retried"),
            std::string::npos)
      << refused.err;

  // An operator-visible failure (as a crash in the middle would leave it).
  ASSERT_TRUE(conn_
                  ->Run("UPDATE background_migrations SET failed_at = now(), "
                        "failed_reason = 'ClickHouse unreachable' WHERE name = $1",
                        {kName})
                  .ok());
  const std::string state = Query(
      std::string("SELECT state::text FROM background_migrations WHERE name = '") + kName + "'");
  const int64_t rows = RowsProcessed();
  nlohmann::json listed = Listed();
  EXPECT_EQ(listed["status"], "failed");
  EXPECT_EQ(listed["failed_reason"], "ClickHouse unreachable");

  testing::ProcessResult retried = Cli({"retry", kName});
  EXPECT_EQ(retried.exit_code, 0) << retried.err;
  EXPECT_EQ(Query(std::string("SELECT state::text FROM background_migrations WHERE name = '") +
                  kName + "'"),
            state);
  EXPECT_EQ(RowsProcessed(), rows);
  EXPECT_EQ(Listed()["status"], "pending");

  ASSERT_TRUE(
      conn_->Run("UPDATE background_migrations SET failed_at = now() WHERE name = $1", {kName})
          .ok());
  EXPECT_EQ(Cli({"retry", kName, "--from-start"}).exit_code, 0);
  EXPECT_EQ(Query(std::string("SELECT state::text FROM background_migrations WHERE name = '") +
                  kName + "'"),
            "{}");
  EXPECT_EQ(RowsProcessed(), 0);
  EXPECT_EQ(RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w2")).exit_code, 0);
  EXPECT_EQ(RowsProcessed(), kRows);
}

TEST_F(WorkerProcessTest, BadArgsInTheTableFailOnlyThatMigration) {
  ASSERT_TRUE(conn_
                  ->Run("INSERT INTO background_migrations (name, script) "
                        "VALUES ('20200101_0000_hand_made', 'no_such_script')")
                  .ok());
  for (const auto& [args, reason] : std::vector<std::pair<nlohmann::json, std::string>>{
           {{{"batchSize", -1}},
            "invalid args: batchSize must be an integer in [1, 100000], got -1"},
           {{{"batchSize", "abc"}},
            "invalid args: batchSize must be an integer in [1, 100000], got \"abc\""},
           {{{"batchSize", 10}, {"colour", "red"}},
            "invalid args: unknown arg 'colour' (value \"red\"); accepted args: batchSize, "
            "pauseMs, statementTimeoutMs"},
       }) {
    SetArgsSql(args);
    ASSERT_TRUE(conn_
                    ->Run("UPDATE background_migrations SET failed_at = NULL, "
                          "failed_reason = NULL, finished_at = NULL")
                    .ok());
    testing::ProcessResult r = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w1"));
    EXPECT_EQ(r.exit_code, 1) << "a failed migration makes --exit-when-idle exit 1";
    EXPECT_EQ(Query(std::string("SELECT failed_reason FROM background_migrations WHERE name = '") +
                    kName + "'"),
              reason);
    // A row of a script this bgmigrate does not know is left as it is, never failed.
    EXPECT_EQ(Query("SELECT coalesce(failed_reason, 'none') || ' ' || attempts FROM "
                    "background_migrations WHERE name = '20200101_0000_hand_made'"),
              "none 0");
  }
  EXPECT_EQ(RowsProcessed(), 0) << "nothing ran with bad args";
}

TEST_F(WorkerProcessTest, SetArgsRejectsBadInputAndChangesNothing) {
  const std::string before = Query(
      std::string("SELECT args::text FROM background_migrations WHERE name = '") + kName + "'");
  testing::ProcessResult bad_json = Cli({"set-args", kName, "{batchSize: 5"});
  EXPECT_EQ(bad_json.exit_code, 2);
  EXPECT_NE(bad_json.err.find("is not valid JSON"), std::string::npos) << bad_json.err;
  testing::ProcessResult bad_value = Cli({"set-args", kName, R"({"batchSize": -1})"});
  EXPECT_EQ(bad_value.exit_code, 2);
  EXPECT_NE(bad_value.err.find("batchSize must be an integer in [1, 100000], got -1"),
            std::string::npos)
      << bad_value.err;
  testing::ProcessResult unknown = Cli({"set-args", "20990101_nope", R"({"batchSize": 5})"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("no background migration named '20990101_nope'"), std::string::npos);
  EXPECT_EQ(Query(std::string("SELECT args::text FROM background_migrations WHERE name = '") +
                  kName + "'"),
            before);
  EXPECT_EQ(CountEvents("args_changed"), 0);

  testing::ProcessResult ok = Cli({"set-args", kName, R"({"batchSize": 2500})"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(Query(std::string("SELECT args::text FROM background_migrations WHERE name = '") +
                  kName + "'"),
            R"({"batchSize": 2500})");
  EXPECT_EQ(CountEvents("args_changed"), 1);
}

TEST_F(WorkerProcessTest, PauseAndResumeThroughTheCli) {
  EXPECT_EQ(Cli({"pause", kName}).exit_code, 0);
  EXPECT_EQ(Listed()["status"], "paused");
  testing::ProcessResult again = Cli({"pause", kName});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("it is paused"), std::string::npos);
  EXPECT_EQ(RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w1")).exit_code, 0);
  EXPECT_EQ(RowsProcessed(), 0);
  EXPECT_EQ(Cli({"resume", kName}).exit_code, 0);
  EXPECT_EQ(RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w1")).exit_code, 0);
  EXPECT_EQ(RowsProcessed(), kRows);
}

// `cancel` mid-run: the worker stops after its batch and exits; the migration is cancelled with
// its cursor, no worker takes it, resume is refused; `retry` goes on from the cursor and every
// row is priced once (the batches chain across the cancel).
TEST_F(WorkerProcessTest, CancelStopsTheRunningWorkerAndRetryGoesOnFromTheCursor) {
  SetArgsSql({{"batchSize", 500}, {"pauseMs", 50}});
  ChildProcess worker(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w1"));
  ASSERT_TRUE(WaitForRows(2000));
  testing::ProcessResult cancelled = Cli({"cancel", kName, "--reason", "peak hours"});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_EQ(cancelled.out, std::string(kName) +
                               " cancelled; a running batch finishes first, the cursor is kept "
                               "(bgmigrate retry " +
                               kName + " runs it again)\n");
  std::optional<int> code = worker.Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << "the worker did not stop";
  EXPECT_EQ(*code, 0) << worker.Stderr();
  nlohmann::json row = Listed();
  EXPECT_EQ(row["status"], "cancelled");
  EXPECT_TRUE(row["cancelled_at"].is_string());
  const int64_t at_cancel = RowsProcessed();
  EXPECT_GE(at_cancel, 2000);
  EXPECT_LT(at_cancel, kRows);
  EXPECT_EQ(Query("SELECT detail->>'reason' FROM background_migration_events WHERE kind = "
                  "'cancelled'"),
            "peak hours");
  EXPECT_EQ(RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w2")).exit_code, 0);
  EXPECT_EQ(RowsProcessed(), at_cancel) << "a cancelled migration is not run";
  testing::ProcessResult resume = Cli({"resume", kName});
  EXPECT_EQ(resume.exit_code, 2);
  EXPECT_NE(resume.err.find("it is cancelled; only a paused one can be resumed (a cancelled one "
                            "is run again with retry)"),
            std::string::npos)
      << resume.err;
  testing::ProcessResult gate = Cli({"gate", kName});
  EXPECT_EQ(gate.exit_code, 1);
  EXPECT_NE(gate.out.find("cancelled at "), std::string::npos) << gate.out;

  ASSERT_EQ(Cli({"retry", kName}).exit_code, 0);
  EXPECT_EQ(RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w3")).exit_code, 0);
  ExpectAllPriced();
}

// An upgrade whose fast migration requires the backfill to have finished: `migrate` refuses
// it (exit 1, naming the backfill and its state; the files before it applied, the background
// migrations registered), a worker started meanwhile finishes the backfill, and `migrate`
// then applies it.
TEST_F(WorkerProcessTest, AnUpgradeThatNeedsABackfillIsRefusedThenAppliedOnceItFinished) {
  const std::filesystem::path schema =
      std::filesystem::temp_directory_path() /
      ("bgm-upgrade-" + std::to_string(::getpid()) + "-" + db_.name());
  std::filesystem::remove_all(schema);
  std::filesystem::copy(testing::ExampleSchemaDir(), schema,
                        std::filesystem::copy_options::recursive);
  std::ofstream(schema / "postgres" / "0002_priced_index.sql")
      << "-- The index needs every observation priced.\n"
      << "-- bgmigrate: requires " << kName << "\n"
      << "CREATE INDEX observations_priced ON observations (internal_model_id);\n";
  const std::map<std::string, std::string> upgrade = {{"BGMIGRATE_SCHEMA_DIR", schema.string()}};
  testing::ProcessResult refused = Cli({"migrate"}, upgrade);
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("application postgres schema file 0002_priced_index.sql requires "
                             "background migrations that have not finished: " +
                             std::string(kName) +
                             " (pending, 0 rows done). It and the files "
                             "after it are not applied."),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(Query("SELECT to_regclass('observations_priced') IS NULL"), "t");
  EXPECT_EQ(Cli({"gate", kName}, upgrade).exit_code, 1);

  auto env = Env("w1");
  env["BGMIGRATE_SCHEMA_DIR"] = schema.string();
  testing::ProcessResult worker = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, env);
  EXPECT_EQ(worker.exit_code, 0) << worker.err;
  EXPECT_NE(worker.err.find("0002_priced_index.sql requires background migrations"),
            std::string::npos)
      << "the worker says what waits, and runs the backfill: " << worker.err;
  EXPECT_EQ(RowsProcessed(), kRows);

  testing::ProcessResult applied = Cli({"migrate"}, upgrade);
  EXPECT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(Query("SELECT to_regclass('observations_priced') IS NOT NULL"), "t");
  std::filesystem::remove_all(schema);
}

// `skip`: needs --reason; marks the migration done without running it, so no worker runs it
// and the gate opens.
TEST_F(WorkerProcessTest, SkipMarksItDoneWithoutRunningAndTheGateOpens) {
  testing::ProcessResult no_reason = Cli({"skip", kName});
  EXPECT_EQ(no_reason.exit_code, 2);
  EXPECT_NE(no_reason.err.find("--reason is required"), std::string::npos) << no_reason.err;
  testing::ProcessResult blank = Cli({"skip", kName, "--reason", " "});
  EXPECT_EQ(blank.exit_code, 2);
  EXPECT_NE(blank.err.find("skip needs --reason: say why no row of " + std::string(kName)),
            std::string::npos)
      << blank.err;
  EXPECT_EQ(Listed()["status"], "pending");

  testing::ProcessResult skipped = Cli({"skip", kName, "--reason", "priced by hand"});
  ASSERT_EQ(skipped.exit_code, 0) << skipped.err;
  nlohmann::json row = Listed();
  EXPECT_EQ(row["status"], "skipped");
  EXPECT_EQ(row["skipped_reason"], "priced by hand");
  EXPECT_EQ(RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w1")).exit_code, 0);
  EXPECT_EQ(RowsProcessed(), 0);
  EXPECT_EQ(Query("SELECT count(*) FROM observations WHERE internal_model_id IS NOT NULL"), "0");
  EXPECT_EQ(Cli({"gate", kName}).exit_code, 0);
  testing::ProcessResult list = Cli({"list"});
  EXPECT_NE(list.out.find(": priced by hand"), std::string::npos) << list.out;
}

// Issue 12: a 100 kB name (or args text) was echoed in full in the error; every path that echoes
// what the user typed now cuts it, says how long it was, and exits 2.
TEST_F(WorkerProcessTest, AHundredKilobyteNameIsCutInEveryCliError) {
  const std::string huge(100000, 'n');
  std::string huge_json = "[1";  // valid JSON, not an object
  while (huge_json.size() < 100000) huge_json += ",1";
  huge_json += "]";
  struct Case {
    std::vector<std::string> args;
    std::string says;  // what the error must say about the problem
  };
  const std::string no_such = "no background migration named 'nnnn";
  const std::vector<Case> cases = {
      {{"retry", huge}, no_such},
      {{"retry", huge, "--from-start"}, no_such},
      {{"pause", huge}, no_such},
      {{"resume", huge}, no_such},
      {{"set-args", huge, R"({"batchSize": 5})"}, no_such},
      {{"set-args", kName, "{" + huge}, "is not valid JSON"},
      {{"set-args", kName, huge_json}, "args must be a JSON object"},
      {{"verify", huge}, "verify compares the copies only"},
      {{"status", huge}, "not expected"},
      {{huge}, "unknown command 'nnnn"},
  };
  const auto snapshot = [this] {
    return Query("SELECT json_agg(b ORDER BY name)::text FROM background_migrations b") + " / " +
           Query("SELECT count(*) FROM background_migration_events") + " events";
  };
  const std::string before = snapshot();
  // The value's length, or for CLI11's own messages the length of the message quoting it.
  const std::regex says_length(R"(\(100\d\d\d bytes\))");
  for (const Case& c : cases) {
    testing::ProcessResult r = Cli(c.args);
    SCOPED_TRACE(c.args[0].substr(0, 20) + " " +
                 (c.args.size() > 1 ? c.args[1].substr(0, 20) : ""));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_LT(r.err.size(), 1000u) << r.err.substr(0, 300) << "...";
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err.substr(0, 1000);
    EXPECT_TRUE(std::regex_search(r.err.substr(0, 2000), says_length))
        << "the error says how long the value was: " << r.err.substr(0, 1000);
  }
  EXPECT_EQ(snapshot(), before) << "a refused command changed the control tables";
}

TEST_F(WorkerProcessTest, UnreachableDatabaseIsAClearErrorNotACrash) {
  testing::ProcessResult r = RunProcess(
      BGM_BINARY, {"list"}, {{"DATABASE_URL", "postgresql://u@127.0.0.1:1/x?connect_timeout=2"}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("could not connect to Postgres at 127.0.0.1:1"), std::string::npos) << r.err;
  testing::ProcessResult usage = RunProcess(BGM_BINARY, {"retry"}, Env("cli"));
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_NE(usage.err.find("name is required"), std::string::npos) << usage.err;
}

}  // namespace
}  // namespace bgm

namespace bgm {
namespace {

TEST_F(WorkerProcessTest, LogsAreTimestampedLinesOrJsonObjects) {
  SetArgsSql({{"batchSize", 5000}});
  auto env = Env("w1");
  env["BGMIGRATE_LOG_FORMAT"] = "json";
  testing::ProcessResult r = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> messages;
  std::istringstream lines(r.err);
  for (std::string line; std::getline(lines, line);) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    ASSERT_TRUE(j["ts"].is_string() && j["level"].is_string() && j["msg"].is_string()) << line;
    EXPECT_EQ(j["ts"].get<std::string>().size(), 24u) << j["ts"];  // 2024-06-03T08:38:21.918Z
    messages.push_back(j["msg"]);
  }
  const std::string acquired = std::string(
                                   "[Background Migration] Acquired lock for background "
                                   "migration ") +
                               kName + " (worker w1, attempt 1)";
  EXPECT_NE(std::find(messages.begin(), messages.end(), acquired), messages.end()) << r.err;
  int batches = 0;
  for (const std::string& m : messages) {
    if (m.find("processed batch of 5000 rows") != std::string::npos) batches++;
  }
  EXPECT_EQ(batches, 4);

  ASSERT_EQ(Cli({"retry", kName, "--from-start"}).exit_code, 0);
  testing::ProcessResult text = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w1"));
  const std::regex line_start(
      R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (info|warning|error) )");
  std::istringstream text_lines(text.err);
  for (std::string line; std::getline(text_lines, line);) {
    EXPECT_TRUE(std::regex_search(line, line_start)) << line;
  }
  EXPECT_NE(text.err.find("Finished background migration " + std::string(kName)),
            std::string::npos);
}

TEST(CliTest, AMistypedCommandIsNamedWithTheKnownOnes) {
  testing::ProcessResult r = RunProcess(BGM_BINARY, {"frobnicate"}, {});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "bgmigrate: unknown command 'frobnicate'; the commands are worker, web, up, migrate, "
            "list, status, gate, retry, set-args, pause, resume, skip, cancel, verify, check\n"
            "Run 'bgmigrate --help' for usage.\n");
  EXPECT_EQ(r.out, "");
}

}  // namespace
}  // namespace bgm
