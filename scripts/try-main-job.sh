#!/usr/bin/env bash
# Times the README's main command as a new user meets it, and checks Ctrl-C and resume:
# run 1 of scripts/run.sh is interrupted (SIGINT) once the traces copy has committed 3 batches;
# run 2 resumes and is timed until all four background migrations finished; then `verify` on
# each copy. Meant for a fresh machine, from the repository root:
#   ../shared/tools/fresh-machine reset
#   ../shared/tools/fresh-machine run 'bash scripts/try-main-job.sh'
# Logs of the two runs: /tmp/run1.log and /tmp/run2.log.
set -u
cd "$(dirname "$0")/.." || exit 1

t0=$(date +%s)
q() { local u; u=$(scripts/services.sh env 2>/dev/null | sed -n 's/^export DATABASE_URL=//p'); [[ -n "$u" ]] && psql "$u" -Atc "$1" 2>/dev/null; }
setsid scripts/run.sh > /tmp/run1.log 2>&1 &
pid=$!
# Wait until a copy has committed at least 3 batches, then Ctrl-C (SIGINT to the process group).
while sleep 2; do
  n=$(q "select count(*) from background_migration_events where kind='batch' and migration_name like '%traces%'")
  [[ "${n:-0}" -ge 3 ]] && break
  kill -0 $pid 2>/dev/null || { echo "run1 exited early"; break; }
done
t1=$(date +%s); echo "run1: first copy batches after $((t1-t0)) s"
q "select name, rows_processed, coalesce(finished_at::text,'-') from background_migrations order by name"
kill -INT -$pid; wait $pid; echo "run1 exit code $?  (stopped $(( $(date +%s)-t1 )) s after Ctrl-C)"
tail -5 /tmp/run1.log
# Run 2: resumes; wait for all 4 finished.
t2=$(date +%s)
setsid scripts/run.sh > /tmp/run2.log 2>&1 &
pid=$!
while sleep 3; do
  f=$(q "select count(*) from background_migrations where finished_at is not null")
  fl=$(q "select count(*) from background_migrations where failed_at is not null")
  [[ "${f:-0}" -ge 4 || "${fl:-0}" -ge 1 ]] && break
done
t3=$(date +%s); echo "run2: all finished $((t3-t2)) s after restart; total $((t3-t0)) s"
q "select name, rows_processed, attempts, coalesce(failed_reason,'') from background_migrations order by name"
eval "$(scripts/services.sh env)"
for m in $(q "select name from background_migrations where script like '%copy%' or name like '%pg_to_ch%'"); do build/release/bgmigrate verify "$m" | tail -3; done
kill -INT -$pid; wait $pid; echo "run2 exit code $?"
tail -3 /tmp/run2.log
