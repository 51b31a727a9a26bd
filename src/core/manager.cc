#include "core/manager.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <optional>
#include <thread>

#include "core/args.h"
#include "core/health_signals.h"
#include "core/readiness.h"

namespace bgm {
namespace {

constexpr const char* kTag = "[Background Migration]";

// The context handed to a running migration: fenced writes through the loop thread's store.
class LeasedContext final : public MigrationContext {
 public:
  // `outage_start` is set while the migration waits out an outage; the first checkpoint after
  // it reports the recovery and clears it.
  LeasedContext(const Lease& lease, nlohmann::json state, const MigrationEnv& env,
                ControlStore& store, const std::string& worker_id, std::stop_source& run_stop,
                std::atomic<bool>& lease_lost, std::atomic<bool>& paused, Clock& clock,
                std::optional<Clock::TimePoint>& outage_start, std::chrono::seconds lease_length,
                Throttle& throttle)
      : lease_(lease),
        lease_length_(lease_length),
        env_(env),
        store_(store),
        worker_id_(worker_id),
        run_stop_(run_stop),
        lease_lost_(lease_lost),
        paused_(paused),
        clock_(clock),
        outage_start_(outage_start),
        throttle_(throttle),
        state_(state.is_object() ? std::move(state) : nlohmann::json::object()) {}

  const std::string& name() const override { return lease_.name; }
  const nlohmann::json& args() const override { return lease_.args; }
  const nlohmann::json& state() const override { return state_; }
  const MigrationEnv& env() const override { return env_; }
  std::stop_token stop_token() const override { return run_stop_.get_token(); }
  std::string worker_id() const override { return worker_id_; }
  std::chrono::seconds lease() const override { return lease_length_; }

  Status Checkpoint(const BatchRecord& batch) override {
    Result<Fence> fence = store_.Checkpoint(lease_.name, worker_id_, batch);
    if (!fence.ok()) {
      if (fence.status().code() == StatusCode::kLeaseLost) {
        lease_lost_ = true;
        run_stop_.request_stop();
      }
      return fence.status();
    }
    state_ = batch.state;
    rows_ += batch.rows;
    if (outage_start_.has_value()) {
      const double outage_s = std::chrono::duration<double>(clock_.Now() - *outage_start_).count();
      outage_start_.reset();
      spdlog::info("{} {} recovered: committed a batch again after {:.1f} s of waiting", kTag,
                   lease_.name, outage_s);
      (void)store_.RecordEvent(lease_.name, "recovered", worker_id_,
                               {{"outage_s", std::round(outage_s * 10) / 10}});
    }
    spdlog::info("{} {}: processed batch of {} rows ({} bytes) in {} ms; {} rows so far; cursor {}",
                 kTag, lease_.name, batch.rows, batch.bytes, batch.duration_ms, rows_,
                 batch.to.dump());
    if (fence->paused) {
      paused_ = true;
      run_stop_.request_stop();
    }
    return Status::Ok();
  }

  Status AwaitHealthy() override { return throttle_.Await(run_stop_.get_token()); }

  Status ReportTotalEstimate(int64_t rows) override {
    Status s = store_.SetTotalEstimate(lease_.name, worker_id_, rows);
    if (s.code() == StatusCode::kLeaseLost) {
      lease_lost_ = true;
      run_stop_.request_stop();
    }
    return s;
  }

 private:
  const Lease& lease_;
  const std::chrono::seconds lease_length_;
  const MigrationEnv& env_;
  ControlStore& store_;
  const std::string& worker_id_;
  std::stop_source& run_stop_;
  std::atomic<bool>& lease_lost_;
  std::atomic<bool>& paused_;
  Clock& clock_;
  std::optional<Clock::TimePoint>& outage_start_;
  Throttle& throttle_;
  nlohmann::json state_;
  int64_t rows_ = 0;
};

// The context of a helper: a worker running parts of a migration another worker leases. The
// parts keep their own state; the migration's checkpoint and estimate are the lease holder's.
class HelperContext final : public MigrationContext {
 public:
  HelperContext(const MigrationRow& row, const MigrationEnv& env, std::string worker_id,
                std::chrono::seconds lease, std::stop_token stop, Throttle& throttle)
      : row_(row),
        env_(env),
        worker_id_(std::move(worker_id)),
        lease_(lease),
        stop_(stop),
        throttle_(throttle) {}
  const std::string& name() const override { return row_.name; }
  const nlohmann::json& args() const override { return row_.args; }
  const nlohmann::json& state() const override { return row_.state; }
  const MigrationEnv& env() const override { return env_; }
  std::stop_token stop_token() const override { return stop_; }
  std::string worker_id() const override { return worker_id_; }
  std::chrono::seconds lease() const override { return lease_; }
  Status Checkpoint(const BatchRecord&) override {
    return Internal("a helper of " + row_.name + " has no checkpoint of the migration");
  }
  Status ReportTotalEstimate(int64_t) override { return Status::Ok(); }
  Status AwaitHealthy() override { return throttle_.Await(stop_); }

 private:
  const MigrationRow& row_;
  const MigrationEnv& env_;
  const std::string worker_id_;
  const std::chrono::seconds lease_;
  std::stop_token stop_;
  Throttle& throttle_;
};

}  // namespace

Manager::Manager(ManagerOptions options, const Registry& registry,
                 ControlStoreFactory store_factory, Clock& clock, MigrationEnv env)
    : options_(std::move(options)),
      registry_(registry),
      store_factory_(std::move(store_factory)),
      clock_(clock),
      env_(std::move(env)) {}

Status Manager::EnsureStore() {
  if (store_ != nullptr) return Status::Ok();
  Result<std::unique_ptr<ControlStore>> store = store_factory_();
  if (!store.ok()) return store.status();
  store_ = std::move(*store);
  return Status::Ok();
}

Status Manager::WithStore(const std::function<Status(ControlStore&)>& op) {
  BGM_RETURN_IF_ERROR(EnsureStore());
  return op(*store_);
}

Status Manager::RegisterAll() {
  BGM_RETURN_IF_ERROR(ValidatePrerequisites(registry_));
  BGM_RETURN_IF_ERROR(EnsureStore());
  for (const MigrationSpec& spec : registry_.specs()) {
    Result<bool> inserted = store_->Register(spec.name, spec.name);
    if (!inserted.ok()) return inserted.status();
    if (*inserted) spdlog::info("{} Registered background migration {}", kTag, spec.name);
  }
  return store_->AdoptApplicationRows();
}

Result<std::vector<MigrationRow>> Manager::JudgedRows() {
  BGM_RETURN_IF_ERROR(EnsureStore());
  Result<std::vector<MigrationRow>> rows = store_->List();
  if (!rows.ok()) return rows.status();
  JudgeReadiness(*rows, registry_);
  return rows;
}

Result<bool> Manager::Idle() {
  Result<std::vector<MigrationRow>> rows = JudgedRows();
  if (!rows.ok()) return rows.status();
  return IsIdle(*rows);
}

Result<bool> Manager::RunOnce(std::stop_token stop) {
  Result<std::vector<MigrationRow>> rows = JudgedRows();
  if (!rows.ok()) return rows.status();
  for (const MigrationRow& row : *rows) {
    if (stop.stop_requested()) return false;
    if (!IsRunnable(row)) {
      if (row.waits_for) {
        spdlog::debug("{} {} waits for its prerequisite {} ({})", kTag, row.name, *row.waits_for,
                      row.waits_for_status.value_or(""));
      }
      continue;
    }
    Result<std::optional<Lease>> lease = store_->TryAcquire(row.name, options_.worker_id);
    if (!lease.ok()) return lease.status();
    if (!lease->has_value()) continue;  // another worker was faster
    if (row.worker_id.has_value()) {
      spdlog::warn("{} Took over the expired lease of {} from worker {}", kTag, row.name,
                   *row.worker_id);
      (void)store_->RecordEvent(row.name, "lease_taken_over", options_.worker_id,
                                {{"from", *row.worker_id}});
    }
    spdlog::info("{} Acquired lock for background migration {} (worker {}, attempt {})", kTag,
                 row.name, options_.worker_id, (*lease)->attempts);
    RunLeased(**lease, stop);
    return true;
  }
  // Nothing to lease: help a running migration that shares its work (a chunked copy).
  for (const MigrationRow& row : *rows) {
    if (stop.stop_requested()) return false;
    if (row.status != MigrationStatus::kRunning || !row.lease_live ||
        row.worker_id == options_.worker_id || !row.args.is_object()) {
      continue;
    }
    const MigrationSpec* spec = registry_.Find(row.script);
    if (spec == nullptr) continue;
    std::unique_ptr<BackgroundMigration> migration = spec->create();
    if (!migration->Validate(row.args).ok() || !migration->SharesWork(row.args)) continue;
    std::unique_ptr<Throttle> throttle = MakeThrottle(row.name, *migration, row.args, false);
    HelperContext ctx(row, env_, options_.worker_id,
                      std::chrono::duration_cast<std::chrono::seconds>(options_.lease), stop,
                      *throttle);
    Result<bool> helped = migration->Help(ctx);
    if (!helped.ok()) {
      spdlog::warn("{} Helping {} (held by {}) stopped: {}", kTag, row.name,
                   row.worker_id.value_or("?"), helped.status().ToString());
      continue;
    }
    if (*helped) {
      spdlog::info("{} Helped {} (held by {}) with its chunks", kTag, row.name,
                   row.worker_id.value_or("?"));
      return true;
    }
  }
  return false;
}

void Manager::RunLeased(const Lease& lease, std::stop_token stop) {
  const auto started = clock_.Now();
  auto fail = [&](const std::string& reason) {
    spdlog::error("{} Background migration {} failed: {}", kTag, lease.name, reason);
    Status s = WithStore(
        [&](ControlStore& st) { return st.Fail(lease.name, options_.worker_id, reason); });
    if (!s.ok())
      spdlog::error("{} Could not record the failure of {}: {}", kTag, lease.name, s.ToString());
  };

  const MigrationSpec* spec = registry_.Find(lease.script);
  if (spec == nullptr) {  // IsRunnable refuses these; a row changed under us: leave it as it is
    (void)WithStore([&](ControlStore& st) {
      return st.Release(lease.name, options_.worker_id, "unknown script '" + lease.script + "'");
    });
    return;
  }
  std::unique_ptr<BackgroundMigration> migration = spec->create();
  if (lease.args_error) {
    fail("invalid args: the args column cannot be read (" + TextExcerpt(*lease.args_error) +
         "); numbers must fit a double, e.g. {\"batchSize\": 2500}; fix args and retry");
    return;
  }
  if (!lease.args.is_object()) {
    fail("invalid args: args must be a JSON object such as {\"batchSize\": 2500}, got " +
         JsonExcerpt(lease.args));
    return;
  }
  if (Status v = migration->Validate(lease.args); !v.ok()) {
    fail("invalid args: " + v.message());
    return;
  }

  std::stop_source run_stop;
  std::stop_callback forward(stop, [&] { run_stop.request_stop(); });
  std::atomic<bool> lease_lost{false};
  std::atomic<bool> paused{false};

  // Heartbeat: renews the lease every lease/4 on its own connection.
  std::jthread heartbeat([&](std::stop_token hb_stop) {
    std::unique_ptr<ControlStore> hb_store;
    while (clock_.SleepFor(options_.lease / 4, hb_stop)) {
      if (hb_store == nullptr) {
        Result<std::unique_ptr<ControlStore>> s = store_factory_();
        if (!s.ok()) {
          spdlog::warn("{} Heartbeat of {} could not connect: {}", kTag, lease.name,
                       s.status().ToString());
          continue;
        }
        hb_store = std::move(*s);
      }
      Result<Fence> fence = hb_store->Heartbeat(lease.name, options_.worker_id);
      if (!fence.ok()) {
        if (fence.status().code() == StatusCode::kLeaseLost) {
          lease_lost = true;
          run_stop.request_stop();
          return;
        }
        spdlog::warn("{} Heartbeat of {} failed: {}", kTag, lease.name, fence.status().ToString());
        hb_store.reset();
        continue;
      }
      if (fence->paused && !paused) {
        paused = true;
        run_stop.request_stop();
      }
    }
  });

  Status result = RunWithRetries(lease, *migration, run_stop, lease_lost, paused);
  heartbeat.request_stop();
  heartbeat.join();

  const double seconds = std::chrono::duration<double>(clock_.Now() - started).count();
  if (lease_lost || result.code() == StatusCode::kLeaseLost) {
    spdlog::error("{} Lost the lease of {} to another worker; stopping it without further writes",
                  kTag, lease.name);
    (void)WithStore([&](ControlStore& st) {
      return st.RecordEvent(lease.name, "lease_lost", options_.worker_id, nlohmann::json::object());
    });
    return;
  }
  if (result.ok()) {
    Status s =
        WithStore([&](ControlStore& st) { return st.Finish(lease.name, options_.worker_id); });
    if (s.ok()) {
      spdlog::info("{} Finished background migration {} in {:.1f} s", kTag, lease.name, seconds);
    } else {
      spdlog::error("{} Could not record that {} finished: {}", kTag, lease.name, s.ToString());
    }
    return;
  }
  if (result.code() == StatusCode::kCancelled && run_stop.stop_requested()) {
    const std::string reason = paused ? "paused or cancelled by an operator" : "worker stopping";
    Status s = WithStore(
        [&](ControlStore& st) { return st.Release(lease.name, options_.worker_id, reason); });
    if (s.ok()) {
      spdlog::info("{} Released the lock of {} ({}); progress is saved", kTag, lease.name, reason);
    } else {
      spdlog::error("{} Could not release the lock of {}: {}", kTag, lease.name, s.ToString());
    }
    return;
  }
  fail(result.message());
}

Status Manager::RunWithRetries(const Lease& lease, BackgroundMigration& migration,
                               std::stop_source& run_stop, std::atomic<bool>& lease_lost,
                               std::atomic<bool>& paused) {
  auto secs = [](Clock::Duration d) { return std::chrono::duration<double>(d).count(); };
  nlohmann::json state = lease.state;
  std::optional<Clock::TimePoint> outage_start;  // set while waiting, cleared by a checkpoint
  int waits = 0;                                 // backoff steps in the current outage
  std::unique_ptr<Throttle> throttle = MakeThrottle(lease.name, migration, lease.args, true);
  for (;;) {
    Status result = EnsureStore();
    if (result.ok()) {
      LeasedContext ctx(lease, state, env_, *store_, options_.worker_id, run_stop, lease_lost,
                        paused, clock_, outage_start,
                        std::chrono::duration_cast<std::chrono::seconds>(options_.lease),
                        *throttle);
      try {
        result = migration.Run(ctx);
      } catch (const std::exception& e) {
        result = Internal(std::string("unexpected error: ") + e.what());
      }
      state = ctx.state();
    }
    if (result.ok() || lease_lost || !IsRetriable(result.code())) return result;
    if (run_stop.stop_requested()) return Cancelled("stopped after: " + result.message());

    const Clock::TimePoint now = clock_.Now();
    if (!outage_start.has_value()) {
      outage_start = now;
      waits = 0;
    }
    const Clock::Duration waited = now - *outage_start;
    if (waited >= options_.outage_budget) {
      return Status(result.code(),
                    "gave up after waiting " + std::to_string(std::lround(secs(waited))) +
                        " s for the outage to end (BGMIGRATE_OUTAGE_BUDGET_SECONDS=" +
                        std::to_string(std::lround(secs(options_.outage_budget))) +
                        "): " + result.message() + "; once the server is back, `bgmigrate retry " +
                        lease.name + "` resumes from the saved cursor");
    }
    Clock::Duration backoff = options_.backoff_initial;
    for (int i = 0; i < waits && backoff < options_.backoff_max; ++i) backoff *= 2;
    backoff = std::min({backoff, options_.backoff_max, options_.outage_budget - waited});
    ++waits;
    spdlog::warn(
        "{} {} is waiting: {}; trying again in {:.1f} s ({:.0f} s of the {:.0f} s "
        "outage budget used)",
        kTag, lease.name, result.message(), secs(backoff), secs(waited),
        secs(options_.outage_budget));
    Status recorded = WithStore([&](ControlStore& st) {
      return st.SetWaiting(lease.name, options_.worker_id, result.message(),
                           std::chrono::duration_cast<std::chrono::milliseconds>(backoff));
    });
    if (recorded.code() == StatusCode::kLeaseLost) {
      lease_lost = true;
      return recorded;
    }
    if (!recorded.ok()) {
      spdlog::warn("{} Could not record that {} is waiting: {}", kTag, lease.name,
                   recorded.ToString());
      store_.reset();  // reconnect on the next attempt
    }
    if (!clock_.SleepFor(backoff, run_stop.get_token())) {
      return Cancelled("stopped while waiting: " + result.message());
    }
    // Resume from the committed checkpoint: one whose reply was lost may have committed.
    if (EnsureStore().ok()) {
      Result<MigrationRow> row = store_->Get(lease.name);
      if (!row.ok()) {
        store_.reset();
      } else if (row->worker_id != options_.worker_id) {
        lease_lost = true;
        return LeaseLost("worker " + options_.worker_id + " no longer holds the lease of " +
                         lease.name);
      } else if (row->state.is_object()) {
        state = row->state;
      }
    }
  }
}

std::unique_ptr<Throttle> Manager::MakeThrottle(const std::string& name,
                                                const BackgroundMigration& migration,
                                                const nlohmann::json& args, bool report) {
  const HealthTargets targets = migration.Health(args);
  std::vector<std::unique_ptr<HealthSignal>> signals =
      options_.signals ? options_.signals(targets)
                       : MakeHealthSignals(options_.throttle, env_, targets);
  Throttle::Reporter reporter;
  if (report) {
    // Called under the throttle's lock: one write at a time, on a store of its own.
    auto store = std::make_shared<std::unique_ptr<ControlStore>>();
    reporter = [this, name, store](const std::optional<ThrottleReading>& reading) {
      if (*store == nullptr) {
        Result<std::unique_ptr<ControlStore>> opened = store_factory_();
        if (!opened.ok()) {
          spdlog::warn("{} Could not record the throttle of {}: {}", kTag, name,
                       opened.status().ToString());
          return;
        }
        *store = std::move(*opened);
      }
      Status s = (*store)->SetThrottled(
          name, options_.worker_id,
          reading ? std::optional<nlohmann::json>(reading->ToJson()) : std::nullopt);
      if (!s.ok()) {
        spdlog::warn("{} Could not record the throttle of {}: {}", kTag, name, s.ToString());
        store->reset();
      }
    };
  }
  return std::make_unique<Throttle>(name, std::move(signals), options_.throttle, clock_,
                                    std::move(reporter));
}

Status Manager::Run(std::stop_token stop) {
  if (!options_.enabled) {
    spdlog::warn(
        "{} Background migrations are disabled (LANGFUSE_ENABLE_BACKGROUND_MIGRATIONS="
        "false): this worker runs none",
        kTag);
    if (options_.exit_when_idle) return Status::Ok();
    while (clock_.SleepFor(options_.poll, stop)) {
    }
    return Status::Ok();
  }
  spdlog::info("{} Worker {} started (lease {} s, poll {} s)", kTag, options_.worker_id,
               std::chrono::duration<double>(options_.lease).count(),
               std::chrono::duration<double>(options_.poll).count());
  while (!stop.stop_requested()) {
    Result<bool> ran = RunOnce(stop);
    if (!ran.ok()) {
      spdlog::warn("{} {}; trying again in {} s", kTag, ran.status().ToString(),
                   std::chrono::duration<double>(options_.poll).count());
      store_.reset();
    } else if (*ran) {
      continue;
    } else if (options_.exit_when_idle) {
      Result<bool> idle = Idle();
      if (idle.ok() && *idle) {
        spdlog::info("{} Nothing left to run; worker {} exits", kTag, options_.worker_id);
        return Status::Ok();
      }
    }
    if (!clock_.SleepFor(options_.poll, stop)) break;
  }
  spdlog::info("{} Worker {} stopped", kTag, options_.worker_id);
  return Status::Ok();
}

}  // namespace bgm
