#!/usr/bin/env bash
# Throughput and memory of the traces copy against the baseline pipe, on the same data in the
# same run:
#   baseline: psql -c "COPY (SELECT ...) TO STDOUT" | curl POST "INSERT ... FORMAT TabSeparated"
#             (streamed over ClickHouse's HTTP interface, faster than clickhouse-client)
#   bgmigrate: the 20241024_1730_migrate_traces_from_pg_to_ch background migration (one worker)
# Prints rows/s, peak RSS and CPU seconds per million rows of each, and their ratio. Uses
# private servers (.bgm-data/bench).
#   BENCH_TRACES=1000000 BENCH_BLOB_BYTES=500 bench/copy_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TRACES=${BENCH_TRACES:-1000000}
BLOB=${BENCH_BLOB_BYTES:-500}   # input and output each: ~1 KB of JSON per trace in all

scripts/deps.sh
for p in time bc; do dpkg -s "$p" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null; done
export CCACHE_DIR="${CCACHE_DIR:-$PWD/.ccache}"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DBGM_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j"$(nproc)" --target bgmigrate langfuse-seed >/dev/null
BIN=$PWD/build/release/bgmigrate
SEED=$PWD/build/release/langfuse-seed
# The example application's tables (traces, observations, scores) come from its schema folder.
export BGMIGRATE_SCHEMA_DIR=${BGMIGRATE_SCHEMA_DIR-examples/langfuse/schema}

export BGMIGRATE_DATA_DIR="$PWD/.bgm-data/bench" BGMIGRATE_PG_PORT=55632 \
       BGMIGRATE_CH_HTTP_PORT=58323 BGMIGRATE_CH_TCP_PORT=59200
scripts/services.sh start >/dev/null
trap 'scripts/services.sh stop >/dev/null 2>&1 || true' EXIT
eval "$(scripts/services.sh env)"
ADMIN_URL=$DATABASE_URL
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
export DATABASE_URL="${ADMIN_URL%/*}/bench" CLICKHOUSE_DB=bench
curl -sf "$CLICKHOUSE_URL" --data-binary "DROP DATABASE IF EXISTS bench" >/dev/null

echo "== seeding $TRACES traces (input and output ~$BLOB bytes each)"
"$BIN" migrate >/dev/null  # the example's tables, which the seeder fills
start=$(date +%s.%N)
"$SEED" --traces "$TRACES" --observations 0 --scores 0 --blob-bytes "$BLOB" 2>/dev/null
echo "seed: $(echo "$(date +%s.%N) - $start" | bc) s"
"$BIN" migrate >/dev/null 2>&1
psql "$DATABASE_URL" -qc "VACUUM ANALYZE traces"
pg_size=$(psql "$DATABASE_URL" -Atc "SELECT pg_size_pretty(pg_total_relation_size('traces'))")
echo "traces in Postgres: $pg_size"

# Baseline: the same rows through text, into a table of the same shape (metadata kept as text).
curl -sf "$CLICKHOUSE_URL" --data-binary "CREATE TABLE bench.traces_pipe (id String, timestamp DateTime,
  name String, user_id Nullable(String), metadata Nullable(String), release Nullable(String),
  version Nullable(String), project_id String, public UInt8, bookmarked UInt8,
  input Nullable(String), output Nullable(String), session_id Nullable(String),
  created_at DateTime, updated_at DateTime) ENGINE = MergeTree PARTITION BY toYYYYMM(timestamp)
  ORDER BY (project_id, toDate(timestamp), id)" >/dev/null
query="COPY (SELECT id, to_char(\"timestamp\", 'YYYY-MM-DD HH24:MI:SS'), COALESCE(name, ''), user_id,
  metadata::text, release, version, project_id, public::int, bookmarked::int, input::text,
  output::text, session_id, to_char(created_at, 'YYYY-MM-DD HH24:MI:SS'),
  to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS') FROM traces) TO STDOUT"
echo "== baseline: psql COPY | curl POST INSERT FORMAT TabSeparated (HTTP, streamed)"
start=$(date +%s.%N)
/usr/bin/time -f "%M %U %S" -o /tmp/bench_psql_rss psql "$DATABASE_URL" -qc "$query" |
  /usr/bin/time -f "%M %U %S" -o /tmp/bench_ch_rss curl -sSf -X POST -T - \
    "$CLICKHOUSE_URL/?database=bench&max_memory_usage=0&query=INSERT%20INTO%20traces_pipe%20FORMAT%20TabSeparated"
pipe_s=$(echo "$(date +%s.%N) - $start" | bc)
pipe_rows=$(curl -sf "$CLICKHOUSE_URL" --data-binary "SELECT count() FROM bench.traces_pipe")
read -r psql_rss psql_u psql_s </tmp/bench_psql_rss
read -r curl_rss curl_u curl_s </tmp/bench_ch_rss
pipe_rss=$(( (psql_rss + curl_rss) / 1024 ))
pipe_cpu=$(echo "$psql_u + $psql_s + $curl_u + $curl_s" | bc)

# One copy by a worker: seconds between its first and last batch (plus the first batch's
# own time), rows in ClickHouse, peak RSS and CPU. Sets copy_ms, rows, rss, cpu.
measure_copy() {  # measure_copy <migration name> <ClickHouse database> [migrations dir]
  local name=$1 db=$2 dir=${3:-}
  CLICKHOUSE_DB=$db BGMIGRATE_MIGRATIONS_DIR=$dir "$BIN" migrate >/dev/null 2>&1
  /usr/bin/time -f "%M %U %S" -o /tmp/bench_bgm_rss env BGMIGRATE_LOG_FORMAT=json \
    CLICKHOUSE_DB="$db" BGMIGRATE_MIGRATIONS_DIR="$dir" \
    "$BIN" worker --exit-when-idle 2>/tmp/bench_worker.log
  copy_ms=$(psql "$DATABASE_URL" -Atc "SELECT round(extract(epoch from (max(at) - min(at))) * 1000
    + (array_agg((detail->>'ms')::int ORDER BY id))[1]) FROM background_migration_events
    WHERE migration_name = '$name' AND kind = 'batch'")
  rows=$(curl -sf "$CLICKHOUSE_URL" --data-binary "SELECT count() FROM $db.traces FINAL")
  local rss_kib u s
  read -r rss_kib u s </tmp/bench_bgm_rss
  rss=$(( rss_kib / 1024 ))
  cpu=$(echo "$u + $s" | bc)
}

echo "== bgmigrate: 20241024_1730_migrate_traces_from_pg_to_ch (examples/langfuse/migrations)"
measure_copy 20241024_1730_migrate_traces_from_pg_to_ch bench examples/langfuse/migrations
bgm_ms=$copy_ms bgm_rows=$rows bgm_rss=$rss bgm_cpu=$cpu
BGMIGRATE_MIGRATIONS_DIR=examples/langfuse/migrations \
  "$BIN" verify 20241024_1730_migrate_traces_from_pg_to_ch --sample 0 | tail -1

pipe_rate=$(echo "$pipe_rows / $pipe_s" | bc)
bgm_rate=$(echo "$bgm_rows * 1000 / $bgm_ms" | bc)
echo
printf '%-34s %10s %12s %10s %14s %18s\n' "" "rows" "seconds" "rows/s" "peak RSS MiB" "client CPU s/Mrows"
printf '%-34s %10s %12.2f %10s %14s %18.2f\n' "baseline pipe (psql | curl)" "$pipe_rows" "$pipe_s" "$pipe_rate" "$pipe_rss" "$(echo "$pipe_cpu * 1000000 / $pipe_rows" | bc -l)"
printf '%-34s %10s %12.2f %10s %14s %18.2f\n' "bgmigrate traces copy (file)" "$bgm_rows" "$(echo "$bgm_ms / 1000" | bc -l)" "$bgm_rate" "$bgm_rss" "$(echo "$bgm_cpu * 1000000 / $bgm_rows" | bc -l)"
printf 'ratio bgmigrate / pipe: %.2fx\n' "$(echo "$bgm_rate / $pipe_rate" | bc -l)"
