-- Operator actions beyond pause: `skip` marks a migration done without running it (the reason
-- kept; prerequisites treat it as finished); `cancel` stops it after its current batch and
-- keeps its cursor until `retry` (prerequisites treat it as not finished).
ALTER TABLE background_migrations
  ADD COLUMN IF NOT EXISTS skipped_reason TEXT,
  ADD COLUMN IF NOT EXISTS cancelled_at   TIMESTAMPTZ;
