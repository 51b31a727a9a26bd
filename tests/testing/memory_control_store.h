// MemoryControlStore: a ControlStore over an in-memory MemoryDatabase, timed by a Clock, for
// unit tests of the manager's own logic (leases, fencing, ordering) with a FakeClock. It has
// the same contract as PgControlStore; the Postgres behaviour itself is tested against a real
// server in tests/integration. MemoryDatabase is thread-safe; share it between the stores that
// stand for several connections or workers.
#pragma once

#include <map>
#include <mutex>

#include "common/clock.h"
#include "core/chunk_store.h"
#include "core/control_store.h"

namespace bgm::testing {

class MemoryDatabase {
 public:
  MemoryDatabase(Clock& clock, Clock::Duration lease) : clock_(clock), lease_(lease) {}

  // Test helpers.
  MigrationRow Row(const std::string& name);
  std::vector<MigrationEvent> AllEvents();
  void Insert(const std::string& name, const std::string& script, nlohmann::json args);
  // Replaces the chunks of `name` (any order; kept in chunk order).
  void SetChunks(const std::string& name, std::vector<Chunk> chunks);
  int heartbeats() {
    std::lock_guard lock(mu_);
    return heartbeats_;
  }

 private:
  friend class MemoryControlStore;
  struct Stored {
    MigrationRow row;
    std::optional<Clock::TimePoint> locked_at;
  };
  bool LeaseLive(const Stored& s) const;
  MigrationRow View(const Stored& s) const;
  void AddEvent(const std::string& name, const std::string& kind,
                const std::optional<std::string>& worker, nlohmann::json detail);

  Clock& clock_;
  const Clock::Duration lease_;
  std::mutex mu_;
  std::map<std::string, Stored> rows_;                // guarded by mu_
  std::vector<MigrationEvent> events_;                // guarded by mu_
  std::map<std::string, std::vector<Chunk>> chunks_;  // guarded by mu_
  int heartbeats_ = 0;                                // guarded by mu_
};

class MemoryControlStore final : public ControlStore {
 public:
  explicit MemoryControlStore(MemoryDatabase& db) : db_(db) {}

  Result<bool> Register(const std::string& name, const std::string& script) override;
  Result<std::vector<MigrationRow>> List() override;
  Result<MigrationRow> Get(const std::string& name) override;
  Result<std::vector<MigrationEvent>> Events(const std::string& name, int limit) override;
  Result<std::vector<MigrationEvent>> AllEvents(const EventFilter& filter) override;
  Result<std::map<std::string, ChunkCounts>> CountChunks() override;
  Result<std::vector<Chunk>> ListChunks(const std::string& name,
                                        const ChunkFilter& filter) override;
  Result<std::optional<Lease>> TryAcquire(const std::string& name,
                                          const std::string& worker_id) override;
  Result<Fence> Heartbeat(const std::string& name, const std::string& worker_id) override;
  Result<Fence> Checkpoint(const std::string& name, const std::string& worker_id,
                           const BatchRecord& batch) override;
  Status SetTotalEstimate(const std::string& name, const std::string& worker_id,
                          int64_t rows) override;
  Status Finish(const std::string& name, const std::string& worker_id) override;
  Status Fail(const std::string& name, const std::string& worker_id,
              const std::string& reason) override;
  Status Release(const std::string& name, const std::string& worker_id,
                 const std::string& reason) override;
  Status SetWaiting(const std::string& name, const std::string& worker_id,
                    const std::string& reason, std::chrono::milliseconds retry_in) override;
  Status SetThrottled(const std::string& name, const std::string& worker_id,
                      const std::optional<nlohmann::json>& reading) override;
  Status RecordEvent(const std::string& name, const std::string& kind,
                     const std::optional<std::string>& worker_id,
                     const nlohmann::json& detail) override;
  Status Retry(const std::string& name, bool from_start, const std::string& actor) override;
  Status Pause(const std::string& name, const std::string& actor) override;
  Status Resume(const std::string& name, const std::string& actor) override;
  Status Skip(const std::string& name, const std::string& reason,
              const std::string& actor) override;
  Status Cancel(const std::string& name, const std::string& reason,
                const std::string& actor) override;
  Status SetArgs(const std::string& name, const nlohmann::json& args,
                 const std::string& actor) override;

 private:
  // The row if `worker_id` holds its lease, else nullptr. Caller holds db_.mu_.
  MemoryDatabase::Stored* Fenced(const std::string& name, const std::string& worker_id);
  MemoryDatabase& db_;
};

}  // namespace bgm::testing
