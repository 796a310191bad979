#!/usr/bin/env bash
# User-space instructions per request of each server, counted by valgrind
# (cachegrind, no cache simulation): deterministic, unaffected by other load,
# and available where the VM exposes no hardware counters (this one).
#
# Each server runs twice under valgrind, answering N1 and then N2 requests
# (closed loop, 8 connections), then is stopped; instructions per request =
# (Ir(N2) - Ir(N1)) / (N2 - N1), which cancels start-up (snapshot or map
# loading) and shutdown. Kernel work (the TCP path) is not counted: it is
# the same for every server. Idle timers running during the longer run add
# a little (the engine's 5 ms tick: tens of instructions per request).
#
# Usage: perf/instructions.sh [N_LINKS]   (default 100000: valgrind loads a
#        1M-link map or snapshot slowly; lookups barely depend on size)
# Env:   N1=2000 N2=22000 SERVERS="nginx engine hyper" SKIP_BUILD=1
#        OUT=DIR (default perf/results/<UTC date-time>-instructions)
# Needs: the inputs perf/run.sh N_LINKS prepares (it is run if they are missing).
set -euo pipefail
N=${1:-100000}
N1=${N1:-2000} N2=${N2:-22000}
SERVERS=${SERVERS:-"nginx engine hyper"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=/tmp/perf-harness-$N
mkdir -p "$WORK"
BIN=$ROOT/target/release
OUT=${OUT:-$ROOT/perf/results/$(date -u +%Y-%m-%dT%H-%M)-instructions}
mkdir -p "$OUT"
log() { echo "[instructions.sh $(date -u +%H:%M:%S)] $*" >&2; }
if [[ -z ${SKIP_BUILD:-} ]]; then (cd "$ROOT" && cargo build --release -p perf -p engine -p snapshots); fi
if [[ ! -s $WORK/links.snap ]]; then
  python3 "$ROOT/deploy/gen-links.py" "$N" > "$WORK/links.csv"
  "$BIN/snapshot" build --input "$WORK/links.csv" --output "$WORK/links.snap"
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 "$ROOT/perf/scripts/prepare.py" "$WORK/links.csv" "$WORK" "$PORT" 0
# One process for valgrind to follow: nginx without its master.
sed 's/^worker_processes 1;/master_process off;\nworker_processes 1;/' "$WORK/nginx.conf" > "$WORK/nginx-vg.conf"
VG=(valgrind --tool=cachegrind --cache-sim=no)

# one SERVER COUNT -> prints Ir of a whole run that served COUNT requests
one() {
  local s=$1 n=$2 base=$OUT/$1-$2 pid addr
  case $s in
    nginx)  "${VG[@]}" --cachegrind-out-file="$base.cg" nginx -c "$WORK/nginx-vg.conf" -p "$WORK" > "$base.out" 2> "$base.err" & ;;
    engine) "${VG[@]}" --cachegrind-out-file="$base.cg" "$BIN/engine" serve --snapshot "$WORK/links.snap" \
              --listen 127.0.0.1:0 --admin 127.0.0.1:0 --cores 1 > "$base.out" 2> "$base.err" & ;;
    hyper)  "${VG[@]}" --cachegrind-out-file="$base.cg" "$BIN/perf-hyper-ref" --input "$WORK/links.csv" \
              --listen 127.0.0.1:0 > "$base.out" 2> "$base.err" & ;;
  esac
  pid=$!
  for _ in $(seq 1 1200); do
    if [[ $s == nginx ]]; then (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    else grep -q '"ready"' "$base.out" 2>/dev/null && break; fi
    sleep 0.1
  done
  if [[ $s == nginx ]]; then addr=127.0.0.1:$PORT
  else addr=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["listen"])' "$base.out"); fi
  "$BIN/perf" load -u "$addr" -k "$WORK/codes.txt" -c 8 -n "$n" -d 300 --json "$base.json" > "$base.load" 2>&1
  if [[ $s == nginx ]]; then kill -QUIT $pid; else kill -TERM $pid; fi
  wait $pid || true
  awk '/I +refs:/ {gsub(",", "", $4); print $4}' "$base.err"
}

# top TOPFILE SERVER: where one request's instructions go (difference of the runs)
top() {
  cg_diff "$OUT/$1-$N1.cg" "$OUT/$1-$N2.cg" > "$OUT/$1-diff.cg" 2>/dev/null || return 0
  cg_annotate "$OUT/$1-diff.cg" 2>/dev/null | sed -n '/Ir .*file:function/,/^$/p' | head -40 > "$OUT/$1-per-request-top.txt" || true
  rm -f "$OUT/$1-diff.cg" "$OUT/$1-$N1.cg" "$OUT/$1-$N2.cg"
}

printf "server\tIr(%s)\tIr(%s)\tinstructions_per_request\n" "$N1" "$N2" > "$OUT/instructions.tsv"
for s in $SERVERS; do
  a=$(one "$s" "$N1"); b=$(one "$s" "$N2")
  per=$(( (b - a) / (N2 - N1) ))
  top "$s"
  printf "%s\t%s\t%s\t%s\n" "$s" "$a" "$b" "$per" | tee -a "$OUT/instructions.tsv"
  log "$s: $per user-space instructions per request"
done
echo "perf/instructions.sh $N (N1=$N1 N2=$N2), $(valgrind --version), git $(cd "$ROOT" && git rev-parse --short HEAD)" > "$OUT/commands.txt"
log "results in $OUT"
