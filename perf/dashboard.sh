#!/usr/bin/env bash
# The dashboard benchmark (issue 14: "dashboard pages answer in under 100 ms p95 for an
# organization with 100k links and 10M clicks"). A measurement, not a test: it is long
# and times things, so it is run by hand on a quiet machine and kept out of CI.
#
#   perf/dashboard.sh                  100,000 links, 10,000,000 clicks, 200 requests a page
#   LINKS=10000 CLICKS=1000000 REQUESTS=50 OUT=/tmp/dash perf/dashboard.sh   # a quick check
#   KEEP=1 SEED_ONLY=1 perf/dashboard.sh   # seed only, and keep both databases (to study queries)
#   BIN=target/debug SKIP_BUILD=1 ...      # other binaries (timings then mean little)
#
# What it does, all on loopback, everything it makes removed at the end (also on failure):
#  1. builds the release binaries (control, analytics, perf) unless SKIP_BUILD=1;
#  2. makes a PostgreSQL database and a ClickHouse database of its own (unique names);
#     `control serve` migrates the first, the analytics sidecar (started once, stopped as
#     soon as it is ready, on a JetStream stream of its own) makes its tables and rollup
#     views in the second: the schema is the real one, not a copy;
#  3. one organization: an owner, four other members and five API keys (control's CLI),
#     two custom domains claimed through the dashboard's own form (signed-in cookie and
#     the form's CSRF token, as a browser sends them), and LINKS links imported by
#     `control import` (so every row, sequence and outbox entry is what control writes):
#     most on the default domain, a fifth on go.brand.example, a couple of hundred on
#     links.shop.example; realistic targets, titles and tags;
#  4. CLICKS clicks over the last 30 days in one `INSERT ... SELECT FROM numbers(N)` into
#     the sidecar's `clicks` table, the views filling the rollups: links drawn Zipf-like
#     (the hottest gets about 6 %, the coldest a handful), correlated countries, cities,
#     languages, devices, OSes and browsers, referrers with a long tail, 5 % bots (a
#     quarter of them link-preview fetchers); then the rollups are merged (OPTIMIZE ...
#     FINAL, what the background merges reach on their own) and both databases analyzed;
#  5. the owner signs in through the sign-in form, and `perf pages` asks every page
#     (list: first page, a page deep in the list by its cursor, searches, tag and domain
#     filters; the hottest and a tail link's page in each chart range; overview, keys,
#     members, domains, a domain's page, audit log) WARMUP times, then REQUESTS times in
#     a row, then CONCURRENT_REQUESTS times over CONCURRENCY connections, measuring on
#     the client; any answer but 200 fails the run;
#  6. writes perf/results/<UTC date-time>-dashboard/ (or $OUT): machine.txt, commands.txt,
#     pages.tsv, results.json, table.md and summary.md (the table), seed.txt (what was
#     made and how long it took), clicks.sql (the statement that made the clicks) and
#     control.log.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
LINKS=${LINKS:-100000}
CLICKS=${CLICKS:-10000000}
REQUESTS=${REQUESTS:-200}
WARMUP=${WARMUP:-10}
CONCURRENCY=${CONCURRENCY:-4}
CONCURRENT_REQUESTS=${CONCURRENT_REQUESTS:-100}
TARGET_MS=${TARGET_MS:-100}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
CH_URL=${CH_URL:-http://127.0.0.1:8123}
NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
OUT=${OUT:-$ROOT/perf/results/$(date -u +%Y-%m-%dT%H-%M)-dashboard}
BIN=${BIN:-$ROOT/target/release}
RUN_ID=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
DB=dashbench_$RUN_ID
CH_DB=dashbench_$RUN_ID
STREAM=DASHBENCH_$RUN_ID
ORG=bench
DEFAULT_DOMAIN=sho.rt
log() { echo "[dashboard.sh $(date -u +%H:%M:%S)] $*" >&2; }
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/dashbench.XXXXXX)
echo "perf/dashboard.sh  (LINKS=$LINKS CLICKS=$CLICKS REQUESTS=$REQUESTS WARMUP=$WARMUP CONCURRENCY=$CONCURRENCY CONCURRENT_REQUESTS=$CONCURRENT_REQUESTS TARGET_MS=$TARGET_MS)" > "$OUT/commands.txt"
cmd() { echo "$*" >> "$OUT/commands.txt"; "$@"; }

# shellcheck source=perf/scripts/jetstream.sh
. "$ROOT/perf/scripts/jetstream.sh"

psql_db() { psql "$PG/$DB" -v ON_ERROR_STOP=1 -qtAX "$@"; }
# ch SQL: one ClickHouse statement over HTTP (the body), its output on stdout.
ch() {
  local out
  if ! out=$(curl -sS --fail-with-body "$CH_URL/" --data-binary "$1" 2>&1); then
    echo "ClickHouse: $out" >&2
    echo "  in: ${1:0:300}" >&2
    return 1
  fi
  [[ -z $out ]] || printf '%s\n' "$out"
}

PIDS=()
cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -s $WORK/control.log ]] && cp "$WORK/control.log" "$OUT/control.log"
  if [[ -n ${KEEP:-} ]]; then
    log "kept PostgreSQL database $DB and ClickHouse database $CH_DB (drop them by hand)"
  else
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" > /dev/null 2>&1 ||
      echo "could not drop PostgreSQL database $DB" >&2
    ch "DROP DATABASE IF EXISTS $CH_DB" > /dev/null || echo "could not drop ClickHouse database $CH_DB" >&2
  fi
  js_api "\$JS.API.STREAM.DELETE.$STREAM" > /dev/null 2>&1 || true
  rm -rf "$WORK"
  [[ $rc == 0 ]] || log "FAILED (exit $rc); what there is is in $OUT"
}
trap cleanup EXIT

wait_ready() {
  for _ in $(seq 1 600); do
    if grep -q '"ready"' "$1" 2>/dev/null; then
      python3 -c 'import json,sys; print(next(json.loads(l)[sys.argv[2]] for l in open(sys.argv[1]) if "ready" in l))' "$1" "$2"
      return
    fi
    sleep 0.1
  done
  echo "no readiness line in $1:" >&2; tail -5 "${1%.out}.log" >&2; exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- 1. binaries ---
deploy/services.sh up > /dev/null
if [[ -z ${SKIP_BUILD:-} ]]; then
  log "building release binaries"
  cmd cargo build --release --locked -p control -p analytics -p perf
fi

{
  echo "date: $(date -u +%FT%TZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
  echo "cores: $(nproc)"
  echo "kernel: $(uname -r)"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "git: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- control analytics perf || echo ' (control/, analytics/ or perf/ modified)')"
  echo "postgresql: $(psql "$PG/postgres" -tAc 'SHOW server_version')"
  echo "clickhouse: $(ch 'SELECT version()')"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# --- 2. databases and services ---
seed_start=$(date +%s)
SECONDS=0
cmd psql "$PG/postgres" -qc "CREATE DATABASE $DB"
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
c=("$BIN/control" serve --listen "127.0.0.1:$PORT" --public-url "$BASE" --database-url "$PG/$DB"
   --default-domain "$DEFAULT_DOMAIN" --short-base "https://$DEFAULT_DOMAIN"
   --clickhouse "$CH_URL" --clickhouse-database "$CH_DB" --snapshot-dir "$WORK/snapshots"
   --snapshot-interval-secs 3600 --purge-interval-secs 86400
   --rate-per-ip 100000 --burst-per-ip 100000 --rate-per-key 100000 --burst-per-key 100000
   --login-rate-per-ip 100 --login-burst-per-ip 100)
echo "${c[*]}" >> "$OUT/commands.txt"
RUST_LOG=${RUST_LOG:-warn} "${c[@]}" > "$WORK/control.out" 2> "$WORK/control.log" &
PIDS+=($!)
wait_ready "$WORK/control.out" listen > /dev/null
log "control ready on $BASE (database $DB)"

metrics_port=$(free_port)
c=("$BIN/analytics" run --nats "$NATS_URL" --clickhouse "$CH_URL" --database "$CH_DB"
   --stream "$STREAM" --subjects "dashbench.$RUN_ID.>" --consumer dashbench
   --metrics "127.0.0.1:$metrics_port")
echo "${c[*]}" >> "$OUT/commands.txt"
RUST_LOG=warn "${c[@]}" > "$WORK/analytics.out" 2> "$WORK/analytics.log" &
apid=$!
PIDS+=($apid)
wait_ready "$WORK/analytics.out" metrics > /dev/null
kill "$apid"; wait "$apid" 2>/dev/null || true
js_api "\$JS.API.STREAM.DELETE.$STREAM" > /dev/null 2>&1 || true
log "ClickHouse database $CH_DB made by the analytics sidecar: $(ch "SELECT arrayStringConcat(groupArray(name), ' ') FROM system.tables WHERE database = '$CH_DB'")"

# --- 3. the organization ---
printf 'bench owner password 1\n' > "$WORK/password"
ctl() { RUST_LOG=warn "$BIN/control" "$@" --database-url "$PG/$DB"; }
ctl users create --email owner@bench.example --org "$ORG" --role owner --password-file "$WORK/password" > /dev/null
for r in admin editor editor viewer; do
  ctl users create --email "$r$RANDOM@bench.example" --org "$ORG" --role "$r" --password-file "$WORK/password" > /dev/null
done
for k in ci:links:write,stats:read reporting:stats:read backup:links:read admin:admin zapier:links:write; do
  ctl keys create --org "$ORG" --name "${k%%:*}" --scopes "${k#*:}" > /dev/null
done
ORG_ID=$(psql_db -c "SELECT id FROM organizations WHERE name = '$ORG'")

# Sign in as a browser does: the form, its POST from this origin, the cookie.
signin() {
  curl -sS -c "$WORK/cookies" -o /dev/null "$BASE/signin"
  local code
  code=$(curl -sS -b "$WORK/cookies" -c "$WORK/cookies" -o /dev/null -w '%{http_code}' \
    -H "Origin: $BASE" -H 'Sec-Fetch-Site: same-origin' \
    --data-urlencode email=owner@bench.example --data-urlencode "password=$(cat "$WORK/password")" \
    "$BASE/signin")
  [[ $code == 303 ]] || { echo "sign-in answered $code, not 303" >&2; exit 1; }
  COOKIE=$(awk '$0 !~ /^#/ || /^#HttpOnly_/ { if (NF >= 7) printf "%s=%s", $6, $7 }' "$WORK/cookies")
  [[ -n $COOKIE ]] || { echo "sign-in set no cookie" >&2; exit 1; }
  local home
  home=$(curl -sS -b "$WORK/cookies" -o /dev/null -w '%{redirect_url}' "$BASE/")
  [[ $home == */o/$ORG_ID ]] || { echo "/ sent the owner to $home, not /o/$ORG_ID" >&2; exit 1; }
  CSRF=$(curl -sS -b "$WORK/cookies" "$BASE/o/$ORG_ID" | grep -o 'name="csrf" value="[^"]*"' | head -1 | cut -d'"' -f4)
  [[ -n $CSRF ]] || { echo "no CSRF token in the overview's forms" >&2; exit 1; }
}
signin
for d in go.brand.example links.shop.example; do
  code=$(curl -sS -b "$WORK/cookies" -o /dev/null -w '%{http_code}' -H "Origin: $BASE" \
    --data-urlencode "csrf=$CSRF" --data-urlencode "name=$d" "$BASE/o/$ORG_ID/domains")
  [[ $code == 303 ]] || { echo "claiming $d answered $code, not 303" >&2; exit 1; }
done

log "writing and importing $LINKS links"
python3 - "$LINKS" "$WORK" <<'PY'
import random, sys
n, work = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(14)
alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
sites = ["https://www.example-shop.com/products/", "https://blog.example.org/posts/",
         "https://news.example.net/articles/", "https://docs.example.io/guides/",
         "https://www.example.com/landing/", "https://events.example.co/tickets/",
         "https://careers.example.com/jobs/", "https://app.example.dev/signup/"]
words = ["winter", "sale", "launch", "pricing", "webinar", "release", "guide", "shoes",
         "jacket", "coffee", "travel", "summit", "report", "podcast", "recipe", "garden",
         "laptop", "camera", "yoga", "budget", "kids", "vintage", "coupon", "update"]
campaigns = ["newsletter", "social", "ads", "partners", "print", "email", "spring", "holiday"]
small = 200 if n >= 2000 else max(1, n // 10)
files = {"default": open(f"{work}/links-default.csv", "w"),
         "go.brand.example": open(f"{work}/links-brand.csv", "w"),
         "links.shop.example": open(f"{work}/links-shop.csv", "w")}
for f in files.values():
    f.write("target,code,title,tags\n")
seen = set()
for i in range(n):
    while True:
        code = "".join(rnd.choice(alphabet) for _ in range(7))
        if code not in seen:
            seen.add(code); break
    slug = "-".join(rnd.sample(words, 3)) + f"-{i}"
    site = rnd.choice(sites)
    target = f"{site}{slug}?utm_source={rnd.choice(campaigns)}&utm_medium=link"
    title = slug.replace("-", " ").capitalize() if rnd.random() < 0.7 else ""
    tags = [rnd.choice(campaigns), f"team-{i % 50}"]
    if rnd.random() < 0.1:
        tags.append(f"q{rnd.randint(1, 4)}-2026")
    domain = ("links.shop.example" if i < small
              else "go.brand.example" if i % 5 == 0 else "default")
    files[domain].write(f'{target},{code},"{title}",{"|".join(tags)}\n')
for f in files.values():
    f.close()
PY
for f in default brand shop; do
  domain=(); [[ $f == brand ]] && domain=(--domain go.brand.example)
  [[ $f == shop ]] && domain=(--domain links.shop.example)
  echo "control import --from csv links-$f.csv --org $ORG ${domain[*]}" >> "$OUT/commands.txt"
  ctl import --from csv "$WORK/links-$f.csv" --org "$ORG" "${domain[@]}" --short-base "https://$DEFAULT_DOMAIN" | tail -1 >&2
done
links=$(psql_db -c "SELECT count(*) FROM links WHERE org_id = $ORG_ID AND deleted_at IS NULL")
outbox=$(psql_db -c "SELECT count(*) FROM link_outbox")
[[ $links == "$LINKS" ]] || { echo "$links links imported, not $LINKS" >&2; exit 1; }
import_secs=$SECONDS

# --- 4. clicks ---
log "inserting $CLICKS clicks"
ch "CREATE TABLE $CH_DB.bench_links (rank UInt32, code String, domain String) ENGINE = Memory"
# The links in a fixed shuffled order: rank 0 is the hottest.
psql_db -c "\\copy (SELECT row_number() OVER (ORDER BY md5(l.code)) - 1, l.code,
                    CASE WHEN l.domain_id = 0 THEN '$DEFAULT_DOMAIN' ELSE d.name END
               FROM links l JOIN domains d ON d.id = l.domain_id WHERE l.org_id = $ORG_ID) TO STDOUT" |
  curl -sS --fail-with-body "$CH_URL/?query=INSERT%20INTO%20$CH_DB.bench_links%20FORMAT%20TabSeparated" --data-binary @- > /dev/null
NOW=$(date +%s)
sed -e "s/{db}/$CH_DB/g" -e "s/{org}/$ORG_ID/g" -e "s/{n}/$CLICKS/g" -e "s/{links}/$LINKS/g" -e "s/{now}/$NOW/g" \
  "$ROOT/perf/scripts/dashboard-clicks.sql" > "$WORK/clicks.sql"
cp "$WORK/clicks.sql" "$OUT/clicks.sql"
t0=$SECONDS
ch "$(cat "$WORK/clicks.sql")"
insert_secs=$((SECONDS - t0))
t0=$SECONDS
# Every rollup the sidecar made (wide and series), by name, so a new one is merged too.
ROLLUP_TABLES=$(ch "SELECT name FROM system.tables WHERE database = '$CH_DB' AND match(name, '^org_[a-z]+_per_[a-z]+(_hll)?\$') ORDER BY name FORMAT TabSeparated")
for t in $ROLLUP_TABLES; do
  ch "OPTIMIZE TABLE $CH_DB.$t FINAL"
done
optimize_secs=$((SECONDS - t0))
HOT=$(ch "SELECT code, domain FROM $CH_DB.bench_links WHERE rank = 0 FORMAT TabSeparated")
TAIL=$(ch "SELECT code, domain FROM $CH_DB.bench_links WHERE rank = $((LINKS - 1)) FORMAT TabSeparated")
ch "DROP TABLE $CH_DB.bench_links"
psql_db -c "VACUUM ANALYZE"
{
  echo "organization $ORG (id $ORG_ID): $links live links ($(psql_db -c "SELECT string_agg(n || ' on ' || d, ', ') FROM (SELECT CASE WHEN domain_id = 0 THEN '$DEFAULT_DOMAIN' ELSE (SELECT name FROM domains WHERE id = domain_id) END AS d, count(*) AS n FROM links GROUP BY 1 ORDER BY 2 DESC) x")), $outbox outbox rows, $(psql_db -c "SELECT count(*) FROM memberships WHERE org_id = $ORG_ID") members, $(psql_db -c "SELECT count(*) FROM api_keys WHERE org_id = $ORG_ID") keys, $(psql_db -c "SELECT count(*) FROM audit_log WHERE org_id = $ORG_ID") audit entries"
  echo "links made in ${import_secs} s (users, keys, domains, control import)"
  echo "clicks: $(ch "SELECT count() FROM $CH_DB.clicks") rows, $(ch "SELECT toString(min(ts)) || ' to ' || toString(max(ts)) FROM $CH_DB.clicks"), inserted in ${insert_secs} s; rollups merged (OPTIMIZE FINAL) in ${optimize_secs} s"
  for t in clicks $ROLLUP_TABLES; do
    echo "  $t: $(ch "SELECT sum(rows), formatReadableSize(sum(bytes)), count() FROM system.parts WHERE database = '$CH_DB' AND table = '$t' AND active FORMAT TabSeparated" | awk -F'\t' '{printf "%s rows, %s, %s parts", $1, $2, $3}')"
  done
  echo "hottest link: ${HOT//$'\t'/ on } ($(ch "SELECT count() FROM $CH_DB.clicks WHERE code = '${HOT%%$'\t'*}'") clicks); a tail link: ${TAIL//$'\t'/ on } ($(ch "SELECT count() FROM $CH_DB.clicks WHERE code = '${TAIL%%$'\t'*}'") clicks)"
  echo "top 10 links: $(ch "SELECT round(100 * sum(c) / $CLICKS, 1) FROM (SELECT count() AS c FROM $CH_DB.clicks GROUP BY code ORDER BY c DESC LIMIT 10)") % of the clicks; bots $(ch "SELECT round(100 * avg(is_bot), 1) FROM $CH_DB.clicks") %"
  echo "seeding took $(( $(date +%s) - seed_start )) s"
} > "$OUT/seed.txt"
cat "$OUT/seed.txt" >&2
if [[ -n ${SEED_ONLY:-} ]]; then
  log "SEED_ONLY: not asking the pages"
  exit 0
fi

# --- 5. the pages ---
signin
first=$(curl -sS -b "$WORK/cookies" "$BASE/o/$ORG_ID/links")
cursor=$(grep -o 'cursor=[0-9a-f]*' <<< "$first" | head -1 | cut -d= -f2)
[[ -n $cursor ]] || { echo "the links list has no next page" >&2; exit 1; }
# A cursor is hex of "<tag>:<last id>": the same tag with the organization's middle link.
tag=$(xxd -r -p <<< "$cursor" | cut -d: -f1)
mid=$(psql_db -c "SELECT id FROM links WHERE org_id = $ORG_ID ORDER BY id OFFSET $((LINKS / 2)) LIMIT 1")
deep=$(printf '%s:%s' "$tag" "$mid" | xxd -p | tr -d '\n')
word=$(psql_db -c "SELECT split_part(split_part(target, '/', 5), '-', 1) FROM links WHERE org_id = $ORG_ID ORDER BY id LIMIT 1")
rare=$(psql_db -c "SELECT split_part(target, '?', 1) FROM links WHERE org_id = $ORG_ID ORDER BY id DESC OFFSET $((LINKS / 3)) LIMIT 1" | sed 's|.*/||')
# link_page CODE<TAB>DOMAIN SUFFIX [QUERY]: a link's page (SUFFIX /edit: its form).
link_page() {
  local code=${1%%$'\t'*} domain=${1#*$'\t'} q=${3:-}
  [[ $domain == "$DEFAULT_DOMAIN" ]] || q="domain=$domain${q:+&$q}"
  echo "/o/$ORG_ID/links/$code$2${q:+?$q}"
}
o=/o/$ORG_ID
{
  printf 'overview\t%s\n' "$o"
  printf 'links, first page\t%s/links\n' "$o"
  printf 'links, deep page (cursor, %s links in)\t%s/links?cursor=%s\n' "$((LINKS / 2))" "$o" "$deep"
  printf 'links, search, common word (%s)\t%s/links?q=%s\n' "$word" "$o" "$word"
  printf 'links, search, one link\t%s/links?q=%s\n' "$o" "$rare"
  printf 'links, search, no match\t%s/links?q=nowhere-to-be-found\n' "$o"
  printf 'links, tag (1 in 50)\t%s/links?tag=team-7\n' "$o"
  printf 'links, tag (1 in 8)\t%s/links?tag=newsletter\n' "$o"
  printf 'links, tag + search\t%s/links?tag=newsletter&q=%s\n' "$o" "$word"
  printf 'links, domain (1 in 5)\t%s/links?domain=go.brand.example\n' "$o"
  printf 'links, domain (200 links)\t%s/links?domain=links.shop.example\n' "$o"
  printf 'links, default domain\t%s/links?domain=%s\n' "$o" "$DEFAULT_DOMAIN"
  for b in minute hour day; do
    printf 'hottest link, %s chart\t%s\n' "$b" "$(link_page "$HOT" "" "bucket=$b")"
  done
  for b in minute hour day; do
    printf 'tail link, %s chart\t%s\n' "$b" "$(link_page "$TAIL" "" "bucket=$b")"
  done
  printf 'edit form\t%s\n' "$(link_page "$TAIL" /edit)"
  printf 'keys\t%s/keys\n' "$o"
  printf 'members\t%s/members\n' "$o"
  printf 'domains\t%s/domains\n' "$o"
  printf 'domain page\t%s/domains/go.brand.example\n' "$o"
  printf 'audit log\t%s/audit\n' "$o"
} > "$OUT/pages.tsv"
log "asking $(wc -l < "$OUT/pages.tsv") pages ($WARMUP + $REQUESTS in a row, $CONCURRENT_REQUESTS over $CONCURRENCY connections)"
c=("$BIN/perf" pages -u "127.0.0.1:$PORT" --pages "$OUT/pages.tsv" --cookie "$COOKIE"
   --warmup "$WARMUP" -n "$REQUESTS" -c "$CONCURRENCY" --concurrent-requests "$CONCURRENT_REQUESTS"
   --target-ms "$TARGET_MS" --json "$OUT/results.json")
echo "${c[*]/$COOKIE/<session cookie>}" >> "$OUT/commands.txt"
"${c[@]}" > "$OUT/table.md"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"

{
  echo "# Dashboard benchmark, $(date -u +%F)"
  echo
  cat "$OUT/machine.txt"
  echo
  cat "$OUT/seed.txt"
  echo
  echo "Per page: $WARMUP requests unmeasured, $REQUESTS in a row on one kept-alive connection (p50 .. max),"
  echo "then $CONCURRENT_REQUESTS over $CONCURRENCY connections at once (concurrent columns); latency on the client, ms."
  echo
  cat "$OUT/table.md"
} > "$OUT/summary.md"
cat "$OUT/table.md"
over=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sum(1 for p in r if p["p95_ms"] >= float(sys.argv[2])))' "$OUT/results.json" "$TARGET_MS")
log "results in $OUT; $over page/phase rows at or over the p95 target of $TARGET_MS ms"
