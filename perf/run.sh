#!/usr/bin/env bash
# The side-by-side harness: engine vs nginx vs tokio+hyper, one server core
# each, the load generator on the other core, alternating A B C A B C.
#
# Usage: perf/run.sh [N_LINKS]            (default 1000000)
# Env:   ROUNDS=3  SECS=5 (measured seconds per run)  CONNS=64
#        RATE=10000 (open-loop rate for the latency columns)
#        SERVER_CPU=0  CLIENT_CPU=1  SERVERS="nginx engine hyper"
#        WRK=1 (also run perf/wrk-vs-perf.sh against nginx)  SKIP_BUILD=1
#        WORK=/tmp/perf-harness-N (inputs: links.csv, snapshot, nginx map)
#        DIST=uniform (or zipf, zipf:S)  UNKNOWN=0 (share of unknown codes, 404)
#        INSTRUCTIONS=1 (default where perf stat has no hardware counters): run
#        perf/instructions.sh (valgrind) on INSTR_N=100000 links for the
#        user-space instructions per request column
# Output: perf/results/<UTC date-time>/ with machine.txt, commands.txt,
#         runs/*.json (client) + runs/*.perfstat (server), wrk/, instructions/,
#         summary.md, plot.svg.
set -euo pipefail
N=${1:-1000000}
ROUNDS=${ROUNDS:-3} SECS=${SECS:-5} CONNS=${CONNS:-64} RATE=${RATE:-10000}
SERVER_CPU=${SERVER_CPU:-0} CLIENT_CPU=${CLIENT_CPU:-1}
SERVERS=${SERVERS:-"nginx engine hyper"}
DIST=${DIST:-uniform} UNKNOWN=${UNKNOWN:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/perf-harness-$N}
SUFFIX=
[[ $DIST != uniform || $UNKNOWN != 0 ]] && SUFFIX="-${DIST//:/_}-unknown$UNKNOWN"
OUT=$ROOT/perf/results/$(date -u +%Y-%m-%dT%H-%M)$SUFFIX
BIN=$ROOT/target/release
mkdir -p "$WORK" "$OUT/runs"
log() { echo "[run.sh $(date -u +%H:%M:%S)] $*" >&2; }
echo "perf/run.sh $*  (N=$N ROUNDS=$ROUNDS SECS=$SECS CONNS=$CONNS RATE=$RATE SERVER_CPU=$SERVER_CPU CLIENT_CPU=$CLIENT_CPU SERVERS=\"$SERVERS\" DIST=$DIST UNKNOWN=$UNKNOWN)" > "$OUT/commands.txt"
cmd() { echo "$*" >> "$OUT/commands.txt"; "$@"; }

# --- 1. release binaries (measurement needs them) ---
if [[ -z ${SKIP_BUILD:-} ]]; then
  log "building release binaries"
  (cd "$ROOT" && cmd cargo build --release -p perf -p engine -p snapshots)
fi

# --- 2. inputs, cached per N ---
if [[ ! -s $WORK/links.snap || ! -s $WORK/nginx.conf ]]; then
  log "generating $N links"
  python3 "$ROOT/deploy/gen-links.py" "$N" > "$WORK/links.csv"
  cmd "$BIN/snapshot" build --input "$WORK/links.csv" --output "$WORK/links.snap"
fi
NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cmd python3 "$ROOT/perf/scripts/prepare.py" "$WORK/links.csv" "$WORK" "$NGINX_PORT" "$SERVER_CPU"

# --- 3. the machine ---
HW_COUNTERS=1
if perf stat -e instructions,cycles true 2>&1 | grep -q "not supported"; then HW_COUNTERS=0; fi
{
  echo "date: $(date -u +%FT%TZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
  echo "cores: $(nproc)"
  echo "kernel: $(uname -r)"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "git: $(cd "$ROOT" && git rev-parse --short HEAD)"
  echo "nginx: $(nginx -v 2>&1 | cut -d/ -f2)"
  echo "links: $N, of which $(wc -l < "$WORK/codes.txt") are asked for (codes colliding case-insensitively are left out)"
  echo "hardware counters (instructions, cycles): $([[ $HW_COUNTERS == 1 ]] && echo yes || echo 'not supported on this VM: server cost is CPU time (perf stat task-clock) per request')"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt" >&2
EVENTS=task-clock
[[ $HW_COUNTERS == 1 ]] && EVENTS=task-clock,instructions,cycles

# --- 4. servers ---
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# wait_ready FILE: the JSON readiness line's "listen" field.
wait_ready() {
  for _ in $(seq 1 600); do
    if grep -q '"ready"' "$1" 2>/dev/null; then
      python3 -c 'import json,sys; print(next(json.loads(l)["listen"] for l in open(sys.argv[1]) if "ready" in l))' "$1"
      return
    fi
    sleep 0.1
  done
  echo "no readiness line in $1" >&2; exit 1
}
wait_port() {
  for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done
  echo "port $1 never opened" >&2; exit 1
}

declare -A ADDR SPID
for s in $SERVERS; do
  case $s in
    nginx)
      taskset -c "$SERVER_CPU" nginx -c "$WORK/nginx.conf" -p "$WORK" > "$OUT/nginx.log" 2>&1 &
      PIDS+=($!); wait_port "$NGINX_PORT"
      ADDR[nginx]=127.0.0.1:$NGINX_PORT
      SPID[nginx]=$(pgrep -P "$(cat "$WORK/nginx.pid")" | head -1)   # the worker
      echo "taskset -c $SERVER_CPU nginx -c $WORK/nginx.conf" >> "$OUT/commands.txt" ;;
    engine)
      c=(taskset -c "$SERVER_CPU" "$BIN/engine" serve --snapshot "$WORK/links.snap" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --cores 1)
      echo "${c[*]}" >> "$OUT/commands.txt"
      "${c[@]}" > "$OUT/engine.out" 2> "$OUT/engine.log" &
      PIDS+=($!); SPID[engine]=$!
      ADDR[engine]=$(wait_ready "$OUT/engine.out") ;;
    hyper)
      c=(taskset -c "$SERVER_CPU" "$BIN/perf-hyper-ref" --input "$WORK/links.csv" --listen 127.0.0.1:0)
      echo "${c[*]}" >> "$OUT/commands.txt"
      "${c[@]}" > "$OUT/hyper.out" 2> "$OUT/hyper.log" &
      PIDS+=($!); SPID[hyper]=$!
      ADDR[hyper]=$(wait_ready "$OUT/hyper.out") ;;
    *) echo "unknown server $s" >&2; exit 2 ;;
  esac
  log "$s ready on ${ADDR[$s]} (pid ${SPID[$s]})"
done

# --- 5. rounds, alternating ---
# run SERVER MODE ROUND [extra perf-load flags]: one client run with perf stat
# attached to the server for the measured window (after a 1 s warm-up).
run() {
  local s=$1 mode=$2 r=$3; shift 3
  local base=$OUT/runs/$s-$mode-$r
  local c=("$BIN/perf" load -u "${ADDR[$s]}" -k "$WORK/codes.txt" -c "$CONNS" -t 1 --pin "$CLIENT_CPU"
           -d "$SECS" --warmup 1 --distribution "$DIST" --unknown "$UNKNOWN" --json "$base.json" "$@")
  [[ $r == 1 ]] && echo "${c[*]}" >> "$OUT/commands.txt"
  "${c[@]}" > "$base.txt" 2>&1 &
  local client=$!
  sleep 1
  echo "# window_s=$SECS" > "$base.perfstat"
  perf stat -x, -e "$EVENTS" -p "${SPID[$s]}" -o "$base.perfstat.tmp" -- sleep "$SECS" 2>/dev/null || true
  cat "$base.perfstat.tmp" >> "$base.perfstat"; rm -f "$base.perfstat.tmp"
  wait $client
  log "$s $mode round $r: $(grep -h "requests/s" "$base.txt" | xargs)"
}
echo "perf stat -x, -e $EVENTS -p SERVER_PID -- sleep $SECS   (during each run, after its 1 s warm-up)" >> "$OUT/commands.txt"
for r in $(seq 1 "$ROUNDS"); do
  for s in $SERVERS; do run "$s" closed "$r"; done
  for s in $SERVERS; do run "$s" open "$r" --rate "$RATE"; done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"

# --- 6. the generator against wrk, same server ---
if [[ ${WRK:-1} == 1 && " $SERVERS " == *" nginx "* ]]; then
  log "wrk vs perf against nginx"
  mkdir -p "$OUT/wrk"
  echo "perf/wrk-vs-perf.sh ${ADDR[nginx]} $WORK/codes.txt $WORK/wrk-paths.lua $OUT/wrk 3 $SECS $CONNS $CLIENT_CPU" >> "$OUT/commands.txt"
  PERF_BIN=$BIN/perf "$ROOT/perf/wrk-vs-perf.sh" "${ADDR[nginx]}" "$WORK/codes.txt" "$WORK/wrk-paths.lua" "$OUT/wrk" 3 "$SECS" "$CONNS" "$CLIENT_CPU" > "$OUT/wrk/summary.txt" 2>&1 || true
  tail -3 "$OUT/wrk/summary.txt" >&2
fi

# --- 7. user-space instructions per request under valgrind (where perf stat has none) ---
if [[ ${INSTRUCTIONS:-$((1 - HW_COUNTERS))} == 1 ]] && command -v valgrind > /dev/null; then
  log "instructions per request under valgrind (${INSTR_N:-100000} links)"
  echo "OUT=$OUT/instructions SKIP_BUILD=1 SERVERS=\"$SERVERS\" perf/instructions.sh ${INSTR_N:-100000}" >> "$OUT/commands.txt"
  OUT=$OUT/instructions SKIP_BUILD=1 SERVERS="$SERVERS" "$ROOT/perf/instructions.sh" "${INSTR_N:-100000}" >&2 || true
fi

# --- 8. the table and the plot ---
cmd "$BIN/perf" summarize "$OUT"
log "results in $OUT"
