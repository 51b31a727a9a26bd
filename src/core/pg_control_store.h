// PgControlStore: ControlStore on the Postgres control tables. Lease times use the database
// clock (now()). Owns one connection; not thread-safe (one instance per thread).
#pragma once

#include <chrono>
#include <memory>

#include "core/application_ledger.h"
#include "core/control_store.h"
#include "postgres/pg_connection.h"

namespace bgm {

class PgControlStore final : public ControlStore {
 public:
  // kUnavailable/kInvalidArgument as PgConnection::Connect.
  static Result<std::unique_ptr<PgControlStore>> Open(const std::string& database_url,
                                                      std::chrono::milliseconds lease);

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

  // Keeps the application's own background_migrations (Langfuse's), when the database has one
  // beside bgmigrate's control schema, in step with the `listed` migrations
  // (core/application_ledger.h): after each change of their state through this store.
  Status UseApplicationLedger(ApplicationLedger::Listed listed);
  Status AdoptApplicationRows() override;

 private:
  // Writes `name`'s state into the application's table; a failure is logged, not returned (the
  // next change or start-up writes it again).
  void SyncLedger(const std::string& name);

  PgControlStore(PgConnection conn, std::chrono::milliseconds lease)
      : conn_(std::move(conn)), lease_seconds_(static_cast<double>(lease.count()) / 1000.0) {}
  // Runs a fenced UPDATE ... RETURNING paused; kLeaseLost when no row matched.
  Result<Fence> Fenced(const char* what, std::string_view sql, const std::vector<PgParam>& params,
                       const std::string& name, const std::string& worker_id);
  // After an operator UPDATE matched nothing: kNotFound or the refusal for the current state.
  Status Explain(const std::string& action, const std::string& name, const std::string& hint);

  PgConnection conn_;
  double lease_seconds_;
  std::optional<ApplicationLedger> ledger_;
};

}  // namespace bgm
