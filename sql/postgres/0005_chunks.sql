-- The key ranges ("chunks") a keyed migration is split into, each run on its own with its own
-- cursor, attempts and error, so that several threads (and later several workers) share one
-- migration. Ranges are [lower_bound, upper_bound) over the migration's key; NULL lower: from
-- the first row; NULL upper: open-ended (rows inserted while the migration runs are covered).
-- Keyed by migration name, not by a foreign key: the control table may be the application's.
CREATE TABLE IF NOT EXISTS background_migration_chunks (
  migration_name  TEXT NOT NULL,
  chunk           INTEGER NOT NULL,
  lower_bound     JSONB,
  upper_bound     JSONB,
  status          TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'done', 'failed')),
  worker_id       TEXT,
  locked_at       TIMESTAMPTZ,
  attempts        INTEGER NOT NULL DEFAULT 0,
  rows_processed  BIGINT NOT NULL DEFAULT 0,
  cursor          JSONB,
  last_error      TEXT,
  next_attempt_at TIMESTAMPTZ,
  finished_at     TIMESTAMPTZ,
  PRIMARY KEY (migration_name, chunk)
);
