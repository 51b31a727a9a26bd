#!/usr/bin/env bash
# services.sh — private, loopback-only PostgreSQL 15 + ClickHouse for local
# development and tests.  Nothing system-wide is touched: no system clusters,
# no /etc configs, no systemd.  Everything (data, configs, logs, pid files,
# sockets) lives in one data folder.
#
# Usage: scripts/services.sh [--cluster] start|stop|kill|restart|status|env [postgres|clickhouse]
#        scripts/services.sh start-replica|stop-replica|kill-replica 1|2
#        scripts/services.sh start-pg-standby|stop-pg-standby
#
#   (start, stop, kill and restart act on one server when it is named; the fault tests stop
#   and start one server under a running worker this way)
#
#   start    start both servers (idempotent), wait until they answer
#   stop     stop both servers (ok if not running)
#   kill     stop abruptly, as a crash would (SIGKILL; Postgres: pg_ctl -m immediate)
#   restart  stop + start
#   status   print the state of each server; exit 0 if both run, 3 otherwise
#   env      print `export ...` lines for the running servers, use as
#              eval "$(scripts/services.sh env)"
#
# Cluster mode (--cluster anywhere in the arguments, or BGMIGRATE_CH_CLUSTER=true): instead of
# the one ClickHouse server, a ZooKeeper (Debian's zookeeper package, standalone) and two
# ClickHouse servers that are the two replicas of one shard of the cluster
# CLICKHOUSE_CLUSTER_NAME, with macros {shard}=01 and {replica}=replica1/replica2.
# `start`/`status`/`env` then act on Postgres, ZooKeeper and both replicas; `env` prints
# CLICKHOUSE_URL (replica 1), BGMIGRATE_CH_REPLICA_URLS (both, comma-separated),
# CLICKHOUSE_CLUSTER_ENABLED=true and CLICKHOUSE_CLUSTER_NAME.  `stop` and `kill` act on every
# server of the data folder in either mode.
#   start-replica N  start replica N (and ZooKeeper when it is not running); wait until it
#                    answers and reaches ZooKeeper
#   stop-replica N   stop replica N (SIGTERM)
#   kill-replica N   stop replica N abruptly (SIGKILL), as a crash would
#
# A Postgres standby (for the tests of the replication-lag health signal):
#   start-pg-standby  a streaming replica of the running Postgres (pg_basebackup -R the first
#                     time), on BGMIGRATE_PG_STANDBY_PORT; `stop` stops it too
#   stop-pg-standby   stop it
#
# Environment:
#   BGMIGRATE_DATA_DIR      data folder            (default: <repo>/.bgm-data)
#   BGMIGRATE_PG_PORT       PostgreSQL port        (default: 55432)
#   BGMIGRATE_CH_HTTP_PORT  ClickHouse HTTP port   (default: 58123)
#   BGMIGRATE_CH_TCP_PORT   ClickHouse native port (default: 59000)
#   BGMIGRATE_WAIT_TIMEOUT  seconds to wait for a server to answer (default: 60)
#   BGMIGRATE_PG_BIN        PostgreSQL bin dir     (default: /usr/lib/postgresql/15/bin)
#   BGMIGRATE_PG_STANDBY_PORT  the standby's port  (default: PostgreSQL port + 1)
#   BGMIGRATE_CH_BIN        clickhouse-server binary (default: from PATH or /usr/sbin)
#   BGMIGRATE_CLICKHOUSE    server (default): also run Debian's ClickHouse 18.16 server;
#                           embedded: no ClickHouse server, `env` prints
#                           CLICKHOUSE_URL=embedded://<data folder>/chdb (chDB 26.7 inside
#                           bgmigrate, fetched by scripts/fetch-chdb.sh)
#   BGMIGRATE_CH_CLUSTER    true: cluster mode, as --cluster (default: false)
#   CLICKHOUSE_CLUSTER_NAME the cluster's name in <remote_servers> (default: default)
#   BGMIGRATE_ZK_PORT       ZooKeeper client port  (default: 52281)
#   BGMIGRATE_CH_REPLICA1_HTTP_PORT, BGMIGRATE_CH_REPLICA2_HTTP_PORT
#                           replicas' HTTP ports   (default: 58131, 58132)
#   BGMIGRATE_CH_REPLICA1_TCP_PORT, BGMIGRATE_CH_REPLICA2_TCP_PORT
#                           replicas' native ports (default: 59031, 59032)
#   BGMIGRATE_CH_REPLICA1_INTERSERVER_PORT, BGMIGRATE_CH_REPLICA2_INTERSERVER_PORT
#                           replicas' interserver HTTP ports, replication fetches (59041, 59042)
#   BGMIGRATE_JAVA          java binary for ZooKeeper (default: java)
#   BGMIGRATE_ZK_CLASSPATH  ZooKeeper's jars (default: Debian's zookeeper.jar + slf4j-simple.jar)
#
# Layout of the data folder:
#   postgres/            PostgreSQL root (owned by the OS user running postgres)
#     data/              the cluster (PGDATA); our settings are in data/bgmigrate.conf
#     run/               unix socket directory
#     postgres.log       server log
#   clickhouse/
#     config.xml users.xml   generated on every start
#     data/ tmp/ user_files/ format_schemas/
#     log/clickhouse-server.log, log/clickhouse-server.err.log,
#     log/stdout.log (stdout/stderr of the process, catches early config errors)
#     clickhouse-server.pid
#   clickhouse-replica1/ clickhouse-replica2/   cluster mode: the same layout per replica
#   zookeeper/           cluster mode: zoo.cfg, data/, zookeeper.log, zookeeper.pid
#
# Running as root: PostgreSQL refuses to run as root, so initdb/pg_ctl are run
# as the `postgres` system user (runuser) and postgres/ is chowned to it.  That
# user must be able to traverse every parent directory of the data folder.  We
# never chmod directories we did not create; instead, if `postgres` cannot reach
# the data folder (e.g. the repo lives under /root, mode 700), the PostgreSQL
# root is placed in the postgres user's home directory
# (~postgres/bgmigrate-<hash of data folder path>) and <data folder>/postgres
# becomes a symlink to it, so every subcommand finds it the same way.
# ClickHouse 18.16 runs fine as root, so it always runs as the invoking user.
set -euo pipefail

# ---------------------------------------------------------------- settings --
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd -- "$SCRIPT_DIR/.." && pwd)
DATA_DIR=$(realpath -m -- "${BGMIGRATE_DATA_DIR:-$REPO/.bgm-data}")

PG_PORT=${BGMIGRATE_PG_PORT:-55432}
CH_SINGLE_HTTP_PORT=${BGMIGRATE_CH_HTTP_PORT:-58123}
CH_SINGLE_TCP_PORT=${BGMIGRATE_CH_TCP_PORT:-59000}
WAIT_TIMEOUT=${BGMIGRATE_WAIT_TIMEOUT:-60}
CH_MODE=${BGMIGRATE_CLICKHOUSE:-server}
[[ $CH_MODE == server || $CH_MODE == embedded ]] ||
  { printf 'services.sh: error: BGMIGRATE_CLICKHOUSE must be server or embedded, not %s\n' "$CH_MODE" >&2; exit 2; }
CH_STOP_TIMEOUT=20
PG_BIN=${BGMIGRATE_PG_BIN:-/usr/lib/postgresql/15/bin}

# Cluster mode (see header). Arrays are indexed by replica number (1, 2).
CLUSTER=${BGMIGRATE_CH_CLUSTER:-false}
CLUSTER_NAME=${CLICKHOUSE_CLUSTER_NAME:-default}
ZK_PORT=${BGMIGRATE_ZK_PORT:-52281}
R_HTTP_PORT=("" "${BGMIGRATE_CH_REPLICA1_HTTP_PORT:-58131}" "${BGMIGRATE_CH_REPLICA2_HTTP_PORT:-58132}")
R_TCP_PORT=("" "${BGMIGRATE_CH_REPLICA1_TCP_PORT:-59031}" "${BGMIGRATE_CH_REPLICA2_TCP_PORT:-59032}")
R_INTERSERVER_PORT=("" "${BGMIGRATE_CH_REPLICA1_INTERSERVER_PORT:-59041}" "${BGMIGRATE_CH_REPLICA2_INTERSERVER_PORT:-59042}")
JAVA=${BGMIGRATE_JAVA:-java}
ZK_CLASSPATH=${BGMIGRATE_ZK_CLASSPATH:-/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar}
# A replica killed with SIGKILL keeps its "active" mark in ZooKeeper until its old session
# expires; a short session lets a restarted replica take its place again sooner.
ZK_SESSION_TIMEOUT_MS=10000

HOST=127.0.0.1
PG_SUPERUSER=postgres

PG_LINK="$DATA_DIR/postgres"        # a directory, or a symlink (see header)
ZK_DIR="$DATA_DIR/zookeeper"
ZK_CONF="$ZK_DIR/zoo.cfg"
ZK_PIDFILE="$ZK_DIR/zookeeper.pid"
ZK_LOG="$ZK_DIR/zookeeper.log"

if (( EUID == 0 )); then PG_OS_USER=postgres; else PG_OS_USER=$(id -un); fi

# ----------------------------------------------------------------- helpers --
say()  { printf '%s\n' "$*"; }
warn() { printf 'services.sh: %s\n' "$*" >&2; }
die()  { printf 'services.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {  # the header comment from the first line up to the end of its Environment list
  sed -n '2,/^# *Layout of the data folder/{/^# *Layout/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

# True while process $1 exists and has not exited. A zombie (exited, never reaped by a parent
# that ignores it, as in some containers) holds no ports or files and counts as gone.
pid_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }  # the fields after "pid (comm) "; comm may hold spaces
  [[ ${stat%% *} != Z ]]
}

# Waits up to $2 seconds for process $1 to be gone; false when it is still alive then.
wait_gone() {
  local deadline=$((SECONDS + $2))
  while pid_alive "$1"; do
    (( SECONDS < deadline )) || return 1
    sleep 0.1
  done
}

is_port_number() { [[ $1 =~ ^[0-9]+$ ]] && (( $1 >= 1 && $1 <= 65535 )); }

# Resolved PostgreSQL root / PGDATA (follows the optional symlink).
pg_root()    { if [[ -L $PG_LINK ]]; then readlink -f -- "$PG_LINK"; else printf '%s\n' "$PG_LINK"; fi; }
pg_data()    { printf '%s/data\n' "$(pg_root)"; }
pg_log()     { printf '%s/postgres.log\n' "$(pg_root)"; }

# Run a PostgreSQL server tool as the right OS user.  cd / so that the postgres
# user does not trip over an unreadable current directory (e.g. /root).
pg_run() {
  if (( EUID == 0 )); then
    (cd / && runuser -u "$PG_OS_USER" -- "$@")
  else
    "$@"
  fi
}

# Is something accepting TCP connections on 127.0.0.1:$1?  Uses bash's
# /dev/tcp (works on minimal systems without iproute2).
port_in_use() {
  # shellcheck disable=SC2016  # expanded by the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

port_owner_hint() {
  if command -v ss >/dev/null 2>&1; then
    ss -Hltnp "sport = :$1" 2>/dev/null | sed 's/^/    /' >&2 || true
  fi
}

# check_port_free PORT "Name" ENV_VAR
check_port_free() {
  if port_in_use "$1"; then
    warn "error: port $1 ($2) on $HOST is already in use by another process."
    port_owner_hint "$1"
    warn "choose another port, e.g.:  $3=<free port> $0 start"
    exit 1
  fi
}

tail_log() {  # tail_log FILE LABEL
  if [[ -s $1 ]]; then
    printf -- '----- last 30 lines of %s (%s) -----\n' "$2" "$1" >&2
    tail -n 30 -- "$1" >&2
    printf -- '-----\n' >&2
  else
    printf -- '(%s: %s is empty or missing)\n' "$2" "$1" >&2
  fi
}

take_lock() {
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$DATA_DIR/.services.lock"
    flock -w 120 9 || die "another services.sh is still running on $DATA_DIR (lock $DATA_DIR/.services.lock)"
  fi
}

# -------------------------------------------------------------- PostgreSQL --
pg_check_install() {
  [[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl && -x $PG_BIN/pg_isready ]] ||
    die "PostgreSQL 15 binaries not found in $PG_BIN (install package postgresql-15 or set BGMIGRATE_PG_BIN)"
  if (( EUID == 0 )); then
    id -u "$PG_OS_USER" >/dev/null 2>&1 ||
      die "running as root, but there is no '$PG_OS_USER' system user to run PostgreSQL as"
  fi
}

pg_initialized() { [[ -f $(pg_data)/PG_VERSION ]]; }

pg_is_running() {
  pg_initialized || return 1
  pg_run "$PG_BIN/pg_ctl" status -D "$(pg_data)" >/dev/null 2>&1 9>&-
}

# Line 1 of postmaster.pid is the pid, line 4 the port.
pg_running_pid()  { sed -n 1p -- "$(pg_data)/postmaster.pid" 2>/dev/null || true; }
pg_running_port() { sed -n 4p -- "$(pg_data)/postmaster.pid" 2>/dev/null || true; }

# Create the PostgreSQL root (see header for the root / symlink logic).
pg_prepare_root() {
  if [[ ! -e $PG_LINK && ! -L $PG_LINK ]]; then
    local root=$PG_LINK
    if (( EUID == 0 )) && ! runuser -u "$PG_OS_USER" -- test -x "$DATA_DIR" 2>/dev/null; then
      local home hash
      home=$(getent passwd "$PG_OS_USER" | cut -d: -f6)
      [[ -n $home && -d $home ]] || home=/var/tmp
      hash=$(printf '%s' "$DATA_DIR" | sha1sum | cut -c1-12)
      root="$home/bgmigrate-$hash"
      warn "user '$PG_OS_USER' cannot traverse $DATA_DIR (a parent directory is not accessible);"
      warn "placing the PostgreSQL cluster in $root, symlinked from $PG_LINK"
      if [[ -e $root ]]; then
        # Leftover of an earlier data folder that has since been deleted:
        # the user asked for a fresh start, honour that.
        if [[ -f $root/data/postmaster.pid ]] && pg_run "$PG_BIN/pg_ctl" status -D "$root/data" >/dev/null 2>&1 9>&-; then
          die "stale PostgreSQL cluster in $root is still running; stop it with: runuser -u $PG_OS_USER -- $PG_BIN/pg_ctl stop -D $root/data"
        fi
        warn "removing stale cluster $root"
        rm -rf -- "$root"
      fi
      mkdir -p -- "$root"
      ln -s -- "$root" "$PG_LINK"
    else
      mkdir -p -- "$root"
    fi
  fi
  local root; root=$(pg_root)
  mkdir -p -- "$root/run"
  if (( EUID == 0 )); then
    chown "$PG_OS_USER:" "$root" "$root/run"
  fi
  chmod 700 "$root"
}

pg_write_conf() {
  local root pgdata sockdir conf
  root=$(pg_root); pgdata="$root/data"; sockdir="$root/run"
  # Unix socket paths are limited to 107 bytes; disable the socket if ours would be too long
  # (all clients here use TCP on 127.0.0.1 anyway).
  if (( ${#sockdir} + ${#PG_PORT} + 10 > 107 )); then
    warn "socket path under $sockdir would be too long; PostgreSQL unix socket disabled (TCP only)"
    sockdir=""
  fi
  conf="$pgdata/bgmigrate.conf"
  cat >"$conf" <<EOF
# Generated by scripts/services.sh on every start — edits will be overwritten.
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$sockdir'
max_connections = 200
shared_buffers = 256MB
# development/test speed; NOT crash safe
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  (( EUID == 0 )) && chown "$PG_OS_USER:" "$conf"
  chmod 600 "$conf"
  grep -q "^include_if_exists 'bgmigrate.conf'" "$pgdata/postgresql.conf" ||
    printf "\n# added by scripts/services.sh\ninclude_if_exists 'bgmigrate.conf'\n" >>"$pgdata/postgresql.conf"
}

pg_initdb() {
  local root pgdata locale=C
  root=$(pg_root); pgdata="$root/data"
  if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then locale=C.UTF-8; fi
  say "PostgreSQL: initializing new cluster in $pgdata"
  if ! pg_run "$PG_BIN/initdb" -D "$pgdata" --auth=trust -U "$PG_SUPERUSER" \
        --encoding=UTF8 --locale="$locale" >"$root/initdb.log" 2>&1 9>&-; then
    warn "error: initdb failed"
    tail_log "$root/initdb.log" "initdb output"
    exit 1
  fi
}

pg_start() {
  pg_check_install
  if pg_is_running; then
    local port; port=$(pg_running_port)
    say "PostgreSQL: already running (pid $(pg_running_pid)) on $HOST:$port"
    [[ $port == "$PG_PORT" ]] ||
      warn "note: PostgreSQL runs on port $port, not the requested $PG_PORT; run '$0 stop' then '$0 start' to change it"
    return 0
  fi
  check_port_free "$PG_PORT" "PostgreSQL" BGMIGRATE_PG_PORT
  pg_prepare_root
  pg_initialized || pg_initdb
  pg_write_conf

  local pgdata log
  pgdata=$(pg_data); log=$(pg_log)
  if ! pg_run "$PG_BIN/pg_ctl" start -D "$pgdata" -l "$log" -s -w -t "$WAIT_TIMEOUT" 9>&-; then
    warn "error: PostgreSQL failed to start on $HOST:$PG_PORT"
    tail_log "$log" "PostgreSQL log"
    pg_run "$PG_BIN/pg_ctl" stop -D "$pgdata" -m immediate -s >/dev/null 2>&1 9>&- || true
    exit 1
  fi
  local deadline=$((SECONDS + WAIT_TIMEOUT))
  until "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -U "$PG_SUPERUSER" -d postgres; do
    if (( SECONDS >= deadline )); then
      warn "error: PostgreSQL did not accept connections on $HOST:$PG_PORT within ${WAIT_TIMEOUT}s"
      tail_log "$log" "PostgreSQL log"
      pg_run "$PG_BIN/pg_ctl" stop -D "$pgdata" -m immediate -s >/dev/null 2>&1 9>&- || true
      exit 1
    fi
    sleep 0.5
  done
  say "PostgreSQL: started (pid $(pg_running_pid)) on $HOST:$PG_PORT — postgresql://$PG_SUPERUSER@$HOST:$PG_PORT/postgres"
}

pg_stop() {
  if ! pg_is_running; then
    say "PostgreSQL: not running"
    return 0
  fi
  if pg_run "$PG_BIN/pg_ctl" stop -D "$(pg_data)" -m fast -s -w -t 60 9>&-; then
    say "PostgreSQL: stopped"
  else
    warn "error: PostgreSQL did not stop within 60s"
    tail_log "$(pg_log)" "PostgreSQL log"
    return 1
  fi
}

pg_standby_data() { printf '%s/standby\n' "$(pg_root)"; }
pg_standby_running() {
  [[ -f $(pg_standby_data)/PG_VERSION ]] &&
    pg_run "$PG_BIN/pg_ctl" status -D "$(pg_standby_data)" >/dev/null 2>&1 9>&-
}

pg_standby_start() {
  pg_is_running || die "PostgreSQL is not running: start it first ($0 start postgres)"
  local sdata port root
  root=$(pg_root); sdata=$(pg_standby_data)
  port=${BGMIGRATE_PG_STANDBY_PORT:-$(( $(pg_running_port) + 1 ))}
  if pg_standby_running; then
    say "PostgreSQL standby: already running on $HOST:$(sed -n 4p -- "$sdata/postmaster.pid")"
    return 0
  fi
  check_port_free "$port" "PostgreSQL standby" BGMIGRATE_PG_STANDBY_PORT
  if [[ ! -f $sdata/PG_VERSION ]]; then
    if ! pg_run "$PG_BIN/pg_basebackup" -h "$HOST" -p "$(pg_running_port)" -U "$PG_SUPERUSER" \
          -D "$sdata" -R -X stream >"$root/standby-basebackup.log" 2>&1 9>&-; then
      warn "error: pg_basebackup failed"
      tail_log "$root/standby-basebackup.log" "pg_basebackup output"
      exit 1
    fi
  fi
  # The copied bgmigrate.conf is the primary's: the standby's own port, feedback every second.
  cat >"$sdata/bgmigrate.conf" <<CONF
# Generated by scripts/services.sh start-pg-standby — edits will be overwritten.
listen_addresses = '$HOST'
port = $port
unix_socket_directories = ''
max_connections = 200
shared_buffers = 32MB
hot_standby = on
wal_receiver_status_interval = 1s
fsync = off
CONF
  if (( EUID == 0 )); then chown "$PG_OS_USER:" "$sdata/bgmigrate.conf"; fi
  if ! pg_run "$PG_BIN/pg_ctl" start -D "$sdata" -l "$root/standby.log" -s -w \
        -t "$WAIT_TIMEOUT" 9>&-; then
    warn "error: the PostgreSQL standby failed to start on $HOST:$port"
    tail_log "$root/standby.log" "PostgreSQL standby log"
    exit 1
  fi
  say "PostgreSQL standby: started on $HOST:$port (replicating $HOST:$(pg_running_port))"
}

pg_standby_stop() {
  pg_standby_running || return 0
  pg_run "$PG_BIN/pg_ctl" stop -D "$(pg_standby_data)" -m fast -s -w -t 60 9>&- &&
    say "PostgreSQL standby: stopped"
}

pg_status() {
  if pg_is_running; then
    say "PostgreSQL: running (pid $(pg_running_pid)) on $HOST:$(pg_running_port), data $(pg_data)"
  else
    say "PostgreSQL: stopped"
    return 1
  fi
}

# -------------------------------------------------------------- ClickHouse --
# Every ch_* function acts on the ClickHouse server that ch_select chose: `single` (the normal
# mode's one server) or replica 1 or 2 of the cluster. It sets CH_NAME (for messages), the
# folder and file paths, the ports and the names of the variables that set them.
ch_select() {
  if [[ $1 == single ]]; then
    CH_REPLICA=""
    CH_NAME=ClickHouse
    CH_DIR="$DATA_DIR/clickhouse"
    CH_HTTP_PORT=$CH_SINGLE_HTTP_PORT; CH_HTTP_VAR=BGMIGRATE_CH_HTTP_PORT
    CH_TCP_PORT=$CH_SINGLE_TCP_PORT;   CH_TCP_VAR=BGMIGRATE_CH_TCP_PORT
    CH_INTERSERVER_PORT="";            CH_INTERSERVER_VAR=""
  else
    CH_REPLICA=$1
    CH_NAME="ClickHouse replica $1"
    CH_DIR="$DATA_DIR/clickhouse-replica$1"
    CH_HTTP_PORT=${R_HTTP_PORT[$1]};               CH_HTTP_VAR=BGMIGRATE_CH_REPLICA$1_HTTP_PORT
    CH_TCP_PORT=${R_TCP_PORT[$1]};                 CH_TCP_VAR=BGMIGRATE_CH_REPLICA$1_TCP_PORT
    CH_INTERSERVER_PORT=${R_INTERSERVER_PORT[$1]}; CH_INTERSERVER_VAR=BGMIGRATE_CH_REPLICA$1_INTERSERVER_PORT
  fi
  CH_CONF="$CH_DIR/config.xml"
  CH_USERS="$CH_DIR/users.xml"
  CH_PIDFILE="$CH_DIR/clickhouse-server.pid"
  CH_LOG_DIR="$CH_DIR/log"
  CH_LOG="$CH_LOG_DIR/clickhouse-server.log"
  CH_ERRLOG="$CH_LOG_DIR/clickhouse-server.err.log"
  CH_STDOUT="$CH_LOG_DIR/stdout.log"
}
ch_select single

ch_bin() {
  if [[ -n ${BGMIGRATE_CH_BIN:-} ]]; then printf '%s\n' "$BGMIGRATE_CH_BIN"; return; fi
  local c
  for c in "$(command -v clickhouse-server 2>/dev/null || true)" /usr/sbin/clickhouse-server /usr/bin/clickhouse-server; do
    [[ -n $c && -x $c ]] && { printf '%s\n' "$c"; return; }
  done
  die "clickhouse-server not found (install package clickhouse-server or set BGMIGRATE_CH_BIN)"
}

# Pid of *our* ClickHouse (pid file + live process started with our config), or nothing.
ch_pid() {
  [[ -f $CH_PIDFILE ]] || return 1
  local pid; pid=$(tr -dc '0-9' <"$CH_PIDFILE")
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "--config-file=$CH_CONF" || return 1
  printf '%s\n' "$pid"
}

ch_conf_value() {  # port etc. from our generated config.xml
  sed -n "s:.*<$1>\([^<]*\)</$1>.*:\1:p" "$CH_CONF" 2>/dev/null | head -n1
}

ch_ping() {  # prints "Ok." when the HTTP interface answers
  if command -v curl >/dev/null 2>&1; then
    curl -s -m 2 "http://$HOST:$1/ping" 2>/dev/null || true
  else
    # shellcheck disable=SC2016  # expanded by the inner bash
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"; printf "GET /ping HTTP/1.0\r\n\r\n" >&3; sed -n "\$p" <&3' "$HOST" "$1" 2>/dev/null | tr -d '\r' || true
  fi
}

# True when the selected server answers, and for a replica, when it also reads ZooKeeper (a
# replica that cannot reach it accepts queries but no replicated writes).
ch_ready() {
  [[ $(ch_ping "$CH_HTTP_PORT") == "Ok." ]] || return 1
  [[ -z $CH_REPLICA ]] && return 0
  curl -sf -m 5 "http://$HOST:$CH_HTTP_PORT/" \
    --data-binary "SELECT count() FROM system.zookeeper WHERE path = '/'" >/dev/null 2>&1
}

# The replica's part of config.xml: ZooKeeper, the cluster (one shard, both replicas), the
# macros the Replicated* engines' paths use, and the interserver port replicas fetch parts from.
ch_cluster_config() {
  local r
  cat <<EOF
    <interserver_http_host>$HOST</interserver_http_host>
    <interserver_http_port>$CH_INTERSERVER_PORT</interserver_http_port>

    <zookeeper>
        <node>
            <host>$HOST</host>
            <port>$ZK_PORT</port>
        </node>
        <session_timeout_ms>$ZK_SESSION_TIMEOUT_MS</session_timeout_ms>
    </zookeeper>
    <distributed_ddl>
        <path>/clickhouse/task_queue/ddl</path>
    </distributed_ddl>

    <remote_servers>
        <$CLUSTER_NAME>
            <shard>
                <internal_replication>true</internal_replication>
EOF
  for r in 1 2; do
    cat <<EOF
                <replica>
                    <host>$HOST</host>
                    <port>${R_TCP_PORT[$r]}</port>
                </replica>
EOF
  done
  cat <<EOF
            </shard>
        </$CLUSTER_NAME>
    </remote_servers>

    <macros>
        <cluster>$CLUSTER_NAME</cluster>
        <shard>01</shard>
        <replica>replica$CH_REPLICA</replica>
    </macros>
EOF
}

ch_write_config() {
  # Per-query memory limits (18.16 has no server-wide max_server_memory_usage;
  # max_memory_usage_for_all_queries is the closest thing it knows).
  local mem_kb all_q per_q cluster_config
  mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null || echo 8388608)
  all_q=$(( mem_kb * 1024 / 2 ))
  per_q=$(( all_q < 4000000000 ? all_q : 4000000000 ))
  if [[ -n $CH_REPLICA ]]; then
    cluster_config=$(ch_cluster_config)
  else
    cluster_config="    <!-- no interserver_http_port, zookeeper or remote_servers: cluster mode only -->"
  fi

  cat >"$CH_CONF" <<EOF
<?xml version="1.0"?>
<!-- Generated by scripts/services.sh on every start; edits will be overwritten.
     Only settings known to ClickHouse 18.16 are used (root element <yandex>). -->
<yandex>
    <logger>
        <level>information</level>
        <log>$CH_LOG</log>
        <errorlog>$CH_ERRLOG</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>

    <listen_host>$HOST</listen_host>
    <http_port>$CH_HTTP_PORT</http_port>
    <tcp_port>$CH_TCP_PORT</tcp_port>
$cluster_config

    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>

    <!-- caches are allocated on demand; keep them small for a dev box -->
    <mark_cache_size>536870912</mark_cache_size>
    <uncompressed_cache_size>536870912</uncompressed_cache_size>

    <path>$CH_DIR/data/</path>
    <tmp_path>$CH_DIR/tmp/</tmp_path>
    <user_files_path>$CH_DIR/user_files/</user_files_path>
    <format_schema_path>$CH_DIR/format_schemas/</format_schema_path>
    <users_config>$CH_USERS</users_config>

    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mlock_executable>false</mlock_executable>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
    <!-- dev convenience: allow DROP of tables/partitions of any size -->
    <max_table_size_to_drop>0</max_table_size_to_drop>
    <max_partition_size_to_drop>0</max_partition_size_to_drop>
</yandex>
EOF

  cat >"$CH_USERS" <<EOF
<?xml version="1.0"?>
<!-- Generated by scripts/services.sh on every start; edits will be overwritten. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>$per_q</max_memory_usage>
            <max_memory_usage_for_all_queries>$all_q</max_memory_usage_for_all_queries>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
        <readonly>
            <readonly>1</readonly>
        </readonly>
    </profiles>

    <users>
        <default>
            <password></password>
            <networks replace="replace">
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>

    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

# The ports the selected server binds, each with the variable that sets it.
ch_check_ports_free() {
  check_port_free "$CH_HTTP_PORT" "$CH_NAME HTTP" "$CH_HTTP_VAR"
  check_port_free "$CH_TCP_PORT" "$CH_NAME native TCP" "$CH_TCP_VAR"
  if [[ -n $CH_INTERSERVER_PORT ]]; then
    check_port_free "$CH_INTERSERVER_PORT" "$CH_NAME interserver HTTP" "$CH_INTERSERVER_VAR"
  fi
}

ch_start() {
  local bin; bin=$(ch_bin)
  if ch_pid >/dev/null; then
    local port; port=$(ch_conf_value http_port)
    say "$CH_NAME: already running (pid $(ch_pid)) on http://$HOST:$port (native tcp $HOST:$(ch_conf_value tcp_port))"
    [[ $port == "$CH_HTTP_PORT" ]] ||
      warn "note: $CH_NAME runs on HTTP port $port, not the requested $CH_HTTP_PORT; run '$0 stop' then '$0 start' to change it"
    return 0
  fi
  ch_check_ports_free

  mkdir -p -- "$CH_DIR/data" "$CH_DIR/tmp" "$CH_DIR/user_files" "$CH_DIR/format_schemas" "$CH_LOG_DIR"
  rm -f -- "$CH_PIDFILE"
  ch_write_config
  printf '=== %s starting %s --config-file=%s\n' "$(date '+%F %T')" "$bin" "$CH_CONF" >"$CH_STDOUT"  # truncated per start

  # Not --daemon: 18.16 only writes --pid-file in daemon mode, and daemon mode
  # sends early errors to /dev/null.  Instead run it detached in its own
  # session (Ctrl-C of the caller does not hit it) and record the pid ourselves
  # (bash writes its own pid, then execs the server under that pid).
  # shellcheck disable=SC2016  # expanded by the inner bash
  setsid bash -c 'printf "%s\n" "$$" >"$0"; exec "$@"' "$CH_PIDFILE" \
    "$bin" --config-file="$CH_CONF" </dev/null >>"$CH_STDOUT" 2>&1 9>&- &

  local deadline=$((SECONDS + WAIT_TIMEOUT)) pid="" what="answer http://$HOST:$CH_HTTP_PORT/ping"
  [[ -n $CH_REPLICA ]] && what="$what and read ZooKeeper on $HOST:$ZK_PORT"
  while :; do
    if ch_ready && pid=$(ch_pid); then
      break
    fi
    if [[ -s $CH_PIDFILE ]] && ! ch_pid >/dev/null; then
      warn "error: $CH_NAME exited during startup (HTTP $HOST:$CH_HTTP_PORT, native $HOST:$CH_TCP_PORT); its log is $CH_LOG"
      tail_log "$CH_STDOUT" "$CH_NAME stdout/stderr"
      tail_log "$CH_LOG" "$CH_NAME log"
      rm -f -- "$CH_PIDFILE"
      exit 1
    fi
    if (( SECONDS >= deadline )); then
      warn "error: $CH_NAME did not $what within ${WAIT_TIMEOUT}s; stopping it (its log is $CH_LOG)"
      tail_log "$CH_STDOUT" "$CH_NAME stdout/stderr"
      tail_log "$CH_LOG" "$CH_NAME log"
      ch_stop >/dev/null 2>&1 || true
      exit 1
    fi
    sleep 0.5
  done
  say "$CH_NAME: started (pid $pid) on http://$HOST:$CH_HTTP_PORT (native tcp $HOST:$CH_TCP_PORT)"
}

# ch_stop [KILL]: SIGTERM (then SIGKILL after CH_STOP_TIMEOUT), or SIGKILL at once.
ch_stop() {
  local pid
  if ! pid=$(ch_pid); then
    rm -f -- "$CH_PIDFILE"
    say "$CH_NAME: not running"
    return 0
  fi
  if [[ ${1:-} == KILL ]]; then
    kill -KILL "$pid" 2>/dev/null || true
  else
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$CH_STOP_TIMEOUT"; then
      warn "$CH_NAME (pid $pid) did not exit within ${CH_STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait_gone "$pid" 10 || { warn "error: $CH_NAME (pid $pid) survived SIGKILL for 10s"; return 1; }
  rm -f -- "$CH_PIDFILE"
  if [[ ${1:-} == KILL ]]; then say "$CH_NAME: killed"; else say "$CH_NAME: stopped"; fi
}

ch_status() {
  local pid
  if pid=$(ch_pid); then
    say "$CH_NAME: running (pid $pid) on http://$HOST:$(ch_conf_value http_port) (native tcp $HOST:$(ch_conf_value tcp_port)), data $CH_DIR"
  else
    say "$CH_NAME: stopped"
    return 1
  fi
}

# --------------------------------------------------------------- ZooKeeper --
# Standalone, loopback only, for the cluster's replicas: QuorumPeerMain with our zoo.cfg (the
# packaged zkServer.sh insists on /etc paths), logging through slf4j-simple to zookeeper.log.
zk_check_install() {
  command -v "$JAVA" >/dev/null 2>&1 ||
    die "java not found for ZooKeeper (install package zookeeper, which brings a JRE, or set BGMIGRATE_JAVA)"
  local jar jars
  IFS=: read -ra jars <<<"$ZK_CLASSPATH"
  for jar in "${jars[@]}"; do
    [[ -r $jar ]] || die "ZooKeeper jar $jar not found (install package zookeeper or set BGMIGRATE_ZK_CLASSPATH)"
  done
}

zk_pid() {
  [[ -f $ZK_PIDFILE ]] || return 1
  local pid; pid=$(tr -dc '0-9' <"$ZK_PIDFILE")
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$ZK_CONF" || return 1
  pid_alive "$pid" || return 1
  printf '%s\n' "$pid"
}

zk_conf_port() { sed -n 's/^clientPort=//p' "$ZK_CONF" 2>/dev/null | head -n1; }

zk_ruok() {  # prints "imok" when ZooKeeper on port $1 serves requests; no java needed
  # shellcheck disable=SC2016  # expanded by the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"; printf ruok >&3; cat <&3' "$HOST" "$1" 2>/dev/null || true
}

zk_write_config() {
  cat >"$ZK_CONF" <<EOF
# Generated by scripts/services.sh on every start; edits will be overwritten.
# Standalone (no server.N lines), loopback only; the admin HTTP server is off.
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$ZK_DIR/data
clientPort=$ZK_PORT
clientPortAddress=$HOST
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
EOF
}

zk_start() {
  zk_check_install
  if zk_pid >/dev/null; then
    local port; port=$(zk_conf_port)
    say "ZooKeeper: already running (pid $(zk_pid)) on $HOST:$port"
    if [[ $port != "$ZK_PORT" ]]; then
      warn "note: ZooKeeper runs on port $port, not the requested $ZK_PORT; the replicas started now use $port"
      ZK_PORT=$port
    fi
    return 0
  fi
  check_port_free "$ZK_PORT" "ZooKeeper" BGMIGRATE_ZK_PORT
  mkdir -p -- "$ZK_DIR/data"
  rm -f -- "$ZK_PIDFILE"
  zk_write_config
  printf '=== %s starting ZooKeeper with %s\n' "$(date '+%F %T')" "$ZK_CONF" >"$ZK_LOG"  # truncated per start
  # shellcheck disable=SC2016  # expanded by the inner bash
  # As ClickHouse (see ch_start): detached, its pid recorded by the bash it replaces, and
  # without our lock's descriptor 9.
  setsid bash -c 'printf "%s\n" "$$" >"$0"; exec "$@"' "$ZK_PIDFILE" \
    "$JAVA" -Xms32m -Xmx256m -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.showDateTime=true \
    -Dorg.slf4j.simpleLogger.dateTimeFormat='yyyy-MM-dd HH:mm:ss.SSS' \
    -cp "$ZK_CLASSPATH" org.apache.zookeeper.server.quorum.QuorumPeerMain "$ZK_CONF" \
    </dev/null >>"$ZK_LOG" 2>&1 9>&- &

  local deadline=$((SECONDS + WAIT_TIMEOUT)) pid=""
  while :; do
    if [[ $(zk_ruok "$ZK_PORT") == imok ]] && pid=$(zk_pid); then
      break
    fi
    if [[ -s $ZK_PIDFILE ]] && ! zk_pid >/dev/null; then
      warn "error: ZooKeeper exited during startup ($HOST:$ZK_PORT); its log is $ZK_LOG"
      tail_log "$ZK_LOG" "ZooKeeper log"
      rm -f -- "$ZK_PIDFILE"
      exit 1
    fi
    if (( SECONDS >= deadline )); then
      warn "error: ZooKeeper did not answer 'ruok' on $HOST:$ZK_PORT within ${WAIT_TIMEOUT}s; stopping it (its log is $ZK_LOG)"
      tail_log "$ZK_LOG" "ZooKeeper log"
      zk_stop >/dev/null 2>&1 || true
      exit 1
    fi
    sleep 0.2
  done
  say "ZooKeeper: started (pid $pid) on $HOST:$ZK_PORT"
}

# zk_stop [KILL]: as ch_stop.
zk_stop() {
  local pid
  if ! pid=$(zk_pid); then
    rm -f -- "$ZK_PIDFILE"
    say "ZooKeeper: not running"
    return 0
  fi
  if [[ ${1:-} == KILL ]]; then
    kill -KILL "$pid" 2>/dev/null || true
  else
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$CH_STOP_TIMEOUT"; then
      warn "ZooKeeper (pid $pid) did not exit within ${CH_STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait_gone "$pid" 10 || { warn "error: ZooKeeper (pid $pid) survived SIGKILL for 10s"; return 1; }
  rm -f -- "$ZK_PIDFILE"
  if [[ ${1:-} == KILL ]]; then say "ZooKeeper: killed"; else say "ZooKeeper: stopped"; fi
}

zk_status() {
  local pid
  if pid=$(zk_pid); then
    say "ZooKeeper: running (pid $pid) on $HOST:$(zk_conf_port), data $ZK_DIR/data"
  else
    say "ZooKeeper: stopped"
    return 1
  fi
}

# ---------------------------------------------------------------- commands --
# The ClickHouse servers of this mode: `single`, or the two replicas.
ch_servers() { if [[ $CLUSTER == true ]]; then echo 1 2; else echo single; fi; }

check_settings() {
  local p
  local -a ports=("$PG_PORT")
  if [[ $CLUSTER == true ]]; then
    ports+=("$ZK_PORT" "${R_HTTP_PORT[1]}" "${R_TCP_PORT[1]}" "${R_INTERSERVER_PORT[1]}"
            "${R_HTTP_PORT[2]}" "${R_TCP_PORT[2]}" "${R_INTERSERVER_PORT[2]}")
    [[ $CLUSTER_NAME =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] ||
      die "CLICKHOUSE_CLUSTER_NAME='$CLUSTER_NAME' is not a plain name (letters, digits, _)"
  else
    ports+=("$CH_SINGLE_HTTP_PORT" "$CH_SINGLE_TCP_PORT")
  fi
  for p in "${ports[@]}" "$WAIT_TIMEOUT"; do
    is_port_number "$p" || die "invalid port/timeout value '$p' (check BGMIGRATE_* variables)"
  done
  if [[ $(printf '%s\n' "${ports[@]}" | sort | uniq -d) ]]; then
    die "the ports must all differ: ${ports[*]} (check BGMIGRATE_*_PORT variables)"
  fi
}

cmd_start() {
  check_settings
  # The data folder must be traversable by the postgres user when we are root;
  # create it world-traversable (only the folder itself, contents stay private).
  if [[ ! -d $DATA_DIR ]]; then
    mkdir -p -- "$DATA_DIR"
    chmod 755 "$DATA_DIR"
  fi
  take_lock
  # Check every port we are about to bind before starting anything, so a
  # conflict does not leave one server half-started.
  if [[ $ONLY != clickhouse ]]; then
    pg_check_install
    pg_is_running || check_port_free "$PG_PORT" "PostgreSQL" BGMIGRATE_PG_PORT
  fi
  if [[ $CH_MODE == embedded ]]; then
    [[ $ONLY == clickhouse ]] || pg_start
    say "ClickHouse: embedded in bgmigrate (no server), data in $DATA_DIR/chdb"
    return 0
  fi
  local s
  if [[ $ONLY != postgres ]]; then
    if [[ $CLUSTER == true ]]; then
      zk_check_install
      zk_pid >/dev/null || check_port_free "$ZK_PORT" "ZooKeeper" BGMIGRATE_ZK_PORT
    fi
    for s in $(ch_servers); do
      ch_select "$s"
      ch_pid >/dev/null || ch_check_ports_free
    done
  fi
  [[ $ONLY == clickhouse ]] || pg_start
  [[ $ONLY == postgres ]] && return 0
  [[ $CLUSTER == true ]] && zk_start
  for s in $(ch_servers); do
    ch_select "$s"
    ch_start
  done
}

# Stops the ClickHouse servers of both modes and ZooKeeper; those of the other mode only when
# they run, so that a plain `stop` also ends a cluster.
stop_clickhouse() {
  local s rc=0
  for s in single 1 2; do
    ch_select "$s"
    if [[ " $(ch_servers) " == *" $s "* ]] || ch_pid >/dev/null; then
      ch_stop || rc=1
    fi
  done
  if [[ $CLUSTER == true ]] || zk_pid >/dev/null; then zk_stop || rc=1; fi
  return "$rc"
}

cmd_stop() {
  [[ -d $DATA_DIR ]] || { say "PostgreSQL: not running"; say "ClickHouse: not running"; return 0; }
  take_lock
  local rc=0
  if [[ $ONLY != clickhouse ]]; then
    pg_standby_stop || rc=1
    pg_stop || rc=1
  fi
  if [[ $CH_MODE == embedded && $CLUSTER != true ]] && ! ch_pid >/dev/null; then return "$rc"; fi
  if [[ $ONLY != postgres ]]; then stop_clickhouse || rc=1; fi
  return "$rc"
}

cmd_kill() {
  [[ -d $DATA_DIR ]] || return 0
  take_lock
  if [[ $ONLY != clickhouse ]] && pg_standby_running; then
    pg_run "$PG_BIN/pg_ctl" stop -D "$(pg_standby_data)" -m immediate -s -w -t 60 9>&- || return 1
  fi
  if [[ $ONLY != clickhouse ]] && pg_is_running; then
    pg_run "$PG_BIN/pg_ctl" stop -D "$(pg_data)" -m immediate -s -w -t 60 9>&- || return 1
    say "PostgreSQL: killed"
  fi
  [[ $ONLY == postgres ]] && return 0
  local s
  for s in single 1 2; do
    ch_select "$s"
    if ch_pid >/dev/null; then ch_stop KILL || return 1; fi
  done
  if zk_pid >/dev/null; then zk_stop KILL || return 1; fi
}

# start-replica / stop-replica / kill-replica N
cmd_replica() {
  CLUSTER=true
  if [[ $1 == start ]]; then
    check_settings
    [[ -d $DATA_DIR ]] || die "no data folder $DATA_DIR: start the cluster first ($0 --cluster start)"
    take_lock
    zk_start
    ch_select "$REPLICA"
    ch_start
  else
    [[ -d $DATA_DIR ]] || { say "ClickHouse replica $REPLICA: not running"; return 0; }
    take_lock
    ch_select "$REPLICA"
    if [[ $1 == kill ]]; then ch_stop KILL; else ch_stop; fi
  fi
}

cmd_status() {
  local rc=0 s
  pg_status || rc=3
  if [[ $CH_MODE == embedded ]]; then
    say "ClickHouse: embedded in bgmigrate, data in $DATA_DIR/chdb"
    return "$rc"
  fi
  if [[ $CLUSTER == true ]]; then zk_status || rc=3; fi
  for s in $(ch_servers); do
    ch_select "$s"
    ch_status || rc=3
  done
  return "$rc"
}

# `export NAME=value` with the value quoted for the shell, so eval keeps a path with spaces.
export_line() { printf 'export %s=%q\n' "$1" "$2"; }

cmd_env() {
  local rc=0
  if pg_is_running; then
    export_line DATABASE_URL "postgresql://$PG_SUPERUSER@$HOST:$(pg_running_port)/postgres"
  else
    warn "PostgreSQL is not running (start it with: $0 start)"; rc=3
  fi
  if [[ $CH_MODE == embedded ]]; then
    export_line CLICKHOUSE_URL "embedded://$DATA_DIR/chdb"
  elif [[ $CLUSTER == true ]]; then
    local urls=() r
    for r in 1 2; do
      ch_select "$r"
      if ch_pid >/dev/null; then
        urls+=("http://$HOST:$(ch_conf_value http_port)")
      else
        warn "$CH_NAME is not running (start the cluster with: $0 --cluster start)"; rc=3
      fi
    done
    if (( ${#urls[@]} == 2 )); then
      export_line CLICKHOUSE_URL "${urls[0]}"
      export_line BGMIGRATE_CH_REPLICA_URLS "${urls[0]},${urls[1]}"
      export_line CLICKHOUSE_USER default
      export_line CLICKHOUSE_PASSWORD ""
      export_line CLICKHOUSE_CLUSTER_ENABLED true
      export_line CLICKHOUSE_CLUSTER_NAME "$(ch_conf_value cluster)"
    fi
  elif ch_pid >/dev/null; then
    export_line CLICKHOUSE_URL "http://$HOST:$(ch_conf_value http_port)"
    export_line CLICKHOUSE_USER default
    export_line CLICKHOUSE_PASSWORD ""
  else
    local hint="start it with: $0 start"
    ch_select 1
    ch_pid >/dev/null && hint="a cluster runs: use $0 --cluster env"
    warn "ClickHouse is not running ($hint)"; rc=3
  fi
  return "$rc"
}

# --cluster may stand anywhere among the arguments.
args=()
for a in "$@"; do
  if [[ $a == --cluster ]]; then CLUSTER=true; else args+=("$a"); fi
done
set -- "${args[@]}"
[[ $CLUSTER == true || $CLUSTER == false ]] ||
  die "BGMIGRATE_CH_CLUSTER must be true or false, not '$CLUSTER'"
[[ $CLUSTER == true && $CH_MODE == embedded ]] &&
  die "cluster mode needs ClickHouse servers: unset BGMIGRATE_CLICKHOUSE=embedded or drop --cluster"

ONLY="" REPLICA=""
case "${1:-}" in
  start-pg-standby|stop-pg-standby) ;;
  start-replica|stop-replica|kill-replica)
    REPLICA=${2:-}
    [[ $REPLICA == 1 || $REPLICA == 2 ]] || die "name the replica: $0 $1 1|2"
    ;;
  *)
    ONLY=${2:-}
    case "$ONLY" in
      ""|postgres|clickhouse) ;;
      *) die "unknown server '$ONLY'; name postgres or clickhouse, or none for both" ;;
    esac
    ;;
esac
case "${1:-}" in
  start)   cmd_start ;;
  stop)    cmd_stop ;;
  kill)    cmd_kill ;;
  restart) cmd_stop; cmd_start ;;
  status)  cmd_status ;;
  env)     cmd_env ;;
  start-pg-standby) check_settings; take_lock; pg_check_install; pg_standby_start ;;
  stop-pg-standby)  [[ -d $DATA_DIR ]] || exit 0; take_lock; pg_standby_stop ;;
  start-replica) cmd_replica start ;;
  stop-replica)  cmd_replica stop ;;
  kill-replica)  cmd_replica kill ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
