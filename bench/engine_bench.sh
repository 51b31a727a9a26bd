#!/usr/bin/env bash
# The two ClickHouse engines side by side on the same Postgres data: Debian's 18.16 server over
# HTTP and the embedded 26.7 (chDB in the bgmigrate process). For each: start-up (a `bgmigrate
# migrate` with nothing to apply: process start, Postgres, ClickHouse answering, exit), the
# traces copy's rows/s, and the worker's peak RSS (`worker --exit-when-idle`, all copies).
# Private servers under .bgm-data/bench-engines.
#   BENCH_TRACES=200000 BENCH_BLOB_BYTES=500 bench/engine_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TRACES=${BENCH_TRACES:-200000}
BLOB=${BENCH_BLOB_BYTES:-500}

scripts/deps.sh
for p in time bc; do dpkg -s "$p" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null; done
scripts/fetch-chdb.sh >/dev/null
export CCACHE_DIR="${CCACHE_DIR:-$PWD/.ccache}"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DBGM_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j"$(nproc)" --target bgmigrate langfuse-seed >/dev/null
BIN=$PWD/build/release/bgmigrate
SEED=$PWD/build/release/langfuse-seed
# The example application's tables (traces, observations, scores) come from its schema folder.
export BGMIGRATE_SCHEMA_DIR=${BGMIGRATE_SCHEMA_DIR-examples/langfuse/schema}

export BGMIGRATE_DATA_DIR="$PWD/.bgm-data/bench-engines"
export BGMIGRATE_PG_PORT=${BGMIGRATE_PG_PORT:-55732} BGMIGRATE_CH_HTTP_PORT=${BGMIGRATE_CH_HTTP_PORT:-58423} \
       BGMIGRATE_CH_TCP_PORT=${BGMIGRATE_CH_TCP_PORT:-59300}
scripts/services.sh start >/dev/null
trap 'scripts/services.sh stop >/dev/null 2>&1 || true' EXIT
eval "$(scripts/services.sh env)"
SERVER_URL=$CLICKHOUSE_URL
EMBEDDED_DIR=$BGMIGRATE_DATA_DIR/chdb-bench
ADMIN_URL=$DATABASE_URL
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
export DATABASE_URL="${ADMIN_URL%/*}/bench" CLICKHOUSE_DB=bench BGMIGRATE_LOG_FORMAT=json
# The example application's background migrations (the copies are files).
export BGMIGRATE_MIGRATIONS_DIR=examples/langfuse/migrations
curl -sf "$SERVER_URL" --data-binary "DROP DATABASE IF EXISTS bench" >/dev/null
rm -rf "$EMBEDDED_DIR"

echo "== seeding $TRACES traces (input and output ~$BLOB bytes each)"
CLICKHOUSE_URL=$SERVER_URL "$BIN" migrate >/dev/null  # the example's tables
"$SEED" --traces "$TRACES" --observations 0 --scores 0 \
  --blob-bytes "$BLOB" >/dev/null 2>&1
psql "$DATABASE_URL" -qc "VACUUM ANALYZE traces"

declare -A startup rate rss total
for engine in server embedded; do
  if [[ $engine == server ]]; then url=$SERVER_URL; else url="embedded://$EMBEDDED_DIR"; fi
  psql "$DATABASE_URL" -qc "DELETE FROM background_migration_events" -c "DELETE FROM background_migrations"
  CLICKHOUSE_URL=$url "$BIN" migrate >/dev/null 2>&1
  best=""
  for _ in 1 2 3; do
    s=$(date +%s.%N)
    CLICKHOUSE_URL=$url "$BIN" migrate >/dev/null 2>&1
    t=$(echo "$(date +%s.%N) - $s" | bc)
    if [[ -z $best ]] || (( $(echo "$t < $best" | bc) )); then best=$t; fi
  done
  startup[$engine]=$best
  echo "== $engine: worker --exit-when-idle"
  s=$(date +%s.%N)
  CLICKHOUSE_URL=$url /usr/bin/time -f "%M" -o /tmp/bench_engine_rss \
    "$BIN" worker --exit-when-idle 2>/tmp/bench_engine_$engine.log
  total[$engine]=$(echo "$(date +%s.%N) - $s" | bc)
  copy_ms=$(psql "$DATABASE_URL" -Atc "SELECT round(extract(epoch from (max(at) - min(at))) * 1000
    + (array_agg((detail->>'ms')::int ORDER BY id))[1]) FROM background_migration_events
    WHERE migration_name = '20241024_1730_migrate_traces_from_pg_to_ch' AND kind = 'batch'")
  rate[$engine]=$(echo "$TRACES * 1000 / $copy_ms" | bc)
  rss[$engine]=$(( $(cat /tmp/bench_engine_rss) / 1024 ))
  if [[ $engine == server ]]; then  # the server's own memory, for a fair sum
    ch_pid=$(tr -dc '0-9' < "$BGMIGRATE_DATA_DIR/clickhouse/clickhouse-server.pid")
    server_hwm=$(( $(awk '/VmHWM/ {print $2}' "/proc/$ch_pid/status") / 1024 ))
  fi
  CLICKHOUSE_URL=$url "$BIN" verify 20241024_1730_migrate_traces_from_pg_to_ch | tail -1
done

echo
printf '%-34s %16s %16s\n' "" "server 18.16" "embedded 26.7"
printf '%-34s %16s %16s\n' "start-up: migrate, nothing to do (s)" "${startup[server]}" "${startup[embedded]}"
printf '%-34s %16s %16s\n' "traces copy (rows/s)" "${rate[server]}" "${rate[embedded]}"
printf '%-34s %16s %16s\n' "worker run, all copies (s)" "${total[server]}" "${total[embedded]}"
printf '%-34s %16s %16s\n' "worker peak RSS (MiB)" "${rss[server]}" "${rss[embedded]}"
printf '%-34s %16s %16s\n' "ClickHouse server peak RSS (MiB)" "$server_hwm" "(in the worker)"
