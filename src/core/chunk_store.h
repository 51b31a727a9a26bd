// ChunkStore: the `background_migration_chunks` table as operations. A keyed migration is split
// into key ranges ("chunks") [lower, upper) whose boundaries come from its data; each chunk is
// claimed, checkpointed (its own cursor), finished or failed on its own, so several threads run
// one migration at once and a crash re-does at most each running chunk's unsaved batch.
//
// Today the chunks of a migration are run only by the worker that holds the migration's lease
// (the manager's compare-and-set), so a chunk found `running` when that worker starts the
// migration was left by a dead one and is taken back (ReleaseAbandoned). Each claim writes the
// claimant's id; its checkpoints and its finish are fenced on it (kLeaseLost otherwise).
//
// Not thread-safe (one connection): one ChunkStore per thread.
//
//   Result<ChunkStore> chunks = ChunkStore::Connect(database_url);
//   chunks->Create(name, boundaries);               // once: ranges between the boundaries
//   while (auto c = chunks->Claim(name, "w1/t0")) { ... chunks->Checkpoint(...); ... }
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
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

class ChunkStore {
 public:
  static Result<ChunkStore> Connect(const std::string& database_url);

  // Whether `name` has chunks (it was split before).
  Result<bool> HasChunks(const std::string& name);
  // Splits `name` into the ranges between `boundaries` (ascending keys): [null, b1), [b1, b2),
  // ..., [bk, null); no boundaries: one range over everything. One transaction; kFailedPrecondition
  // when the migration has chunks already.
  Status Create(const std::string& name, const std::vector<nlohmann::json>& boundaries);
  // Running chunks of `name` go back to pending (their worker is gone: see the header), and
  // failed ones to pending with their attempts reset (the migration runs again after a retry).
  Status ReleaseAbandoned(const std::string& name);
  // The next pending chunk whose backoff is over, in key order, now running for `worker_id`
  // (attempts + 1); nullopt when there is none.
  Result<std::optional<Chunk>> Claim(const std::string& name, const std::string& worker_id);
  // Saves the chunk's cursor after a durable batch of `rows` rows. kLeaseLost when the chunk is
  // no longer running for `worker_id`.
  Status Checkpoint(const std::string& name, int chunk, const std::string& worker_id,
                    const nlohmann::json& cursor, int64_t rows);
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

}  // namespace bgm
