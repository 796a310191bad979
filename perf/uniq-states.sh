#!/usr/bin/env bash
# Visitor states in the rollups, side by side: exact `uniq` (what the rollups held until
# 2026-12-01), `uniqHLL12` and `uniqCombined`, on the same clicks. A measurement, not a test:
# run by hand; everything it makes is in a ClickHouse database of its own, dropped at the end.
#
#   perf/uniq-states.sh                          10,000,000 clicks over 100,000 links, 10 runs
#   CLICKS=1000000 RUNS=5 perf/uniq-states.sh    a quick check
#
#  1. the clicks of perf/dashboard.sh (scripts/dashboard-clicks.sql: Zipf links, the hottest
#     about 6 % of them, three million visitors over 30 days) into a `clicks` table with the
#     sidecar's columns, without views;
#  2. for each state, the series rollups per hour and day and the wide ones per hour and day
#     (keys as analytics/src/schema.rs makes them), each filled by one INSERT ... SELECT and
#     merged (OPTIMIZE FINAL): insert time, bytes on disk;
#  3. the hottest link's queries, as control sends them (stats/rollups.rs), RUNS times each,
#     the states alternated: the 7-day hourly series and the 30-day daily series (series
#     rollups), the 30-day country breakdown (wide day rollup); median and max server time
#     (clickhouse-client --time);
#  4. the error of every series point of the hottest link against uniqExact over the raw rows.
# Writes perf/results/<UTC date-time>-uniq-states/ (or $OUT): summary.md, raw.tsv, machine.txt.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLICKS=${CLICKS:-10000000}
LINKS=${LINKS:-100000}
RUNS=${RUNS:-10}
STATES=${STATES:-"uniq uniqHLL12 uniqCombined"}
OUT=${OUT:-$ROOT/perf/results/$(date -u +%Y-%m-%dT%H-%M)-uniq-states}
DB=uniqbench_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
ORG=1
mkdir -p "$OUT"
log() { echo "[uniq-states.sh $(date -u +%H:%M:%S)] $*" >&2; }
ch() { clickhouse-client --multiquery -q "$1"; }
trap 'clickhouse-client -q "DROP DATABASE IF EXISTS $DB" || true' EXIT

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "git: $(git -C "$ROOT" rev-parse --short HEAD)"
  echo "cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "clickhouse: $(clickhouse-client -q 'SELECT version()')"
  echo "CLICKS=$CLICKS LINKS=$LINKS RUNS=$RUNS STATES=$STATES"
  echo "uptime before: $(uptime)"
} > "$OUT/machine.txt"

log "inserting $CLICKS clicks into $DB"
ch "CREATE DATABASE $DB;
CREATE TABLE $DB.clicks (
  event_id FixedString(16), ts DateTime, ts_ms UInt64, batch_id FixedString(16), node String,
  code String, status UInt16, host String, domain String, ip_prefix String, country String,
  city String, device String, browser String, os String, referrer_host String,
  accept_language String, language String, is_bot UInt8, is_preview UInt8,
  visitor_hash UInt64, org_id UInt64, rule UInt16
) ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (code, ts);
CREATE TABLE $DB.bench_links (rank UInt32, code String, domain String) ENGINE = Memory;
INSERT INTO $DB.bench_links SELECT toUInt32(number), concat('l', toString(number)), 'sho.rt' FROM numbers($LINKS);"
NOW=$(date +%s)
t0=$(date +%s.%N)
ch "$(sed -e "s/{db}/$DB/g" -e "s/{org}/$ORG/g" -e "s/{n}/$CLICKS/g" -e "s/{links}/$LINKS/g" \
  -e "s/{now}/$NOW/g" "$ROOT/perf/scripts/dashboard-clicks.sql")"
echo "clicks: $CLICKS inserted in $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-6) s (no views)" > "$OUT/summary.md"
HOT=l0
echo "hottest link: $(ch "SELECT count() FROM $DB.clicks WHERE code = '$HOT'") clicks, $(ch "SELECT uniqExact(visitor_hash) FROM $DB.clicks WHERE code = '$HOT' AND is_bot = 0") distinct human visitors" >> "$OUT/summary.md"

SERIES="domain, rule, status, is_bot, is_preview"
WIDE="rule, status, country, device, browser, os, referrer_host, is_bot, is_preview, domain, city, language"
cols() { # name list with types, for CREATE
  local out="" c
  for c in ${1//,/}; do
    case $c in
      rule | status) out+="$c UInt16, " ;;
      is_bot | is_preview) out+="$c UInt8, " ;;
      *) out+="$c String, " ;;
    esac
  done
  echo "$out"
}
{
  echo
  echo "| state | table | rows | bytes on disk | insert + OPTIMIZE FINAL, s |"
  echo "| --- | --- | ---: | ---: | ---: |"
} >> "$OUT/summary.md"
for s in $STATES; do
  for shape in series wide; do
    keys=$SERIES
    [[ $shape == wide ]] && keys=$WIDE
    for b in hour day; do
      expr="toStartOfHour(ts, 'UTC')" type=DateTime
      [[ $b == day ]] && expr="toDate(ts, 'UTC')" type=Date
      t=${shape}_${b}_$s
      log "$t"
      t0=$(date +%s.%N)
      ch "CREATE TABLE $DB.$t (org_id UInt64, code String, $b $type, $(cols "$keys")
            clicks AggregateFunction(count), visitors AggregateFunction($s, UInt64))
          ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM($b) ORDER BY (org_id, code, $b, $keys);
          INSERT INTO $DB.$t SELECT org_id, code, $expr AS $b, $keys, countState(), ${s}State(visitor_hash)
            FROM $DB.clicks GROUP BY org_id, code, $b, $keys;
          OPTIMIZE TABLE $DB.$t FINAL"
      secs=$(echo "$(date +%s.%N) - $t0" | bc | cut -c1-6)
      echo "| $s | $shape per $b | $(ch "SELECT sum(rows) FROM system.parts WHERE database = '$DB' AND table = '$t' AND active") | $(ch "SELECT formatReadableSize(sum(bytes_on_disk)) FROM system.parts WHERE database = '$DB' AND table = '$t' AND active") | $secs |" >> "$OUT/summary.md"
    done
  done
done

# The hottest link's queries, as control's `merged` sends them (one part each: whole hours,
# whole days), people only.
FILTER="org_id IN (0, $ORG) AND code = '$HOT' AND domain = 'sho.rt' AND status IN (301, 302, 307, 308) AND is_bot = 0"
H_TO=$((NOW / 3600 * 3600)) H_FROM=$((NOW / 3600 * 3600 - 7 * 86400))
D_TO=$((NOW / 86400 * 86400)) D_FROM=$((NOW / 86400 * 86400 - 30 * 86400))
query() { # state, name
  case $2 in
    hourly-7d) echo "SELECT key, countMerge(c) AS clicks, ${1}Merge(v) AS visitors FROM (SELECT toUInt32(toStartOfHour(hour, 'UTC')) AS key, clicks AS c, visitors AS v FROM $DB.series_hour_$1 WHERE $FILTER AND hour >= toDateTime($H_FROM) AND hour < toDateTime($H_TO)) GROUP BY key ORDER BY key" ;;
    daily-30d) echo "SELECT key, countMerge(c) AS clicks, ${1}Merge(v) AS visitors FROM (SELECT toUInt32(toUInt32(day) * 86400) AS key, clicks AS c, visitors AS v FROM $DB.series_day_$1 WHERE $FILTER AND day >= toDate(toDateTime($D_FROM), 'UTC') AND day < toDate(toDateTime($D_TO), 'UTC')) GROUP BY key ORDER BY key" ;;
    totals-30d) echo "SELECT key, countMerge(c) AS clicks, ${1}Merge(v) AS visitors FROM (SELECT toUInt32(0) AS key, clicks AS c, visitors AS v FROM $DB.series_day_$1 WHERE $FILTER AND day >= toDate(toDateTime($D_FROM), 'UTC') AND day < toDate(toDateTime($D_TO), 'UTC')) GROUP BY key" ;;
    country-30d) echo "SELECT key, countMerge(c) AS clicks, ${1}Merge(v) AS visitors FROM (SELECT toString(country) AS key, clicks AS c, visitors AS v FROM $DB.wide_day_$1 WHERE $FILTER AND day >= toDate(toDateTime($D_FROM), 'UTC') AND day < toDate(toDateTime($D_TO), 'UTC')) GROUP BY key ORDER BY clicks DESC LIMIT 10" ;;
    hourly-7d-wide) echo "SELECT key, countMerge(c) AS clicks, ${1}Merge(v) AS visitors FROM (SELECT toUInt32(toStartOfHour(hour, 'UTC')) AS key, clicks AS c, visitors AS v FROM $DB.wide_hour_$1 WHERE $FILTER AND hour >= toDateTime($H_FROM) AND hour < toDateTime($H_TO)) GROUP BY key ORDER BY key" ;;
  esac
}
QUERIES="hourly-7d daily-30d totals-30d country-30d hourly-7d-wide"
echo "uptime before the queries: $(uptime)" >> "$OUT/machine.txt"
log "queries, $RUNS runs each"
: > "$OUT/raw.tsv"
for q in $QUERIES; do
  for s in $STATES; do clickhouse-client -q "$(query "$s" "$q")" > /dev/null; done # warm
  for ((i = 0; i < RUNS; i++)); do
    for s in $STATES; do
      secs=$(clickhouse-client --time -q "$(query "$s" "$q")" 2>&1 > /dev/null | tail -1)
      printf '%s\t%s\t%s\n' "$q" "$s" "$secs" >> "$OUT/raw.tsv"
    done
  done
done
echo "uptime after the queries: $(uptime)" >> "$OUT/machine.txt"
{
  echo
  echo "Hottest link ($HOT), server time per query over $RUNS runs, ms: median (max)"
  echo
  printf '| query |'; for s in $STATES; do printf ' %s |' "$s"; done; echo
  printf '| --- |'; for s in $STATES; do printf ' ---: |'; done; echo
  for q in $QUERIES; do
    printf '| %s |' "$q"
    for s in $STATES; do
      awk -F'\t' -v q="$q" -v s="$s" '$1 == q && $2 == s { print $3 * 1000 }' "$OUT/raw.tsv" | sort -n |
        awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf " %.1f (%.1f) |", m, v[NR] }'
    done
    echo
  done
} >> "$OUT/summary.md"

# Error of each series point (hourly over 7 days, daily over 30) against the raw rows.
RAW_FILTER="code = '$HOT' AND domain = 'sho.rt' AND status IN (301, 302, 307, 308) AND is_bot = 0"
{
  echo
  echo "Visitors per series point of the hottest link against uniqExact over the raw rows: |error| in %, mean / p99 / max"
  echo
  printf '| series (distinct visitors per point) |'; for s in $STATES; do printf ' %s |' "$s"; done; echo
  printf '| --- |'; for s in $STATES; do printf ' ---: |'; done; echo
  for q in hourly-7d daily-30d totals-30d; do
    case $q in
      hourly-7d) exact="SELECT toUInt32(toStartOfHour(ts, 'UTC')) AS key, uniqExact(visitor_hash) AS n FROM $DB.clicks WHERE $RAW_FILTER AND ts >= toDateTime($H_FROM) AND ts < toDateTime($H_TO) GROUP BY key" ;;
      daily-30d) exact="SELECT toUInt32(toUInt32(toDate(ts, 'UTC')) * 86400) AS key, uniqExact(visitor_hash) AS n FROM $DB.clicks WHERE $RAW_FILTER AND toDate(ts, 'UTC') >= toDate(toDateTime($D_FROM), 'UTC') AND toDate(ts, 'UTC') < toDate(toDateTime($D_TO), 'UTC') GROUP BY key" ;;
      totals-30d) exact="SELECT toUInt32(0) AS key, uniqExact(visitor_hash) AS n FROM $DB.clicks WHERE $RAW_FILTER AND toDate(ts, 'UTC') >= toDate(toDateTime($D_FROM), 'UTC') AND toDate(ts, 'UTC') < toDate(toDateTime($D_TO), 'UTC')" ;;
    esac
    printf '| %s (%s) |' "$q" "$(ch "SELECT concat(toString(min(n)), '-', toString(max(n))) FROM ($exact)")"
    for s in $STATES; do
      printf ' %s |' "$(ch "SELECT concat(toString(round(avg(e), 2)), ' / ', toString(round(quantileExact(0.99)(e), 2)), ' / ', toString(round(max(e), 2)))
        FROM (SELECT 100 * abs(toInt64(visitors) - toInt64(n)) / n AS e FROM ($(query "$s" "$q")) ANY INNER JOIN ($exact) USING key)")"
    done
    echo
  done
} >> "$OUT/summary.md"
cat "$OUT/summary.md"
