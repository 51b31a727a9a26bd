#include "core/chunk_store.h"

#include "common/clock.h"

namespace bgm {
namespace {

nlohmann::json JsonOrNull(const PgResult& r, int row, int col) {
  if (r.IsNull(row, col)) return nullptr;
  nlohmann::json j = nlohmann::json::parse(r.Get(row, col), nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

}  // namespace

const char* const kChunkColumns =
    "chunk, lower_bound, upper_bound, cursor, status, coalesce(worker_id, ''), attempts, "
    "rows_processed, coalesce(last_error, '')";

std::optional<std::string> PartitionOf(const Chunk& c) {
  if (!c.lower.is_string() || c.lower != c.upper) return std::nullopt;
  return c.lower.get<std::string>();
}

ClaimHeartbeat::ClaimHeartbeat(std::string database_url, std::string name, std::string process,
                               std::chrono::seconds lease)
    : thread_([url = std::move(database_url), name = std::move(name), process = std::move(process),
               lease](std::stop_token stop) {
        std::optional<ChunkStore> store;
        while (SystemClock().SleepFor(lease / 4, stop)) {
          if (!store) {
            Result<ChunkStore> c = ChunkStore::Connect(url);
            if (!c.ok()) continue;
            store.emplace(std::move(*c));
          }
          if (!store->Heartbeat(name, process).ok()) store.reset();
        }
      }) {}

Chunk ChunkFromRow(const PgResult& r, int row) {
  Chunk c;
  c.chunk = static_cast<int>(r.GetInt(row, 0));
  c.lower = JsonOrNull(r, row, 1);
  c.upper = JsonOrNull(r, row, 2);
  c.cursor = JsonOrNull(r, row, 3);
  c.status = std::string(r.Get(row, 4));
  c.worker_id = std::string(r.Get(row, 5));
  c.attempts = static_cast<int>(r.GetInt(row, 6));
  c.rows = r.GetInt(row, 7);
  c.last_error = std::string(r.Get(row, 8));
  return c;
}

Result<ChunkStore> ChunkStore::Connect(const std::string& database_url) {
  Result<PgConnection> conn = PgConnection::Connect(database_url);
  if (!conn.ok()) return conn.status();
  return ChunkStore(std::move(*conn));
}

Result<bool> ChunkStore::HasChunks(const std::string& name) {
  Result<PgResult> r = conn_.Exec(
      "SELECT EXISTS (SELECT 1 FROM background_migration_chunks WHERE migration_name = $1)",
      {name});
  if (!r.ok()) return r.status();
  return r->Get(0, 0) == "t";
}

Status ChunkStore::Create(const std::string& name, const std::vector<nlohmann::json>& boundaries,
                          const nlohmann::json& first_cursor) {
  // One statement: the ranges between consecutive boundaries, all or none.
  nlohmann::json all = nlohmann::json::array();
  all.push_back(nullptr);
  for (const nlohmann::json& b : boundaries) all.push_back(b);
  all.push_back(nullptr);
  Result<PgResult> r = conn_.Exec(R"sql(
      INSERT INTO background_migration_chunks
        (migration_name, chunk, lower_bound, upper_bound, cursor)
      SELECT $1, b.i::int - 1, nullif(b.v, 'null'::jsonb), nullif(n.v, 'null'::jsonb),
             CASE WHEN b.i = 1 THEN nullif($3::jsonb, 'null'::jsonb) END
      FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY b(v, i)
      JOIN jsonb_array_elements($2::jsonb) WITH ORDINALITY n(v, i) ON n.i = b.i + 1
      ON CONFLICT DO NOTHING
      RETURNING 1)sql",
                                  {name, all.dump(), first_cursor.dump()});
  if (!r.ok()) return r.status().WithContext("splitting " + name + " into chunks");
  if (r->rows() != static_cast<int>(boundaries.size()) + 1) {
    return FailedPrecondition(name + " has chunks already");
  }
  return Status::Ok();
}

Result<int> ChunkStore::AddPartitions(const std::string& name, const std::vector<std::string>& ids,
                                      const std::string& done_through) {
  Result<PgResult> r = conn_.Exec(R"sql(
      WITH ids AS (
        SELECT v AS id, i FROM jsonb_array_elements_text($2::jsonb) WITH ORDINALITY t(v, i)),
      fresh AS (
        SELECT id, row_number() OVER (ORDER BY i) AS n,
               nullif($3, '') IS NOT NULL AND id COLLATE "C" <= $3 COLLATE "C" AS done
        FROM ids
        WHERE NOT EXISTS (SELECT 1 FROM background_migration_chunks c
                          WHERE c.migration_name = $1 AND c.lower_bound = to_jsonb(ids.id))),
      base AS (
        SELECT coalesce(max(chunk), -1) AS last FROM background_migration_chunks
        WHERE migration_name = $1)
      INSERT INTO background_migration_chunks
        (migration_name, chunk, lower_bound, upper_bound, status, cursor, finished_at)
      SELECT $1, base.last + fresh.n, to_jsonb(fresh.id), to_jsonb(fresh.id),
             CASE WHEN fresh.done THEN 'done' ELSE 'pending' END,
             CASE WHEN fresh.done THEN to_jsonb(fresh.id) END,
             CASE WHEN fresh.done THEN now() END
      FROM fresh, base
      ON CONFLICT DO NOTHING
      RETURNING 1)sql",
                                  {name, nlohmann::json(ids).dump(), done_through});
  if (!r.ok()) return r.status().WithContext("adding the partitions of " + name + " as chunks");
  return r->rows();
}

Status ChunkStore::RetryFailed(const std::string& name) {
  return conn_.Run(R"sql(
      UPDATE background_migration_chunks
      SET status = 'pending', worker_id = NULL, locked_at = NULL, attempts = 0,
          next_attempt_at = NULL
      WHERE migration_name = $1 AND status = 'failed')sql",
                   {name});
}

Result<std::optional<Chunk>> ChunkStore::Claim(const std::string& name,
                                               const std::string& worker_id,
                                               std::chrono::seconds lease) {
  Result<PgResult> r = conn_.Exec(std::string(R"sql(
      UPDATE background_migration_chunks
      SET status = 'running', worker_id = $2, locked_at = now(), attempts = attempts + 1
      WHERE (migration_name, chunk) = (
        SELECT migration_name, chunk FROM background_migration_chunks
        WHERE migration_name = $1
          AND NOT EXISTS (
            SELECT 1 FROM background_migrations
            WHERE name = $1 AND (finished_at IS NOT NULL OR failed_at IS NOT NULL
                                 OR paused_at IS NOT NULL OR cancelled_at IS NOT NULL))
          AND ((status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= now()))
               OR (status = 'running' AND locked_at < now() - make_interval(secs => $3::int))
               OR (status = 'running' AND worker_id = $2))
        ORDER BY status = 'running' AND worker_id = $2 DESC, chunk
        LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING )sql") + kChunkColumns,
                                  {name, worker_id, static_cast<int64_t>(lease.count())});
  if (!r.ok()) return r.status().WithContext("claiming a chunk of " + name);
  if (r->rows() == 0) return std::optional<Chunk>();
  return std::optional<Chunk>(ChunkFromRow(*r, 0));
}

Status ChunkStore::Heartbeat(const std::string& name, const std::string& process) {
  return conn_.Run(
      "UPDATE background_migration_chunks SET locked_at = now() "
      "WHERE migration_name = $1 AND status = 'running' AND split_part(worker_id, '#', 1) = $2",
      {name, process});
}

Result<int> ChunkStore::Workers(const std::string& name, std::chrono::seconds lease) {
  Result<PgResult> r = conn_.Exec(
      "SELECT count(DISTINCT split_part(worker_id, '#', 1)) FROM background_migration_chunks "
      "WHERE migration_name = $1 AND status = 'running' "
      "AND locked_at >= now() - make_interval(secs => $2::int)",
      {name, static_cast<int64_t>(lease.count())});
  if (!r.ok()) return r.status();
  return static_cast<int>(r->GetInt(0, 0));
}

Status ChunkStore::CheckpointShared(const std::string& name, int chunk,
                                    const std::string& worker_id, const nlohmann::json& cursor,
                                    int64_t rows, const nlohmann::json& detail) {
  Result<PgResult> r = conn_.Exec(R"sql(
      WITH m AS (
        SELECT name FROM background_migrations
        WHERE name = $1 AND finished_at IS NULL AND failed_at IS NULL AND paused_at IS NULL
          AND cancelled_at IS NULL
        FOR SHARE),
      c AS (
        UPDATE background_migration_chunks
        SET cursor = $4::jsonb, rows_processed = rows_processed + $5, locked_at = now()
        WHERE migration_name = $1 AND chunk = $2 AND worker_id = $3 AND status = 'running'
          AND EXISTS (SELECT 1 FROM m)
        RETURNING 1),
      upd AS (
        UPDATE background_migrations
        SET rows_processed = rows_processed + $5, last_progress_at = now()
        WHERE name = $1 AND EXISTS (SELECT 1 FROM c)
        RETURNING name),
      ev AS (
        INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
        SELECT name, 'batch', $3, $6::jsonb FROM upd)
      SELECT (SELECT count(*) FROM m), (SELECT count(*) FROM c))sql",
                                  {name, chunk, worker_id, cursor.dump(), rows, detail.dump()});
  if (!r.ok()) return r.status().WithContext("saving chunk " + std::to_string(chunk));
  if (r->GetInt(0, 0) == 0) {
    return LeaseLost(name + " is no longer running (paused, cancelled, finished or failed)");
  }
  if (r->GetInt(0, 1) == 0) {
    return LeaseLost("chunk " + std::to_string(chunk) + " of " + name +
                     " is no longer running for " + worker_id);
  }
  return Status::Ok();
}

Result<int> ChunkStore::Split(const std::string& name, int chunk, const std::string& worker_id,
                              const nlohmann::json& middle, const std::string& error) {
  BGM_RETURN_IF_ERROR(conn_.Run("BEGIN"));
  // Numbers are taken under a lock per migration, so two splits never pick the same one.
  Result<PgResult> r =
      conn_.Exec("SELECT pg_advisory_xact_lock(hashtext('bgm-chunks:' || $1))", {name});
  if (r.ok()) {
    r = conn_.Exec(R"sql(
      WITH cur AS (
        SELECT upper_bound FROM background_migration_chunks
        WHERE migration_name = $1 AND chunk = $2 AND worker_id = $3 AND status = 'running'
        FOR UPDATE),
      upd AS (
        UPDATE background_migration_chunks
        SET upper_bound = $4::jsonb, status = 'pending', worker_id = NULL, locked_at = NULL,
            last_error = $5, next_attempt_at = NULL
        WHERE migration_name = $1 AND chunk = $2 AND EXISTS (SELECT 1 FROM cur)
        RETURNING 1)
      INSERT INTO background_migration_chunks (migration_name, chunk, lower_bound, upper_bound)
      SELECT $1, (SELECT max(chunk) + 1 FROM background_migration_chunks
                  WHERE migration_name = $1), $4::jsonb, upper_bound
      FROM cur WHERE EXISTS (SELECT 1 FROM upd)
      RETURNING chunk)sql",
                   {name, chunk, worker_id, middle.dump(), error});
  }
  if (!r.ok()) {
    (void)conn_.Run("ROLLBACK");
    return r.status().WithContext("splitting chunk " + std::to_string(chunk) + " of " + name);
  }
  BGM_RETURN_IF_ERROR(conn_.Run("COMMIT"));
  if (r->rows() == 0) {
    return LeaseLost("chunk " + std::to_string(chunk) + " of " + name +
                     " is no longer running for " + worker_id);
  }
  return static_cast<int>(r->GetInt(0, 0));
}

Result<Chunk> ChunkStore::Get(const std::string& name, int chunk) {
  Result<PgResult> r = conn_.Exec(std::string("SELECT ") + kChunkColumns +
                                      " FROM background_migration_chunks "
                                      "WHERE migration_name = $1 AND chunk = $2",
                                  {name, chunk});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return NotFound("no chunk " + std::to_string(chunk) + " of " + name);
  return ChunkFromRow(*r, 0);
}

Status ChunkStore::Release(const std::string& name, int chunk, const std::string& worker_id) {
  return conn_.Run(R"sql(
      UPDATE background_migration_chunks
      SET status = 'pending', worker_id = NULL, locked_at = NULL,
          attempts = greatest(attempts - 1, 0)
      WHERE migration_name = $1 AND chunk = $2 AND worker_id = $3 AND status = 'running')sql",
                   {name, chunk, worker_id});
}

Status ChunkStore::Checkpoint(const std::string& name, int chunk, const std::string& worker_id,
                              const nlohmann::json& cursor, int64_t rows) {
  Result<PgResult> r = conn_.Exec(R"sql(
      UPDATE background_migration_chunks
      SET cursor = $4::jsonb, rows_processed = rows_processed + $5, locked_at = now()
      WHERE migration_name = $1 AND chunk = $2 AND worker_id = $3 AND status = 'running'
      RETURNING 1)sql",
                                  {name, chunk, worker_id, cursor.dump(), rows});
  if (!r.ok()) return r.status().WithContext("saving chunk " + std::to_string(chunk));
  if (r->rows() == 0) {
    return LeaseLost("chunk " + std::to_string(chunk) + " of " + name +
                     " is no longer running for " + worker_id);
  }
  return Status::Ok();
}

Status ChunkStore::Finish(const std::string& name, int chunk, const std::string& worker_id) {
  Result<PgResult> r = conn_.Exec(R"sql(
      UPDATE background_migration_chunks
      SET status = 'done', worker_id = NULL, locked_at = NULL, finished_at = now(),
          last_error = NULL
      WHERE migration_name = $1 AND chunk = $2 AND worker_id = $3 AND status = 'running'
      RETURNING 1)sql",
                                  {name, chunk, worker_id});
  if (!r.ok()) return r.status().WithContext("finishing chunk " + std::to_string(chunk));
  if (r->rows() == 0) {
    return LeaseLost("chunk " + std::to_string(chunk) + " of " + name +
                     " is no longer running for " + worker_id);
  }
  return Status::Ok();
}

Result<bool> ChunkStore::Fail(const std::string& name, int chunk, const std::string& worker_id,
                              const std::string& error, int max_attempts, double backoff_seconds) {
  Result<PgResult> r = conn_.Exec(R"sql(
      UPDATE background_migration_chunks
      SET status = CASE WHEN attempts >= $5 THEN 'failed' ELSE 'pending' END,
          worker_id = NULL, locked_at = NULL, last_error = $4,
          next_attempt_at = now() + make_interval(secs => $6::float8)
      WHERE migration_name = $1 AND chunk = $2 AND worker_id = $3 AND status = 'running'
      RETURNING status = 'failed')sql",
                                  {name, chunk, worker_id, error, max_attempts, backoff_seconds});
  if (!r.ok())
    return r.status().WithContext("recording the failure of chunk " + std::to_string(chunk));
  if (r->rows() == 0) {
    return LeaseLost("chunk " + std::to_string(chunk) + " of " + name +
                     " is no longer running for " + worker_id);
  }
  return r->Get(0, 0) == "t";
}

Result<ChunkCounts> ChunkStore::Counts(const std::string& name) {
  Result<PgResult> r = conn_.Exec(R"sql(
      SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'running'),
             count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'failed')
      FROM background_migration_chunks WHERE migration_name = $1)sql",
                                  {name});
  if (!r.ok()) return r.status();
  return ChunkCounts{static_cast<int>(r->GetInt(0, 0)), static_cast<int>(r->GetInt(0, 1)),
                     static_cast<int>(r->GetInt(0, 2)), static_cast<int>(r->GetInt(0, 3))};
}

Result<std::vector<Chunk>> ChunkStore::List(const std::string& name) {
  Result<PgResult> r = conn_.Exec(std::string("SELECT ") + kChunkColumns +
                                      " FROM background_migration_chunks WHERE migration_name = $1 "
                                      "ORDER BY chunk",
                                  {name});
  if (!r.ok()) return r.status();
  std::vector<Chunk> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back(ChunkFromRow(*r, i));
  return out;
}

}  // namespace bgm
