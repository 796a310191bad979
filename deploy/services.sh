#!/usr/bin/env bash
# Bring up the local stack the tests and a dev run need, on loopback:
#
#   PostgreSQL 15   127.0.0.1:5432   trust auth for local TCP
#   NATS+JetStream  127.0.0.1:4222
#   ClickHouse      127.0.0.1:8123 (HTTP), 127.0.0.1:9000 (native TCP)
#   chromium, chromium-driver, libnss3-tools  (installed only: the browser tests drive them)
#
# and installs (never starts) Debian's pebble: the test ACME CA the certificate
# tests (testkit::Pebble) and deploy/up.sh's https demo run on ports of their own,
# and Debian's zookeeper, which the replicated-ClickHouse tests (testkit::ClickHouseReplicas)
# run as their own process.
#
# Usage:
#   deploy/services.sh [up]     install what is missing, start what is not answering, wait
#   deploy/services.sh status   say what answers, change nothing (exit 1 if something is down)
#   deploy/services.sh stop     stop only the ClickHouse this script started (by its pid file)
#
# Safe to run again: a service that already answers on its port is reused, never
# restarted (whoever started it: the machine, a container with mapped ports, a previous
# run). apt-get runs only when a package is missing, with one `apt-get update` first.
#
# ClickHouse is never the system service: it runs as our own daemon with the packaged
# config plus command-line overrides and its data under ${STACK_DIR:-<repo>/.stack}/clickhouse
# (gitignored). Debian's clickhouse-server is 18.16.1, the only one the registries offer.
#
# Environment:
#   STACK_DIR                    where our ClickHouse keeps data, logs, pid (default <repo>/.stack)
#   SERVICES_TIMEOUT             seconds to wait for each service (default 30)
#   SERVICES_PG_TRUST=1          allow adding loopback trust auth to a running PostgreSQL that
#                                asks for a password (never done otherwise)
#   CLICKHOUSE_HTTP_PORT         default 8123
#   CLICKHOUSE_TCP_PORT          default 9000
#   CLICKHOUSE_INTERSERVER_PORT  default 9009 (replication port; bound on loopback, unused)
#   NATS_PORT, NATS_STORE_DIR, NATS_LOG_FILE   for a NATS we start (default 4222,
#                                /var/lib/nats-server, /var/log/nats-server.log: the same
#                                as the machine's own, so a restart keeps its streams)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${STACK_DIR:-$repo/.stack}"
TIMEOUT="${SERVICES_TIMEOUT:-30}"
HOST=127.0.0.1
PG_PORT=5432
NATS_PORT="${NATS_PORT:-4222}"
CH_HTTP_PORT="${CLICKHOUSE_HTTP_PORT:-8123}"
CH_TCP_PORT="${CLICKHOUSE_TCP_PORT:-9000}"
CH_INTERSERVER_PORT="${CLICKHOUSE_INTERSERVER_PORT:-9009}"
CH_DIR="$STACK_DIR/clickhouse"
CH_PID="$CH_DIR/clickhouse-server.pid"
CH_CONFIG=/etc/clickhouse-server/config.xml
NATS_STORE="${NATS_STORE_DIR:-/var/lib/nats-server}"
NATS_LOG="${NATS_LOG_FILE:-/var/log/nats-server.log}"
NATS_PID="$STACK_DIR/nats-server.pid"

die() { echo "services.sh: $*" >&2; exit 1; }
report() { printf '%-11s %-10s %s\n' "$1" "$2" "$3"; }

# --- probes (quiet, never fail the script) -------------------------------------------

tcp_open() { # host port: true if something accepts a TCP connection
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

pg_ready() {
  command -v pg_isready >/dev/null 2>&1 || { tcp_open "$HOST" "$PG_PORT"; return; }
  pg_isready -q -h "$HOST" -p "$PG_PORT" -t 1
}

pg_login_ok() { # trust auth: the postgres role gets in over TCP without a password
  command -v psql >/dev/null 2>&1 || return 0
  PGCONNECT_TIMEOUT=2 psql -w -X -q -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1
}

# The first line a NATS server sends is INFO {json}; answer PING and expect PONG.
# Prints the INFO line on success.
nats_info() ( # a subshell: the connection closes with it
  local info pong
  exec 3<>"/dev/tcp/$HOST/$NATS_PORT" || exit 1
  read -r -t 2 info <&3 && [[ $info == INFO* ]] || exit 1
  printf 'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n' >&3 || exit 1
  read -r -t 2 pong <&3 && [[ $pong == PONG* ]] || exit 1
  printf '%s\n' "$info"
) 2>/dev/null
nats_ready() { nats_info >/dev/null; }

ch_ready() {
  [[ "$(curl -s --max-time 2 "http://$HOST:$CH_HTTP_PORT/ping" 2>/dev/null)" == "Ok." ]]
}

# wait_until CHECK...: poll CHECK every 0.1 s for up to $TIMEOUT seconds.
wait_until() {
  local deadline=$(( ${EPOCHREALTIME//[.,]/} / 1000 + TIMEOUT * 1000 ))
  until "$@"; do
    if (( ${EPOCHREALTIME//[.,]/} / 1000 > deadline )); then
      return 1
    fi
    sleep 0.1
  done
}

# A pid file's process, if it is alive and runs the named executable.
live_pid() { # pidfile exe
  local pid
  [[ -s "$1" ]] || return 1
  pid="$(tr -dc '0-9' <"$1")"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2" || return 1
  printf '%s\n' "$pid"
}

# --- installing -----------------------------------------------------------------------

APT_WHO=services.sh
# shellcheck source=deploy/lib/apt.sh
. "$repo/deploy/lib/apt.sh"

# --- PostgreSQL -----------------------------------------------------------------------

pg_version() { # the newest installed cluster version, e.g. 15
  local d
  for d in /etc/postgresql/*/; do
    if [[ -d $d ]]; then basename "$d"; fi
  done | sort -V | tail -n1
}

pg_ensure_trust() { # make 127.0.0.1 TCP logins trusted; true if the file was changed
  local v hba line='host all all 127.0.0.1/32 trust'
  v="$(pg_version)"; [[ -n $v ]] || return 1
  hba="/etc/postgresql/$v/main/pg_hba.conf"
  [[ -f $hba ]] || return 1
  grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba" && return 1
  # First matching line wins: put ours before every other rule.
  local tmp; tmp="$(mktemp)"
  { echo "# added by deploy/services.sh: trust local TCP for development and tests"
    echo "$line"
    cat "$hba"; } >"$tmp"
  cat "$tmp" >"$hba"; rm -f "$tmp"
  return 0
}

up_postgres() {
  local addr="$HOST:$PG_PORT"
  if pg_ready; then
    if ! pg_login_ok; then
      # Someone else's PostgreSQL that wants a password: never weaken its
      # authentication behind the operator's back. SERVICES_PG_TRUST=1 says
      # "this is a throwaway machine, trust loopback".
      if [[ ${SERVICES_PG_TRUST:-0} == 1 ]] && pg_ensure_trust; then
        pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main reload >&2 ||
          die "postgresql: could not reload after enabling trust auth"
        wait_until pg_login_ok ||
          die "postgresql: $addr answers but user postgres cannot log in without a password"
      else
        die "postgresql: $addr answers but user postgres cannot log in without a password. This script does not change an existing server's pg_hba.conf; give the tests a URL with credentials (TEST_DATABASE_URL=postgres://user:pass@127.0.0.1:5432/postgres, DATABASE=... for up.sh), or, on a throwaway machine, rerun with SERVICES_PG_TRUST=1 to add 'host all all 127.0.0.1/32 trust'"
      fi
    fi
    report postgresql reused "$addr"
    return
  fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [[ -z "$(pg_version)" ]]; then
    apt_install postgresql
  fi
  local v; v="$(pg_version)"
  [[ -n $v ]] || die "postgresql: no cluster version under /etc/postgresql after installing"
  # Only a cluster this script creates is for development and tests and gets
  # loopback trust; an existing one is never changed (see above).
  if [[ ! -d /etc/postgresql/$v/main ]]; then
    pg_createcluster "$v" main >&2
    pg_ensure_trust || true
  elif [[ ${SERVICES_PG_TRUST:-0} == 1 ]]; then
    pg_ensure_trust || true
  fi
  pg_ctlcluster --skip-systemctl-redirect "$v" main start >&2 ||
    pg_ctlcluster --skip-systemctl-redirect "$v" main status >/dev/null 2>&1 ||
    die "postgresql: pg_ctlcluster $v main start failed (see /var/log/postgresql/postgresql-$v-main.log)"
  wait_until pg_ready ||
    die "postgresql: not answering on $addr after ${TIMEOUT}s (see /var/log/postgresql/postgresql-$v-main.log)"
  wait_until pg_login_ok ||
    die "postgresql: $addr answers but user postgres cannot log in without a password (this script changes pg_hba.conf only of a cluster it created, or with SERVICES_PG_TRUST=1)"
  report postgresql started "$addr"
}

# --- NATS -----------------------------------------------------------------------------

nats_check_jetstream() {
  local info; info="$(nats_info)" || die "nats: $HOST:$NATS_PORT stopped answering"
  [[ $info == *'"jetstream":true'* ]] ||
    die "nats: the server on $HOST:$NATS_PORT runs without JetStream (start it with -js)"
  # 2.9.10 from Debian: no KV with async-nats 0.51, no consumer filter_subjects (plural).
  NATS_VERSION="$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' <<<"$info")"
}

up_nats() {
  local addr="$HOST:$NATS_PORT"
  if nats_ready; then
    nats_check_jetstream
    report nats reused "$addr (jetstream, nats-server $NATS_VERSION)"
    return
  fi
  if tcp_open "$HOST" "$NATS_PORT"; then
    # Something holds the port: maybe a NATS still starting. Give it the timeout.
    wait_until nats_ready ||
      die "nats: something listens on $addr but does not speak NATS"
    nats_check_jetstream
    report nats reused "$addr (jetstream, nats-server $NATS_VERSION)"
    return
  fi
  [[ -x /usr/sbin/nats-server ]] || apt_install nats-server
  mkdir -p "$NATS_STORE" "$STACK_DIR"
  # --pidfile makes the "already running" test about our instance only, not any
  # nats-server on the machine (another one may serve a different port).
  start-stop-daemon --start --oknodo --quiet --background \
    --pidfile "$NATS_PID" --make-pidfile --exec /usr/sbin/nats-server -- \
    -a "$HOST" -p "$NATS_PORT" -js -sd "$NATS_STORE" -l "$NATS_LOG" ||
    die "nats: start-stop-daemon failed"
  wait_until nats_ready ||
    die "nats: not answering on $addr after ${TIMEOUT}s (see $NATS_LOG)"
  nats_check_jetstream
  report nats started "$addr (jetstream, nats-server $NATS_VERSION)"
}

# --- ClickHouse -----------------------------------------------------------------------

ch_addr() { echo "$HOST:$CH_HTTP_PORT (http), $HOST:$CH_TCP_PORT (tcp)"; }

ch_log_hint() {
  local f
  for f in "$CH_DIR/log/err.log" "$CH_DIR/log/stderr.log"; do
    [[ -s $f ]] && { echo "--- last lines of $f:" >&2; tail -n 15 "$f" >&2; }
  done
  return 0
}

up_clickhouse() {
  if ch_ready; then
    report clickhouse reused "$(ch_addr)"
    return
  fi
  local pid
  if pid="$(live_pid "$CH_PID" clickhouse-server)"; then
    # Ours, still starting (or wedged): wait for it rather than start a second one.
    wait_until ch_ready || {
      ch_log_hint
      die "clickhouse: our server (pid $pid) is running but $HOST:$CH_HTTP_PORT/ping does not answer after ${TIMEOUT}s; try '$0 stop' and run again"
    }
    report clickhouse reused "$(ch_addr)"
    return
  fi
  rm -f "$CH_PID"
  if tcp_open "$HOST" "$CH_HTTP_PORT"; then
    wait_until ch_ready ||
      die "clickhouse: something listens on $HOST:$CH_HTTP_PORT but does not answer /ping with Ok."
    report clickhouse reused "$(ch_addr)"
    return
  fi
  local port
  for port in "$CH_TCP_PORT" "$CH_INTERSERVER_PORT"; do
    tcp_open "$HOST" "$port" &&
      die "clickhouse: port $HOST:$port is taken by another program (set CLICKHOUSE_TCP_PORT / CLICKHOUSE_INTERSERVER_PORT)"
  done
  { command -v clickhouse-server >/dev/null 2>&1 && [[ -f $CH_CONFIG ]]; } ||
    apt_install clickhouse-server clickhouse-client
  command -v curl >/dev/null 2>&1 || apt_install curl

  mkdir -p "$CH_DIR"/{tmp,user_files,format_schemas,log}
  # The packaged config, everything machine-specific overridden on the command line.
  # Runs as the invoking user (root here; 18.16 does not refuse root).
  clickhouse-server --config-file="$CH_CONFIG" --daemon --pid-file="$CH_PID" -- \
    --path="$CH_DIR/" \
    --tmp_path="$CH_DIR/tmp/" \
    --user_files_path="$CH_DIR/user_files/" \
    --format_schema_path="$CH_DIR/format_schemas/" \
    --listen_host="$HOST" \
    --http_port="$CH_HTTP_PORT" \
    --tcp_port="$CH_TCP_PORT" \
    --interserver_http_port="$CH_INTERSERVER_PORT" \
    --logger.log="$CH_DIR/log/clickhouse.log" \
    --logger.errorlog="$CH_DIR/log/err.log" \
    >"$CH_DIR/log/launch.log" 2>&1 || {
      cat "$CH_DIR/log/launch.log" >&2
      die "clickhouse: clickhouse-server --daemon failed"
    }
  wait_until ch_ready || {
    ch_log_hint
    # Do not leave a half-started daemon holding the ports.
    stop_clickhouse >/dev/null 2>&1 || true
    die "clickhouse: not answering on $HOST:$CH_HTTP_PORT/ping after ${TIMEOUT}s, stopped it again (logs in $CH_DIR/log)"
  }
  report clickhouse started "$(ch_addr), data $CH_DIR"
}

stop_clickhouse() {
  local pid
  if ! pid="$(live_pid "$CH_PID" clickhouse-server)"; then
    rm -f "$CH_PID"
    report clickhouse "not ours" "no running ClickHouse started by this script (pid file $CH_PID)"
    return 0
  fi
  kill -TERM "$pid"
  local deadline=$(( ${EPOCHREALTIME//[.,]/} / 1000 + TIMEOUT * 1000 ))
  while [[ -e /proc/$pid ]]; do
    if (( ${EPOCHREALTIME//[.,]/} / 1000 > deadline )); then
      echo "services.sh: clickhouse (pid $pid) still running after ${TIMEOUT}s, sending KILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  rm -f "$CH_PID"
  report clickhouse stopped "pid $pid"
}

status() {
  local rc=0
  if pg_ready; then report postgresql up "$HOST:$PG_PORT"; else report postgresql down "$HOST:$PG_PORT"; rc=1; fi
  if nats_ready; then report nats up "$HOST:$NATS_PORT"; else report nats down "$HOST:$NATS_PORT"; rc=1; fi
  local who="up"
  live_pid "$CH_PID" clickhouse-server >/dev/null && who="up (ours)"
  if ch_ready; then report clickhouse "$who" "$(ch_addr)"; else report clickhouse down "$(ch_addr)"; rc=1; fi
  return $rc
}

case "${1:-up}" in
  up|start)
    # One run at a time: two concurrent runs would otherwise both start a ClickHouse.
    mkdir -p "$STACK_DIR"
    exec 9>"$STACK_DIR/services.lock"
    flock -w "$TIMEOUT" 9 || die "another deploy/services.sh holds $STACK_DIR/services.lock"
    command -v curl >/dev/null 2>&1 || apt_install curl
    # pebble (a test ACME CA) and its mock DNS, for control's certificate tests
    # and deploy/up.sh's https demo; started by those, never here.
    command -v pebble >/dev/null 2>&1 || apt_install pebble
    # ZooKeeper for the replicated-ClickHouse tests (testkit::ClickHouseReplicas runs its
    # own, on a port of its own); installed only, the system service is never started.
    [[ -f /usr/share/java/zookeeper.jar ]] || apt_install zookeeper
    up_postgres
    up_nats
    up_clickhouse
    # The dashboard's browser tests (testkit::Browser) drive Debian's headless Chromium;
    # certutil (libnss3-tools) makes a test's browser trust its test CA.
    apt_install chromium chromium-driver libnss3-tools
    ;;
  stop|stop-clickhouse) stop_clickhouse ;;
  status) status ;;
  -h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (use: up | status | stop)" ;;
esac
