-- Langfuse v3's scores table. See docs/clickhouse-schema.md for the placeholders.
CREATE TABLE IF NOT EXISTS scores {{ON_CLUSTER}} (
  id String,
  timestamp {{DATETIME64}},
  project_id String,
  environment {{LC_STRING}} DEFAULT 'default',
  trace_id String,
  observation_id Nullable(String),
  name String,
  value Float64,
  source String,
  comment Nullable(String) {{CODEC_ZSTD}},
  author_user_id Nullable(String),
  config_id Nullable(String),
  data_type String,
  string_value Nullable(String),
  queue_id Nullable(String),
  created_at {{DATETIME64}} DEFAULT now(),
  updated_at {{DATETIME64}} DEFAULT now(),
  event_ts {{DATETIME64}},
  is_deleted UInt8
) ENGINE = {{REPLACING_MERGE_TREE:scores}}
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, toDate(timestamp), name, id);
