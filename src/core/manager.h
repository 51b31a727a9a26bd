// Manager: a worker's loop over background migrations. It picks runnable migrations in name
// order (waiting for declared prerequisites), takes a lease with one compare-and-set, runs the
// migration while a heartbeat thread renews the lease every lease/4, and records the outcome
// with fenced writes. A worker whose fence fails stops that migration at once and writes
// nothing more to it. Many workers (processes) may run against one database.
//
// Threads: Run() blocks its caller; one heartbeat std::jthread per running migration. Each
// thread opens its own ControlStore through the factory.
//
//   Manager manager(options, BuiltinRegistry(), store_factory, clock, env);
//   Status s = manager.Run(stop_token);
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>

#include "common/clock.h"
#include "core/control_store.h"
#include "core/registry.h"
#include "core/throttle.h"

namespace bgm {

struct ManagerOptions {
  std::string worker_id;
  Clock::Duration lease = std::chrono::seconds(60);
  Clock::Duration poll = std::chrono::seconds(5);
  bool enabled = true;          // LANGFUSE_ENABLE_BACKGROUND_MIGRATIONS
  bool exit_when_idle = false;  // return once nothing is pending, running or waiting anywhere
  // A migration that fails with a transient error (a server unreachable, a timeout, a memory
  // limit) keeps its lease and is run again from its last checkpoint after a backoff that
  // doubles from backoff_initial up to backoff_max; its status is `waiting` meanwhile. When an
  // outage (no checkpoint in between) lasts longer than outage_budget it fails instead.
  Clock::Duration outage_budget = std::chrono::minutes(15);  // BGMIGRATE_OUTAGE_BUDGET_SECONDS
  Clock::Duration backoff_initial = std::chrono::seconds(1);
  Clock::Duration backoff_max = std::chrono::seconds(10);
  // Throttling on the health of the databases (core/throttle.h); `signals` builds a
  // migration's signals (default: MakeHealthSignals; tests give their own).
  ThrottleSettings throttle;
  std::function<std::vector<std::unique_ptr<HealthSignal>>(const HealthTargets&)> signals;
};

using ControlStoreFactory = std::function<Result<std::unique_ptr<ControlStore>>()>;

class Manager {
 public:
  Manager(ManagerOptions options, const Registry& registry, ControlStoreFactory store_factory,
          Clock& clock, MigrationEnv env);

  // Registers every known migration that has no row yet. Never touches existing rows.
  // kInvalidArgument, registering nothing, when a prerequisite names an unknown migration or
  // prerequisites form a cycle (ValidatePrerequisites).
  Status RegisterAll();

  // Loops until `stop` is requested (or, with exit_when_idle, until no migration is pending or
  // running). Unreachable databases are logged and retried after the poll interval.
  // Returns OK on a requested stop or idle exit.
  Status Run(std::stop_token stop);

  // One pass: runs at most one migration to its end (finished, failed, released).
  // Returns true when one was run.
  Result<bool> RunOnce(std::stop_token stop);

  // True when nothing will progress without an operator: no migration, held by this worker or
  // any other, is pending, running or waiting (IsIdle in core/readiness.h).
  Result<bool> Idle();

 private:
  // Runs the leased migration; every outcome is recorded before it returns.
  void RunLeased(const Lease& lease, std::stop_token stop);
  // Runs the migration, and again after each transient error until it succeeds, fails for
  // good, is stopped or the outage budget runs out. Returns the last attempt's Status.
  Status RunWithRetries(const Lease& lease, BackgroundMigration& migration,
                        std::stop_source& run_stop, std::atomic<bool>& lease_lost,
                        std::atomic<bool>& paused);
  Status EnsureStore();
  // The throttle of a run of `migration`: its signals, and (`report`: the lease holder) the
  // throttled status written through a store of its own.
  std::unique_ptr<Throttle> MakeThrottle(const std::string& name,
                                         const BackgroundMigration& migration,
                                         const nlohmann::json& args, bool report);
  // Every row, judged by JudgeReadiness.
  Result<std::vector<MigrationRow>> JudgedRows();
  // A write through the loop thread's store, reconnecting it first when an outage dropped it.
  Status WithStore(const std::function<Status(ControlStore&)>& op);

  const ManagerOptions options_;
  const Registry& registry_;
  ControlStoreFactory store_factory_;
  Clock& clock_;
  const MigrationEnv env_;
  std::unique_ptr<ControlStore> store_;  // the loop thread's store
};

}  // namespace bgm
