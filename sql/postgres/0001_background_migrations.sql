-- Control tables of the background-migration engine.
-- Column names follow Langfuse's background_migrations so its troubleshooting steps work
-- verbatim (edit `args`, then retry from the UI).
CREATE TABLE IF NOT EXISTS background_migrations (
  id                  TEXT PRIMARY KEY DEFAULT md5(random()::text || clock_timestamp()::text),
  name                TEXT NOT NULL UNIQUE,
  script              TEXT NOT NULL,
  args                JSONB NOT NULL DEFAULT '{}'::jsonb,
  state               JSONB NOT NULL DEFAULT '{}'::jsonb,
  finished_at         TIMESTAMPTZ,
  failed_at           TIMESTAMPTZ,
  failed_reason       TEXT,
  worker_id           TEXT,
  locked_at           TIMESTAMPTZ,
  created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
  started_at          TIMESTAMPTZ,
  paused_at           TIMESTAMPTZ,
  attempts            INTEGER NOT NULL DEFAULT 0,
  rows_processed      BIGINT NOT NULL DEFAULT 0,
  rows_total_estimate BIGINT,
  last_progress_at    TIMESTAMPTZ
);

-- Append-only history. `kind` is one of: registered, acquired, batch, checkpoint, released,
-- finished, failed, retried, args_changed, paused, resumed, lease_lost.
CREATE TABLE IF NOT EXISTS background_migration_events (
  id             BIGSERIAL PRIMARY KEY,
  migration_name TEXT NOT NULL,
  at             TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  kind           TEXT NOT NULL,
  worker_id      TEXT,
  detail         JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS background_migration_events_name_id
  ON background_migration_events (migration_name, id);
