// Reliability under faults, with real processes and real servers: ClickHouse stopped and
// Postgres restarted under a running copy, workers killed with SIGKILL again and again, four
// workers racing for four migrations, a worker frozen (SIGSTOP) past its lease. Each test has
// its own Postgres and ClickHouse (PrivateServers), so stopping them disturbs no other test.
//
// Every test ends with the same proof: for each copy, the ids in ClickHouse after FINAL are
// exactly the ids in Postgres (count and an MD5 over the sorted ids), nothing lost, nothing
// twice, and `bgmigrate verify` reports a match. Figures (rows, faults, recovery times) go to
// stdout as "figure: ..." lines for docs/reliability.md.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "clickhouse/clickhouse_client.h"
#include "postgres/pg_connection.h"
#include "testing/example_app.h"
#include "testing/private_servers.h"
#include "testing/process.h"

namespace bgm {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ChildProcess;
using testing::PrivateServers;
using testing::ProcessResult;
using testing::RunProcess;
using Clock = std::chrono::steady_clock;

struct CopyTable {
  const char* migration;
  const char* table;
};
constexpr CopyTable kCopies[] = {{testing::kCopyTraces, "traces"},
                                 {testing::kCopyObservations, "observations"},
                                 {testing::kCopyScores, "scores"}};

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(servers_.ok()); }

  std::map<std::string, std::string> Env(const std::string& worker) const {
    return {{"DATABASE_URL", servers_.database_url()},
            {"CLICKHOUSE_URL", servers_.clickhouse_url()},
            {"CLICKHOUSE_USER", "default"},
            {"CLICKHOUSE_PASSWORD", ""},
            {"BGMIGRATE_LEASE_SECONDS", "2"},
            {"BGMIGRATE_POLL_SECONDS", "0.2"},
            {"BGMIGRATE_WORKER_ID", worker}};
  }

  ProcessResult Cli(const std::vector<std::string>& args, const std::string& worker = "cli") {
    return RunProcess(BGM_BINARY, args, Env(worker), seconds(300));
  }
  // The example application's data generator (examples/langfuse/seed).
  ProcessResult Seeder(const std::vector<std::string>& args) {
    return RunProcess(BGM_SEED_BINARY, args, Env("cli"), seconds(300));
  }

  std::unique_ptr<ChildProcess> Worker(const std::string& id,
                                       std::map<std::string, std::string> extra = {}) {
    auto env = Env(id);
    for (auto& [k, v] : extra) env[k] = v;
    return std::make_unique<ChildProcess>(
        BGM_BINARY, std::vector<std::string>{"worker", "--exit-when-idle"}, env);
  }

  // Applies the fast migrations and seeds the application tables.
  void Seed(int traces, int observations, int scores) {
    ProcessResult m = Cli({"migrate"});
    ASSERT_EQ(m.exit_code, 0) << m.err;
    ProcessResult s =
        Seeder({"--traces", std::to_string(traces), "--observations", std::to_string(observations),
                "--scores", std::to_string(scores), "--blob-bytes", "300",
                "--same-created-at-fraction", "0.05", "--random-seed", "7"});
    ASSERT_EQ(s.exit_code, 0) << s.err;
  }

  PgConnection& Pg() {
    if (!pg_.has_value()) {
      Result<PgConnection> c = PgConnection::Connect(servers_.database_url());
      EXPECT_TRUE(c.ok()) << c.status().ToString();
      pg_.emplace(std::move(*c));
    }
    return *pg_;
  }
  std::string PgScalar(const std::string& sql, const std::vector<PgParam>& params = {}) {
    for (int attempt = 0;; ++attempt) {
      Result<PgResult> r = Pg().Exec(sql, params);
      if (r.ok()) return r->rows() > 0 && !r->IsNull(0, 0) ? std::string(r->Get(0, 0)) : "";
      pg_.reset();  // the server may have been restarted under us
      if (attempt == 50) {
        ADD_FAILURE() << sql << ": " << r.status().ToString();
        return "";
      }
      std::this_thread::sleep_for(milliseconds(200));
    }
  }
  void PgRun(const std::string& sql, const std::vector<PgParam>& params = {}) {
    Status s = Pg().Run(sql, params);
    ASSERT_TRUE(s.ok()) << sql << ": " << s.ToString();
  }
  void SetArgs(const std::string& name, const nlohmann::json& args) {
    PgRun("UPDATE background_migrations SET args = $1::jsonb WHERE name = $2", {args.dump(), name});
  }
  // Pauses every migration but `keep` (none of the others runs while these tests look).
  void PauseAllBut(const std::set<std::string>& keep) {
    for (const std::string& name : Names()) {
      if (!keep.count(name)) {
        PgRun("UPDATE background_migrations SET paused_at = now() WHERE name = $1", {name});
      }
    }
  }
  std::vector<std::string> Names() {
    Result<PgResult> r = Pg().Exec("SELECT name FROM background_migrations ORDER BY name");
    EXPECT_TRUE(r.ok());
    std::vector<std::string> out;
    for (int i = 0; r.ok() && i < r->rows(); ++i) out.emplace_back(r->Get(i, 0));
    return out;
  }
  int64_t RowsProcessed(const std::string& name) {
    const std::string v =
        PgScalar("SELECT rows_processed FROM background_migrations WHERE name = $1", {name});
    return v.empty() ? 0 : std::stoll(v);
  }
  // The row as `bgmigrate list --json` shows it (status derived from the lease).
  nlohmann::json Listed(const std::string& name) {
    ProcessResult r = Cli({"list", "--json"});
    if (r.exit_code != 0) return nullptr;
    for (const nlohmann::json& row : nlohmann::json::parse(r.out)) {
      if (row["name"] == name) return row;
    }
    return nullptr;
  }
  // Polls `done` every 50 ms for up to `timeout`.
  template <typename F>
  bool WaitFor(F done, milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return false;
  }
  int CountEvents(const std::string& name, const std::string& kind) {
    return std::stoi(PgScalar(
        "SELECT count(*) FROM background_migration_events WHERE migration_name = $1 AND kind = $2",
        {name, kind}));
  }

  // The proof every test ends with: ClickHouse holds exactly the source's ids, once each
  // after FINAL, and verify agrees.
  void ExpectExactCopy(const CopyTable& copy) {
    SCOPED_TRACE(copy.table);
    const std::string source_count = PgScalar(std::string("SELECT count(*) FROM ") + copy.table);
    const std::string source_md5 =
        PgScalar(std::string("SELECT md5(string_agg(id, ',' ORDER BY id)) FROM ") + copy.table);
    Result<std::unique_ptr<HttpClickHouseClient>> ch =
        HttpClickHouseClient::Create({.url = servers_.clickhouse_url(), .user = "default"});
    ASSERT_TRUE(ch.ok());
    Result<std::string> target = (*ch)->Query(
        std::string("SELECT count(), uniqExact(id), "
                    "lower(hex(MD5(arrayStringConcat(arraySort(groupArray(id)), ',')))) FROM ") +
        copy.table + " FINAL FORMAT TabSeparated");
    ASSERT_TRUE(target.ok()) << target.status().ToString();
    std::istringstream fields(*target);
    std::string count, unique, md5;
    fields >> count >> unique >> md5;
    EXPECT_EQ(count, source_count) << "rows in ClickHouse after FINAL";
    EXPECT_EQ(unique, source_count) << "distinct ids (duplicates after FINAL)";
    EXPECT_EQ(md5, source_md5) << "the id sets differ";
    ProcessResult v = Cli({"verify", copy.migration, "--json"});
    ASSERT_EQ(v.exit_code, 0) << v.out << v.err;
    EXPECT_TRUE(nlohmann::json::parse(v.out)["match"].get<bool>()) << v.out;
    std::cout << "figure: " << copy.table << " rows checked " << source_count
              << ", lost 0, duplicates after FINAL " << (std::stoll(count) - std::stoll(unique))
              << std::endl;
  }

  PrivateServers servers_;
  std::optional<PgConnection> pg_;
};

// ClickHouse stops for 20 s in the middle of the traces copy: the worker keeps its lease,
// reports `waiting` (list, events, log) and finishes on its own once the server is back.
TEST_F(FaultTest, ClickHouseOutageMidCopyIsWaitedOutAndTheCopyFinishes) {
  Seed(30000, 0, 0);
  PauseAllBut({testing::kCopyTraces});
  SetArgs(testing::kCopyTraces, {{"batchSize", 500}, {"pauseMs", 200}});
  auto worker = Worker("w-outage");
  ASSERT_TRUE(WaitFor([&] { return RowsProcessed(testing::kCopyTraces) >= 3000; }, seconds(60)));
  ASSERT_TRUE(servers_.Kill("clickhouse"));
  const auto down = Clock::now();
  const int64_t rows_at_stop = RowsProcessed(testing::kCopyTraces);
  ASSERT_LT(rows_at_stop, 30000) << "the copy finished before ClickHouse stopped";

  nlohmann::json waiting;
  ASSERT_TRUE(WaitFor(
      [&] {
        waiting = Listed(testing::kCopyTraces);
        return waiting.is_object() && waiting["status"] == "waiting";
      },
      seconds(15)));
  EXPECT_EQ(waiting["worker_id"], "w-outage");
  EXPECT_NE(waiting["waiting_reason"].get<std::string>().find("ClickHouse at " +
                                                              servers_.clickhouse_url()),
            std::string::npos)
      << waiting.dump();
  EXPECT_TRUE(waiting["next_attempt_at"].is_string());

  std::this_thread::sleep_for(seconds(20) - (Clock::now() - down));
  const double outage_s = SecondsSince(down);
  ASSERT_TRUE(servers_.Start("clickhouse"));
  const auto up = Clock::now();
  ASSERT_TRUE(worker->Wait(seconds(120)).has_value()) << "the copy did not finish";
  EXPECT_EQ(Listed(testing::kCopyTraces)["status"], "finished");
  EXPECT_GE(CountEvents(testing::kCopyTraces, "waiting"), 3);  // backoff 1, 2, 4, 8 ... s
  EXPECT_EQ(CountEvents(testing::kCopyTraces, "recovered"), 1);
  EXPECT_EQ(CountEvents(testing::kCopyTraces, "acquired"), 1);  // one lease throughout
  EXPECT_NE(worker->Stderr().find("is waiting: "), std::string::npos);
  const double recovered_after =
      std::stod(PgScalar("SELECT extract(epoch FROM at) - extract(epoch FROM now()) FROM "
                         "background_migration_events "
                         "WHERE migration_name = $1 AND kind = 'recovered'",
                         {testing::kCopyTraces})) +
      SecondsSince(up);
  EXPECT_LE(recovered_after, 15.0);  // the backoff is capped at 10 s
  std::cout << "figure: ClickHouse down " << outage_s << " s at row " << rows_at_stop
            << "; first batch " << recovered_after << " s after it answered again; "
            << CountEvents(testing::kCopyTraces, "waiting") << " waits" << std::endl;
  ExpectExactCopy(kCopies[0]);
}

// An outage longer than BGMIGRATE_OUTAGE_BUDGET_SECONDS fails the migration with a reason that
// names ClickHouse; `retry` after the server is back resumes from the saved cursor.
TEST_F(FaultTest, OutageBeyondTheBudgetFailsNamingClickHouseAndRetryResumes) {
  Seed(20000, 0, 0);
  PauseAllBut({testing::kCopyTraces});
  SetArgs(testing::kCopyTraces, {{"batchSize", 500}, {"pauseMs", 200}});
  auto worker = Worker("w-budget", {{"BGMIGRATE_OUTAGE_BUDGET_SECONDS", "4"}});
  ASSERT_TRUE(WaitFor([&] { return RowsProcessed(testing::kCopyTraces) >= 3000; }, seconds(60)));
  ASSERT_TRUE(servers_.Kill("clickhouse"));
  ASSERT_TRUE(worker->Wait(seconds(60)).has_value()) << "the worker did not give up";
  const nlohmann::json failed = Listed(testing::kCopyTraces);
  ASSERT_EQ(failed["status"], "failed") << failed.dump();
  const std::string reason = failed["failed_reason"];
  EXPECT_EQ(reason.rfind("gave up after waiting ", 0), 0u) << reason;
  EXPECT_NE(reason.find("(BGMIGRATE_OUTAGE_BUDGET_SECONDS=4)"), std::string::npos) << reason;
  EXPECT_NE(reason.find("ClickHouse at " + servers_.clickhouse_url()), std::string::npos) << reason;
  // The copy's one key range (20,000 rows, under the default chunkRows) kept its cursor.
  const nlohmann::json cursor = nlohmann::json::parse(
      PgScalar("SELECT cursor::text FROM background_migration_chunks WHERE migration_name = $1 AND "
               "chunk = 0",
               {testing::kCopyTraces}));
  const int64_t rows_before = failed["rows_processed"];
  ASSERT_TRUE(cursor.is_object()) << failed.dump();

  ASSERT_TRUE(servers_.Start("clickhouse"));
  ASSERT_EQ(Cli({"retry", testing::kCopyTraces}).exit_code, 0);
  auto again = Worker("w-retry");
  ASSERT_TRUE(again->Wait(seconds(120)).has_value());
  EXPECT_EQ(Listed(testing::kCopyTraces)["status"], "finished");
  // The first batch after the retry (from the worker's first thread) starts at the cursor the
  // failure kept.
  const nlohmann::json first = nlohmann::json::parse(
      PgScalar("SELECT detail::text FROM background_migration_events WHERE migration_name = $1 AND "
               "kind = 'batch' AND worker_id = 'w-retry#0' ORDER BY id LIMIT 1",
               {testing::kCopyTraces}));
  EXPECT_EQ(first["from"], (nlohmann::json{{"chunk", 0}, {"cursor", cursor}}));
  EXPECT_EQ(RowsProcessed(testing::kCopyTraces), 20000)
      << "rows before the failure: " << rows_before;
  ExpectExactCopy(kCopies[0]);
}

// Postgres (source and control tables) restarts in the middle of a copy: the worker waits it
// out and finishes without an operator.
TEST_F(FaultTest, PostgresRestartMidCopyIsWaitedOutAndTheCopyFinishes) {
  Seed(30000, 0, 0);
  PauseAllBut({testing::kCopyTraces});
  SetArgs(testing::kCopyTraces, {{"batchSize", 500}, {"pauseMs", 200}});
  auto worker = Worker("w-pg");
  ASSERT_TRUE(WaitFor([&] { return RowsProcessed(testing::kCopyTraces) >= 3000; }, seconds(60)));
  pg_.reset();
  ASSERT_TRUE(servers_.Stop("postgres"));
  const auto down = Clock::now();
  std::this_thread::sleep_for(seconds(5));
  ASSERT_TRUE(servers_.Start("postgres"));
  const double outage_s = SecondsSince(down);
  ASSERT_TRUE(worker->Wait(seconds(120)).has_value()) << "the copy did not finish";
  EXPECT_EQ(Listed(testing::kCopyTraces)["status"], "finished");
  EXPECT_NE(worker->Stderr().find("is waiting: "), std::string::npos) << worker->Stderr();
  EXPECT_NE(worker->Stderr().find("Postgres"), std::string::npos);
  EXPECT_EQ(RowsProcessed(testing::kCopyTraces), 30000);
  std::cout << "figure: Postgres down " << outage_s << " s; finished " << SecondsSince(down)
            << " s after it stopped" << std::endl;
  ExpectExactCopy(kCopies[0]);
}

// The worker is killed with SIGKILL ten times at random moments while the three copies (and
// the cost backfill before the observations copy) run; a new worker starts each time.
TEST_F(FaultTest, TenSigkillsAcrossTheThreeCopiesLoseAndDuplicateNothing) {
  Seed(20000, 40000, 20000);
  for (const CopyTable& copy : kCopies) {
    SetArgs(copy.migration, {{"batchSize", 2000}, {"pauseMs", 30}});
  }
  std::mt19937 rng(20261125);
  std::uniform_int_distribution<int> delay_ms(300, 2500);
  int kills = 0;
  for (int i = 0; i < 10; ++i) {
    auto worker = Worker("w-kill-" + std::to_string(i));
    std::this_thread::sleep_for(milliseconds(delay_ms(rng)));
    if (worker->Wait(milliseconds(0)).has_value()) break;  // everything finished already
    worker->Signal(SIGKILL);
    worker->Wait(seconds(10));
    ++kills;
  }
  auto last = Worker("w-last");
  ASSERT_TRUE(last->Wait(seconds(240)).has_value());
  for (const std::string& name : Names()) {
    EXPECT_EQ(Listed(name)["status"], "finished") << name;
  }
  int acquired = 0;
  for (const CopyTable& copy : kCopies) acquired += CountEvents(copy.migration, "acquired");
  std::cout << "figure: " << kills << " SIGKILLs; " << acquired
            << " leases taken on the three copies" << std::endl;
  EXPECT_GE(kills, 8) << "the copies finished too early for the kills to land";
  for (const CopyTable& copy : kCopies) ExpectExactCopy(copy);
}

// One copy split into 12 key ranges, shared by four worker processes (the lease holder and
// three helpers, two threads each) that are killed with SIGKILL at random moments and restarted:
// the copy finishes exact; the ranges tile the key (no gap, no overlap); each range's committed
// batches form one chain of cursors (no range was run by two workers at once: a second runner's
// batches would start again from a cursor already passed); the batches' rows sum to the rows.
TEST_F(FaultTest, FourWorkersShareOneChunkedCopyThroughSigkillsExactly) {
  Seed(24000, 0, 0);
  for (const std::string& name : Names()) {
    if (name == testing::kCopyTraces) continue;
    PgRun("UPDATE background_migrations SET paused_at = now() WHERE name = $1", {name});
  }
  SetArgs(testing::kCopyTraces,
          {{"chunkRows", 2000}, {"concurrency", 2}, {"batchSize", 400}, {"pauseMs", 40}});
  std::mt19937 rng(20261130);
  std::uniform_int_distribution<int> delay_ms(300, 1500);
  std::uniform_int_distribution<int> pick(0, 3);
  std::vector<std::unique_ptr<ChildProcess>> workers;
  int started = 0, kills = 0;
  auto start = [&] { return Worker("w-share-" + std::to_string(started++)); };
  for (int w = 0; w < 4; ++w) workers.push_back(start());
  const auto deadline = Clock::now() + seconds(240);
  while (Listed(testing::kCopyTraces)["status"] != "finished" && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(delay_ms(rng)));
    if (kills >= 12) continue;
    std::unique_ptr<ChildProcess>& victim = workers[static_cast<size_t>(pick(rng))];
    if (victim->Wait(milliseconds(0)).has_value()) {  // exited (idle): start another
      victim = start();
      continue;
    }
    victim->Signal(SIGKILL);
    victim->Wait(seconds(10));
    ++kills;
    victim = start();
  }
  for (auto& w : workers) ASSERT_TRUE(w->Wait(seconds(60)).has_value());
  ASSERT_EQ(Listed(testing::kCopyTraces)["status"], "finished");
  EXPECT_GE(kills, 6) << "the copy finished too early for the kills to land";

  // The ranges tile the key: the first from the start, each from where the last one ended, the
  // last open-ended; all done.
  Result<PgResult> chunks = Pg().Exec(
      "SELECT chunk, coalesce(lower_bound::text, '-'), coalesce(upper_bound::text, '-'), status "
      "FROM background_migration_chunks WHERE migration_name = $1 ORDER BY chunk",
      {testing::kCopyTraces});
  ASSERT_TRUE(chunks.ok());
  ASSERT_EQ(chunks->rows(), 12);
  for (int i = 0; i < chunks->rows(); ++i) {
    EXPECT_EQ(chunks->GetInt(i, 0), i);
    EXPECT_EQ(chunks->Get(i, 3), "done") << "chunk " << i;
    EXPECT_EQ(chunks->Get(i, 1), i == 0 ? "-" : std::string(chunks->Get(i - 1, 2)))
        << "chunk " << i;
  }
  EXPECT_EQ(chunks->Get(11, 2), "-");

  // Each range's committed batches chain: from = the previous batch's to (the first from {}).
  Result<PgResult> batches = Pg().Exec(
      "SELECT (detail->'from'->>'chunk')::int, coalesce(detail->'from'->>'cursor', 'null'), "
      "coalesce(detail->'to'->>'cursor', 'null'), (detail->>'rows')::bigint, "
      "split_part(worker_id, '#', 1) FROM background_migration_events "
      "WHERE migration_name = $1 AND kind = 'batch' ORDER BY id",
      {testing::kCopyTraces});
  ASSERT_TRUE(batches.ok());
  std::map<int, std::string> last_to;
  std::set<std::string> processes;
  int64_t rows = 0;
  for (int i = 0; i < batches->rows(); ++i) {
    const int chunk = static_cast<int>(batches->GetInt(i, 0));
    const std::string from(batches->Get(i, 1)), to(batches->Get(i, 2));
    const std::string expected_from = last_to.contains(chunk) ? last_to[chunk] : "{}";
    EXPECT_EQ(from, expected_from) << "chunk " << chunk << ": a batch that does not continue "
                                   << "the range's last committed one (two runners at once)";
    last_to[chunk] = to;
    rows += batches->GetInt(i, 3);
    processes.insert(std::string(batches->Get(i, 4)));
  }
  EXPECT_EQ(rows, 24000) << "rows of the committed batches";
  EXPECT_GE(processes.size(), 3u) << "the ranges were shared by several worker processes";
  std::cout << "figure: " << kills << " SIGKILLs, " << processes.size()
            << " worker processes committed batches of the 12 ranges" << std::endl;
  ExpectExactCopy(kCopies[0]);
}

// `pause` while two worker processes share a chunked copy: the lease holder stops on its
// heartbeat, the helper when its next checkpoint is refused; neither takes the refusal for a
// range that is too heavy (no split) or a failure (no failed range), both give their ranges back,
// and after `resume` one worker finishes the copy exactly from the ranges' cursors.
TEST_F(FaultTest, PausingASharedCopyStopsBothWorkersWithoutSplittingOrFailingARange) {
  Seed(12000, 0, 0);
  PauseAllBut({testing::kCopyTraces});
  SetArgs(testing::kCopyTraces, {{"chunkRows", 2000},
                                 {"concurrency", 1},
                                 {"maxWorkers", 2},
                                 {"batchSize", 200},
                                 {"pauseMs", 100}});
  std::unique_ptr<ChildProcess> w1 = Worker("w-pause-1");
  std::unique_ptr<ChildProcess> w2 = Worker("w-pause-2");
  auto processes_with_batches = [&] {
    return PgScalar(
        "SELECT count(DISTINCT split_part(worker_id, '#', 1)) FROM background_migration_events "
        "WHERE migration_name = $1 AND kind = 'batch'",
        {testing::kCopyTraces});
  };
  ASSERT_TRUE(WaitFor([&] { return processes_with_batches() == "2"; }, milliseconds(60000)))
      << "both workers should be copying ranges";
  const std::string chunks_before =
      PgScalar("SELECT count(*) FROM background_migration_chunks WHERE migration_name = $1",
               {testing::kCopyTraces});
  ASSERT_EQ(chunks_before, "6");
  ProcessResult paused = Cli({"pause", testing::kCopyTraces});
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  for (auto* w : {w1.get(), w2.get()}) {
    const std::optional<int> code = w->Wait(seconds(30));
    ASSERT_TRUE(code.has_value()) << "a worker did not stop after the pause";
    EXPECT_EQ(*code, 0) << w->Stderr();
  }
  EXPECT_EQ(Listed(testing::kCopyTraces)["status"], "paused");
  EXPECT_EQ(PgScalar("SELECT count(*) FROM background_migration_chunks WHERE migration_name = $1",
                     {testing::kCopyTraces}),
            "6")
      << "the pause split a range";
  EXPECT_EQ(PgScalar("SELECT count(*) FROM background_migration_chunks WHERE migration_name = $1 "
                     "AND (status IN ('running', 'failed') OR last_error IS NOT NULL)",
                     {testing::kCopyTraces}),
            "0")
      << "a range was left claimed, failed or given an error by the pause";
  const int64_t at_pause = RowsProcessed(testing::kCopyTraces);
  EXPECT_GT(at_pause, 0);
  EXPECT_LT(at_pause, 12000);

  ASSERT_EQ(Cli({"resume", testing::kCopyTraces}).exit_code, 0);
  std::unique_ptr<ChildProcess> w3 = Worker("w-pause-3");
  const std::optional<int> code = w3->Wait(seconds(120));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << w3->Stderr();
  ASSERT_EQ(Listed(testing::kCopyTraces)["status"], "finished");
  EXPECT_EQ(RowsProcessed(testing::kCopyTraces), 12000);
  ExpectExactCopy(kCopies[0]);
}

// Four workers start together on four pending migrations, twice over (the second time after
// `retry --from-start` of all four): no two workers ever hold one migration at once. The copies
// are not shared (maxWorkers 1: no helpers), so every batch comes from a thread of the holder.
TEST_F(FaultTest, FourWorkersFourMigrationsNeverRunOneTwice) {
  Seed(10000, 30000, 10000);
  for (const CopyTable& copy : kCopies) {
    SetArgs(copy.migration, {{"batchSize", 1000}, {"pauseMs", 20}, {"maxWorkers", 1}});
  }
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    if (round == 1) {
      for (const std::string& name : Names()) {
        ASSERT_EQ(Cli({"retry", name, "--from-start"}).exit_code, 0) << name;
      }
    }
    std::vector<std::unique_ptr<ChildProcess>> workers;
    for (int w = 0; w < 4; ++w) {
      workers.push_back(Worker("w" + std::to_string(round) + "-" + std::to_string(w)));
    }
    for (auto& w : workers) ASSERT_TRUE(w->Wait(seconds(240)).has_value());
    for (const std::string& name : Names()) {
      EXPECT_EQ(Listed(name)["status"], "finished") << name;
    }
  }
  // Replay each migration's events: a lease is held from `acquired` to `finished`/`released`/
  // `failed`, and every batch comes from the holder.
  Result<PgResult> events = Pg().Exec(
      "SELECT migration_name, kind, coalesce(worker_id, '') FROM background_migration_events "
      "ORDER BY id");
  ASSERT_TRUE(events.ok());
  std::map<std::string, std::string> holder;
  int batches = 0;
  for (int i = 0; i < events->rows(); ++i) {
    const std::string name(events->Get(i, 0)), kind(events->Get(i, 1)), worker(events->Get(i, 2));
    if (kind == "acquired") {
      EXPECT_EQ(holder[name], "") << name << ": " << worker << " acquired while " << holder[name]
                                  << " held it";
      holder[name] = worker;
    } else if (kind == "batch") {
      // A copy's batches are its threads' ("<worker>#<thread>"); the backfill's, the worker's.
      EXPECT_EQ(holder[name], worker.substr(0, worker.find('#')))
          << name << ": a batch from a worker without the lease";
      ++batches;
    } else if (kind == "finished" || kind == "released" || kind == "failed") {
      EXPECT_EQ(holder[name], worker) << name;
      holder[name] = "";
    }
    EXPECT_NE(kind, "lease_taken_over");
    EXPECT_NE(kind, "lease_lost");
  }
  std::cout << "figure: 2 rounds x 4 workers x 4 migrations; " << batches
            << " batches replayed, 0 overlapping leases" << std::endl;
  for (const CopyTable& copy : kCopies) ExpectExactCopy(copy);
}

// A worker frozen with SIGSTOP past its lease loses the migration to another worker; woken with
// SIGCONT, it notices, writes nothing more to the migration and leaves it to the new holder.
TEST_F(FaultTest, WorkerFrozenPastItsLeaseNoticesAndWritesNothingMore) {
  Seed(30000, 0, 0);
  PauseAllBut({testing::kCopyTraces});
  SetArgs(testing::kCopyTraces, {{"batchSize", 500}, {"pauseMs", 200}});
  auto frozen = Worker("w-frozen");
  ASSERT_TRUE(WaitFor([&] { return RowsProcessed(testing::kCopyTraces) >= 3000; }, seconds(60)));
  frozen->Signal(SIGSTOP);
  std::this_thread::sleep_for(seconds(3));  // the 2 s lease runs out
  auto taker = Worker("w-taker");
  ASSERT_TRUE(WaitFor([&] { return CountEvents(testing::kCopyTraces, "lease_taken_over") == 1; },
                      seconds(30)));
  const std::string takeover_id = PgScalar(
      "SELECT id FROM background_migration_events WHERE migration_name = $1 AND "
      "kind = 'lease_taken_over'",
      {testing::kCopyTraces});
  frozen->Signal(SIGCONT);
  ASSERT_TRUE(frozen->Wait(seconds(60)).has_value()) << "the frozen worker did not stop";
  ASSERT_TRUE(taker->Wait(seconds(120)).has_value());
  EXPECT_NE(frozen->Stderr().find("Lost the lease of " + std::string(testing::kCopyTraces)),
            std::string::npos)
      << frozen->Stderr();
  // Nothing from the frozen worker after the takeover but its own lease_lost note.
  EXPECT_EQ(PgScalar("SELECT string_agg(kind, ',') FROM background_migration_events WHERE "
                     "migration_name = $1 AND worker_id = 'w-frozen' AND id > $2",
                     {testing::kCopyTraces, takeover_id}),
            "lease_lost");
  EXPECT_EQ(Listed(testing::kCopyTraces)["status"], "finished");
  EXPECT_EQ(PgScalar("SELECT worker_id FROM background_migration_events WHERE "
                     "migration_name = $1 AND kind = 'finished'",
                     {testing::kCopyTraces}),
            "w-taker");
  ExpectExactCopy(kCopies[0]);
}

}  // namespace
}  // namespace bgm
