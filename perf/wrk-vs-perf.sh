#!/usr/bin/env bash
# The load generator against wrk (Lua script, random path per request), both
# on one pinned client core, against the same server, alternating, in the
# same run. Prints requests/s and client CPU time per request of each.
#
# Usage: perf/wrk-vs-perf.sh TARGET CODES LUA OUTDIR [ROUNDS] [SECONDS] [CONNS] [CLIENT_CPU]
#   TARGET   127.0.0.1:PORT of a running server (nginx from prepare.py, the engine, ...)
#   CODES    codes.txt (one code per line); LUA: the matching wrk script
# Client CPU is read from /proc/PID/stat between 1 s after the start and
# 0.5 s before the end, so neither client's start-up (wrk's Lua loads the
# code list; perf builds its request sequence) counts.
set -euo pipefail
TARGET=$1 CODES=$2 LUA=$3 OUT=$4
ROUNDS=${5:-3} SECS=${6:-5} CONNS=${7:-64} CPU=${8:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=perf/scripts/need-tools.sh
. "$ROOT/perf/scripts/need-tools.sh"
need_tools nginx wrk taskset
PERF_BIN=${PERF_BIN:-$ROOT/target/release/perf}
mkdir -p "$OUT"
TCK=$(getconf CLK_TCK)

# CPU ticks (user + system) of a process, all threads.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# sample PID START_DELAY WINDOW -> "ticks seconds" over the window
sample() {
  local pid=$1 t0 t1 c0 c1
  sleep "$2"; c0=$(ticks "$pid"); t0=$(date +%s.%N)
  sleep "$3"; c1=$(ticks "$pid"); t1=$(date +%s.%N)
  echo "$((c1 - c0)) $(echo "$t1 - $t0" | bc -l)"
}

# The wait before sampling: each client's start-up time, measured.
results="$OUT/wrk-vs-perf.tsv"
printf "round\tclient\trps\tcpu_ns_per_req\tp50_us\tp99_us\n" > "$results"
for r in $(seq 1 "$ROUNDS"); do
  # --- wrk ---
  taskset -c "$CPU" wrk -t1 -c"$CONNS" -d"$((SECS + 2))"s --latency -s "$LUA" "http://$TARGET" > "$OUT/wrk-$r.txt" 2>&1 &
  pid=$!
  read -r dt win < <(sample $pid 1.5 "$((SECS - 1))")
  wait $pid
  rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk-$r.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$OUT/wrk-$r.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$OUT/wrk-$r.txt")
  ns=$(echo "$dt / $TCK * 1000000000 / ($win * $rps)" | bc -l)
  printf "%s\twrk\t%.0f\t%.0f\t%s\t%s\n" "$r" "$rps" "$ns" "$p50" "$p99" | tee -a "$results"
  # --- perf load ---
  "$PERF_BIN" load -u "$TARGET" -k "$CODES" -c "$CONNS" -t 1 --pin "$CPU" -d "$((SECS + 1))" --warmup 1 \
    --json "$OUT/perf-$r.json" > "$OUT/perf-$r.txt" 2>&1 &
  pid=$!
  read -r dt win < <(sample $pid 1.5 "$((SECS - 1))")
  wait $pid
  read -r rps p50 p99 < <(python3 -c "import json,sys; j=json.load(open(sys.argv[1])); l=j['latency_us']; print(j['rps'], l['p50'], l['p99'])" "$OUT/perf-$r.json")
  ns=$(echo "$dt / $TCK * 1000000000 / ($win * $rps)" | bc -l)
  printf "%s\tperf\t%.0f\t%.0f\t%.0fus\t%.0fus\n" "$r" "$rps" "$ns" "$p50" "$p99" | tee -a "$results"
done
python3 - "$results" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = {}
for c in ("wrk", "perf"):
    rs = [r for r in rows if r["client"] == c]
    med[c] = (statistics.median(float(r["rps"]) for r in rs), statistics.median(float(r["cpu_ns_per_req"]) for r in rs))
    print(f"{c:5} median {med[c][0]:9.0f} req/s, {med[c][1]:6.0f} ns client CPU per request -> one-core ceiling ~{1e9 / med[c][1]:9.0f} req/s")
print(f"perf/wrk: throughput x{med['perf'][0] / med['wrk'][0]:.2f}, CPU per request x{med['perf'][1] / med['wrk'][1]:.2f}")
PY
