#!/usr/bin/env bash
# The main job on one machine: installs what is missing, builds bgmigrate (Release), starts the
# local Postgres and ClickHouse (data in .bgm-data/, kept between runs), applies the fast
# migrations (bgmigrate's control tables and the example application's examples/langfuse/schema),
# seeds a demo data set the first time, and runs `bgmigrate up` (web UI + worker).
# Ctrl-C stops everything cleanly; running it again resumes where it stopped.
#   BGM_DEMO_TRACES=200000 scripts/run.sh     size of the demo data set (observations 3x, scores 1x)
#   BGMIGRATE_CLICKHOUSE=embedded scripts/run.sh   ClickHouse 26.7 embedded in bgmigrate (chDB,
#                                   fetched from npm) instead of Debian's 18.16 server
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "Checking packages"
scripts/deps.sh

step "Building bgmigrate (Release)"
export CCACHE_DIR="${CCACHE_DIR:-$PWD/.ccache}"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DBGM_BUILD_TESTS=OFF >/dev/null
# pipefail: the pipeline fails when the build does; the filter itself never fails.
if ! cmake --build build/release -j"$(nproc)" --target bgmigrate langfuse-seed 2>&1 |
    { grep -E '^\[ *[0-9]+%\] (Building|Linking)|error|warning' || true; }; then
  echo "run: the build failed (the compiler's messages are above)" >&2
  exit 1
fi
BIN=build/release/bgmigrate
SEED=build/release/langfuse-seed

if [[ ${BGMIGRATE_CLICKHOUSE:-server} == embedded ]]; then
  step "Fetching the embedded ClickHouse engine (chDB 26.7, npm)"
  command -v npm >/dev/null || scripts/deps.sh --browser
  scripts/fetch-chdb.sh >/dev/null
fi
step "Starting local Postgres and ClickHouse"
scripts/services.sh start
eval "$(scripts/services.sh env)"

step "Applying fast migrations"
# bgmigrate's control tables, and the example application's tables from its schema folder.
export BGMIGRATE_SCHEMA_DIR=${BGMIGRATE_SCHEMA_DIR-examples/langfuse/schema}
# Its background migrations (the copies to ClickHouse and the cost backfill) are files, and the
# demo adds one example of each other kind (examples/langfuse/demo).
export BGMIGRATE_MIGRATIONS_DIR=${BGMIGRATE_MIGRATIONS_DIR-examples/langfuse/migrations:examples/langfuse/demo}
"$BIN" migrate

if [[ ! -e .bgm-data/demo-seeded ]]; then
  n=${BGM_DEMO_TRACES:-200000}
  # A seed interrupted by Ctrl-C left part of the rows: start the demo data over.
  psql "$DATABASE_URL" -qc "TRUNCATE traces, observations, scores"
  step "Seeding demo data: $n traces, $((3 * n)) observations, $n scores"
  "$SEED" --traces "$n" --observations $((3 * n)) --scores "$n" --blob-bytes 1000 \
    --same-created-at-fraction 0.05 --random-seed 1
  # A few traces with large inputs and outputs (4 MiB each), copied in pieces.
  psql "$DATABASE_URL" -qc "INSERT INTO traces (id, project_id, name, input, output)
    SELECT 'demo-large-' || g, 'seed-project-1', 'large blob demo',
           to_jsonb(repeat(md5(g::text), 131072)), to_jsonb(repeat(md5((g + 1)::text), 131072))
    FROM generate_series(1, 5) g"
  touch .bgm-data/demo-seeded
else
  step "Demo data already there; resuming"
fi

port=${BGMIGRATE_PORT:-3030}
export ADMIN_API_KEY=${ADMIN_API_KEY:-$(cat .bgm-data/admin-api-key 2>/dev/null || true)}
if [[ -z "$ADMIN_API_KEY" ]]; then
  ADMIN_API_KEY=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  (umask 077; printf '%s\n' "$ADMIN_API_KEY" > .bgm-data/admin-api-key)
fi
step "Running bgmigrate up: web UI and worker (Ctrl-C to stop; run this again to resume)"
cat >&2 <<EOM
    UI:        http://127.0.0.1:$port/   (the admin key for retry/pause/args is in .bgm-data/admin-api-key)
    API:       curl http://127.0.0.1:$port/api/background-migrations/status
    CLI:       eval "\$(scripts/services.sh env)"; $BIN list
    Watch the three copies, the cost backfill and the two demo backfills (a postgres and a
    clickhouse file) go from pending to finished, then check a copy:
               $BIN verify 20241024_1730_migrate_traces_from_pg_to_ch
EOM
if [[ ${BGMIGRATE_CLICKHOUSE:-server} == embedded ]]; then
  cat >&2 <<EOM
    Embedded ClickHouse: this bgmigrate process holds its data (.bgm-data/chdb), so run verify
               after stopping it (Ctrl-C); list/status/retry work meanwhile (Postgres only).
EOM
fi
set +e
"$BIN" up &
pid=$!
# A background job ignores the terminal's SIGINT, so forward Ctrl-C and SIGTERM to it.
trap 'kill -TERM $pid 2>/dev/null' INT TERM
code=0
while kill -0 "$pid" 2>/dev/null; do
  wait "$pid"
  code=$?
done
set -e
step "Stopping local Postgres and ClickHouse (data kept in .bgm-data/)"
scripts/services.sh stop
exit $code
