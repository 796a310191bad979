#!/usr/bin/env bash
# Brings the whole stack up on loopback and prints what to try (the README's first command).
#
#   deploy/up.sh          services (PostgreSQL, NATS JetStream, ClickHouse), release builds,
#                         then analytics, engine and control, an admin API key and demo links
#   deploy/up.sh down     stops what `up` started (engine, control, analytics, our ClickHouse)
#   deploy/up.sh status   says what is running
#
# Safe to run again: a component still running from a previous `up` is kept. Logs and
# state live under ${STACK_DIR:-<repo>/.stack} (gitignored).
#
# Environment: STACK_DIR, PROFILE (cargo profile, default release), DATABASE (default shortener).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
STACK_DIR="${STACK_DIR:-$repo/.stack}"
PROFILE="${PROFILE:-release}"
DATABASE="${DATABASE:-shortener}"
RUN="$STACK_DIR/run"
LOGS="$STACK_DIR/logs"
# The stack's own NATS with one user per role (deploy/nats.sh), not the machine's open one.
STACK_NATS_PORT="${STACK_NATS_PORT:-4223}"
NATS_URL="nats://127.0.0.1:$STACK_NATS_PORT"
NATS_DIR="$STACK_DIR/nats"
KEYS="$STACK_DIR/keys"
CLICKHOUSE_URL=http://127.0.0.1:8123
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DATABASE"
ENGINE_LISTEN=127.0.0.1:8080
ENGINE_ADMIN=127.0.0.1:9080
CONTROL_LISTEN=127.0.0.1:8000
ANALYTICS_METRICS=127.0.0.1:9100
# MaxMind's test database knows only a few networks (175.16.199.0/24 is Changchun, CN); point
# GEOIP at a real one for real traffic (analytics/README.md says where to get one).
GEOIP="${GEOIP:-$repo/testkit/fixtures/geoip/GeoIP2-City-Test.mmdb}"

case "$PROFILE" in dev) target_dir=debug ;; *) target_dir="$PROFILE" ;; esac
BIN="$repo/target/$target_dir"

die() { echo "up.sh: $*" >&2; exit 1; }
alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

stop_one() {
  local name=$1
  if alive "$name"; then
    local pid
    pid=$(cat "$RUN/$name.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    echo "stopped $name"
  fi
  rm -f "$RUN/$name.pid"
}

status() {
  for name in analytics engine control; do
    if alive "$name"; then echo "$name running (pid $(cat "$RUN/$name.pid"), log $LOGS/$name.log)"
    else echo "$name not running"; fi
  done
  deploy/services.sh status || true
  deploy/nats.sh status || true
}

case "${1:-up}" in
  down)
    for name in control engine analytics; do stop_one "$name"; done
    deploy/nats.sh down
    deploy/services.sh stop
    exit 0 ;;
  status) status; exit 0 ;;
  up) ;;
  *) die "usage: deploy/up.sh [up|down|status]" ;;
esac

mkdir -p "$RUN" "$LOGS" "$STACK_DIR/engine" "$STACK_DIR/snapshots"

echo "== services"
deploy/services.sh up

echo "== build ($PROFILE)"
cargo build --locked --profile "$PROFILE" -p snapshots -p engine -p control -p analytics

# start NAME READY_PATTERN COMMAND...: runs COMMAND in the background, stdout+stderr to
# its log, and waits for the readiness line it prints on stdout.
start() {
  local name=$1 pattern=$2
  shift 2
  if alive "$name"; then
    echo "$name already running (pid $(cat "$RUN/$name.pid"))"
    return
  fi
  : >"$LOGS/$name.log"
  nohup "$@" >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  for _ in $(seq 1 300); do
    grep -q "$pattern" "$LOGS/$name.log" && { echo "$name started (log $LOGS/$name.log)"; return; }
    alive "$name" || { tail -20 "$LOGS/$name.log" >&2; die "$name exited during start-up"; }
    sleep 0.1
  done
  tail -20 "$LOGS/$name.log" >&2
  die "$name did not become ready in 30 s"
}

echo "== database $DATABASE"
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE \"$DATABASE\""
fi

echo "== NATS with one user per role"
export STACK_DIR STACK_NATS_PORT
deploy/nats.sh up

echo "== keys"
# Control signs link changes, engines check them; the admin token guards PUT /snapshot.
# Made once, kept (mode 0600), so restarts keep trusting each other.
( umask 077; mkdir -p "$KEYS"
  [ -s "$KEYS/links-signing.pem" ] || openssl genpkey -algorithm ed25519 -out "$KEYS/links-signing.pem"
  [ -s "$KEYS/links-verify.pem" ] || openssl pkey -in "$KEYS/links-signing.pem" -pubout -out "$KEYS/links-verify.pem"
  [ -s "$KEYS/engine-admin-token" ] || head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$KEYS/engine-admin-token" )
export ENGINE_ADMIN_TOKEN
ENGINE_ADMIN_TOKEN=$(cat "$KEYS/engine-admin-token")

echo "== components"
# Order: analytics owns CLICKS and control owns LINKS, so both exist before the engine
# (which never creates them) starts; control pushes the engine its snapshot once it answers.
start analytics '"event":"ready"' "$BIN/analytics" run \
  --nats "$NATS_URL" --nats-user analytics --nats-password-file "$NATS_DIR/analytics.password" \
  --clickhouse "$CLICKHOUSE_URL" --database analytics \
  --geoip "$GEOIP" --metrics "$ANALYTICS_METRICS"
start control '"event":"ready"' "$BIN/control" serve \
  --listen "$CONTROL_LISTEN" --database-url "$DATABASE_URL" \
  --nats "$NATS_URL" --nats-user control --nats-password-file "$NATS_DIR/control.password" \
  --links-signing-key "$KEYS/links-signing.pem" \
  --clickhouse "$CLICKHOUSE_URL" --short-base "http://$ENGINE_LISTEN" \
  --public-url "http://$CONTROL_LISTEN" \
  --engine-admin "$ENGINE_ADMIN" --snapshot-dir "$STACK_DIR/snapshots"
start engine '"event":"ready"' "$BIN/engine" serve \
  --listen "$ENGINE_LISTEN" --admin "$ENGINE_ADMIN" --state-dir "$STACK_DIR/engine" \
  --nats "$NATS_URL" --nats-user engine --nats-password-file "$NATS_DIR/engine.password" \
  --links-verify-key "$KEYS/links-verify.pem" \
  --node-id demo --trusted-proxy 127.0.0.1

echo "== demo key and links"
if [ ! -s "$STACK_DIR/demo-key" ]; then
  "$BIN/control" keys create --org demo --scopes admin --database-url "$DATABASE_URL" \
    | grep -oE '[A-Za-z0-9_]+_[A-Za-z0-9_-]{16,}' | head -1 >"$STACK_DIR/demo-key"
fi
KEY=$(cat "$STACK_DIR/demo-key")
[ -n "$KEY" ] || die "could not create a demo API key (see control keys create)"
for pair in rust=https://www.rust-lang.org/ nats=https://nats.io/ clickhouse=https://clickhouse.com/; do
  code=${pair%%=*} target=${pair#*=}
  curl -s -o /dev/null -X POST "http://$CONTROL_LISTEN/v1/links" \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d "{\"target\":\"$target\",\"custom_alias\":\"$code\"}" || true
done

echo "== demo user (the dashboard's sign-in)"
# Owner of the demo organization; the password is random, kept 0600 in the stack dir.
DEMO_EMAIL=demo@example.com
if [ ! -s "$STACK_DIR/demo-password" ]; then
  ( umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=\n' >"$STACK_DIR/demo-password" )
fi
chmod 600 "$STACK_DIR/demo-password"
if ! psql -h 127.0.0.1 -U postgres -d "$DATABASE" -tAc "SELECT 1 FROM users WHERE lower(email) = '$DEMO_EMAIL'" | grep -q 1; then
  "$BIN/control" users create --email "$DEMO_EMAIL" --org demo --role owner \
    --password-file "$STACK_DIR/demo-password" --database-url "$DATABASE_URL" >/dev/null
fi

cat <<EOF

The stack is up.
  dashboard http://$CONTROL_LISTEN/   sign in as $DEMO_EMAIL, password in $STACK_DIR/demo-password (0600)
  engine    http://$ENGINE_LISTEN   (admin http://$ENGINE_ADMIN/metrics)
  control   http://$CONTROL_LISTEN  (OpenAPI http://$CONTROL_LISTEN/openapi.json)
  analytics metrics http://$ANALYTICS_METRICS/metrics
  API key   $KEY   (also in $STACK_DIR/demo-key)

Try:
  curl -i http://$ENGINE_LISTEN/rust            # or open it in a browser
  curl -s -o /dev/null -H 'X-Forwarded-For: 175.16.199.77' -A 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36' http://$ENGINE_LISTEN/rust
      (this engine trusts X-Forwarded-For from 127.0.0.1 for the demo: the click shows as Changchun, CN)
  curl -s -X POST http://$CONTROL_LISTEN/v1/links -H "Authorization: Bearer $KEY" \\
       -H 'Content-Type: application/json' -d '{"target":"https://example.com/hello"}'
  curl -s "http://$CONTROL_LISTEN/v1/links/rust/stats?bucket=minute" -H "Authorization: Bearer $KEY"
  clickhouse-client --query 'SELECT ts, code, country, device, browser FROM analytics.clicks ORDER BY ts DESC LIMIT 5'
  deploy/up.sh down
EOF
