// Unit tests of the manager's own logic (ordering, prerequisites, leases, heartbeat, fencing,
// pause/resume/retry) on an in-memory control store and a fake clock: no sleeping on time.
#include "core/manager.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <thread>

#include "core/args.h"
#include "core/readiness.h"
#include "testing/memory_control_store.h"

namespace bgm {
namespace {

using std::chrono::seconds;
using testing::MemoryControlStore;
using testing::MemoryDatabase;

// Lets a test hold a migration inside a batch and release batches one at a time.
class Gate {
 public:
  // Blocks until a batch is allowed; false when `stop` fired first.
  bool Enter(std::stop_token stop) {
    std::unique_lock lock(mu_);
    waiting_++;
    cv_.notify_all();
    const bool ok = cv_.wait(lock, stop, [&] { return allowed_ > 0; });
    waiting_--;
    if (ok) allowed_--;
    return ok;
  }
  void Allow(int n) {
    std::lock_guard lock(mu_);
    allowed_ += n;
    cv_.notify_all();
  }
  // Blocks (real time, up to 10 s) until a batch waits at the gate.
  [[nodiscard]] ::testing::AssertionResult WaitUntilWaiting() {
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, std::chrono::seconds(10), [&] { return waiting_ > 0; })) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "no batch reached the gate within 10 s";
  }

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  int allowed_ = 0;
  int waiting_ = 0;
};

// Polls `done` (real time, up to 10 s); fails naming `what` instead of hanging the suite.
template <typename Pred>
::testing::AssertionResult Eventually(Pred done, const char* what) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return ::testing::AssertionFailure() << "not within 10 s: " << what;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return ::testing::AssertionSuccess();
}

// Processes `total` rows, batchSize at a time, with the cursor {"next": n} in state.
struct Script {
  int total = 10;
  int fail_at = -1;            // fails (for good) once when the cursor reaches this row
  int transient_at = -1;       // fails with kUnavailable at this row ...
  int transient_failures = 0;  // ... this many times
  Gate* gate = nullptr;        // when set, every batch waits at the gate
  std::vector<int> starts;     // cursor at each Run() start
};

class CountingMigration final : public BackgroundMigration {
 public:
  explicit CountingMigration(Script& script) : script_(script) { schema_.Int("batchSize", 1, 100); }
  Status Validate(const nlohmann::json& args) const override { return schema_.Validate(args); }
  Status Run(MigrationContext& ctx) override {
    const int batch = static_cast<int>(IntArg(ctx.args(), "batchSize", 3));
    int next = ctx.state().value("next", 0);
    script_.starts.push_back(next);
    while (next < script_.total) {
      if (ctx.stop_requested()) return Cancelled("stop requested");
      BGM_RETURN_IF_ERROR(ctx.AwaitHealthy());
      if (script_.gate && !script_.gate->Enter(ctx.stop_token())) return Cancelled("stopped");
      if (script_.fail_at >= 0 && next >= script_.fail_at) {
        script_.fail_at = -1;
        return Internal("source went away at row " + std::to_string(next));
      }
      if (next == script_.transient_at && script_.transient_failures > 0) {
        --script_.transient_failures;
        return Unavailable("source unreachable at row " + std::to_string(next));
      }
      const int to = std::min(next + batch, script_.total);
      BatchRecord rec;
      rec.state = {{"next", to}};
      rec.rows = to - next;
      rec.from = next;
      rec.to = to;
      BGM_RETURN_IF_ERROR(ctx.Checkpoint(rec));
      next = to;
    }
    return Status::Ok();
  }

 private:
  Script& script_;
  ArgsSchema schema_;
};

// A health signal whose value the test sets (threshold 100).
class PartsSignal final : public HealthSignal {
 public:
  PartsSignal(std::atomic<double>& value, std::atomic<size_t>& reads)
      : value_(value), reads_(reads) {}
  std::string signal() const override { return "clickhouse_parts"; }
  std::string what() const override { return "active parts in the busiest partition of t"; }
  double threshold() const override { return 100; }
  Result<std::optional<double>> Read() override {
    ++reads_;
    return std::optional<double>(value_.load());
  }

 private:
  std::atomic<double>& value_;
  std::atomic<size_t>& reads_;
};

class ManagerTest : public ::testing::Test {
 protected:
  static constexpr auto kLease = seconds(60);

  MigrationSpec Spec(const std::string& name, Script& script,
                     std::vector<std::string> prerequisites = {}) {
    return MigrationSpec{name, "test", std::move(prerequisites),
                         [&script] { return std::make_unique<CountingMigration>(script); }};
  }

  std::unique_ptr<Manager> NewManager(const Registry& registry, const std::string& worker,
                                      bool exit_when_idle = true, bool enabled = true,
                                      Clock::Duration outage_budget = std::chrono::minutes(15)) {
    ManagerOptions options;
    options.worker_id = worker;
    options.lease = kLease;
    options.poll = seconds(5);
    options.enabled = enabled;
    options.exit_when_idle = exit_when_idle;
    options.outage_budget = outage_budget;
    options.throttle.check_interval = seconds(5);
    options.throttle.wait_interval = seconds(30);
    options.signals = [this](const HealthTargets&) {
      std::vector<std::unique_ptr<HealthSignal>> out;
      if (parts_ != nullptr) out.push_back(std::make_unique<PartsSignal>(*parts_, parts_reads_));
      return out;
    };
    return std::make_unique<Manager>(
        options, registry,
        [this]() -> Result<std::unique_ptr<ControlStore>> {
          return std::unique_ptr<ControlStore>(std::make_unique<MemoryControlStore>(db_));
        },
        clock_, MigrationEnv{});
  }

  std::vector<MigrationEvent> EventsOf(const std::string& kind) {
    std::vector<MigrationEvent> out;
    for (const MigrationEvent& e : db_.AllEvents()) {
      if (e.kind == kind) out.push_back(e);
    }
    return out;
  }

  // Blocks (real time, up to 10 s) until the worker recorded its `n`th wait and sleeps in its
  // backoff beside the heartbeat thread, so advancing the clock now ends exactly that backoff.
  void AwaitWait(size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(10);
    while (EventsOf("waiting").size() < n) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no waiting event #" << n;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(clock_.WaitForSleepers(2));
  }

  std::vector<std::string> AcquiredOrder() {
    std::vector<std::string> out;
    for (const MigrationEvent& e : db_.AllEvents()) {
      if (e.kind == "acquired") out.push_back(e.migration_name);
    }
    return out;
  }

  FakeClock clock_;
  MemoryDatabase db_{clock_, kLease};
  MemoryControlStore store_{db_};
  std::atomic<double>* parts_ = nullptr;  // when set, every migration has this health signal
  std::atomic<size_t> parts_reads_{0};
};

// Runs `manager` with exit_when_idle on a thread; fails (and stops it) when it has not exited
// within 10 s of real time, which is how a worker that never sees itself idle shows.
::testing::AssertionResult RunsToIdleExit(Manager& manager) {
  std::atomic<bool> done{false};
  std::jthread worker([&](std::stop_token st) {
    (void)manager.Run(st);
    done = true;
  });
  ::testing::AssertionResult exited = Eventually([&] { return done.load(); }, "idle worker exit");
  worker.request_stop();
  return exited;
}

TEST_F(ManagerTest, RunsMigrationsInNameOrderToTheEnd) {
  Script a, b, c;
  Registry registry({Spec("20240102_b", b), Spec("20240103_c", c), Spec("20240101_a", a)});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  ASSERT_TRUE(manager->Run(std::stop_token()).ok());

  EXPECT_EQ(AcquiredOrder(), (std::vector<std::string>{"20240101_a", "20240102_b", "20240103_c"}));
  MigrationRow row = db_.Row("20240101_a");
  EXPECT_EQ(row.status, MigrationStatus::kFinished);
  EXPECT_EQ(row.rows_processed, 10);
  EXPECT_EQ(row.state, (nlohmann::json{{"next", 10}}));
  EXPECT_FALSE(row.worker_id.has_value());
}

// A health signal over its threshold holds the batches back: the migration keeps its lease
// (heartbeats go on), shows status throttled with the reading, records one `throttled` event
// however many checks it takes, and goes on by itself when the signal falls below.
TEST_F(ManagerTest, AThrottledMigrationKeepsItsLeaseShowsTheSignalAndGoesOnWhenItClears) {
  Script a;
  std::atomic<double> parts{150};
  parts_ = &parts;
  Registry registry({Spec("20240101_a", a)});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  std::atomic<bool> done{false};
  std::jthread worker([&](std::stop_token st) {
    (void)manager->Run(st);
    done = true;
  });
  ASSERT_TRUE(Eventually(
      [&] { return db_.Row("20240101_a").status == MigrationStatus::kThrottled; }, "throttled"));
  MigrationRow row = db_.Row("20240101_a");
  EXPECT_EQ(*row.throttle, (nlohmann::json{{"signal", "clickhouse_parts"},
                                           {"what", "active parts in the busiest partition of t"},
                                           {"value", 150.0},
                                           {"threshold", 100.0}}));
  EXPECT_EQ(ThrottleText(row),
            "active parts in the busiest partition of t is 150, at or above 100");
  EXPECT_EQ(row.rows_processed, 0);
  for (int i = 0; i < 4; ++i) {              // two minutes of checks: the lease holds, one event
    ASSERT_TRUE(clock_.WaitForSleepers(2));  // the heartbeat and the throttle
    const int heartbeats = db_.heartbeats();
    const size_t reads = EventsOf("throttled").size() + parts_reads_;
    clock_.Advance(seconds(30));
    ASSERT_TRUE(Eventually([&] { return db_.heartbeats() > heartbeats; }, "a heartbeat"));
    ASSERT_TRUE(Eventually([&] { return parts_reads_ + EventsOf("throttled").size() > reads; },
                           "the signal read again"));
  }
  ASSERT_TRUE(clock_.WaitForSleepers(2));
  row = db_.Row("20240101_a");
  EXPECT_EQ(row.status, MigrationStatus::kThrottled);
  EXPECT_EQ(row.worker_id, "w1");
  EXPECT_EQ(EventsOf("throttled").size(), 1u);
  EXPECT_TRUE(EventsOf("lease_taken_over").empty());
  parts = 20;
  clock_.Advance(seconds(30));
  ASSERT_TRUE(Eventually([&] { return done.load(); }, "the migration finishing"));
  row = db_.Row("20240101_a");
  EXPECT_EQ(row.status, MigrationStatus::kFinished);
  EXPECT_EQ(row.rows_processed, 10);
  EXPECT_FALSE(row.throttle.has_value());
  ASSERT_EQ(EventsOf("throttle_ended").size(), 1u);
  EXPECT_EQ(EventsOf("throttle_ended")[0].detail["signal"], "clickhouse_parts");
}

TEST_F(ManagerTest, RegisterNeverOverwritesArgsOrState) {
  Script a;
  Registry registry({Spec("20240101_a", a)});
  db_.Insert("20240101_a", "20240101_a", {{"batchSize", 7}});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  EXPECT_EQ(db_.Row("20240101_a").args, (nlohmann::json{{"batchSize", 7}}));
}

TEST_F(ManagerTest, PrerequisitesRunFirstEvenWhenNamedLater) {
  Script a, b, c;
  Registry registry(
      {Spec("20240101_a", a), Spec("20240102_b", b, {"20240103_c"}), Spec("20240103_c", c)});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  ASSERT_TRUE(manager->Run(std::stop_token()).ok());
  EXPECT_EQ(AcquiredOrder(), (std::vector<std::string>{"20240101_a", "20240103_c", "20240102_b"}));
}

TEST_F(ManagerTest, FailedPrerequisiteBlocksDependentAndWorkerStillExits) {
  Script a, b;
  a.fail_at = 0;
  Registry registry({Spec("20240101_a", a), Spec("20240102_b", b, {"20240101_a"})});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  ASSERT_TRUE(manager->Run(std::stop_token()).ok());
  EXPECT_EQ(db_.Row("20240101_a").status, MigrationStatus::kFailed);
  EXPECT_EQ(db_.Row("20240102_b").status, MigrationStatus::kPending);
  EXPECT_EQ(AcquiredOrder(), (std::vector<std::string>{"20240101_a"}));
}

TEST_F(ManagerTest, FailureRecordsReasonAndWorkerGoesOn) {
  Script a, b;
  a.fail_at = 6;
  Registry registry({Spec("20240101_a", a), Spec("20240102_b", b)});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  ASSERT_TRUE(manager->Run(std::stop_token()).ok());
  MigrationRow row = db_.Row("20240101_a");
  EXPECT_EQ(row.status, MigrationStatus::kFailed);
  EXPECT_EQ(row.failed_reason, "source went away at row 6");
  EXPECT_TRUE(EventsOf("waiting").empty());  // a permanent error is not waited out
  EXPECT_EQ(row.state, (nlohmann::json{{"next", 6}}));
  EXPECT_EQ(db_.Row("20240102_b").status, MigrationStatus::kFinished);
}

TEST_F(ManagerTest, BadArgsFailOnlyThatMigrationWithTheKeyNamed) {
  Script a, b, c, d;
  Registry registry(
      {Spec("20240101_a", a), Spec("20240102_b", b), Spec("20240103_c", c), Spec("20240104_d", d)});
  db_.Insert("20240101_a", "20240101_a", {{"batchSize", -1}});
  db_.Insert("20240102_b", "20240102_b", {{"batchSize", "abc"}});
  db_.Insert("20240103_c", "20240103_c", {{"bachSize", 5}});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  ASSERT_TRUE(manager->Run(std::stop_token()).ok());
  EXPECT_EQ(db_.Row("20240101_a").failed_reason,
            "invalid args: batchSize must be an integer in [1, 100], got -1");
  EXPECT_EQ(db_.Row("20240102_b").failed_reason,
            "invalid args: batchSize must be an integer in [1, 100], got \"abc\"");
  EXPECT_EQ(db_.Row("20240103_c").failed_reason,
            "invalid args: unknown arg 'bachSize' (value 5); accepted args: batchSize");
  EXPECT_EQ(db_.Row("20240104_d").status, MigrationStatus::kFinished);
}

// A row whose script this bgmigrate does not know (another tool's, or a removed file's) is left
// as it is: shown as unknown, never run, never failed, and not work an idle worker waits for.
TEST_F(ManagerTest, UnknownScriptIsLeftAsItIsAndNeverFailed) {
  Script a;
  Registry registry({Spec("20240101_a", a)});
  db_.Insert("20230101_hand_written", "no_such_script", nlohmann::json::object());
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  ASSERT_TRUE(RunsToIdleExit(*manager));
  const MigrationRow row = db_.Row("20230101_hand_written");
  EXPECT_EQ(row.status, MigrationStatus::kPending);
  EXPECT_FALSE(row.failed_reason.has_value());
  EXPECT_EQ(row.attempts, 0);
  EXPECT_EQ(db_.Row("20240101_a").status, MigrationStatus::kFinished);
  std::vector<MigrationRow> rows = *store_.List();
  JudgeReadiness(rows, registry);
  EXPECT_EQ(rows[0].status, MigrationStatus::kUnknown);
  EXPECT_EQ(rows[0].unknown_reason,
            "its script 'no_such_script' is neither a built-in nor a migration file of this "
            "bgmigrate; it is left as it is (restore its file to run it)");
  EXPECT_EQ(rows[0].ToJson()["status"], "unknown");
}

TEST_F(ManagerTest, AGatedMigrationWaitsForItsVariableAndIsNotWork) {
  Script a, b;
  MigrationSpec gated = Spec("20240101_a", a);
  gated.gate = "LANGFUSE_ENABLE_A";
  gated.gate_open = false;
  Registry registry({gated, Spec("20240102_b", b)});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  ASSERT_TRUE(RunsToIdleExit(*manager));
  EXPECT_EQ(AcquiredOrder(), (std::vector<std::string>{"20240102_b"}));
  std::vector<MigrationRow> rows = *store_.List();
  JudgeReadiness(rows, registry);
  EXPECT_EQ(rows[0].status, MigrationStatus::kGated);
  EXPECT_EQ(rows[0].gate, "LANGFUSE_ENABLE_A");

  gated.gate_open = true;  // as a worker started with LANGFUSE_ENABLE_A=true sees it
  Registry open({gated, Spec("20240102_b", b)});
  auto opened = NewManager(open, "w2");
  ASSERT_TRUE(RunsToIdleExit(*opened));
  EXPECT_EQ(db_.Row("20240101_a").status, MigrationStatus::kFinished);
}

TEST_F(ManagerTest, HeartbeatKeepsTheLeaseAliveWhileABatchRuns) {
  Gate gate;
  Script a;
  a.gate = &gate;
  Registry registry({Spec("20240101_a", a)});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  std::jthread worker([&](std::stop_token st) { (void)manager->Run(st); });
  ASSERT_TRUE(gate.WaitUntilWaiting());
  // Ten lease quarters pass while the batch is stuck: each heartbeat renews the lease.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(clock_.WaitForSleepers(1));  // the heartbeat thread is waiting
    clock_.Advance(seconds(15));
    ASSERT_TRUE(
        Eventually([&] { return db_.heartbeats() >= i + 1; }, "heartbeat renewed the lease"));
  }
  EXPECT_EQ(db_.heartbeats(), 10);
  EXPECT_EQ(db_.Row("20240101_a").status, MigrationStatus::kRunning);
  Result<std::optional<Lease>> other = store_.TryAcquire("20240101_a", "w2");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value()) << "a live lease must not be taken";
  gate.Allow(100);
  worker.join();
  EXPECT_EQ(db_.Row("20240101_a").status, MigrationStatus::kFinished);
}

TEST_F(ManagerTest, DeadWorkersLeaseIsTakenOverOnlyAfterExpiryAndResumesFromCheckpoint) {
  Script a;
  Registry registry({Spec("20240101_a", a)});
  auto manager = NewManager(registry, "w2");
  ASSERT_TRUE(manager->RegisterAll().ok());
  // "w1" takes the lease, checkpoints row 4, then dies (no more heartbeats).
  ASSERT_TRUE(store_.TryAcquire("20240101_a", "w1")->has_value());
  BatchRecord rec;
  rec.state = {{"next", 4}};
  rec.rows = 4;
  ASSERT_TRUE(store_.Checkpoint("20240101_a", "w1", rec).ok());

  clock_.Advance(seconds(59));
  Result<bool> ran = manager->RunOnce(std::stop_token());
  ASSERT_TRUE(ran.ok());
  EXPECT_FALSE(*ran) << "the lease is still live";

  clock_.Advance(seconds(2));
  ran = manager->RunOnce(std::stop_token());
  ASSERT_TRUE(ran.ok());
  EXPECT_TRUE(*ran);
  EXPECT_EQ(a.starts, (std::vector<int>{4}));
  MigrationRow row = db_.Row("20240101_a");
  EXPECT_EQ(row.status, MigrationStatus::kFinished);
  EXPECT_EQ(row.rows_processed, 10);
  EXPECT_EQ(row.attempts, 2);
  // The stale worker's fence now fails.
  EXPECT_EQ(store_.Heartbeat("20240101_a", "w1").status().code(), StatusCode::kLeaseLost);
}

TEST_F(ManagerTest, WorkerWhoseFenceFailsStopsAndWritesNothingMore) {
  Gate gate;
  Script a;
  a.gate = &gate;
  Registry registry({Spec("20240101_a", a)});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  std::jthread worker([&](std::stop_token st) { (void)manager->Run(st); });
  ASSERT_TRUE(gate.WaitUntilWaiting());
  gate.Allow(1);
  ASSERT_TRUE(Eventually([&] { return db_.Row("20240101_a").rows_processed >= 3; },
                         "first batch checkpointed"));
  ASSERT_TRUE(gate.WaitUntilWaiting());  // first batch checkpointed (rows 0..3), second waits
  // w1 stalls beyond the lease (no heartbeat reached the store) and w2 takes over.
  MemoryControlStore other(db_);
  ASSERT_TRUE(other.Release("20240101_a", "w1", "simulated expiry").ok());
  ASSERT_TRUE(other.TryAcquire("20240101_a", "w2")->has_value());
  gate.Allow(1);  // w1's next checkpoint hits the fence
  worker.request_stop();
  worker.join();

  MigrationRow row = db_.Row("20240101_a");
  EXPECT_EQ(row.worker_id, "w2");
  EXPECT_EQ(row.rows_processed, 3) << "w1's fenced checkpoint must not count";
  EXPECT_EQ(row.state, (nlohmann::json{{"next", 3}}));
  bool saw_lease_lost = false;
  for (const MigrationEvent& e : db_.AllEvents()) {
    if (e.kind == "lease_lost" && e.worker_id == "w1") saw_lease_lost = true;
    if (e.worker_id == "w1") {
      EXPECT_NE(e.kind, "finished");
      EXPECT_NE(e.kind, "failed");
    }
  }
  EXPECT_TRUE(saw_lease_lost);
}

TEST_F(ManagerTest, PauseStopsAfterTheBatchAndResumeContinuesFromTheCursor) {
  Gate gate;
  Script a;
  a.gate = &gate;
  Registry registry({Spec("20240101_a", a)});
  auto manager = NewManager(registry, "w1", /*exit_when_idle=*/false);
  ASSERT_TRUE(manager->RegisterAll().ok());
  std::jthread worker([&](std::stop_token st) { (void)manager->Run(st); });
  ASSERT_TRUE(gate.WaitUntilWaiting());
  ASSERT_TRUE(store_.Pause("20240101_a", "test").ok());
  gate.Allow(1);  // the batch's checkpoint sees the pause
  ASSERT_TRUE(Eventually([&] { return !db_.Row("20240101_a").worker_id.has_value(); },
                         "the paused migration released its lease"));
  MigrationRow row = db_.Row("20240101_a");
  EXPECT_EQ(row.status, MigrationStatus::kPaused);
  EXPECT_EQ(row.state, (nlohmann::json{{"next", 3}}));
  EXPECT_EQ(store_.Pause("20240101_a", "test").code(), StatusCode::kFailedPrecondition);

  ASSERT_TRUE(store_.Resume("20240101_a", "test").ok());
  gate.Allow(100);
  ASSERT_TRUE(clock_.WaitForSleepers(1));
  clock_.Advance(seconds(5));  // the idle worker's next poll
  ASSERT_TRUE(Eventually([&] { return db_.Row("20240101_a").status == MigrationStatus::kFinished; },
                         "the resumed migration finished"));
  worker.request_stop();
  worker.join();
  EXPECT_EQ(a.starts, (std::vector<int>{0, 3}));
  EXPECT_EQ(db_.Row("20240101_a").rows_processed, 10);
}

TEST_F(ManagerTest, StopReleasesTheLeaseAndKeepsTheCheckpoint) {
  Gate gate;
  Script a;
  a.gate = &gate;
  Registry registry({Spec("20240101_a", a)});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  std::jthread worker([&](std::stop_token st) { (void)manager->Run(st); });
  ASSERT_TRUE(gate.WaitUntilWaiting());
  gate.Allow(2);
  ASSERT_TRUE(gate.WaitUntilWaiting());
  ASSERT_TRUE(Eventually([&] { return db_.Row("20240101_a").rows_processed >= 6; },
                         "two batches checkpointed"));
  worker.request_stop();
  worker.join();
  MigrationRow row = db_.Row("20240101_a");
  EXPECT_EQ(row.status, MigrationStatus::kPending);
  EXPECT_FALSE(row.worker_id.has_value());
  EXPECT_EQ(row.state, (nlohmann::json{{"next", 6}}));
  EXPECT_EQ(db_.AllEvents().back().kind, "released");
}

TEST_F(ManagerTest, RetryKeepsTheCursorAndFromStartResetsIt) {
  Script a;
  a.fail_at = 6;
  Registry registry({Spec("20240101_a", a)});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  EXPECT_EQ(store_.Retry("20240101_a", false, "test").code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(manager->Run(std::stop_token()).ok());
  ASSERT_EQ(db_.Row("20240101_a").status, MigrationStatus::kFailed);

  ASSERT_TRUE(store_.Retry("20240101_a", false, "test").ok());
  EXPECT_EQ(db_.Row("20240101_a").status, MigrationStatus::kPending);
  ASSERT_TRUE(manager->Run(std::stop_token()).ok());
  EXPECT_EQ(a.starts, (std::vector<int>{0, 6}));
  EXPECT_EQ(db_.Row("20240101_a").status, MigrationStatus::kFinished);

  EXPECT_EQ(store_.Retry("20240101_a", false, "test").code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_.Retry("20240101_a", true, "test").ok());
  EXPECT_EQ(db_.Row("20240101_a").rows_processed, 0);
  ASSERT_TRUE(manager->Run(std::stop_token()).ok());
  EXPECT_EQ(a.starts, (std::vector<int>{0, 6, 0}));
  EXPECT_EQ(db_.Row("20240101_a").rows_processed, 10);
}

TEST_F(ManagerTest, DisabledWorkerRunsNothing) {
  Script a;
  Registry registry({Spec("20240101_a", a)});
  auto manager = NewManager(registry, "w1", /*exit_when_idle=*/true, /*enabled=*/false);
  ASSERT_TRUE(manager->RegisterAll().ok());
  ASSERT_TRUE(manager->Run(std::stop_token()).ok());
  EXPECT_TRUE(AcquiredOrder().empty());
  EXPECT_EQ(db_.Row("20240101_a").status, MigrationStatus::kPending);
}

TEST_F(ManagerTest, PausedMigrationIsSkippedAndIdleWorkerExits) {
  Script a, b;
  Registry registry({Spec("20240101_a", a), Spec("20240102_b", b)});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  ASSERT_TRUE(store_.Pause("20240101_a", "test").ok());
  ASSERT_TRUE(manager->Run(std::stop_token()).ok());
  EXPECT_EQ(AcquiredOrder(), (std::vector<std::string>{"20240102_b"}));
  EXPECT_EQ(db_.Row("20240101_a").status, MigrationStatus::kPaused);
}

TEST_F(ManagerTest, TransientErrorWaitsWithBackoffThenResumesFromTheCheckpoint) {
  Script a;
  a.transient_at = 6;
  a.transient_failures = 3;
  Registry registry({Spec("20240101_a", a)});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  std::jthread worker([&] { EXPECT_TRUE(manager->Run(std::stop_token()).ok()); });
  size_t waits = 0;
  for (int backoff : {1, 2, 4}) {
    AwaitWait(++waits);
    const MigrationRow row = db_.Row("20240101_a");
    EXPECT_EQ(row.status, MigrationStatus::kWaiting);
    EXPECT_EQ(row.waiting_reason, "source unreachable at row 6");
    EXPECT_EQ(row.worker_id, "w1");  // the lease is kept while waiting
    EXPECT_EQ(row.state, (nlohmann::json{{"next", 6}}));
    EXPECT_EQ(EventsOf("waiting").back().detail["retry_in_s"], backoff);
    clock_.Advance(seconds(backoff));
  }
  worker.join();
  const MigrationRow row = db_.Row("20240101_a");
  EXPECT_EQ(row.status, MigrationStatus::kFinished);
  EXPECT_EQ(row.rows_processed, 10);
  EXPECT_FALSE(row.waiting_reason.has_value());
  EXPECT_EQ(a.starts, (std::vector<int>{0, 6, 6, 6}));  // every retry resumes at the cursor
  ASSERT_EQ(EventsOf("recovered").size(), 1u);
  EXPECT_EQ(EventsOf("recovered")[0].detail["outage_s"], 7.0);  // 1 + 2 + 4 s of waiting
  EXPECT_EQ(EventsOf("acquired").size(), 1u);                   // one lease throughout
}

TEST_F(ManagerTest, OutageLongerThanTheBudgetFailsNamingTheErrorAndKeepsTheCursor) {
  Script a;
  a.transient_at = 6;
  a.transient_failures = 1000;
  Registry registry({Spec("20240101_a", a)});
  auto manager = NewManager(registry, "w1", true, true, seconds(5));
  ASSERT_TRUE(manager->RegisterAll().ok());
  std::jthread worker([&] { EXPECT_TRUE(manager->Run(std::stop_token()).ok()); });
  // Backoffs 1 s and 2 s, then 2 s (what is left of the budget), then it gives up.
  size_t waits = 0;
  for (int backoff : {1, 2, 2}) {
    AwaitWait(++waits);
    EXPECT_EQ(EventsOf("waiting").back().detail["retry_in_s"], backoff);
    clock_.Advance(seconds(backoff));
  }
  worker.join();
  const MigrationRow row = db_.Row("20240101_a");
  EXPECT_EQ(row.status, MigrationStatus::kFailed);
  EXPECT_EQ(row.failed_reason,
            "gave up after waiting 5 s for the outage to end "
            "(BGMIGRATE_OUTAGE_BUDGET_SECONDS=5): source unreachable at row 6; once the server "
            "is back, `bgmigrate retry 20240101_a` resumes from the saved cursor");
  EXPECT_EQ(row.state, (nlohmann::json{{"next", 6}}));
  EXPECT_FALSE(row.waiting_reason.has_value());

  // A retry resumes from the cursor and, with the server back, finishes.
  a.transient_failures = 0;
  ASSERT_TRUE(store_.Retry("20240101_a", false, "test").ok());
  ASSERT_TRUE(manager->Run(std::stop_token()).ok());
  EXPECT_EQ(db_.Row("20240101_a").status, MigrationStatus::kFinished);
  EXPECT_EQ(a.starts.back(), 6);
}

TEST_F(ManagerTest, StopWhileWaitingReleasesTheLeaseInsteadOfFailing) {
  Script a;
  a.transient_at = 3;
  a.transient_failures = 1000;
  Registry registry({Spec("20240101_a", a)});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  std::stop_source stop;
  std::jthread worker([&] { EXPECT_TRUE(manager->Run(stop.get_token()).ok()); });
  AwaitWait(1);
  stop.request_stop();
  worker.join();
  const MigrationRow row = db_.Row("20240101_a");
  EXPECT_EQ(row.status, MigrationStatus::kPending);
  EXPECT_FALSE(row.failed_at.has_value());
  EXPECT_FALSE(row.waiting_reason.has_value());
  EXPECT_EQ(row.state, (nlohmann::json{{"next", 3}}));
  ASSERT_EQ(EventsOf("released").size(), 1u);
  EXPECT_EQ(EventsOf("released")[0].detail["reason"], "worker stopping");
}

// Regression: with a -> b -> c and a failed, c waited on b, which Idle() counted as work, so
// `worker --exit-when-idle` never exited.
TEST_F(ManagerTest, FailedPrerequisiteTwoLevelsDownBlocksTheChainAndIdleWorkerExits) {
  Script a, b, c;
  a.fail_at = 0;
  Registry registry({Spec("20240101_a", a), Spec("20240102_b", b, {"20240101_a"}),
                     Spec("20240103_c", c, {"20240102_b"})});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  ASSERT_TRUE(RunsToIdleExit(*manager));
  EXPECT_EQ(AcquiredOrder(), (std::vector<std::string>{"20240101_a"}));

  std::vector<MigrationRow> rows = *store_.List();
  JudgeReadiness(rows, registry);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].status, MigrationStatus::kBlocked);
  EXPECT_EQ(rows[1].blocked_by, "20240101_a");
  EXPECT_EQ(rows[2].status, MigrationStatus::kBlocked);
  EXPECT_EQ(rows[2].blocked_by, "20240101_a");
  EXPECT_EQ(rows[2].blocked_by_status, "failed");
  EXPECT_TRUE(IsIdle(rows));

  // A retry of a unblocks the chain; all three then run in order.
  a.fail_at = -1;
  ASSERT_TRUE(store_.Retry("20240101_a", false, "test").ok());
  ASSERT_TRUE(RunsToIdleExit(*manager));
  EXPECT_EQ(AcquiredOrder(),
            (std::vector<std::string>{"20240101_a", "20240101_a", "20240102_b", "20240103_c"}));
  EXPECT_EQ(db_.Row("20240103_c").status, MigrationStatus::kFinished);
}

// Regression: Idle() counted a migration that another worker holds while it waits out an
// outage as idle, so a second `worker --exit-when-idle` exited 0 with the migration unfinished.
TEST_F(ManagerTest, MigrationWaitingOnAnotherWorkerIsNotIdle) {
  Script a;
  Registry registry({Spec("20240101_a", a)});
  auto second = NewManager(registry, "w2");
  ASSERT_TRUE(second->RegisterAll().ok());
  ASSERT_TRUE(store_.TryAcquire("20240101_a", "w1")->has_value());
  ASSERT_TRUE(store_.SetWaiting("20240101_a", "w1", "ClickHouse unreachable", seconds(5)).ok());
  ASSERT_EQ(db_.Row("20240101_a").status, MigrationStatus::kWaiting);

  Result<bool> idle = second->Idle();
  ASSERT_TRUE(idle.ok());
  EXPECT_FALSE(*idle) << "a waiting migration is work in progress";
  Result<bool> ran = second->RunOnce(std::stop_token());
  ASSERT_TRUE(ran.ok());
  EXPECT_FALSE(*ran) << "the waiting worker's lease is live";

  ASSERT_TRUE(store_.Fail("20240101_a", "w1", "gave up").ok());
  idle = second->Idle();
  ASSERT_TRUE(idle.ok());
  EXPECT_TRUE(*idle);
}

TEST_F(ManagerTest, RunningOrPendingOnAnyWorkerIsNotIdle) {
  Script a, b;
  Registry registry({Spec("20240101_a", a), Spec("20240102_b", b)});
  auto manager = NewManager(registry, "w2");
  ASSERT_TRUE(manager->RegisterAll().ok());
  ASSERT_TRUE(store_.Pause("20240102_b", "test").ok());
  ASSERT_TRUE(store_.TryAcquire("20240101_a", "w1")->has_value());
  EXPECT_FALSE(*manager->Idle()) << "running on w1";
  ASSERT_TRUE(store_.Release("20240101_a", "w1", "stopping").ok());
  EXPECT_FALSE(*manager->Idle()) << "pending";
  ASSERT_TRUE(store_.TryAcquire("20240101_a", "w1")->has_value());
  ASSERT_TRUE(store_.Finish("20240101_a", "w1").ok());
  EXPECT_TRUE(*manager->Idle()) << "finished, and the other one paused";
}

TEST_F(ManagerTest, PendingMigrationNamesThePrerequisiteItWaitsFor) {
  Script a, b, c;
  Registry registry({Spec("20240101_a", a), Spec("20240102_b", b, {"20240101_a"}),
                     Spec("20240103_c", c, {"20240102_b"})});
  auto manager = NewManager(registry, "w1");
  ASSERT_TRUE(manager->RegisterAll().ok());
  ASSERT_TRUE(store_.TryAcquire("20240101_a", "w1")->has_value());

  std::vector<MigrationRow> rows = *store_.List();
  JudgeReadiness(rows, registry);
  EXPECT_EQ(rows[0].status, MigrationStatus::kRunning);
  EXPECT_EQ(rows[1].status, MigrationStatus::kPending);
  EXPECT_EQ(rows[1].waits_for, "20240101_a");
  EXPECT_EQ(rows[1].waits_for_status, "running");
  EXPECT_EQ(rows[2].waits_for, "20240102_b");
  EXPECT_EQ(rows[2].waits_for_status, "pending");
  EXPECT_FALSE(IsRunnable(rows[1]));
  EXPECT_FALSE(IsIdle(rows));

  // Paused two levels down: blocked, naming the paused one.
  ASSERT_TRUE(store_.Pause("20240101_a", "test").ok());
  ASSERT_TRUE(store_.Release("20240101_a", "w1", "paused by an operator").ok());
  rows = *store_.List();
  JudgeReadiness(rows, registry);
  EXPECT_EQ(rows[2].status, MigrationStatus::kBlocked);
  EXPECT_EQ(rows[2].blocked_by, "20240101_a");
  EXPECT_EQ(rows[2].blocked_by_status, "paused");
  EXPECT_FALSE(rows[2].waits_for.has_value());
  EXPECT_EQ(rows[2].ToJson()["status"], "blocked");
  EXPECT_TRUE(IsIdle(rows));
}

TEST_F(ManagerTest, UnknownPrerequisiteIsRefusedAtStartUpAndNothingIsRegistered) {
  Script a, b;
  Registry registry({Spec("20240101_a", a), Spec("20240102_b", b, {"20240101_typo"})});
  auto manager = NewManager(registry, "w1");
  Status s = manager->RegisterAll();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "background migration 20240102_b has the prerequisite '20240101_typo', which is not "
            "a known background migration (known: 20240101_a, 20240102_b); fix the name or add "
            "the missing migration");
  EXPECT_TRUE(store_.List()->empty());
}

TEST_F(ManagerTest, PrerequisiteCycleIsRefusedAtStartUp) {
  Script a, b, c;
  Registry registry({Spec("20240101_a", a, {"20240103_c"}), Spec("20240102_b", b, {"20240101_a"}),
                     Spec("20240103_c", c, {"20240102_b"})});
  Status s = ValidatePrerequisites(registry);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "background migration prerequisites form a cycle (20240101_a -> 20240103_c -> "
            "20240102_b -> 20240101_a): none of them could ever run; remove one of these "
            "prerequisites");
  Registry self({Spec("20240101_a", a, {"20240101_a"})});
  EXPECT_EQ(ValidatePrerequisites(self).message(),
            "background migration 20240101_a names itself as a prerequisite; remove it from its "
            "prerequisites");
  EXPECT_TRUE(ValidatePrerequisites(
                  Registry({Spec("20240101_a", a), Spec("20240102_b", b, {"20240101_a"})}))
                  .ok());
}

}  // namespace
}  // namespace bgm
