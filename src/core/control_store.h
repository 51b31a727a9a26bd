// ControlStore: the background_migrations and background_migration_events tables, as the
// operations the engine and the operator tools need. Every write a worker makes while running a
// migration is fenced on its worker_id: when another worker holds the lease, the write changes
// nothing and returns kLeaseLost. Lease times come from the store's clock (the database's, for
// PgControlStore), never the worker's.
// Implementations are not thread-safe: each thread uses its own instance.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/migration.h"

namespace bgm {

// The rows of background_migration_chunks (core/chunk_store.h, which callers of ListChunks and
// CountChunks include; declared here so that this interface carries no Postgres header).
struct Chunk;
struct ChunkCounts;

// Which chunks ListChunks returns: those with one of `statuses` (all when empty) whose number
// is above `after`, in key order, at most `limit`.
struct ChunkFilter {
  std::vector<std::string> statuses;
  int after = -1;
  int limit = 100;
};

// kWaiting: running (the lease is live) but its Postgres or ClickHouse is unreachable; the
// worker retries with backoff until the outage budget runs out.
// kBlocked: pending, but a prerequisite at some depth failed or is paused, so it cannot run
// until an operator acts on that one. Never stored: JudgeReadiness (core/readiness.h)
// derives it from the rows and the registry.
// kGated: pending, but its gate (an environment variable) is not "true" in this process.
// kUnknown: pending, but no built-in or migration file of this bgmigrate has its script (a row
// of another tool, or a file that was removed): left as it is, never run or failed.
// kBlocked, kGated and kUnknown are never stored: JudgeReadiness derives them.
// kThrottled: running (the lease is live) but its batches wait for a health signal of its
// databases to fall below its threshold (`throttle` says which, its value and threshold).
// kSkipped: an operator marked it done without running it (`skipped_reason` says why);
// prerequisites treat it as finished. kCancelled: an operator stopped it (after its current
// batch); it keeps its cursor until `retry`, and prerequisites treat it as not finished.
enum class MigrationStatus {
  kPending,
  kRunning,
  kWaiting,
  kPaused,
  kFinished,
  kFailed,
  kBlocked,
  kGated,
  kUnknown,
  kSkipped,
  kCancelled,
  kThrottled
};
const char* MigrationStatusName(MigrationStatus s);  // "pending", "running", ...

struct MigrationRow {
  std::string id;
  std::string name;
  std::string script;
  nlohmann::json args = nlohmann::json::object();
  nlohmann::json state = nlohmann::json::object();
  MigrationStatus status = MigrationStatus::kPending;
  // Timestamps as ISO-8601 UTC text ("2024-10-24T17:30:00.000Z"), absent when NULL.
  std::optional<std::string> finished_at, failed_at, locked_at, created_at, started_at, paused_at,
      last_progress_at;
  std::optional<std::string> failed_reason, worker_id;
  std::optional<std::string> skipped_reason, cancelled_at;
  // Set while the status is waiting: why, since when, and when the worker tries again.
  std::optional<std::string> waiting_reason, waiting_since, next_attempt_at;
  // Set while the status is throttled: the reading ({"signal", "what", "value", "threshold"})
  // and since when.
  std::optional<nlohmann::json> throttle;
  std::optional<std::string> throttled_since;
  // Set by JudgeReadiness (core/readiness.h), never stored. Blocked: the failed or paused
  // migration it waits on (at any depth) and that one's status. Pending: the unfinished
  // prerequisite it waits for and that one's status.
  std::optional<std::string> blocked_by, blocked_by_status, waits_for, waits_for_status;
  // Set by JudgeReadiness: the gate variable of a gated row; why a row is unknown.
  std::optional<std::string> gate, unknown_reason;
  int attempts = 0;
  int64_t rows_processed = 0;
  std::optional<int64_t> rows_total_estimate;
  bool lease_live = false;  // worker_id set and locked_at within the lease

  nlohmann::json ToJson() const;
};

struct MigrationEvent {
  int64_t id = 0;
  std::string migration_name;
  std::string at;
  std::string kind;
  std::optional<std::string> worker_id;
  nlohmann::json detail = nlohmann::json::object();
  nlohmann::json ToJson() const;
};

// Which events AllEvents returns: of `migration` (all when empty), of one of `kinds` (all when
// empty), with an id below `before` (0: from the newest), newest first, at most `limit`.
struct EventFilter {
  std::string migration;
  std::vector<std::string> kinds;
  int64_t before = 0;
  int limit = 100;
};

// What a worker gets when it takes a lease.
struct Lease {
  std::string name;
  std::string script;
  nlohmann::json args;
  nlohmann::json state;
  int attempts = 0;
  // Set when the stored args could not be read as JSON (e.g. a number beyond the range of a
  // double, which Postgres keeps exactly); `args` is then null.
  std::optional<std::string> args_error;
};

// The answer of a fenced write: the lease is still ours; `paused` says an operator asked the
// migration to pause (or cancelled it), so the worker should stop after this batch.
struct Fence {
  bool paused = false;
};

class ControlStore {
 public:
  virtual ~ControlStore() = default;

  // Inserts a row for `name` unless one exists (existing args and state are never touched).
  // Returns true when a row was inserted.
  virtual Result<bool> Register(const std::string& name, const std::string& script) = 0;
  // After registering: the application's own control table, when bgmigrate keeps one in step
  // (PgControlStore::UseApplicationLedger), gets rows for the migrations it lists, and what
  // the application finished itself is marked skipped here. Nothing by default.
  virtual Status AdoptApplicationRows() { return Status::Ok(); }
  // All rows, ordered by name.
  virtual Result<std::vector<MigrationRow>> List() = 0;
  // One row; kNotFound when there is none.
  virtual Result<MigrationRow> Get(const std::string& name) = 0;
  // The most recent events of `name`, newest first.
  virtual Result<std::vector<MigrationEvent>> Events(const std::string& name, int limit) = 0;
  // Events across migrations that `filter` selects, newest first.
  virtual Result<std::vector<MigrationEvent>> AllEvents(const EventFilter& filter) = 0;

  // The chunk counts of every migration that has chunks, by name (one statement).
  virtual Result<std::map<std::string, ChunkCounts>> CountChunks() = 0;
  // The chunks of `name` that `filter` selects; empty when it has none (or no such migration).
  virtual Result<std::vector<Chunk>> ListChunks(const std::string& name,
                                                const ChunkFilter& filter) = 0;

  // Compare-and-set: takes the lease when the migration is pending (not finished, failed or
  // paused) and nobody holds a live lease. std::nullopt when someone else has it or it is not
  // runnable.
  virtual Result<std::optional<Lease>> TryAcquire(const std::string& name,
                                                  const std::string& worker_id) = 0;
  // Fenced writes (kLeaseLost when `worker_id` no longer holds the lease).
  virtual Result<Fence> Heartbeat(const std::string& name, const std::string& worker_id) = 0;
  virtual Result<Fence> Checkpoint(const std::string& name, const std::string& worker_id,
                                   const BatchRecord& batch) = 0;
  virtual Status SetTotalEstimate(const std::string& name, const std::string& worker_id,
                                  int64_t rows) = 0;
  virtual Status Finish(const std::string& name, const std::string& worker_id) = 0;
  virtual Status Fail(const std::string& name, const std::string& worker_id,
                      const std::string& reason) = 0;
  virtual Status Release(const std::string& name, const std::string& worker_id,
                         const std::string& reason) = 0;
  // Marks the migration as waiting for an unreachable server (status `waiting`): `reason`
  // names the server and its error; the worker tries again `retry_in` from now. waiting_since
  // keeps the start of the outage. The next checkpoint, finish, failure or release clears it.
  virtual Status SetWaiting(const std::string& name, const std::string& worker_id,
                            const std::string& reason, std::chrono::milliseconds retry_in) = 0;
  // Records a health signal at or above its threshold (`reading`, status `throttled`; a
  // `throttled` event when throttling begins) or, with nullopt, that it ended (a
  // `throttle_ended` event with how long it lasted). Fenced on the lease. Finish, failure and
  // release clear it too.
  virtual Status SetThrottled(const std::string& name, const std::string& worker_id,
                              const std::optional<nlohmann::json>& reading) = 0;
  // An event outside the fenced writes (e.g. lease_lost seen by the losing worker).
  virtual Status RecordEvent(const std::string& name, const std::string& kind,
                             const std::optional<std::string>& worker_id,
                             const nlohmann::json& detail) = 0;

  // Operator actions. kNotFound for an unknown name; kFailedPrecondition (with the current
  // status in the message) when the state forbids the change.
  // Retry: a failed migration becomes pending, keeping its cursor unless `from_start`
  // (from_start also re-runs a finished one).
  virtual Status Retry(const std::string& name, bool from_start, const std::string& actor) = 0;
  virtual Status Pause(const std::string& name, const std::string& actor) = 0;
  virtual Status Resume(const std::string& name, const std::string& actor) = 0;
  // Skip: a migration that is not finished and that no worker runs (no live lease) is marked
  // finished without running, `reason` kept (status `skipped`). Cancel: a pending, running or
  // paused one is marked cancelled; its worker stops after the current batch, the cursor is
  // kept, and `retry` runs it again. `reason` may be empty for a cancel.
  virtual Status Skip(const std::string& name, const std::string& reason,
                      const std::string& actor) = 0;
  virtual Status Cancel(const std::string& name, const std::string& reason,
                        const std::string& actor) = 0;
  // Replaces args (the caller has validated them). Takes effect at the next lease.
  virtual Status SetArgs(const std::string& name, const nlohmann::json& args,
                         const std::string& actor) = 0;
};

// A throttled row's reading as text: "active parts in the busiest partition of traces is 160,
// at or above 100"; "" when it is not throttled.
std::string ThrottleText(const MigrationRow& row);

// kFailedPrecondition message for an operator action refused in the current state.
Status RefusedInState(const std::string& action, const MigrationRow& row, const std::string& hint);

}  // namespace bgm
