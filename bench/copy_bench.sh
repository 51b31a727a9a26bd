#!/usr/bin/env bash
# Throughput and memory of the traces copy against the baseline pipe, on the same data in the
# same run:
#   baseline: psql -c "COPY (SELECT ...) TO STDOUT" | curl POST "INSERT ... FORMAT TabSeparated"
#             (streamed over ClickHouse's HTTP interface, faster than clickhouse-client)
#   limit: the copied rows, already RowBinary, POSTed as 4 parallel INSERTs (ClickHouse alone)
#   bgmigrate: the 20241024_1730_migrate_traces_from_pg_to_ch background migration as one
#             stream (chunkRows 0), in key-range chunks (TRACES/16 rows) with concurrency 1, 2 and 4, and with
#             two worker processes of concurrency 2
# Prints rows/s, peak RSS and client CPU seconds per million rows of each, and the ratios to the
# pipe and to the limit. Uses private servers (.bgm-data/bench).
#   BENCH_TRACES=1000000 BENCH_BLOB_BYTES=500 bench/copy_bench.sh
#   BENCH_EXTRA_ARGS='"maxBatchBytes": 268435456' BENCH_ONLY=concurrency bench/copy_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TRACES=${BENCH_TRACES:-1000000}
BLOB=${BENCH_BLOB_BYTES:-500}   # input and output each: ~1 KB of JSON per trace in all
EXTRA=${BENCH_EXTRA_ARGS:-}     # e.g. '"maxBatchBytes": 268435456': added to every copy's args
ONLY=${BENCH_ONLY:-}            # run only the copy configurations whose label contains this

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

# Where the CPU goes: seconds used so far by Postgres (the postmaster, its exited backends and its
# live ones) and by the ClickHouse server, read from /proc.
TICKS=$(getconf CLK_TCK)
PG_PID=$(head -1 "$(psql "$DATABASE_URL" -Atc "SHOW data_directory")/postmaster.pid")
CH_PID=$(pgrep -f "$BGMIGRATE_DATA_DIR/clickhouse/config.xml" | head -1)
server_cpu() {  # server_cpu <pid> <with children 0|1>: CPU seconds
  local t kids=0 c
  t=$(awk -v w="$2" '{print $14 + $15 + (w ? $16 + $17 : 0)}' "/proc/$1/stat")
  if [[ $2 == 1 ]]; then
    for c in $(pgrep -P "$1"); do kids=$(( kids + $(awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || echo 0) )); done
  fi
  echo "scale=2; ($t + $kids) / $TICKS" | bc
}


# Baseline: the same rows through text, into a table of the same shape (metadata kept as text).
# It runs twice, first and last, and the faster run is the baseline (the strongest one: the first
# may share the machine with the seed's writes still being flushed).
query="COPY (SELECT id, to_char(\"timestamp\", 'YYYY-MM-DD HH24:MI:SS'), COALESCE(name, ''), user_id,
  metadata::text, release, version, project_id, public::int, bookmarked::int, input::text,
  output::text, session_id, to_char(created_at, 'YYYY-MM-DD HH24:MI:SS'),
  to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS') FROM traces) TO STDOUT"
# Dirty pages flushed and the previous run's merges done before each measured run.
settle() {
  psql "$DATABASE_URL" -qc "CHECKPOINT"
  sync
  sleep 5
}
pipe_rate=0
run_pipe() {  # run_pipe <label>: sets pipe_* of the faster run so far
  local s pg ch rows rate
  curl -sf "$CLICKHOUSE_URL" --data-binary "DROP TABLE IF EXISTS bench.traces_pipe" >/dev/null
  curl -sf "$CLICKHOUSE_URL" --data-binary "CREATE TABLE bench.traces_pipe (id String, timestamp DateTime,
    name String, user_id Nullable(String), metadata Nullable(String), release Nullable(String),
    version Nullable(String), project_id String, public UInt8, bookmarked UInt8,
    input Nullable(String), output Nullable(String), session_id Nullable(String),
    created_at DateTime, updated_at DateTime) ENGINE = MergeTree PARTITION BY toYYYYMM(timestamp)
    ORDER BY (project_id, toDate(timestamp), id)" >/dev/null
  settle
  echo "== baseline ($1): psql COPY | curl POST INSERT FORMAT TabSeparated (HTTP, streamed)"
  s=$(date +%s.%N)
  pg=$(server_cpu "$PG_PID" 1) ch=$(server_cpu "$CH_PID" 0)
  /usr/bin/time -f "%M %U %S" -o /tmp/bench_psql_rss psql "$DATABASE_URL" -qc "$query" |
    /usr/bin/time -f "%M %U %S" -o /tmp/bench_ch_rss curl -sSf -X POST -T - \
      "$CLICKHOUSE_URL/?database=bench&max_memory_usage=0&query=INSERT%20INTO%20traces_pipe%20FORMAT%20TabSeparated"
  s=$(echo "$(date +%s.%N) - $s" | bc)
  sleep 5  # merges the insert started
  pg=$(echo "$(server_cpu "$PG_PID" 1) - $pg" | bc) ch=$(echo "$(server_cpu "$CH_PID" 0) - $ch" | bc)
  rows=$(curl -sf "$CLICKHOUSE_URL" --data-binary "SELECT count() FROM bench.traces_pipe")
  rate=$(echo "$rows / $s" | bc)
  echo "   $rows rows in $s s: $rate rows/s"
  pipe_runs+=("$rate")
  (( rate > pipe_rate )) || return 0
  pipe_rate=$rate pipe_rows=$rows pipe_pg=$pg pipe_ch=$ch
  read -r psql_rss psql_u psql_s </tmp/bench_psql_rss
  read -r curl_rss curl_u curl_s </tmp/bench_ch_rss
  pipe_rss=$(( (psql_rss + curl_rss) / 1024 ))
  pipe_cpu=$(echo "$psql_u + $psql_s + $curl_u + $curl_s" | bc)
}
pipe_runs=()
run_pipe first

# Each copy's time: between its first and last batch (plus the first batch's own time).
COPY_NAME=20241024_1730_migrate_traces_from_pg_to_ch
MIG_DIR=examples/langfuse/migrations
# A fresh run of the copy with `args` into ClickHouse database `db`: the control rows reset.
reset_copy() {  # reset_copy <ClickHouse database> <args JSON>
  local db=$1 args=$2
  curl -sf "$CLICKHOUSE_URL" --data-binary "DROP DATABASE IF EXISTS $db" >/dev/null
  psql "$DATABASE_URL" -qc "DELETE FROM background_migration_events" \
    -c "DELETE FROM background_migration_chunks" -c "DELETE FROM background_migrations"
  CLICKHOUSE_DB=$db BGMIGRATE_MIGRATIONS_DIR=$MIG_DIR "$BIN" migrate >/dev/null 2>&1
  psql "$DATABASE_URL" -qc "UPDATE background_migrations SET paused_at = now() WHERE name <> '$COPY_NAME'" \
    -c "UPDATE background_migrations SET args = '$args'::jsonb WHERE name = '$COPY_NAME'"
}

declare -A c_rate c_rss c_cpu c_rows c_pg c_ch
chunk=$(( TRACES / 16 > 1000 ? TRACES / 16 : 1000 ))
configs=("one stream|{\"chunkRows\": 0}|1" "chunks, concurrency 1|{\"chunkRows\": $chunk, \"concurrency\": 1}|1"
         "chunks, concurrency 2|{\"chunkRows\": $chunk, \"concurrency\": 2}|1"
         "chunks, concurrency 4|{\"chunkRows\": $chunk, \"concurrency\": 4}|1"
         "chunks, 2 workers x 2|{\"chunkRows\": $chunk, \"concurrency\": 2}|2")
for cfg in "${configs[@]}"; do
  IFS='|' read -r label args workers <<<"$cfg"
  if [[ -n $EXTRA ]]; then  # BENCH_EXTRA_ARGS joins every configuration's args
    args=${args%\}}
    [[ $args == "{" ]] && args="{$EXTRA}" || args="$args, $EXTRA}"
  fi
  [[ -n $ONLY && $label != *"$ONLY"* ]] && continue
  echo "== bgmigrate $COPY_NAME: $label, $workers worker(s), args $args"
  reset_copy bench "$args"
  settle
  pg0=$(server_cpu "$PG_PID" 1) ch0=$(server_cpu "$CH_PID" 0)
  for w in $(seq 1 "$workers"); do
    /usr/bin/time -f "%M %U %S" -o "/tmp/bench_bgm_rss_$w" env BGMIGRATE_LOG_FORMAT=json \
      CLICKHOUSE_DB=bench BGMIGRATE_MIGRATIONS_DIR=$MIG_DIR BGMIGRATE_WORKER_ID="bench-w$w" \
      BGMIGRATE_POLL_SECONDS=0.5 "$BIN" worker --exit-when-idle 2>"/tmp/bench_worker_$w.log" &
  done
  wait
  c_pg[$label]=$(echo "$(server_cpu "$PG_PID" 1) - $pg0" | bc)
  c_ch[$label]=$(echo "$(server_cpu "$CH_PID" 0) - $ch0" | bc)
  copy_ms=$(psql "$DATABASE_URL" -Atc "SELECT round(extract(epoch from (max(at) - min(at))) * 1000
    + (array_agg((detail->>'ms')::int ORDER BY id))[1]) FROM background_migration_events
    WHERE migration_name = '$COPY_NAME' AND kind = 'batch'")
  rows=$(curl -sf "$CLICKHOUSE_URL" --data-binary "SELECT count() FROM bench.traces FINAL")
  rss=0 cpu=0
  for w in $(seq 1 "$workers"); do
    read -r rss_kib u s <"/tmp/bench_bgm_rss_$w"
    (( rss_kib / 1024 > rss )) && rss=$(( rss_kib / 1024 ))
    cpu=$(echo "$cpu + $u + $s" | bc)
  done
  c_rows[$label]=$rows c_rss[$label]=$rss c_cpu[$label]=$cpu
  c_rate[$label]=$(echo "$rows * 1000 / $copy_ms" | bc)
done
CLICKHOUSE_DB=bench BGMIGRATE_MIGRATIONS_DIR=$MIG_DIR "$BIN" verify "$COPY_NAME" --sample 0 | tail -1
run_pipe last

# The ClickHouse ingest limit: the same rows, already RowBinary, POSTed as 4 parallel inserts
# (the best concurrency above) into an empty table of the same shape.
echo "== ClickHouse ingest limit: the copied rows as RowBinary, 4 parallel POSTs"
curl -sf "$CLICKHOUSE_URL" --data-binary "CREATE TABLE bench.traces_limit AS bench.traces" >/dev/null
for i in 0 1 2 3; do
  curl -sf "$CLICKHOUSE_URL" --data-binary "SELECT * FROM bench.traces WHERE cityHash64(id) % 4 = $i FORMAT RowBinary" \
    >"/tmp/bench_part_$i.bin"
done
settle
start=$(date +%s.%N)
for i in 0 1 2 3; do
  curl -sSf -X POST -T "/tmp/bench_part_$i.bin" \
    "$CLICKHOUSE_URL/?database=bench&query=INSERT%20INTO%20traces_limit%20FORMAT%20RowBinary" &
done
wait
limit_s=$(echo "$(date +%s.%N) - $start" | bc)
limit_rows=$(curl -sf "$CLICKHOUSE_URL" --data-binary "SELECT count() FROM bench.traces_limit")
rm -f /tmp/bench_part_*.bin
limit_rate=$(echo "$limit_rows / $limit_s" | bc)

echo
echo "baseline: the faster of the pipe's runs (${pipe_runs[*]} rows/s)"
printf '%-34s %10s %10s %14s %18s %8s %8s %12s %12s\n' "" "rows" "rows/s" "peak RSS MiB" "client CPU s/Mrows" "/pipe" "/limit" "PG CPU s/Mr" "CH CPU s/Mr"
printf '%-34s %10s %10s %14s %18.2f %8.2f %8.2f %12.2f %12.2f\n' "baseline pipe (psql | curl)" "$pipe_rows" "$pipe_rate" "$pipe_rss" "$(echo "$pipe_cpu * 1000000 / $pipe_rows" | bc -l)" 1 "$(echo "$pipe_rate / $limit_rate" | bc -l)" "$(echo "$pipe_pg * 1000000 / $pipe_rows" | bc -l)" "$(echo "$pipe_ch * 1000000 / $pipe_rows" | bc -l)"
printf '%-34s %10s %10s %14s %18s %8s %8.2f %12s %12s\n' "ClickHouse ingest limit (4 POSTs)" "$limit_rows" "$limit_rate" "-" "-" "-" 1 "-" "-"
for cfg in "${configs[@]}"; do
  IFS='|' read -r label _ _ <<<"$cfg"
  [[ -z ${c_rows[$label]:-} ]] && continue
  printf '%-34s %10s %10s %14s %18.2f %8.2f %8.2f %12.2f %12.2f\n' "bgmigrate: $label" "${c_rows[$label]}" "${c_rate[$label]}" "${c_rss[$label]}" "$(echo "${c_cpu[$label]} * 1000000 / ${c_rows[$label]}" | bc -l)" "$(echo "${c_rate[$label]} / $pipe_rate" | bc -l)" "$(echo "${c_rate[$label]} / $limit_rate" | bc -l)" "$(echo "${c_pg[$label]} * 1000000 / ${c_rows[$label]}" | bc -l)" "$(echo "${c_ch[$label]} * 1000000 / ${c_rows[$label]}" | bc -l)"
done
