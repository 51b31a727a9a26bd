// RecordingContext: a MigrationContext for tests that runs a migration without a control
// store: checkpoints are kept in memory, and a stop is requested after `stop_after` of them.
// Not thread-safe (a migration calls it from its own thread).
#pragma once

#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>
#include <vector>

#include "core/chunk_store.h"
#include "core/migration.h"

namespace bgm::testing {

// A context that keeps checkpoints in memory and requests a stop after `stop_after` of them.
class RecordingContext final : public MigrationContext {
 public:
  RecordingContext(std::string url, nlohmann::json args, nlohmann::json state = {})
      : args_(std::move(args)),
        state_(state.is_object() ? std::move(state) : nlohmann::json::object()) {
    env_.database_url = std::move(url);
  }
  RecordingContext(MigrationEnv env, nlohmann::json args, nlohmann::json state = {})
      : args_(std::move(args)),
        state_(state.is_object() ? std::move(state) : nlohmann::json::object()),
        env_(std::move(env)) {}
  void set_name(std::string name) { name_ = std::move(name); }
  const std::string& name() const override { return name_; }
  const nlohmann::json& args() const override { return args_; }
  const nlohmann::json& state() const override { return state_; }
  const MigrationEnv& env() const override { return env_; }
  std::stop_token stop_token() const override { return stop_.get_token(); }
  // A chunked migration's range is saved to background_migration_chunks as the control store
  // does (here in a write of its own).
  Status Checkpoint(const BatchRecord& batch) override {
    if (batch.chunk) {
      Result<ChunkStore> chunks = ChunkStore::Connect(env_.database_url);
      if (!chunks.ok()) return chunks.status();
      BGM_RETURN_IF_ERROR(chunks->Checkpoint(name_, batch.chunk->chunk, batch.chunk->worker_id,
                                             batch.chunk->cursor, batch.rows));
    }
    batches.push_back(batch);
    state_ = batch.state;
    if (static_cast<int>(batches.size()) == stop_after) stop_.request_stop();
    return Status::Ok();
  }
  Status ReportTotalEstimate(int64_t rows) override {
    estimate = rows;
    return Status::Ok();
  }

  std::vector<BatchRecord> batches;
  int64_t estimate = -1;
  int stop_after = -1;

 private:
  std::string name_ = "20250601_1200_backfill";
  nlohmann::json args_;
  nlohmann::json state_;
  MigrationEnv env_;
  std::stop_source stop_;
};

}  // namespace bgm::testing
