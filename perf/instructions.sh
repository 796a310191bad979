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
# With click capture on (CLICKS=1, the default) the engines publish every
# request's click to NATS, so their count includes capture and publishing
# (the publisher thread is the same process). Each engine gets a private
# click stream and links stream for the run, deleted at the end.
#
# Usage: perf/instructions.sh [N_LINKS]   (default 100000: valgrind loads a
#        1M-link map or snapshot slowly; lookups barely depend on size)
# Env:   N1=2000 N2=22000 SKIP_BUILD=1
#        SERVERS="nginx engine-uring engine-glommio hyper" (engine-X: the
#          engine with `--io X`; plain engine: its default backend)
#        ENGINE_IO_FLAG=1 (0: no --io, for engines without the flag)
#        CLICKS=1 (0: no --nats)  NATS_URL=nats://127.0.0.1:4222
#        OUT=DIR (default perf/results/<UTC date-time>-instructions)
# Needs: the inputs perf/run.sh N_LINKS prepares (it is run if they are missing).
set -euo pipefail
N=${1:-100000}
N1=${N1:-2000} N2=${N2:-22000}
SERVERS=${SERVERS:-"nginx engine-uring engine-glommio hyper"}
ENGINE_IO_FLAG=${ENGINE_IO_FLAG:-1} CLICKS=${CLICKS:-1} NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=perf/scripts/need-tools.sh
. "$ROOT/perf/scripts/need-tools.sh"
need_tools nginx valgrind taskset
WORK=/tmp/perf-harness-$N
mkdir -p "$WORK"
BIN=$ROOT/target/release
OUT=${OUT:-$ROOT/perf/results/$(date -u +%Y-%m-%dT%H-%M)-instructions}
mkdir -p "$OUT"
log() { echo "[instructions.sh $(date -u +%H:%M:%S)] $*" >&2; }
if [[ -z ${SKIP_BUILD:-} ]]; then (cd "$ROOT" && cargo build --release -p engine -p control -p analytics -p perf -p snapshots); fi
if [[ ! -s $WORK/links.snap ]]; then
  python3 "$ROOT/deploy/gen-links.py" "$N" > "$WORK/links.csv"
  "$BIN/snapshot" build --input "$WORK/links.csv" --output "$WORK/links.snap"
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 "$ROOT/perf/scripts/prepare.py" "$WORK/links.csv" "$WORK" "$PORT" 0
# One process for valgrind to follow: nginx without its master.
sed 's/^worker_processes 1;/master_process off;\nworker_processes 1;/' "$WORK/nginx.conf" > "$WORK/nginx-vg.conf"
# --fair-sched=yes: valgrind runs one thread at a time under one lock, and
# 3.19 does not count io_uring_enter as a blocking call, so an idle core
# waiting in its ring keeps the lock through the wait. With the default
# (pipe) lock the core takes it back every time and the engine's other
# threads never run again: start-up hangs after "snapshot loaded". The fair
# (ticket) lock hands it over after each timeslice; start-up then takes about
# half a minute under cachegrind.
VG=(valgrind --tool=cachegrind --cache-sim=no --fair-sched=yes)
TMP=$(mktemp -d /tmp/perf-instructions.XXXXXX)
RUN_ID=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
STREAMS=()

# shellcheck source=perf/scripts/jetstream.sh
. "$ROOT/perf/scripts/jetstream.sh"
cleanup() {
  for st in "${STREAMS[@]}"; do
    js_api "\$JS.API.STREAM.DELETE.$st" > /dev/null 2>&1 || echo "could not delete stream $st at $NATS_URL" >&2
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
if [[ $CLICKS == 1 && " $SERVERS " == *" engine"* ]] && ! js_api '$JS.API.INFO' > /dev/null; then
  echo "no JetStream at $NATS_URL: start nats-server -js, set NATS_URL, or run with CLICKS=0" >&2; exit 1
fi

# engine_args SERVER COUNT: the engine's flags beyond the common ones, for
# engine or engine-X (a fresh spool per run: nothing replays into the next).
engine_args() {
  local s=$1 tag=${RUN_ID}_${1//-/_}
  [[ $s != engine && $ENGINE_IO_FLAG == 1 ]] && printf '%s\n' --io "${s#engine-}"
  if [[ $CLICKS == 1 ]]; then
    # Private subjects: clicks.> (the default) would overlap any CLICKS stream on the server.
    create_clicks_stream "PERF_CLICKS_$tag" "perf.$tag.clicks.>" >&2 || true
    printf '%s\n' --nats "$NATS_URL" --node-id perf \
      --clicks-stream "PERF_CLICKS_$tag" --clicks-subject-prefix "perf.$tag.clicks" \
      --links-stream "PERF_LINKS_$tag" --links-subject "perf.$tag.links" \
      --allow-unsigned-links --state-dir "$TMP/state-$s-$2"
  else
    printf '%s\n' --state-dir "$TMP/state-$s-$2"
  fi
  return 0
}

# one SERVER COUNT -> prints Ir of a whole run that served COUNT requests
one() {
  local s=$1 n=$2 base=$OUT/$1-$2 pid addr
  case $s in
    nginx)  "${VG[@]}" --cachegrind-out-file="$base.cg" nginx -c "$WORK/nginx-vg.conf" -p "$WORK" > "$base.out" 2> "$base.err" & ;;
    engine|engine-*)
            mapfile -t extra < <(engine_args "$s" "$n")
            echo "$BIN/engine serve --snapshot $WORK/links.snap --listen 127.0.0.1:0 --admin 127.0.0.1:0 --cores 1 ${extra[*]}" > "$base.cmd"
            "${VG[@]}" --cachegrind-out-file="$base.cg" "$BIN/engine" serve --snapshot "$WORK/links.snap" \
              --listen 127.0.0.1:0 --admin 127.0.0.1:0 --cores 1 "${extra[@]}" > "$base.out" 2> "$base.err" & ;;
    hyper)  "${VG[@]}" --cachegrind-out-file="$base.cg" "$BIN/perf-hyper-ref" --input "$WORK/links.csv" \
              --listen 127.0.0.1:0 > "$base.out" 2> "$base.err" & ;;
    *) echo "unknown server $s" >&2; return 2 ;;
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
  [[ $CLICKS == 1 && ($s == engine || $s == engine-*) ]] && STREAMS+=("PERF_CLICKS_${RUN_ID}_${s//-/_}" "PERF_LINKS_${RUN_ID}_${s//-/_}")
  a=$(one "$s" "$N1"); b=$(one "$s" "$N2")
  per=$(( (b - a) / (N2 - N1) ))
  top "$s"
  printf "%s\t%s\t%s\t%s\n" "$s" "$a" "$b" "$per" | tee -a "$OUT/instructions.tsv"
  log "$s: $per user-space instructions per request"
done
echo "perf/instructions.sh $N (N1=$N1 N2=$N2 SERVERS=\"$SERVERS\" ENGINE_IO_FLAG=$ENGINE_IO_FLAG CLICKS=$CLICKS NATS_URL=$NATS_URL), $(valgrind --version), git $(cd "$ROOT" && git rev-parse --short HEAD); engine command lines in *.cmd" > "$OUT/commands.txt"
log "results in $OUT"
