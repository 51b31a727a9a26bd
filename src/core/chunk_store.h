// ChunkStore: the `background_migration_chunks` table as operations. A keyed migration is split
// into key ranges ("chunks") [lower, upper) whose boundaries come from its data; each chunk is
// claimed, checkpointed (its own cursor), finished or failed on its own, so several threads run
// one migration at once and a crash re-does at most each running chunk's unsaved batch.
//
// Any number of worker processes run the chunks of one migration: the lease holder and helpers
// (BackgroundMigration::Help). A claim writes the claimant's id ("<worker id>#<thread>") and
// lasts while its process heartbeats it; a running chunk whose heartbeat is older than the lease
// was left by a dead worker and is claimed again from its cursor. Checkpoints, finish and
// failure are fenced on the claimant's id (kLeaseLost otherwise).
//
// Not thread-safe (one connection): one ChunkStore per thread.
//
//   Result<ChunkStore> chunks = ChunkStore::Connect(database_url);
//   chunks->Create(name, boundaries);               // once: ranges between the boundaries
//   while (auto c = chunks->Claim(name, "w1/t0")) { ... chunks->Checkpoint(...); ... }
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "postgres/pg_connection.h"

namespace bgm {

struct Chunk {
  int chunk = 0;
  nlohmann::json lower;   // inclusive; null: from the first row
  nlohmann::json upper;   // exclusive; null: open-ended
  nlohmann::json cursor;  // last copied key inside the range; null: nothing copied yet
  std::string status;     // pending, running, done, failed
  std::string worker_id;
  int attempts = 0;  // claims so far
  int64_t rows = 0;
  std::string last_error;
};

struct ChunkCounts {
  int pending = 0, running = 0, done = 0, failed = 0;
  int total() const { return pending + running + done + failed; }
};

// The columns a Chunk is read from (a SELECT list), and the Chunk in row `row` of a result
// of them; for every reader of background_migration_chunks.
extern const char* const kChunkColumns;
Chunk ChunkFromRow(const PgResult& r, int row);

// Whether `c` is a partition's chunk (ChunkStore::AddPartitions), and its partition id.
std::optional<std::string> PartitionOf(const Chunk& c);

class ChunkStore {
 public:
  static Result<ChunkStore> Connect(const std::string& database_url);

  // Whether `name` has chunks (it was split before).
  Result<bool> HasChunks(const std::string& name);
  // Splits `name` into the ranges between `boundaries` (ascending keys): [null, b1), [b1, b2),
  // ..., [bk, null); no boundaries: one range over everything. `first_cursor` (not null): the
  // first range is done up to there already (a copy that ran as one range goes on in ranges).
  // One transaction; kFailedPrecondition when the migration has chunks already.
  Status Create(const std::string& name, const std::vector<nlohmann::json>& boundaries,
                const nlohmann::json& first_cursor = nullptr);
  // Adds a pending chunk for each of `ids` (the partitions of a `clickhouse` migration: a
  // chunk whose lower and upper bounds are both the partition id) that `name` has none for
  // yet, numbered after its last one, in the order given. Ids up to `done_through` (byte
  // order; empty: none) are added as done (a migration that ran partition by partition before
  // partitions were chunks). Returns how many were added. One statement.
  Result<int> AddPartitions(const std::string& name, const std::vector<std::string>& ids,
                            const std::string& done_through = "");
  // Failed chunks of `name` go back to pending with their attempts reset (the migration runs
  // again after a retry).
  Status RetryFailed(const std::string& name);
  // The next chunk in key order that is pending with its backoff over, or running with a
  // heartbeat older than `lease` (its worker died), now running for `worker_id` (attempts + 1);
  // nullopt when there is none or the migration is paused, cancelled, finished or failed.
  Result<std::optional<Chunk>> Claim(const std::string& name, const std::string& worker_id,
                                     std::chrono::seconds lease);
  // Renews the claims of every chunk of `name` running for `process` (worker ids
  // "<process>#<thread>").
  Status Heartbeat(const std::string& name, const std::string& process);
  // Worker processes with a live claim on a chunk of `name`.
  Result<int> Workers(const std::string& name, std::chrono::seconds lease);
  // Saves the chunk's cursor after a durable batch of `rows` rows. kLeaseLost when the chunk is
  // no longer running for `worker_id`.
  Status Checkpoint(const std::string& name, int chunk, const std::string& worker_id,
                    const nlohmann::json& cursor, int64_t rows);
  // Checkpoint for a helper (a worker without the migration's lease), in one statement: the
  // chunk's cursor, and the migration's rows_processed and a `batch` event with `detail`.
  // kLeaseLost when the migration is no longer running (paused, cancelled, finished or failed:
  // the helper stops) or the chunk no longer runs for `worker_id`.
  Status CheckpointShared(const std::string& name, int chunk, const std::string& worker_id,
                          const nlohmann::json& cursor, int64_t rows, const nlohmann::json& detail);
  // Splits running chunk `chunk` at key `middle`: it keeps [lower, middle) and is pending again
  // (at once, its cursor kept), and a new pending chunk takes [middle, upper). Returns the new
  // chunk's number. One transaction; kLeaseLost when the chunk is not running for `worker_id`.
  Result<int> Split(const std::string& name, int chunk, const std::string& worker_id,
                    const nlohmann::json& middle, const std::string& error);
  // One chunk; kNotFound when there is none.
  Result<Chunk> Get(const std::string& name, int chunk);
  // A stopped claim goes back to pending; the stop does not count as an attempt.
  Status Release(const std::string& name, int chunk, const std::string& worker_id);
  Status Finish(const std::string& name, int chunk, const std::string& worker_id);
  // Records a failed attempt. With attempts left the chunk is pending again, not before
  // `backoff_seconds`; otherwise it is failed. Returns whether it is failed for good.
  Result<bool> Fail(const std::string& name, int chunk, const std::string& worker_id,
                    const std::string& error, int max_attempts, double backoff_seconds);
  Result<ChunkCounts> Counts(const std::string& name);
  // Every chunk of `name` in key order.
  Result<std::vector<Chunk>> List(const std::string& name);

 private:
  explicit ChunkStore(PgConnection conn) : conn_(std::move(conn)) {}
  PgConnection conn_;
};

// Renews, every quarter lease on a connection of its own, the claims of `process` (worker ids
// "<process>#<thread>") on the chunks of `name`, from construction until destruction; a failed
// renewal reconnects at the next beat.
class ClaimHeartbeat {
 public:
  ClaimHeartbeat(std::string database_url, std::string name, std::string process,
                 std::chrono::seconds lease);

 private:
  std::jthread thread_;
};

}  // namespace bgm
