-- The content of each migration file as its migration last adopted it (SHA-256 of the file):
-- a file changed after its migration started is refused at start-up until
-- `bgmigrate retry NAME --from-start` adopts the new content.
CREATE TABLE IF NOT EXISTS bgmigrate_migration_files (
  name       TEXT PRIMARY KEY,
  checksum   TEXT NOT NULL,
  path       TEXT NOT NULL,
  adopted_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
