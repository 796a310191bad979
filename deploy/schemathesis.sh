#!/usr/bin/env bash
# Fuzzes control's API against its own OpenAPI document (/openapi.json) with schemathesis:
# every check, every phase (examples, coverage, fuzzing, and stateful sequences that follow
# the document's OpenAPI links: create a link, then read, patch and delete it by its code).
# A failure (a 5xx, an undocumented status or header, a body that does not match its schema,
# bad input accepted, ...) fails the script. deploy/test.sh runs it after its build step.
#
#   deploy/schemathesis.sh            build control (debug, a no-op after the build step),
#                                     start it on a fresh PostgreSQL database, make an
#                                     organization key, an operator key and a signed-in
#                                     user, run schemathesis (the organization's routes,
#                                     the operator's, the session-cookie routes), stop and
#                                     clean up
#
# Schemathesis comes from PyPI at a pinned version, installed into target/schemathesis-venv
# (once). Control runs on PostgreSQL and ClickHouse (the stats routes query a real, empty
# clicks table, which the analytics sidecar creates: it runs for the length of the run on the
# machine's NATS with a stream of its own). Without NATS for control, link changes wait in its
# outbox; without an ACME CA, certificate orders answer their documented 503. Nothing is left
# running; the databases and the stream are dropped. Needs deploy/services.sh up.
#
# Arguments go to `schemathesis run` (e.g. --include-path /v1/links).
# Environment: ST_MAX_EXAMPLES (per operation and phase, default 30), ST_SEED (random when
# unset), ST_WORKERS (default 1: hypothesis is not thread-safe in every strategy), ST_PORT (default 18000), PG (default
# postgres://postgres@127.0.0.1:5432), CLICKHOUSE (default http://127.0.0.1:8123), NATS
# (default nats://127.0.0.1:4222), PROFILE (cargo profile, default dev).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

SCHEMATHESIS_VERSION=4.32.5
VENV="$repo/target/schemathesis-venv"
PG="${PG:-postgres://postgres@127.0.0.1:5432}"
PORT="${ST_PORT:-18000}"
PROFILE="${PROFILE:-dev}"
MAX_EXAMPLES="${ST_MAX_EXAMPLES:-30}"
WORKERS="${ST_WORKERS:-1}"
case "$PROFILE" in dev) BIN="$repo/target/debug" ;; *) BIN="$repo/target/$PROFILE" ;; esac
RUN_DIR="$repo/target/schemathesis"
DATABASE="schemathesis_$$_$(date +%s)"
CLICKHOUSE="${CLICKHOUSE:-http://127.0.0.1:8123}"
NATS="${NATS:-nats://127.0.0.1:4222}"
STREAM="SCHEMATHESIS_$$_$(date +%s)"
BASE="http://127.0.0.1:$PORT"

die() { echo "schemathesis.sh: $*" >&2; exit 1; }

echo "== schemathesis $SCHEMATHESIS_VERSION (venv $VENV)"
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    # Debian keeps venv (ensurepip) in its own package.
    [ "$(id -u)" -eq 0 ] || die "python3 -m venv failed; install python3-venv (apt-get install python3-venv)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

echo "== build control ($PROFILE)"
# The whole workspace with every target, as deploy/test.sh's build step does: the same
# feature set, so after that step this is a no-op (building -p control alone resolves
# features differently and recompiles dependencies).
cargo build --locked --profile "$PROFILE" --workspace --all-targets

mkdir -p "$RUN_DIR"
rm -rf "$RUN_DIR/report"
control_pid="" analytics_pid=""
stop() {
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}
# Deletes the run's JetStream stream with the JetStream API over the plain NATS protocol.
delete_stream() {
  local host_port=${NATS#nats://}
  exec 3<>"/dev/tcp/${host_port%:*}/${host_port##*:}" || return 0
  printf 'CONNECT {"verbose":false}\r\nPUB $JS.API.STREAM.DELETE.%s 0\r\n\r\nPING\r\n' "$STREAM" >&3
  timeout 2 grep -q -m1 PONG <&3 || true
  exec 3>&-
}
cleanup() {
  rm -f "$RUN_DIR/session-password"
  stop "$control_pid"
  stop "$analytics_pid"
  [ -z "$analytics_pid" ] || delete_stream
  curl -s -o /dev/null "$CLICKHOUSE/" --data-binary "DROP DATABASE IF EXISTS $DATABASE" || true
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS \"$DATABASE\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# wait_ready NAME PID LOG: waits for the readiness line a service prints.
wait_ready() {
  for _ in $(seq 1 300); do
    grep -q '"event":"ready"' "$3" && return 0
    kill -0 "$2" 2>/dev/null || { tail -20 "$3" >&2; die "$1 exited during start-up"; }
    sleep 0.1
  done
  tail -20 "$3" >&2
  die "$1 did not become ready in 30 s"
}

echo "== database $DATABASE"
psql "$PG/postgres" -qc "CREATE DATABASE \"$DATABASE\""
DATABASE_URL="$PG/$DATABASE"

echo "== analytics (creates the ClickHouse database $DATABASE and its clicks table)"
alog="$RUN_DIR/analytics.log"
: >"$alog"
NO_COLOR=1 "$BIN/analytics" run --nats "$NATS" --clickhouse "$CLICKHOUSE" --database "$DATABASE" \
  --metrics 127.0.0.1:0 --stream "$STREAM" --subjects "schemathesis.$$.>" \
  --clicks-max-age-secs 3600 --clicks-max-bytes 1048576 >>"$alog" 2>&1 &
analytics_pid=$!
wait_ready analytics "$analytics_pid" "$alog"

echo "== control on $BASE"
# Generous rate limits: the fuzzer is one client sending thousands of requests; the
# limiter's own answers (429, Retry-After, X-RateLimit-*) are documented and tested elsewhere.
log="$RUN_DIR/control.log"
: >"$log"
NO_COLOR=1 "$BIN/control" serve --listen "127.0.0.1:$PORT" --database-url "$DATABASE_URL" \
  --public-url "$BASE" --snapshot-dir "$RUN_DIR/snapshots" --export-dir "$RUN_DIR/exports" \
  --clickhouse "$CLICKHOUSE" --clickhouse-database "$DATABASE" \
  --rate-per-key 100000 --burst-per-key 100000 --rate-per-ip 100000 --burst-per-ip 100000 \
  --login-rate-per-ip 100000 --login-burst-per-ip 100000 \
  --login-rate-per-email 100000 --login-burst-per-email 100000 >>"$log" 2>&1 &
control_pid=$!
wait_ready control "$control_pid" "$log"

echo "== admin keys of organizations fuzz and fuzz-keys, an operator key"
KEY=$("$BIN/control" keys create --org fuzz --scopes admin --database-url "$DATABASE_URL" \
  | grep -oE '[A-Za-z0-9_]+_[A-Za-z0-9_-]{16,}' | head -1)
[ -n "$KEY" ] || die "could not create an API key"
# The key routes (create, list, revoke) run with a key of another organization: the fuzzer
# learns key ids from listings and revokes them, and may revoke that key itself, never the
# one the rest of the run needs.
KEYS_KEY=$("$BIN/control" keys create --org fuzz-keys --scopes admin --database-url "$DATABASE_URL" \
  | grep -oE '[A-Za-z0-9_]+_[A-Za-z0-9_-]{16,}' | head -1)
[ -n "$KEYS_KEY" ] || die "could not create an API key"
# The operator's routes (/v1/admin/...) run with an operator key.
OPERATOR_KEY=$("$BIN/control" keys create --operator --database-url "$DATABASE_URL" \
  | grep -oE '[A-Za-z0-9_]+_[A-Za-z0-9_-]{16,}' | head -1)
[ -n "$OPERATOR_KEY" ] || die "could not create an operator key"

echo "== a user, owner of fuzz, for the session-cookie routes"
# The session pass signs in as this user for every request (deploy/schemathesis_session.py).
SESSION_EMAIL="fuzz-owner@example.com"
SESSION_PASSWORD_FILE="$RUN_DIR/session-password"
(umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SESSION_PASSWORD_FILE")
"$BIN/control" users create --email "$SESSION_EMAIL" --org fuzz --role owner \
  --password-file "$SESSION_PASSWORD_FILE" --database-url "$DATABASE_URL" >/dev/null \
  || die "could not create the session user"

seed=()
[ -z "${ST_SEED:-}" ] || seed=(--seed "$ST_SEED")
status=0
# run LABEL KEY CONFIG ARGS...: one schemathesis pass with the settings in CONFIG, acting
# with KEY (the session pass's auth is its hook instead).
run() {
  local label=$1 key=$2 config=$3
  shift 3
  echo "== schemathesis: $label (max $MAX_EXAMPLES examples per operation and phase)"
  # From the run directory: schemathesis keeps its cache (.schemathesis/) in the current one.
  # Every check runs (schemathesis's default); no `--checks all` on the command line, which
  # would override schemathesis.toml's per-operation settings (bulk's per-item contract).
  (cd "$RUN_DIR" && SCHEMATHESIS_KEY="$key" SCHEMATHESIS_KEYS_KEY="$KEYS_KEY" \
    SCHEMATHESIS_SESSION_HOOKS="$repo/deploy/schemathesis_session.py" \
    SCHEMATHESIS_BASE="$BASE" SCHEMATHESIS_EMAIL="$SESSION_EMAIL" \
    SCHEMATHESIS_PASSWORD_FILE="$SESSION_PASSWORD_FILE" SCHEMATHESIS_SESSION_COOKIE=session \
    "$VENV/bin/schemathesis" --config-file "$config" \
    run "$BASE/openapi.json" --url "$BASE" \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$MAX_EXAMPLES" --workers "$WORKERS" "${seed[@]}" \
    --request-timeout 10 \
    --suppress-health-check too_slow,filter_too_much \
    --report junit,har --report-dir "$RUN_DIR/report/$label" "$@") || status=1
}
# The organization's routes with its key, then the operator's with the operator key (an
# organization's key only gets 403 there, an operator key has no organization elsewhere).
# Then the session-cookie routes (who is signed in, signing out, members, invitations, the
# audit log) as the signed-in owner, each request with the session's X-CSRF-Token.
run organization "$KEY" "$repo/deploy/schemathesis.toml" --exclude-path-regex '^/v1/admin/' "$@"
run operator "$OPERATOR_KEY" "$repo/deploy/schemathesis.toml" --include-path-regex '^/v1/admin/' "$@"
run session "" "$repo/deploy/schemathesis-session.toml" \
  --include-path-regex '^/v1/(session|orgs/|audit)' "$@"
# A 5xx is a failure schemathesis reports; an error control only logs is one too.
if grep -qw ERROR "$log"; then
  echo "schemathesis.sh: control logged errors during the run (see $log):" >&2
  grep -w ERROR "$log" | head -5 >&2
  status=1
fi
[ "$status" = 0 ] && echo "schemathesis: no failures" || echo "schemathesis.sh: failures (report in $RUN_DIR/report, control log $log)" >&2
exit "$status"
