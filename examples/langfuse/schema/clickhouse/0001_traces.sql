-- Langfuse v3's traces table. The double-brace placeholders are resolved from the server's version and
-- the cluster setting; see docs/clickhouse-schema.md. Every statement is re-runnable.
CREATE TABLE IF NOT EXISTS traces {{ON_CLUSTER}} (
  id String,
  timestamp {{DATETIME64}},
  name String,
  user_id Nullable(String),
  metadata {{MAP_STRING_STRING}},
  release Nullable(String),
  version Nullable(String),
  project_id String,
  environment {{LC_STRING}} DEFAULT 'default',
  public {{BOOL}},
  bookmarked {{BOOL}},
  tags Array(String),
  input Nullable(String) {{CODEC_ZSTD}},
  output Nullable(String) {{CODEC_ZSTD}},
  session_id Nullable(String),
  created_at {{DATETIME64}} DEFAULT now(),
  updated_at {{DATETIME64}} DEFAULT now(),
  event_ts {{DATETIME64}},
  is_deleted UInt8
) ENGINE = {{REPLACING_MERGE_TREE:traces}}
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, toDate(timestamp), id);
