#include "core/pg_control_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/chunk_store.h"

namespace bgm {
namespace {

// Columns of a MigrationRow, in the order RowFrom reads them. $1 is the lease in seconds.
constexpr const char* kRowColumns = R"sql(
  id, name, script, args::text, state::text,
  CASE WHEN finished_at IS NOT NULL AND skipped_reason IS NOT NULL THEN 'skipped'
       WHEN finished_at IS NOT NULL THEN 'finished'
       WHEN failed_at IS NOT NULL THEN 'failed'
       WHEN cancelled_at IS NOT NULL THEN 'cancelled'
       WHEN paused_at IS NOT NULL THEN 'paused'
       WHEN worker_id IS NOT NULL AND locked_at >= now() - make_interval(secs => $1)
         THEN CASE WHEN waiting_reason IS NOT NULL THEN 'waiting'
                   WHEN throttle IS NOT NULL THEN 'throttled' ELSE 'running' END
       ELSE 'pending' END,
  to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  to_char(failed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  to_char(locked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  to_char(paused_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  to_char(last_progress_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  failed_reason, worker_id, attempts, rows_processed, rows_total_estimate,
  (worker_id IS NOT NULL AND locked_at >= now() - make_interval(secs => $1)),
  waiting_reason,
  to_char(waiting_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  to_char(next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  skipped_reason,
  to_char(cancelled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  throttle::text,
  to_char(throttled_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
)sql";

MigrationStatus StatusFromText(std::string_view s) {
  if (s == "finished") return MigrationStatus::kFinished;
  if (s == "failed") return MigrationStatus::kFailed;
  if (s == "paused") return MigrationStatus::kPaused;
  if (s == "skipped") return MigrationStatus::kSkipped;
  if (s == "cancelled") return MigrationStatus::kCancelled;
  if (s == "running") return MigrationStatus::kRunning;
  if (s == "waiting") return MigrationStatus::kWaiting;
  if (s == "throttled") return MigrationStatus::kThrottled;
  return MigrationStatus::kPending;
}

// The value of a JSONB column; null when this binary cannot read it (`error` then says why).
nlohmann::json ParseJsonColumn(std::string_view text, std::string* error = nullptr) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    if (error != nullptr) {
      // "[json.exception.out_of_range.406] number overflow parsing '1e400'" without the tag.
      const std::string what = e.what();
      const size_t tag_end = what.find("] ");
      *error = tag_end == std::string::npos ? what : what.substr(tag_end + 2);
    }
    return nlohmann::json(nullptr);
  }
}

MigrationRow RowFrom(const PgResult& r, int i) {
  MigrationRow row;
  row.id = std::string(r.Get(i, 0));
  row.name = std::string(r.Get(i, 1));
  row.script = std::string(r.Get(i, 2));
  row.args = ParseJsonColumn(r.Get(i, 3));
  row.state = ParseJsonColumn(r.Get(i, 4));
  row.status = StatusFromText(r.Get(i, 5));
  row.finished_at = r.GetOpt(i, 6);
  row.failed_at = r.GetOpt(i, 7);
  row.locked_at = r.GetOpt(i, 8);
  row.created_at = r.GetOpt(i, 9);
  row.started_at = r.GetOpt(i, 10);
  row.paused_at = r.GetOpt(i, 11);
  row.last_progress_at = r.GetOpt(i, 12);
  row.failed_reason = r.GetOpt(i, 13);
  row.worker_id = r.GetOpt(i, 14);
  row.attempts = static_cast<int>(r.GetInt(i, 15));
  row.rows_processed = r.GetInt(i, 16);
  if (!r.IsNull(i, 17)) row.rows_total_estimate = r.GetInt(i, 17);
  row.lease_live = r.GetBool(i, 18);
  row.waiting_reason = r.GetOpt(i, 19);
  row.waiting_since = r.GetOpt(i, 20);
  row.next_attempt_at = r.GetOpt(i, 21);
  row.skipped_reason = r.GetOpt(i, 22);
  row.cancelled_at = r.GetOpt(i, 23);
  if (!r.IsNull(i, 24)) row.throttle = ParseJsonColumn(r.Get(i, 24));
  row.throttled_since = r.GetOpt(i, 25);
  return row;
}

}  // namespace

Status PgControlStore::UseApplicationLedger(ApplicationLedger::Listed listed) {
  Result<std::optional<ApplicationLedger>> found =
      ApplicationLedger::Find(conn_, std::move(listed));
  if (!found.ok()) return found.status();
  ledger_ = std::move(*found);
  return Status::Ok();
}

Status PgControlStore::AdoptApplicationRows() {
  if (!ledger_) return Status::Ok();
  BGM_RETURN_IF_ERROR(ledger_->Adopt(conn_, lease_seconds_));
  spdlog::info(
      "[Background Migration] Keeping {} in step with bgmigrate's runs of the "
      "migrations it lists",
      ledger_->table());
  return Status::Ok();
}

void PgControlStore::SyncLedger(const std::string& name) {
  if (!ledger_) return;
  Status s = ledger_->Sync(conn_, name, lease_seconds_);
  if (!s.ok()) {
    spdlog::warn(
        "[Background Migration] Could not write {}'s state into {}: {} (written again "
        "at its next change or start-up)",
        name, ledger_->table(), s.ToString());
  }
}

Result<std::unique_ptr<PgControlStore>> PgControlStore::Open(const std::string& database_url,
                                                             std::chrono::milliseconds lease) {
  Result<PgConnection> conn = PgConnection::Connect(database_url);
  if (!conn.ok()) return conn.status();
  return std::unique_ptr<PgControlStore>(new PgControlStore(std::move(*conn), lease));
}

Result<bool> PgControlStore::Register(const std::string& name, const std::string& script) {
  Result<PgResult> r = conn_.Exec(R"sql(
      WITH ins AS (
        INSERT INTO background_migrations (name, script) VALUES ($1, $2)
        ON CONFLICT (name) DO NOTHING RETURNING name)
      INSERT INTO background_migration_events (migration_name, kind)
      SELECT name, 'registered' FROM ins RETURNING 1)sql",
                                  {name, script});
  if (!r.ok()) return r.status().WithContext("registering background migration " + name);
  return r->rows() > 0;
}

Result<std::vector<MigrationRow>> PgControlStore::List() {
  Result<PgResult> r =
      conn_.Exec(std::string("SELECT ") + kRowColumns + " FROM background_migrations ORDER BY name",
                 {lease_seconds_});
  if (!r.ok()) return r.status().WithContext("listing background migrations");
  std::vector<MigrationRow> rows;
  for (int i = 0; i < r->rows(); ++i) rows.push_back(RowFrom(*r, i));
  return rows;
}

Result<MigrationRow> PgControlStore::Get(const std::string& name) {
  Result<PgResult> r = conn_.Exec(
      std::string("SELECT ") + kRowColumns + " FROM background_migrations WHERE name = $2",
      {lease_seconds_, name});
  if (!r.ok()) return r.status().WithContext("reading background migration " + name);
  if (r->rows() == 0) {
    return NotFound("no background migration named '" + name +
                    "'; `bgmigrate list` shows the known ones");
  }
  return RowFrom(*r, 0);
}

Result<std::vector<MigrationEvent>> PgControlStore::Events(const std::string& name, int limit) {
  return AllEvents(EventFilter{.migration = name, .kinds = {}, .before = 0, .limit = limit});
}

Result<std::vector<MigrationEvent>> PgControlStore::AllEvents(const EventFilter& filter) {
  Result<PgResult> r = conn_.Exec(R"sql(
      SELECT id, migration_name,
             to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
             kind, worker_id, detail::text
      FROM background_migration_events
      WHERE ($1 = '' OR migration_name = $1)
        AND ($2::jsonb = '[]'::jsonb OR kind IN (SELECT jsonb_array_elements_text($2::jsonb)))
        AND ($3 = 0 OR id < $3)
      ORDER BY id DESC LIMIT $4)sql",
                                  {filter.migration, nlohmann::json(filter.kinds).dump(),
                                   filter.before, std::max(0, filter.limit)});
  if (!r.ok()) {
    return r.status().WithContext(
        filter.migration.empty() ? "reading events" : "reading events of " + filter.migration);
  }
  std::vector<MigrationEvent> out;
  for (int i = 0; i < r->rows(); ++i) {
    MigrationEvent e;
    e.id = r->GetInt(i, 0);
    e.migration_name = std::string(r->Get(i, 1));
    e.at = std::string(r->Get(i, 2));
    e.kind = std::string(r->Get(i, 3));
    e.worker_id = r->GetOpt(i, 4);
    e.detail = ParseJsonColumn(r->Get(i, 5));
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::map<std::string, ChunkCounts>> PgControlStore::CountChunks() {
  Result<PgResult> r = conn_.Exec(R"sql(
      SELECT migration_name,
             count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'running'),
             count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'failed')
      FROM background_migration_chunks GROUP BY migration_name)sql",
                                  {});
  if (!r.ok()) return r.status().WithContext("counting chunks");
  std::map<std::string, ChunkCounts> out;
  for (int i = 0; i < r->rows(); ++i) {
    out[std::string(r->Get(i, 0))] =
        ChunkCounts{static_cast<int>(r->GetInt(i, 1)), static_cast<int>(r->GetInt(i, 2)),
                    static_cast<int>(r->GetInt(i, 3)), static_cast<int>(r->GetInt(i, 4))};
  }
  return out;
}

Result<std::vector<Chunk>> PgControlStore::ListChunks(const std::string& name,
                                                      const ChunkFilter& filter) {
  Result<PgResult> r = conn_.Exec(
      std::string("SELECT ") + kChunkColumns + R"sql(
      FROM background_migration_chunks
      WHERE migration_name = $1 AND chunk > $3
        AND ($2::jsonb = '[]'::jsonb OR status IN (SELECT jsonb_array_elements_text($2::jsonb)))
      ORDER BY chunk LIMIT $4)sql",
      {name, nlohmann::json(filter.statuses).dump(), filter.after, std::max(0, filter.limit)});
  if (!r.ok()) return r.status().WithContext("reading chunks of " + name);
  std::vector<Chunk> out;
  for (int i = 0; i < r->rows(); ++i) out.push_back(ChunkFromRow(*r, i));
  return out;
}

Result<std::optional<Lease>> PgControlStore::TryAcquire(const std::string& name,
                                                        const std::string& worker_id) {
  // One compare-and-set. Under READ COMMITTED a concurrent UPDATE of the same row waits for the
  // first to commit and then re-checks the WHERE clause on the new row, so one worker wins.
  Result<PgResult> r = conn_.Exec(R"sql(
      WITH acquired AS (
        UPDATE background_migrations
        SET worker_id = $2, locked_at = now(), started_at = COALESCE(started_at, now()),
            attempts = attempts + 1,
            waiting_reason = NULL, waiting_since = NULL, next_attempt_at = NULL,
            throttle = NULL, throttled_since = NULL
        WHERE name = $1 AND finished_at IS NULL AND failed_at IS NULL AND paused_at IS NULL
          AND cancelled_at IS NULL
          AND (worker_id IS NULL OR locked_at IS NULL
               OR locked_at < now() - make_interval(secs => $3))
        RETURNING name, script, args, state, attempts),
      ev AS (
        INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
        SELECT name, 'acquired', $2, jsonb_build_object('attempt', attempts) FROM acquired)
      SELECT script, args::text, state::text, attempts FROM acquired)sql",
                                  {name, worker_id, lease_seconds_});
  if (!r.ok()) return r.status().WithContext("acquiring the lease of " + name);
  if (r->rows() == 0) return std::optional<Lease>();
  Lease lease;
  lease.name = name;
  lease.script = std::string(r->Get(0, 0));
  std::string args_error;
  lease.args = ParseJsonColumn(r->Get(0, 1), &args_error);
  if (!args_error.empty()) lease.args_error = std::move(args_error);
  lease.state = ParseJsonColumn(r->Get(0, 2));
  lease.attempts = static_cast<int>(r->GetInt(0, 3));
  SyncLedger(name);
  return std::optional<Lease>(std::move(lease));
}

Result<Fence> PgControlStore::Fenced(const char* what, std::string_view sql,
                                     const std::vector<PgParam>& params, const std::string& name,
                                     const std::string& worker_id) {
  Result<PgResult> r = conn_.Exec(sql, params);
  if (!r.ok()) return r.status().WithContext(std::string(what) + " of " + name);
  if (r->rows() == 0) {
    return LeaseLost("worker " + worker_id + " no longer holds the lease of " + name +
                     " (another worker took it over after it expired)");
  }
  return Fence{r->GetBool(0, 0)};
}

Result<Fence> PgControlStore::Heartbeat(const std::string& name, const std::string& worker_id) {
  Result<Fence> f = Fenced("heartbeat",
                           "UPDATE background_migrations SET locked_at = now() "
                           "WHERE name = $1 AND worker_id = $2 RETURNING paused_at IS NOT NULL OR "
                           "cancelled_at IS NOT NULL",
                           {name, worker_id}, name, worker_id);
  if (f.ok()) SyncLedger(name);
  return f;
}

Result<Fence> PgControlStore::Checkpoint(const std::string& name, const std::string& worker_id,
                                         const BatchRecord& batch) {
  const nlohmann::json detail = {{"from", batch.from},
                                 {"to", batch.to},
                                 {"rows", batch.rows},
                                 {"bytes", batch.bytes},
                                 {"ms", batch.duration_ms}};
  if (!batch.chunk) {
    return Fenced("checkpoint", R"sql(
      WITH upd AS (
        UPDATE background_migrations
        SET state = $3::jsonb, rows_processed = rows_processed + $4, last_progress_at = now(),
            locked_at = now(),
            waiting_reason = NULL, waiting_since = NULL, next_attempt_at = NULL
        WHERE name = $1 AND worker_id = $2
        RETURNING name, (paused_at IS NOT NULL OR cancelled_at IS NOT NULL) AS paused),
      ev AS (
        INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
        SELECT name, 'batch', $2, $5::jsonb FROM upd)
      SELECT paused FROM upd)sql",
                  {name, worker_id, batch.state.dump(), batch.rows, detail.dump()}, name,
                  worker_id);
  }
  // The range's cursor and rows with the migration's, in one statement fenced on both the
  // lease and the range's claim: a crash or an outage leaves both or neither.
  const ChunkProgress& c = *batch.chunk;
  Result<PgResult> r = conn_.Exec(R"sql(
      WITH m AS (
        SELECT name FROM background_migrations WHERE name = $1 AND worker_id = $2 FOR SHARE),
      c AS (
        UPDATE background_migration_chunks
        SET cursor = $6::jsonb, rows_processed = rows_processed + $4, locked_at = now()
        WHERE migration_name = $1 AND chunk = $7 AND worker_id = $8 AND status = 'running'
          AND EXISTS (SELECT 1 FROM m)
        RETURNING 1),
      upd AS (
        UPDATE background_migrations
        SET state = $3::jsonb, rows_processed = rows_processed + $4, last_progress_at = now(),
            locked_at = now(),
            waiting_reason = NULL, waiting_since = NULL, next_attempt_at = NULL
        WHERE name = $1 AND worker_id = $2 AND EXISTS (SELECT 1 FROM c)
        RETURNING name, (paused_at IS NOT NULL OR cancelled_at IS NOT NULL) AS paused),
      ev AS (
        INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
        SELECT name, 'batch', $8, $5::jsonb FROM upd)
      SELECT (SELECT count(*) FROM m), (SELECT bool_or(paused) FROM upd))sql",
                                  {name, worker_id, batch.state.dump(), batch.rows, detail.dump(),
                                   c.cursor.dump(), c.chunk, c.worker_id});
  if (!r.ok()) return r.status().WithContext("checkpoint of " + name);
  if (r->GetInt(0, 0) == 0) {
    return LeaseLost("worker " + worker_id + " no longer holds the lease of " + name +
                     " (another worker took it over after it expired)");
  }
  if (r->IsNull(0, 1)) {
    return LeaseLost("chunk " + std::to_string(c.chunk) + " of " + name +
                     " is no longer running for " + c.worker_id);
  }
  return Fence{r->GetBool(0, 1)};
}

Status PgControlStore::SetTotalEstimate(const std::string& name, const std::string& worker_id,
                                        int64_t rows) {
  Result<Fence> f = Fenced("progress estimate",
                           "UPDATE background_migrations SET rows_total_estimate = $3 "
                           "WHERE name = $1 AND worker_id = $2 RETURNING paused_at IS NOT NULL OR "
                           "cancelled_at IS NOT NULL",
                           {name, worker_id, rows}, name, worker_id);
  return f.ok() ? Status::Ok() : f.status();
}

Status PgControlStore::Finish(const std::string& name, const std::string& worker_id) {
  Result<Fence> f = Fenced("finish", R"sql(
      WITH upd AS (
        UPDATE background_migrations
        SET finished_at = now(), worker_id = NULL, locked_at = NULL, last_progress_at = now(),
            waiting_reason = NULL, waiting_since = NULL, next_attempt_at = NULL,
            throttle = NULL, throttled_since = NULL
        WHERE name = $1 AND worker_id = $2 RETURNING name, rows_processed),
      ev AS (
        INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
        SELECT name, 'finished', $2, jsonb_build_object('rows_processed', rows_processed)
        FROM upd)
      SELECT false FROM upd)sql",
                           {name, worker_id}, name, worker_id);
  if (f.ok()) SyncLedger(name);
  return f.ok() ? Status::Ok() : f.status();
}

Status PgControlStore::Fail(const std::string& name, const std::string& worker_id,
                            const std::string& reason) {
  Result<Fence> f = Fenced("recording the failure", R"sql(
      WITH upd AS (
        UPDATE background_migrations
        SET failed_at = now(), failed_reason = $3, worker_id = NULL, locked_at = NULL,
            waiting_reason = NULL, waiting_since = NULL, next_attempt_at = NULL,
            throttle = NULL, throttled_since = NULL
        WHERE name = $1 AND worker_id = $2 RETURNING name),
      ev AS (
        INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
        SELECT name, 'failed', $2, jsonb_build_object('reason', $3::text) FROM upd)
      SELECT false FROM upd)sql",
                           {name, worker_id, reason}, name, worker_id);
  if (f.ok()) SyncLedger(name);
  return f.ok() ? Status::Ok() : f.status();
}

Status PgControlStore::Release(const std::string& name, const std::string& worker_id,
                               const std::string& reason) {
  Result<Fence> f = Fenced("releasing the lease", R"sql(
      WITH upd AS (
        UPDATE background_migrations
        SET worker_id = NULL, locked_at = NULL,
            waiting_reason = NULL, waiting_since = NULL, next_attempt_at = NULL,
            throttle = NULL, throttled_since = NULL
        WHERE name = $1 AND worker_id = $2 RETURNING name),
      ev AS (
        INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
        SELECT name, 'released', $2, jsonb_build_object('reason', $3::text) FROM upd)
      SELECT false FROM upd)sql",
                           {name, worker_id, reason}, name, worker_id);
  if (f.ok()) SyncLedger(name);
  return f.ok() ? Status::Ok() : f.status();
}

Status PgControlStore::SetWaiting(const std::string& name, const std::string& worker_id,
                                  const std::string& reason, std::chrono::milliseconds retry_in) {
  const double retry_s = std::chrono::duration<double>(retry_in).count();
  Result<Fence> f = Fenced("recording the wait", R"sql(
      WITH upd AS (
        UPDATE background_migrations
        SET waiting_reason = $3, waiting_since = COALESCE(waiting_since, now()),
            next_attempt_at = now() + make_interval(secs => $4::float8), locked_at = now()
        WHERE name = $1 AND worker_id = $2 RETURNING name),
      ev AS (
        INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
        SELECT name, 'waiting', $2, jsonb_build_object('reason', $3::text, 'retry_in_s', $4::float8)
        FROM upd)
      SELECT false FROM upd)sql",
                           {name, worker_id, reason, retry_s}, name, worker_id);
  return f.ok() ? Status::Ok() : f.status();
}

Status PgControlStore::SetThrottled(const std::string& name, const std::string& worker_id,
                                    const std::optional<nlohmann::json>& reading) {
  // One statement: the reading, and an event only when throttling begins or ends.
  Result<Fence> f =
      Fenced("recording the throttle", R"sql(
      WITH old AS MATERIALIZED (  -- the row before this statement (no FOR UPDATE: the
                                  -- UPDATE below would hide it from a locking read)
        SELECT throttle, throttled_since FROM background_migrations
        WHERE name = $1 AND worker_id = $2),
      upd AS (
        UPDATE background_migrations
        SET throttle = $3::jsonb,
            throttled_since = CASE WHEN $3::jsonb IS NULL THEN NULL
                                   ELSE COALESCE(throttled_since, now()) END
        WHERE name = $1 AND worker_id = $2 RETURNING name),
      ev AS (
        INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
        SELECT $1, 'throttled', $2, $3::jsonb FROM old
        WHERE $3::jsonb IS NOT NULL AND old.throttle IS NULL
        UNION ALL
        SELECT $1, 'throttle_ended', $2,
               old.throttle || jsonb_build_object(
                   'seconds', round(EXTRACT(EPOCH FROM now() - old.throttled_since)::numeric, 1))
        FROM old WHERE $3::jsonb IS NULL AND old.throttle IS NOT NULL)
      SELECT false FROM upd)sql",
             {name, worker_id, reading ? PgParam(reading->dump()) : PgParam(std::nullopt)}, name,
             worker_id);
  return f.ok() ? Status::Ok() : f.status();
}

Status PgControlStore::RecordEvent(const std::string& name, const std::string& kind,
                                   const std::optional<std::string>& worker_id,
                                   const nlohmann::json& detail) {
  return conn_
      .Run(
          "INSERT INTO background_migration_events (migration_name, kind, worker_id, detail) "
          "VALUES ($1, $2, $3, $4::jsonb)",
          {name, kind, worker_id, detail.dump()})
      .WithContext("recording a " + kind + " event of " + name);
}

Status PgControlStore::Explain(const std::string& action, const std::string& name,
                               const std::string& hint) {
  Result<MigrationRow> row = Get(name);
  if (!row.ok()) return row.status();
  return RefusedInState(action, *row, hint);
}

Status PgControlStore::Retry(const std::string& name, bool from_start, const std::string& actor) {
  Result<PgResult> r = conn_.Exec(R"sql(
      WITH upd AS (
        UPDATE background_migrations
        SET failed_at = NULL, failed_reason = NULL, finished_at = NULL, cancelled_at = NULL,
            skipped_reason = NULL, paused_at = NULL,
            state = CASE WHEN $2 THEN '{}'::jsonb ELSE state END,
            rows_processed = CASE WHEN $2 THEN 0 ELSE rows_processed END,
            last_progress_at = CASE WHEN $2 THEN NULL ELSE last_progress_at END
        WHERE name = $1 AND (failed_at IS NOT NULL OR cancelled_at IS NOT NULL
                             OR ($2 AND finished_at IS NOT NULL))
        RETURNING name),
      ev AS (
        INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
        SELECT name, 'retried', NULL, jsonb_build_object('from_start', $2, 'by', $3::text)
        FROM upd),
      chunks AS (  -- from the start: the key ranges are planned again
        DELETE FROM background_migration_chunks
        WHERE $2 AND migration_name IN (SELECT name FROM upd))
      SELECT 1 FROM upd)sql",
                                  {name, from_start, actor});
  if (!r.ok()) return r.status().WithContext("retrying " + name);
  if (r->rows() == 0) {
    return Explain("retry", name,
                   "only a failed or cancelled migration can be retried (a finished or "
                   "skipped one with --from-start)");
  }
  SyncLedger(name);
  return Status::Ok();
}

Status PgControlStore::Pause(const std::string& name, const std::string& actor) {
  Result<PgResult> r = conn_.Exec(R"sql(
      WITH upd AS (
        UPDATE background_migrations SET paused_at = now()
        WHERE name = $1 AND finished_at IS NULL AND failed_at IS NULL AND paused_at IS NULL
          AND cancelled_at IS NULL
        RETURNING name),
      ev AS (
        INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
        SELECT name, 'paused', NULL, jsonb_build_object('by', $2::text) FROM upd)
      SELECT 1 FROM upd)sql",
                                  {name, actor});
  if (!r.ok()) return r.status().WithContext("pausing " + name);
  if (r->rows() == 0) return Explain("pause", name, "only a pending or running one can be paused");
  return Status::Ok();
}

Status PgControlStore::Resume(const std::string& name, const std::string& actor) {
  Result<PgResult> r = conn_.Exec(R"sql(
      WITH upd AS (
        UPDATE background_migrations SET paused_at = NULL
        WHERE name = $1 AND paused_at IS NOT NULL AND finished_at IS NULL AND failed_at IS NULL
          AND cancelled_at IS NULL
        RETURNING name),
      ev AS (
        INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
        SELECT name, 'resumed', NULL, jsonb_build_object('by', $2::text) FROM upd)
      SELECT 1 FROM upd)sql",
                                  {name, actor});
  if (!r.ok()) return r.status().WithContext("resuming " + name);
  if (r->rows() == 0) {
    return Explain("resume", name,
                   "only a paused one can be resumed (a cancelled one is run again with retry)");
  }
  return Status::Ok();
}

Status PgControlStore::Skip(const std::string& name, const std::string& reason,
                            const std::string& actor) {
  // Not while a worker holds a live lease: its batches would go on after "done".
  Result<PgResult> r = conn_.Exec(R"sql(
      WITH upd AS (
        UPDATE background_migrations
        SET finished_at = now(), skipped_reason = $2, failed_at = NULL, failed_reason = NULL,
            paused_at = NULL, cancelled_at = NULL, waiting_reason = NULL, waiting_since = NULL,
            next_attempt_at = NULL
        WHERE name = $1 AND finished_at IS NULL
          AND NOT (worker_id IS NOT NULL AND locked_at >= now() - make_interval(secs => $4))
        RETURNING name),
      ev AS (
        INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
        SELECT name, 'skipped', NULL, jsonb_build_object('by', $3::text, 'reason', $2::text)
        FROM upd)
      SELECT 1 FROM upd)sql",
                                  {name, reason, actor, lease_seconds_});
  if (!r.ok()) return r.status().WithContext("skipping " + name);
  if (r->rows() == 0) {
    return Explain("skip", name,
                   "a finished one needs no skip, and a running one must stop first: cancel "
                   "or pause it, then skip it once its worker has let it go");
  }
  SyncLedger(name);
  return Status::Ok();
}

Status PgControlStore::Cancel(const std::string& name, const std::string& reason,
                              const std::string& actor) {
  Result<PgResult> r = conn_.Exec(R"sql(
      WITH upd AS (
        UPDATE background_migrations SET cancelled_at = now()
        WHERE name = $1 AND finished_at IS NULL AND failed_at IS NULL AND cancelled_at IS NULL
        RETURNING name),
      ev AS (
        INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
        SELECT name, 'cancelled', NULL,
               jsonb_build_object('by', $3::text, 'reason', nullif($2::text, ''))
        FROM upd)
      SELECT 1 FROM upd)sql",
                                  {name, reason, actor});
  if (!r.ok()) return r.status().WithContext("cancelling " + name);
  if (r->rows() == 0) {
    return Explain("cancel", name, "only a pending, running or paused one can be cancelled");
  }
  return Status::Ok();
}

Status PgControlStore::SetArgs(const std::string& name, const nlohmann::json& args,
                               const std::string& actor) {
  Result<PgResult> r = conn_.Exec(R"sql(
      WITH old AS (SELECT name, args FROM background_migrations WHERE name = $1 FOR UPDATE),
      upd AS (
        UPDATE background_migrations b SET args = $2::jsonb FROM old
        WHERE b.name = old.name RETURNING b.name, old.args AS old_args),
      ev AS (
        INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
        SELECT name, 'args_changed', NULL,
               jsonb_build_object('old', old_args, 'new', $2::jsonb, 'by', $3::text) FROM upd)
      SELECT 1 FROM upd)sql",
                                  {name, args.dump(), actor});
  if (!r.ok()) return r.status().WithContext("saving args of " + name);
  if (r->rows() == 0) {
    return NotFound("no background migration named '" + name +
                    "'; `bgmigrate list` shows the known ones");
  }
  return Status::Ok();
}

}  // namespace bgm
