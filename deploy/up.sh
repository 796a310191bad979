#!/usr/bin/env bash
# Brings the whole stack up on loopback and prints what to try (the README's first command).
#
#   deploy/up.sh          services (PostgreSQL, NATS JetStream, ClickHouse), release builds,
#                         then analytics, engine and control, an admin API key and demo links;
#                         with custom domains and engine TLS built in, an https demo too: a
#                         test ACME CA (pebble), a demo domain and its certificate issued
#                         through control (HTTP-01 answered by the engine), served on TLS
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
# The engine's node id: its click subject, and its own NATS user engine-<node>, the only
# one allowed to ask control for visit leases in this node's name (deploy/nats.sh).
ENGINE_NODE=demo
ENGINE_ADMIN=127.0.0.1:9080
CONTROL_LISTEN=127.0.0.1:8000
ANALYTICS_METRICS=127.0.0.1:9100
# The sidecar publishes every stored click, enriched, on $ENRICHED_SUBJECT.<org id>; control keeps
# them in its ENRICHED stream and sends them as link.clicked webhooks (docs/webhooks.md).
# deploy/nats.sh grants exactly these subjects (analytics publishes, control reads the stream).
export ENRICHED_SUBJECT=enriched.clicks
# The https demo: the engine's TLS port, pebble (ACME on 14000, management 15000) and its
# mock DNS (every name is 127.0.0.1), the demo domain.
ENGINE_TLS_LISTEN=127.0.0.1:8443
PEBBLE_DIR="$STACK_DIR/pebble"
PEBBLE_LISTEN=127.0.0.1:14000
PEBBLE_MANAGEMENT=127.0.0.1:15000
PEBBLE_DNS=127.0.0.1:8053
PEBBLE_DNS_MANAGEMENT=127.0.0.1:8055
DEMO_DOMAIN=go.demo.example
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
  for name in analytics engine control pebble challtestsrv; do
    if alive "$name"; then echo "$name running (pid $(cat "$RUN/$name.pid"), log $LOGS/$name.log)"
    else echo "$name not running"; fi
  done
  deploy/services.sh status || true
  deploy/nats.sh status || true
}

case "${1:-up}" in
  down)
    for name in control engine analytics pebble challtestsrv; do stop_one "$name"; done
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

# The https demo (a certificate for the demo domain from a local pebble, served on the
# engine's TLS port) runs where pebble is installed (deploy/services.sh installs it).
https_demo=0
if "$BIN/engine" serve --help 2>/dev/null | grep -q -- '--tls-listen' \
  && "$BIN/control" serve --help 2>/dev/null | grep -q -- '--acme-directory' \
  && "$BIN/control" serve --help 2>/dev/null | grep -q -- '--default-domain' \
  && command -v pebble >/dev/null; then
  https_demo=1
fi

echo "== database $DATABASE"
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE \"$DATABASE\""
fi

echo "== NATS with one user per role (and per engine node)"
export STACK_DIR STACK_NATS_PORT
ENGINE_NODES="$ENGINE_NODE" deploy/nats.sh up

echo "== keys"
# Control signs link changes, engines check them; the admin token guards PUT /snapshot.
# Made once, kept (mode 0600), so restarts keep trusting each other.
( umask 077; mkdir -p "$KEYS"
  [ -s "$KEYS/links-signing.pem" ] || openssl genpkey -algorithm ed25519 -out "$KEYS/links-signing.pem"
  [ -s "$KEYS/links-verify.pem" ] || openssl pkey -in "$KEYS/links-signing.pem" -pubout -out "$KEYS/links-verify.pem"
  [ -s "$KEYS/engine-admin-token" ] || head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$KEYS/engine-admin-token"
  # Seals the ACME account key and every certificate's private key in PostgreSQL.
  [ -s "$KEYS/acme.key" ] || openssl rand -hex 32 >"$KEYS/acme.key"
  # Seals webhook signing secrets in PostgreSQL (docs/webhooks.md).
  [ -s "$KEYS/webhook.key" ] || openssl rand -hex 32 >"$KEYS/webhook.key" )
export ENGINE_ADMIN_TOKEN
ENGINE_ADMIN_TOKEN=$(cat "$KEYS/engine-admin-token")

control_https=() engine_https=()
if [ "$https_demo" = 1 ]; then
  echo "== https demo: pebble (test ACME CA) and its DNS"
  # Pebble's own https: a CA and a 127.0.0.1 leaf made here, once. Pebble validates HTTP-01
  # on the engine's plain port; its DNS answers every name with 127.0.0.1.
  ( umask 077; mkdir -p "$PEBBLE_DIR" "$STACK_DIR/engine-tls"; cd "$PEBBLE_DIR"
    if [ ! -s cert.pem ]; then
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -keyout ca.key -out ca.pem -subj "/CN=demo pebble https root" 2>/dev/null
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \
        -out leaf.csr -subj "/CN=127.0.0.1" 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >leaf.ext
      openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile leaf.ext -out cert.pem 2>/dev/null
    fi
    cat >pebble.json <<JSON
{"pebble": {"listenAddress": "$PEBBLE_LISTEN", "managementListenAddress": "$PEBBLE_MANAGEMENT",
  "certificate": "$PEBBLE_DIR/cert.pem", "privateKey": "$PEBBLE_DIR/key.pem",
  "httpPort": ${ENGINE_LISTEN##*:}, "tlsPort": 5001, "ocspResponderURL": "",
  "externalAccountBindingRequired": false}}
JSON
    # The engine's TLS port needs one pair to start with: a self-signed localhost one; the
    # demo domain's comes from control.
    if [ ! -s "$STACK_DIR/engine-tls/localhost.crt" ]; then
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -keyout "$STACK_DIR/engine-tls/localhost.key" -out "$STACK_DIR/engine-tls/localhost.crt" \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" 2>/dev/null
    fi )
  start challtestsrv 'Starting management server' pebble-challtestsrv \
    -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 "$PEBBLE_DNS" -management "$PEBBLE_DNS_MANAGEMENT" \
    -http01 "" -https01 "" -tlsalpn01 ""
  start pebble 'ACME directory available' env PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 \
    pebble -config "$PEBBLE_DIR/pebble.json" -dnsserver "$PEBBLE_DNS"
  control_https=(--acme-directory "https://$PEBBLE_LISTEN/dir" --acme-ca-root "$PEBBLE_DIR/ca.pem"
    --acme-key-file "$KEYS/acme.key" --acme-contact mailto:ops@demo.example)
  engine_https=(--tls-listen "$ENGINE_TLS_LISTEN" --tls-certs "$STACK_DIR/engine-tls")
fi

echo "== components"
# Order: analytics owns CLICKS and control owns LINKS, so both exist before the engine
# (which never creates them) starts; control pushes the engine its snapshot once it answers.
start analytics '"event":"ready"' "$BIN/analytics" run \
  --nats "$NATS_URL" --nats-user analytics --nats-password-file "$NATS_DIR/analytics.password" \
  --clickhouse "$CLICKHOUSE_URL" --database analytics \
  --geoip "$GEOIP" --metrics "$ANALYTICS_METRICS" --enriched-subject "$ENRICHED_SUBJECT"
# The demo domain has no DNS zone, so control proves it by the HTTP token the engine
# serves (--domain-verification http); a real deployment keeps the default, a DNS TXT record.
start control '"event":"ready"' "$BIN/control" serve \
  --listen "$CONTROL_LISTEN" --database-url "$DATABASE_URL" \
  --nats "$NATS_URL" --nats-user control --nats-password-file "$NATS_DIR/control.password" \
  --links-signing-key "$KEYS/links-signing.pem" \
  --clickhouse "$CLICKHOUSE_URL" --short-base "http://$ENGINE_LISTEN" \
  --default-domain sho.rt --verify-resolve "$DEMO_DOMAIN=$ENGINE_LISTEN" \
  --domain-verification http \
  --public-url "http://$CONTROL_LISTEN" \
  --engine-admin "$ENGINE_ADMIN" --snapshot-dir "$STACK_DIR/snapshots" \
  --webhook-key-file "$KEYS/webhook.key" --enriched-subject "$ENRICHED_SUBJECT" \
  "${control_https[@]}"
start engine '"event":"ready"' "$BIN/engine" serve \
  --listen "$ENGINE_LISTEN" --admin "$ENGINE_ADMIN" --state-dir "$STACK_DIR/engine" \
  --nats "$NATS_URL" --nats-user "engine-$ENGINE_NODE" \
  --nats-password-file "$NATS_DIR/engine-$ENGINE_NODE.password" \
  --links-verify-key "$KEYS/links-verify.pem" \
  --node-id "$ENGINE_NODE" --trusted-proxy 127.0.0.1 "${engine_https[@]}"

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

echo "== demo domain $DEMO_DOMAIN"
api() { curl -s -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' "$@"; }
api -o /dev/null -X POST "http://$CONTROL_LISTEN/v1/domains" -d "{\"name\":\"$DEMO_DOMAIN\"}" || true
api -o /dev/null -X POST "http://$CONTROL_LISTEN/v1/links" \
  -d "{\"target\":\"https://doc.rust-lang.org/book/\",\"custom_alias\":\"rust\",\"domain\":\"$DEMO_DOMAIN\"}" || true
api -o /dev/null -X PATCH "http://$CONTROL_LISTEN/v1/domains/$DEMO_DOMAIN" \
  -d '{"root_redirect":"https://www.rust-lang.org/","not_found_redirect":"https://www.rust-lang.org/learn"}' || true
# The engine answers the token once the claim's change reaches it (well under a second).
for _ in $(seq 1 20); do
  api "http://$CONTROL_LISTEN/v1/domains/$DEMO_DOMAIN/verify" -X POST | grep -q '"status":"verified"' && break
  sleep 0.25
done

https_try=""
if [ "$https_demo" = 1 ]; then
  echo "== https demo: $DEMO_DOMAIN and its certificate"
  capi() { curl -s -X "$1" "http://$CONTROL_LISTEN$2" -H "Authorization: Bearer $3" \
             -H 'Content-Type: application/json' ${4:+-d "$4"}; }
  capi POST "/v1/domains/$DEMO_DOMAIN/certificate" "$KEY" >/dev/null
  curl -s --cacert "$PEBBLE_DIR/ca.pem" "https://$PEBBLE_MANAGEMENT/roots/0" >"$PEBBLE_DIR/issuing-root.pem"
  cert=""
  for _ in $(seq 1 120); do
    cert=$(capi GET "/v1/domains/$DEMO_DOMAIN/certificate" "$KEY")
    case "$cert" in *'"status":"issued"'*) break ;; esac
    sleep 0.5
  done
  case "$cert" in
    *'"status":"issued"'*)
      echo "certificate for $DEMO_DOMAIN issued (pebble's root: $PEBBLE_DIR/issuing-root.pem)"
      https_try="  curl -i --resolve $DEMO_DOMAIN:${ENGINE_TLS_LISTEN##*:}:127.0.0.1 --cacert $PEBBLE_DIR/issuing-root.pem https://$DEMO_DOMAIN:${ENGINE_TLS_LISTEN##*:}/rust
      (TLS with the certificate control ordered from pebble and pushed to the engine)" ;;
    *) echo "up.sh: the demo certificate was not issued in 60 s: $cert" >&2 ;;
  esac
fi

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
  curl -i -H 'Host: $DEMO_DOMAIN' http://$ENGINE_LISTEN/rust       # the same code on the custom domain
  curl -i -H 'Host: $DEMO_DOMAIN' http://$ENGINE_LISTEN/           # its root redirect (and /nope: not-found)
  curl -s http://$CONTROL_LISTEN/v1/domains -H "Authorization: Bearer $KEY"
$https_try
  curl -s -o /dev/null -H 'X-Forwarded-For: 175.16.199.77' -A 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36' http://$ENGINE_LISTEN/rust
      (this engine trusts X-Forwarded-For from 127.0.0.1 for the demo: the click shows as Changchun, CN)
  curl -s -X POST http://$CONTROL_LISTEN/v1/links -H "Authorization: Bearer $KEY" \\
       -H 'Content-Type: application/json' -d '{"target":"https://example.com/hello"}'
  curl -s "http://$CONTROL_LISTEN/v1/links/rust/stats?bucket=minute" -H "Authorization: Bearer $KEY"
  curl -s -X POST http://$CONTROL_LISTEN/v1/links -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
       -d '{"target":"https://example.com/preview","custom_alias":"preview","password":"open sesame"}'
  curl -i http://$ENGINE_LISTEN/preview                                      # the password form (docs/password-links.md)
  curl -i http://$ENGINE_LISTEN/preview -d 'password=open+sesame'            # 303 to the target, with a pass cookie
  curl -s -X POST http://$CONTROL_LISTEN/v1/webhooks -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
       -d '{"url":"https://hooks.example.com/links","events":["link.created","link.deleted"]}'   # docs/webhooks.md
      (link.clicked: put your own public https receiver in "url" with "events":["link.clicked"], follow
       http://$ENGINE_LISTEN/rust a few times, and within about a second it gets them, batched and signed;
       what control has read and written: curl -s http://$CONTROL_LISTEN/metrics | grep webhook_clicks;
       the events: psql -h 127.0.0.1 -U postgres -d $DATABASE -c "SELECT public_id, jsonb_array_length(data->'clicks') FROM webhook_events WHERE type = 'link.clicked' ORDER BY id DESC LIMIT 5")
  clickhouse-client --query 'SELECT ts, code, country, device, browser FROM analytics.clicks ORDER BY ts DESC LIMIT 5'
  deploy/cluster.sh up      # past one machine: a three-node JetStream cluster on 4231-4233 (docs/ARCHITECTURE.md)
  deploy/up.sh down
EOF
