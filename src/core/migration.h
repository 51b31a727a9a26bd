// BackgroundMigration: one long-running data change (a backfill, a copy between stores) that a
// worker runs until it finishes, fails or is stopped. The manager owns the lease; a migration
// only reads its args and saved state, does one batch at a time and checkpoints after each.
//
// Contract for Run():
//  - Resume from ctx.state() (the last checkpoint; {} on the first run).
//  - After each durable batch call ctx.Checkpoint(); return its error at once if it fails
//    (kLeaseLost means another worker owns the migration now: write nothing more).
//  - Check ctx.stop_requested() between batches; when set, return Cancelled(...).
//  - Return OK only when all work is done. Any other error fails the migration with the
//    status message as failed_reason, so write it for an operator.
//  - Re-running a batch must be harmless (kill -9 loses at most the uncommitted batch).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/status.h"

namespace bgm {

// Where a migration's data lives. Each migration opens its own connections.
struct MigrationEnv {
  std::string database_url;
  std::string clickhouse_url;
  std::string clickhouse_user;
  std::string clickhouse_password;
  std::string clickhouse_db;
};

// A range of a chunked migration that a batch advanced (background_migration_chunks), saved in
// the same write as the batch.
struct ChunkProgress {
  int chunk = -1;
  std::string worker_id;  // the range's claimant (fences the write)
  nlohmann::json cursor;  // the range's cursor after the batch
};

// One committed batch, recorded as a `batch` event and as the new checkpoint.
struct BatchRecord {
  nlohmann::json state;  // the full new state (cursor) to resume from
  int64_t rows = 0;      // rows this batch processed
  int64_t bytes = 0;     // bytes this batch moved (0 when not measured)
  nlohmann::json from;   // cursor before the batch
  nlohmann::json to;     // cursor after the batch
  int64_t duration_ms = 0;
  std::optional<ChunkProgress> chunk;  // set by a chunked migration's lease holder
};

// A user-written health signal of a migration (a migration file's [[throttle]]): `query` run
// on `database` ("postgres" or "clickhouse") returns one number; batches wait while it is at or
// above `threshold`.
struct HealthProbe {
  std::string name;
  std::string database;
  std::string query;
  double threshold = 0;
};

// What a migration touches, for the health signals checked before its batches
// (core/health_signals.h): the Postgres tables it reads or writes (`postgres_relations_of`: a
// query whose plan names them, e.g. a copy's SELECT), the ClickHouse tables it writes, and its
// own probes.
struct HealthTargets {
  std::vector<std::string> postgres_tables;
  std::string postgres_relations_of;
  std::vector<std::string> clickhouse_tables;
  std::vector<HealthProbe> probes;
};

class MigrationContext {
 public:
  virtual ~MigrationContext() = default;
  virtual const std::string& name() const = 0;
  virtual const nlohmann::json& args() const = 0;   // validated by Validate() already
  virtual const nlohmann::json& state() const = 0;  // last checkpoint
  virtual const MigrationEnv& env() const = 0;
  virtual std::stop_token stop_token() const = 0;
  bool stop_requested() const { return stop_token().stop_requested(); }

  // Saves the batch's state, adds its rows to rows_processed and records a `batch` event, in
  // one write fenced on this worker's lease. kLeaseLost when another worker holds the lease.
  virtual Status Checkpoint(const BatchRecord& batch) = 0;
  // Records the estimated total rows (for progress bars and ETA).
  virtual Status ReportTotalEstimate(int64_t rows) = 0;
  // This worker's id ("" when run outside a worker, e.g. in a test) and its lease: how long a
  // claim of its lasts without a heartbeat.
  virtual std::string worker_id() const { return ""; }
  virtual std::chrono::seconds lease() const { return std::chrono::seconds(60); }
  // Before each batch: returns at once while the databases are healthy, otherwise waits (status
  // `throttled`, the lease kept) until every health signal is below its threshold again.
  // kCancelled when a stop is requested meanwhile; a signal that cannot be read returns its
  // error (an outage is waited out by the manager like any other). Thread-safe.
  virtual Status AwaitHealthy() { return Status::Ok(); }
};

class BackgroundMigration {
 public:
  virtual ~BackgroundMigration() = default;
  // OK when `args` (a JSON value from the args column) is acceptable. kInvalidArgument names
  // the bad key and value otherwise, e.g. "batchSize must be an integer in [1, 100000], got -1".
  virtual Status Validate(const nlohmann::json& args) const = 0;
  virtual Status Run(MigrationContext& ctx) = 0;

  // Work sharing: whether, with these args, workers that do not hold the lease may help run the
  // migration (e.g. a copy split into key ranges), and the helping itself: runs parts of the
  // migration that the lease holder has not claimed, and returns whether it ran any. ctx's
  // Checkpoint and ReportTotalEstimate are not for helpers (the part keeps its own state).
  virtual bool SharesWork(const nlohmann::json& /*args*/) const { return false; }
  // The tables and probes whose health decides whether its batches may run now.
  virtual HealthTargets Health(const nlohmann::json& /*args*/) const { return {}; }
  virtual Result<bool> Help(MigrationContext& /*ctx*/) { return false; }
};

}  // namespace bgm
