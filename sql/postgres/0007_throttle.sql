-- Throttling on database health: while a health signal of a running migration's databases is
-- at or above its threshold, its batches wait (status throttled). `throttle` holds the reading
-- ({"signal", "what", "value", "threshold"}), `throttled_since` when it began.
ALTER TABLE background_migrations
  ADD COLUMN IF NOT EXISTS throttle        JSONB,
  ADD COLUMN IF NOT EXISTS throttled_since TIMESTAMPTZ;
