#!/usr/bin/env bash
# The dashboard's main pages over an organization of 100k links: a measurement script,
# not a test (it times things; run it on a quiet machine, and read its numbers as
# indicative on a shared one).
#
#   control/bench/dashboard.sh [N]     N requests per page (default 50)
#
# It makes a scratch database, starts `control serve` on a free loopback port (the
# binary of $PROFILE, default release, built if missing), seeds an organization with
# LINKS links (default 100000; inserted with SQL, so no outbox rows: this measures
# reads), signs in as its owner through POST /v1/session, requests each page N times
# with curl, and prints p50 / p95 / max milliseconds per page. Everything it made is
# removed at the end. No ClickHouse: the stats parts of the pages say so, and cost a
# connection refusal, not a query.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
N="${1:-50}"
LINKS="${LINKS:-100000}"
PROFILE="${PROFILE:-release}"
case "$PROFILE" in dev) target_dir=debug ;; *) target_dir="$PROFILE" ;; esac
BIN="$repo/target/$target_dir/control"

deploy/services.sh up >/dev/null
[ -x "$BIN" ] || cargo build --locked --profile "$PROFILE" -p control

db="dashbench_$$"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
url="postgres://postgres@127.0.0.1:5432/$db"
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $db"

"$BIN" serve --listen "127.0.0.1:$port" --public-url "$base" --database-url "$url" \
  --snapshot-dir "$work/snapshots" \
  --rate-per-ip 100000 --burst-per-ip 100000 --rate-per-key 100000 --burst-per-key 100000 \
  >"$work/control.out" 2>"$work/control.log" &
pid=$!
for _ in $(seq 1 300); do grep -q '"event":"ready"' "$work/control.out" && break; sleep 0.1; done
grep -q '"event":"ready"' "$work/control.out" || { grep -v "^ " "$work/control.log" | tail -5 >&2; exit 1; }

printf 'bench password 1234\n' >"$work/password"
"$BIN" users create --email bench@example.com --org bench --role owner \
  --password-file "$work/password" --database-url "$url" >/dev/null
org=$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc "SELECT id FROM organizations WHERE name = 'bench'")
echo "seeding $LINKS links..."
psql -h 127.0.0.1 -U postgres -d "$db" -qc "
  INSERT INTO links (code, org_id, target, title, tags, seq, created_at)
  SELECT 'b' || i, $org, 'https://example.com/page/' || i, 'Page ' || i,
         ARRAY['t' || (i % 50)], 0, now() - make_interval(secs => $LINKS - i)
    FROM generate_series(1, $LINKS) AS i;
  ANALYZE links;"

curl -s -c "$work/cookies" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"bench password 1234"}' "$base/v1/session" >/dev/null
deep=$(curl -s -b "$work/cookies" "$base/o/$org/links" | grep -o 'cursor=[0-9a-f]*' | head -1)

pages=(
  "overview|/o/$org"
  "links, first page|/o/$org/links"
  "links, next page|/o/$org/links?$deep"
  "links, search (hit)|/o/$org/links?q=page/99999"
  "links, search (no hit)|/o/$org/links?q=nowhere"
  "links, tag|/o/$org/links?tag=t7"
  "link page|/o/$org/links/b500"
  "edit form|/o/$org/links/b500/edit"
  "keys|/o/$org/keys"
  "members|/o/$org/members"
  "audit log|/o/$org/audit"
)
printf '\n%-24s %8s %8s %8s   (%s requests each, ms)\n' page p50 p95 max "$N"
for entry in "${pages[@]}"; do
  name=${entry%%|*} path=${entry#*|}
  code=$(curl -s -o /dev/null -w '%{http_code}' -b "$work/cookies" "$base$path")
  [ "$code" = 200 ] || { echo "$name: HTTP $code" >&2; exit 1; }
  for _ in $(seq 1 "$N"); do
    curl -s -o /dev/null -w '%{time_total}\n' -b "$work/cookies" "$base$path"
  done | sort -n | awk -v name="$name" '
    { t[NR] = $1 * 1000 }
    END { p50 = t[int((NR + 1) * 0.50)]; p95 = t[int(NR * 0.95 + 0.5)];
          printf "%-24s %8.1f %8.1f %8.1f\n", name, p50, p95, t[NR] }'
done
