-- The application's own tables (Langfuse-shaped): the sources of the background migrations.
CREATE TABLE IF NOT EXISTS traces (
  id          TEXT PRIMARY KEY,
  external_id TEXT,
  "timestamp" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  name        TEXT,
  user_id     TEXT,
  metadata    JSONB,
  release     TEXT,
  version     TEXT,
  project_id  TEXT NOT NULL,
  public      BOOLEAN NOT NULL DEFAULT false,
  bookmarked  BOOLEAN NOT NULL DEFAULT false,
  tags        TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
  input       JSONB,
  output      JSONB,
  session_id  TEXT,
  created_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS traces_created_at_id ON traces (created_at, id);
CREATE INDEX IF NOT EXISTS traces_timestamp_id ON traces ("timestamp", id);

CREATE TABLE IF NOT EXISTS prompts (
  id         TEXT PRIMARY KEY,
  project_id TEXT NOT NULL,
  name       TEXT NOT NULL,
  version    INTEGER NOT NULL,
  prompt     JSONB NOT NULL DEFAULT '""'::jsonb,
  labels     TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
  created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  UNIQUE (project_id, name, version)
);

-- Prices per unit (token) for a model; project_id NULL means a built-in default.
CREATE TABLE IF NOT EXISTS models (
  id            TEXT PRIMARY KEY,
  project_id    TEXT,
  model_name    TEXT NOT NULL,
  match_pattern TEXT NOT NULL,
  start_date    TIMESTAMP(3),
  input_price   NUMERIC(65, 30),
  output_price  NUMERIC(65, 30),
  total_price   NUMERIC(65, 30),
  unit          TEXT NOT NULL DEFAULT 'TOKENS',
  created_at    TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at    TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS observations (
  id                     TEXT PRIMARY KEY,
  trace_id               TEXT,
  project_id             TEXT NOT NULL,
  type                   TEXT NOT NULL,
  start_time             TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  end_time               TIMESTAMP(3),
  completion_start_time  TIMESTAMP(3),
  name                   TEXT,
  metadata               JSONB,
  parent_observation_id  TEXT,
  level                  TEXT NOT NULL DEFAULT 'DEFAULT',
  status_message         TEXT,
  version                TEXT,
  model                  TEXT,
  internal_model         TEXT,
  internal_model_id      TEXT,
  model_parameters       JSONB,
  input                  JSONB,
  output                 JSONB,
  prompt_tokens          INTEGER NOT NULL DEFAULT 0,
  completion_tokens      INTEGER NOT NULL DEFAULT 0,
  total_tokens           INTEGER NOT NULL DEFAULT 0,
  unit                   TEXT,
  input_cost             NUMERIC(65, 30),
  output_cost            NUMERIC(65, 30),
  total_cost             NUMERIC(65, 30),
  calculated_input_cost  NUMERIC(65, 30),
  calculated_output_cost NUMERIC(65, 30),
  calculated_total_cost  NUMERIC(65, 30),
  prompt_id              TEXT,
  created_at             TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at             TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS observations_created_at_id ON observations (created_at, id);
CREATE INDEX IF NOT EXISTS observations_start_time_id ON observations (start_time, id);

CREATE TABLE IF NOT EXISTS scores (
  id             TEXT PRIMARY KEY,
  "timestamp"    TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  project_id     TEXT NOT NULL,
  name           TEXT NOT NULL,
  value          DOUBLE PRECISION,
  source         TEXT NOT NULL DEFAULT 'API',
  author_user_id TEXT,
  comment        TEXT,
  trace_id       TEXT NOT NULL,
  observation_id TEXT,
  config_id      TEXT,
  string_value   TEXT,
  queue_id       TEXT,
  data_type      TEXT NOT NULL DEFAULT 'NUMERIC',
  created_at     TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at     TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS scores_created_at_id ON scores (created_at, id);
CREATE INDEX IF NOT EXISTS scores_timestamp_id ON scores ("timestamp", id);
