// The lease protocol of PgControlStore on a real Postgres: compare-and-set under contention,
// expiry on the database clock, fencing, operator actions and their refusals.
#include "core/pg_control_store.h"

#include <gtest/gtest.h>

#include <thread>

#include "core/chunk_store.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using std::chrono::milliseconds;
using testing::TestDatabase;

class PgControlStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    store_ = Open(milliseconds(60000));
    ASSERT_TRUE(store_->Register("m1", "m1").value());
  }
  std::unique_ptr<PgControlStore> Open(milliseconds lease) {
    auto s = PgControlStore::Open(db_.url(), lease);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(*s);
  }
  TestDatabase db_;
  std::unique_ptr<PgControlStore> store_;
};

TEST_F(PgControlStoreTest, RegisterIsIdempotentAndKeepsArgs) {
  ASSERT_TRUE(store_->SetArgs("m1", {{"batchSize", 5}}, "test").ok());
  Result<bool> again = store_->Register("m1", "m1");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(store_->Get("m1")->args, (nlohmann::json{{"batchSize", 5}}));
}

TEST_F(PgControlStoreTest, ExactlyOneOfManyConcurrentAcquirersWins) {
  constexpr int kWorkers = 8;
  std::atomic<int> winners{0};
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < kWorkers; ++i) {
      threads.emplace_back([&, i] {
        auto store = Open(milliseconds(60000));
        Result<std::optional<Lease>> lease = store->TryAcquire("m1", "w" + std::to_string(i));
        if (lease.ok() && lease->has_value()) winners++;
      });
    }
  }
  EXPECT_EQ(winners.load(), 1);
  MigrationRow row = *store_->Get("m1");
  EXPECT_EQ(row.status, MigrationStatus::kRunning);
  EXPECT_EQ(row.attempts, 1);
}

TEST_F(PgControlStoreTest, ExpiredLeaseOnTheDatabaseClockIsTakenOverAndOldHolderIsFenced) {
  auto short_lease = Open(milliseconds(300));
  ASSERT_TRUE(short_lease->TryAcquire("m1", "w1")->has_value());
  EXPECT_FALSE(short_lease->TryAcquire("m1", "w2")->has_value());
  // Wait (bounded) for the database clock to pass the lease.
  bool taken = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!taken && std::chrono::steady_clock::now() < deadline) {
    taken = short_lease->TryAcquire("m1", "w2")->has_value();
    if (!taken) std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(taken);
  BatchRecord batch;
  batch.state = {{"cursor", 1}};
  batch.rows = 10;
  EXPECT_EQ(short_lease->Heartbeat("m1", "w1").status().code(), StatusCode::kLeaseLost);
  EXPECT_EQ(short_lease->Checkpoint("m1", "w1", batch).status().code(), StatusCode::kLeaseLost);
  EXPECT_EQ(short_lease->Finish("m1", "w1").code(), StatusCode::kLeaseLost);
  EXPECT_EQ(store_->Get("m1")->rows_processed, 0);
  ASSERT_TRUE(short_lease->Checkpoint("m1", "w2", batch).ok());
  MigrationRow row = *store_->Get("m1");
  EXPECT_EQ(row.rows_processed, 10);
  EXPECT_EQ(row.state, batch.state);
  EXPECT_EQ(row.worker_id, "w2");
  EXPECT_EQ(row.attempts, 2);
}

TEST_F(PgControlStoreTest, CheckpointReportsAPauseAndWritesTheBatchEvent) {
  ASSERT_TRUE(store_->TryAcquire("m1", "w1")->has_value());
  ASSERT_TRUE(store_->Pause("m1", "test").ok());
  BatchRecord batch;
  batch.state = {{"cursor", 7}};
  batch.rows = 7;
  batch.bytes = 700;
  batch.from = 0;
  batch.to = 7;
  batch.duration_ms = 12;
  Result<Fence> fence = store_->Checkpoint("m1", "w1", batch);
  ASSERT_TRUE(fence.ok());
  EXPECT_TRUE(fence->paused);
  Result<std::vector<MigrationEvent>> events = store_->Events("m1", 1);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].kind, "batch");
  EXPECT_EQ((*events)[0].detail,
            (nlohmann::json{{"from", 0}, {"to", 7}, {"rows", 7}, {"bytes", 700}, {"ms", 12}}));
  ASSERT_TRUE(store_->Release("m1", "w1", "paused by an operator").ok());
  EXPECT_EQ(store_->Get("m1")->status, MigrationStatus::kPaused);
}

TEST_F(PgControlStoreTest, OperatorActionsRefusedInTheWrongStateSayWhy) {
  Status retry = store_->Retry("m1", false, "test");
  EXPECT_EQ(retry.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(retry.message(),
            "cannot retry background migration m1: it is pending; only a failed or cancelled "
            "migration can be retried (a finished or skipped one with --from-start)");
  EXPECT_EQ(store_->Resume("m1", "test").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Pause("nope", "test").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->SetArgs("nope", nlohmann::json::object(), "test").code(),
            StatusCode::kNotFound);
  ASSERT_TRUE(store_->TryAcquire("m1", "w1")->has_value());
  ASSERT_TRUE(store_->Fail("m1", "w1", "boom").ok());
  MigrationRow failed = *store_->Get("m1");
  EXPECT_EQ(failed.status, MigrationStatus::kFailed);
  EXPECT_EQ(failed.failed_reason, "boom");
  EXPECT_FALSE(failed.worker_id.has_value());
  EXPECT_EQ(store_->Pause("m1", "test").code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->Retry("m1", false, "test").ok());
  EXPECT_EQ(store_->Get("m1")->status, MigrationStatus::kPending);
}

// Cancel on Postgres: the holder's next fenced write says stop, it releases, nothing acquires
// the migration, a helper's range checkpoint is refused, and retry makes it pending with its
// cursor. Skip: refused while the lease is live, then done with its reason and an event.
TEST_F(PgControlStoreTest, CancelStopsTheHolderAndSkipMarksItDoneWithItsReason) {
  ASSERT_TRUE(store_->TryAcquire("m1", "w1")->has_value());
  BatchRecord batch;
  batch.state = {{"cursor", 7}};
  batch.rows = 7;
  ASSERT_FALSE(store_->Checkpoint("m1", "w1", batch)->paused);
  Result<ChunkStore> chunks = ChunkStore::Connect(db_.url());
  ASSERT_TRUE(chunks.ok());
  ASSERT_TRUE(chunks->Create("m1", {nlohmann::json{{"id", "5"}}}).ok());
  ASSERT_TRUE(chunks->Claim("m1", "w2#0", std::chrono::seconds(60))->has_value());
  ASSERT_TRUE(store_->Cancel("m1", "too slow today", "cli:op").ok());
  EXPECT_TRUE(store_->Heartbeat("m1", "w1")->paused);
  EXPECT_TRUE(store_->Checkpoint("m1", "w1", batch)->paused);
  Status refused =
      chunks->CheckpointShared("m1", 0, "w2#0", {{"id", "3"}}, 3, nlohmann::json::object());
  EXPECT_EQ(refused.code(), StatusCode::kLeaseLost) << "a helper's range stops too";
  EXPECT_EQ(refused.message(), "m1 is no longer running (paused, cancelled, finished or failed)");
  EXPECT_FALSE(chunks->Claim("m1", "w2#1", std::chrono::seconds(60))->has_value())
      << "no range of a cancelled migration is claimed";
  ASSERT_TRUE(store_->Release("m1", "w1", "paused or cancelled by an operator").ok());
  MigrationRow row = *store_->Get("m1");
  EXPECT_EQ(row.status, MigrationStatus::kCancelled);
  EXPECT_TRUE(row.cancelled_at.has_value());
  EXPECT_EQ(row.state, (nlohmann::json{{"cursor", 7}}));
  EXPECT_FALSE(store_->TryAcquire("m1", "w3")->has_value());
  EXPECT_EQ(store_->Pause("m1", "test").message(),
            "cannot pause background migration m1: it is cancelled; only a pending or running "
            "one can be paused");
  // Newest first: released, the batch that saw the cancel, cancelled.
  Result<std::vector<MigrationEvent>> events = store_->Events("m1", 3);
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].kind, "released");
  EXPECT_EQ((*events)[2].kind, "cancelled");
  EXPECT_EQ((*events)[2].detail, (nlohmann::json{{"by", "cli:op"}, {"reason", "too slow today"}}));

  ASSERT_TRUE(store_->Retry("m1", false, "test").ok());
  row = *store_->Get("m1");
  EXPECT_EQ(row.status, MigrationStatus::kPending);
  EXPECT_EQ(row.state, (nlohmann::json{{"cursor", 7}})) << "retry keeps the cursor";
  EXPECT_EQ(row.rows_processed, 14);

  ASSERT_TRUE(store_->TryAcquire("m1", "w3")->has_value());
  Status live = store_->Skip("m1", "copied by hand", "cli:op");
  EXPECT_EQ(live.message(),
            "cannot skip background migration m1: it is running; a finished one needs no skip, "
            "and a running one must stop first: cancel or pause it, then skip it once its worker "
            "has let it go");
  ASSERT_TRUE(store_->Release("m1", "w3", "worker stopping").ok());
  ASSERT_TRUE(store_->Skip("m1", "copied by hand", "cli:op").ok());
  row = *store_->Get("m1");
  EXPECT_EQ(row.status, MigrationStatus::kSkipped);
  EXPECT_EQ(row.skipped_reason, "copied by hand");
  EXPECT_TRUE(row.finished_at.has_value());
  EXPECT_EQ(row.ToJson()["status"], "skipped");
  events = store_->Events("m1", 1);
  EXPECT_EQ((*events)[0].detail, (nlohmann::json{{"by", "cli:op"}, {"reason", "copied by hand"}}));
  EXPECT_EQ(store_->Skip("m1", "again", "cli:op").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Retry("m1", false, "test").code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->Retry("m1", true, "test").ok());
  EXPECT_EQ(store_->Get("m1")->status, MigrationStatus::kPending);
  EXPECT_EQ(store_->Get("m1")->skipped_reason, std::nullopt);
}

// The operator's reads of the chunks see what ChunkStore (the copy's side) wrote.
TEST_F(PgControlStoreTest, ChunkReadsShowWhatTheChunkStoreWrote) {
  Result<ChunkStore> chunks = ChunkStore::Connect(db_.url());
  ASSERT_TRUE(chunks.ok()) << chunks.status().ToString();
  ASSERT_TRUE(chunks->Create("m1", {{{"id", 10}}, {{"id", 20}}, {{"id", 30}}}).ok());
  ASSERT_TRUE(store_->Register("m2", "m2").value());
  ASSERT_TRUE(chunks->Create("m2", {}).ok());
  // m1: chunk 0 done, 1 running with a cursor, 2 failed for good, 3 pending.
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(
        chunks->Claim("m1", "w#" + std::to_string(i), std::chrono::seconds(60))->has_value());
  ASSERT_TRUE(chunks->Checkpoint("m1", 0, "w#0", {{"id", 9}}, 10).ok());
  ASSERT_TRUE(chunks->Finish("m1", 0, "w#0").ok());
  ASSERT_TRUE(chunks->Checkpoint("m1", 1, "w#1", {{"id", 15}}, 6).ok());
  ASSERT_TRUE(*chunks->Fail("m1", 2, "w#2", "value 'x' cannot be converted", 1, 0));

  Result<std::map<std::string, ChunkCounts>> counts = store_->CountChunks();
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  ASSERT_EQ(counts->size(), 2u);
  const ChunkCounts m1 = counts->at("m1");
  EXPECT_EQ((std::vector<int>{m1.pending, m1.running, m1.done, m1.failed}),
            (std::vector<int>{1, 1, 1, 1}));
  EXPECT_EQ(counts->at("m2").pending, 1);

  Result<std::vector<Chunk>> all =
      store_->ListChunks("m1", {.statuses = {}, .after = -1, .limit = 100});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  Result<std::vector<Chunk>> written = chunks->List("m1");
  ASSERT_EQ(all->size(), 4u);
  ASSERT_EQ(written->size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    const Chunk& a = (*all)[i];
    const Chunk& b = (*written)[i];
    EXPECT_EQ(std::tie(a.chunk, a.lower, a.upper, a.cursor, a.status, a.worker_id, a.attempts,
                       a.rows, a.last_error),
              std::tie(b.chunk, b.lower, b.upper, b.cursor, b.status, b.worker_id, b.attempts,
                       b.rows, b.last_error))
        << i;
  }
  EXPECT_EQ((*all)[1].cursor, (nlohmann::json{{"id", 15}}));
  EXPECT_EQ((*all)[1].worker_id, "w#1");
  EXPECT_EQ((*all)[2].last_error, "value 'x' cannot be converted");
  EXPECT_TRUE((*all)[3].upper.is_null());

  auto numbers = [&](const ChunkFilter& f) {
    std::vector<int> out;
    Result<std::vector<Chunk>> listed = store_->ListChunks("m1", f);
    EXPECT_TRUE(listed.ok()) << listed.status().ToString();
    for (const Chunk& c : *listed) out.push_back(c.chunk);
    return out;
  };
  EXPECT_EQ(numbers({.statuses = {"running", "failed"}, .after = -1, .limit = 100}),
            (std::vector<int>{1, 2}));
  EXPECT_EQ(numbers({.statuses = {"pending"}, .after = -1, .limit = 100}), (std::vector<int>{3}));
  EXPECT_EQ(numbers({.statuses = {}, .after = 0, .limit = 2}), (std::vector<int>{1, 2}));
  EXPECT_EQ(numbers({.statuses = {}, .after = 3, .limit = 2}), (std::vector<int>{}));
  EXPECT_EQ(store_->ListChunks("no_such", {})->size(), 0u);
}

// A chunked copy's lease holder saves the range's cursor and rows with the migration's in one
// statement fenced on both: with the lease and the claim both move; without either, neither.
TEST_F(PgControlStoreTest, ARangesCheckpointMovesTheRangeAndTheMigrationTogetherOrNeither) {
  Result<ChunkStore> chunks = ChunkStore::Connect(db_.url());
  ASSERT_TRUE(chunks.ok()) << chunks.status().ToString();
  ASSERT_TRUE(chunks->Create("m1", {nlohmann::json{{"id", "50"}}}).ok());
  ASSERT_TRUE(store_->TryAcquire("m1", "w1")->has_value());
  ASSERT_EQ(chunks->Claim("m1", "w1#0", std::chrono::seconds(60)).value()->chunk, 0);
  auto chunk_text = [&] {
    Result<PgConnection> c = PgConnection::Connect(db_.url());
    Result<PgResult> r = c->Exec(
        "SELECT coalesce(cursor->>'id', '-'), rows_processed FROM background_migration_chunks "
        "WHERE chunk = 0");
    return r.ok() ? std::string(r->Get(0, 0)) + "|" + std::string(r->Get(0, 1))
                  : r.status().ToString();
  };
  BatchRecord batch;
  batch.state = {{"chunked", true}};
  batch.rows = 10;
  batch.chunk = ChunkProgress{0, "w1#0", {{"id", "10"}}};
  ASSERT_TRUE(store_->Checkpoint("m1", "w1", batch).ok());
  EXPECT_EQ(chunk_text(), "10|10");
  EXPECT_EQ(store_->Get("m1")->rows_processed, 10);
  EXPECT_EQ(store_->Get("m1")->state, nlohmann::json({{"chunked", true}}));

  // A claim that is not this thread's: nothing moves, and the error names the range.
  batch.chunk = ChunkProgress{0, "w1#1", {{"id", "20"}}};
  Result<Fence> other = store_->Checkpoint("m1", "w1", batch);
  EXPECT_EQ(other.status().ToString(), "LEASE_LOST: chunk 0 of m1 is no longer running for w1#1");
  // A lease that is not this worker's: nothing moves either.
  batch.chunk = ChunkProgress{0, "w1#0", {{"id", "20"}}};
  EXPECT_EQ(store_->Checkpoint("m1", "w2", batch).status().code(), StatusCode::kLeaseLost);
  EXPECT_EQ(chunk_text(), "10|10");
  EXPECT_EQ(store_->Get("m1")->rows_processed, 10);
}

// A claimant that comes back to its own running range (its run ended on an outage before it
// could release it) claims it again at once, before any pending range, without waiting out
// the lease; another claimant still waits.
TEST_F(PgControlStoreTest, AClaimantTakesBackItsOwnRunningRangeAtOnce) {
  Result<ChunkStore> chunks = ChunkStore::Connect(db_.url());
  ASSERT_TRUE(chunks.ok()) << chunks.status().ToString();
  ASSERT_TRUE(chunks->Create("m1", {nlohmann::json{{"id", "50"}}}).ok());
  ASSERT_EQ(chunks->Claim("m1", "w1#0", std::chrono::seconds(60)).value()->chunk, 0);
  ASSERT_EQ(chunks->Claim("m1", "w2#0", std::chrono::seconds(60)).value()->chunk, 1);
  EXPECT_FALSE(chunks->Claim("m1", "w3#0", std::chrono::seconds(60)).value().has_value());
  Result<std::optional<Chunk>> again = chunks->Claim("m1", "w1#0", std::chrono::seconds(60));
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->chunk, 0);
  EXPECT_EQ((*again)->attempts, 2);
}

}  // namespace
}  // namespace bgm
