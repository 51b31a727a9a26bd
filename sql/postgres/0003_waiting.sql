-- A running migration whose database is unreachable keeps its lease and waits, retrying with
-- backoff; these columns show why and until when (status `waiting` in list, API and UI).
ALTER TABLE background_migrations
  ADD COLUMN IF NOT EXISTS waiting_reason  TEXT,
  ADD COLUMN IF NOT EXISTS waiting_since   TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS next_attempt_at TIMESTAMPTZ;
