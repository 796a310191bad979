#!/usr/bin/env bash
# The side-by-side harness: nginx vs the engine (each I/O backend) vs
# tokio+hyper, one server core each, the load generator on the other core,
# alternating A B C D A B C D, in each connection mode.
#
# Usage: perf/run.sh [N_LINKS]            (default 1000000)
# Env:   ROUNDS=3  SECS=5 (measured seconds per run; DURATION is an alias)
#        MODES="keepalive close tls-keepalive tls-full tls-resume" (perf load
#          --mode: keep-alive or one request per new connection, plain or TLS;
#          hyper has no TLS and skips them with a note; the engine serves
#          them on --tls-listen, on either backend)
#        TLS_NAME=perf.test (the SNI name: a test CA and an ECDSA P-256 leaf
#          for it are made per run by scripts/tls-certs.sh, and deleted)
#        CONNS="64 256" (connection counts; every server at each)
#        RATE=10000 (open-loop rate of the keep-alive modes' fixed-rate latency
#          columns)  RATE_CLOSE=5000 RATE_TLS_FULL=500 RATE_TLS_RESUME=1000
#          (the new-connection modes')  OPEN=1 (0: skip the fixed-rate runs)
#        SERVER_CPU=0  CLIENT_CPU=1
#        SERVERS="nginx engine-uring engine-glommio hyper": engine-X is the
#          engine started with `--io X`; plain `engine` is its default backend
#        ENGINE_IO_FLAG=1 (0: start engine-X without --io, for engines that
#          do not have the flag yet; the rows keep their names)
#        CLICKS=1 (click capture on for every engine: --nats NATS_URL, a
#          private click stream and links stream per engine and run, deleted
#          at the end; 0: no --nats)  NATS_URL=nats://127.0.0.1:4222
#        PERF_STAT=1 where the VM has hardware counters (attach perf stat to
#          the server for instructions and cycles; 0 elsewhere)
#        WRK=1 (also run perf/wrk-vs-perf.sh against nginx)  SKIP_BUILD=1
#        WORK=/tmp/perf-harness-N (inputs: links.csv, snapshot, nginx map)
#        OUT=perf/results/<UTC date-time> (where the results go; a smoke run
#          that is not worth keeping can write to /tmp)
#        DIST=uniform (or zipf, zipf:S)  UNKNOWN=0 (share of unknown codes, 404)
#        INSTRUCTIONS=1 (default where perf stat has no hardware counters): run
#        perf/instructions.sh (valgrind) on INSTR_N=100000 links for the
#        user-space instructions per request column
# Output: perf/results/<UTC date-time>/ with machine.txt, commands.txt,
#         notes.txt (what was skipped and why),
#         runs/MODE/SERVER-cCONNS-LOOP-ROUND.{json,txt} (client),
#         .proc (server CPU time from /proc/PID/stat around the window),
#         .irq.before/.irq.after (/proc/interrupts), .perfstat (if PERF_STAT),
#         clicks.txt (engines' click counters and stream contents), wrk/,
#         instructions/, summary.md, plot.svg, plot-MODE.svg.
set -euo pipefail
N=${1:-1000000}
ROUNDS=${ROUNDS:-3} SECS=${SECS:-${DURATION:-5}} CONNS=${CONNS:-"64 256"} RATE=${RATE:-10000}
OPEN=${OPEN:-1}
MODES=${MODES:-"keepalive close tls-keepalive tls-full tls-resume"} TLS_NAME=${TLS_NAME:-perf.test}
declare -A MODE_RATE=([keepalive]=$RATE [close]=${RATE_CLOSE:-5000} [tls-keepalive]=$RATE
                      [tls-full]=${RATE_TLS_FULL:-500} [tls-resume]=${RATE_TLS_RESUME:-1000})
TLS_MODES=0
for m in $MODES; do
  [[ -n ${MODE_RATE[$m]:-} ]] || { echo "unknown mode $m (keepalive close tls-keepalive tls-full tls-resume)" >&2; exit 2; }
  [[ $m == tls-* ]] && TLS_MODES=1
done
SERVER_CPU=${SERVER_CPU:-0} CLIENT_CPU=${CLIENT_CPU:-1}
SERVERS=${SERVERS:-"nginx engine-uring engine-glommio hyper"}
ENGINE_IO_FLAG=${ENGINE_IO_FLAG:-1} CLICKS=${CLICKS:-1} NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
DIST=${DIST:-uniform} UNKNOWN=${UNKNOWN:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=perf/scripts/need-tools.sh
. "$ROOT/perf/scripts/need-tools.sh"
need_tools nginx wrk valgrind taskset openssl
WORK=${WORK:-/tmp/perf-harness-$N}
SUFFIX=
[[ $DIST != uniform || $UNKNOWN != 0 ]] && SUFFIX="-${DIST//:/_}-unknown$UNKNOWN"
[[ $CLICKS == 0 ]] && SUFFIX="$SUFFIX-noclicks"
OUT=${OUT:-$ROOT/perf/results/$(date -u +%Y-%m-%dT%H-%M)$SUFFIX}
BIN=$ROOT/target/release
mkdir -p "$WORK" "$OUT/runs"
# Per-run scratch (engine click spools): removed on exit.
TMP=$(mktemp -d /tmp/perf-run.XXXXXX)
RUN_ID=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
log() { echo "[run.sh $(date -u +%H:%M:%S)] $*" >&2; }
echo "perf/run.sh $*  (N=$N ROUNDS=$ROUNDS SECS=$SECS MODES=\"$MODES\" TLS_NAME=$TLS_NAME CONNS=\"$CONNS\" RATE=$RATE RATE_CLOSE=${MODE_RATE[close]} RATE_TLS_FULL=${MODE_RATE[tls-full]} RATE_TLS_RESUME=${MODE_RATE[tls-resume]} OPEN=$OPEN SERVER_CPU=$SERVER_CPU CLIENT_CPU=$CLIENT_CPU SERVERS=\"$SERVERS\" ENGINE_IO_FLAG=$ENGINE_IO_FLAG CLICKS=$CLICKS NATS_URL=$NATS_URL DIST=$DIST UNKNOWN=$UNKNOWN)" > "$OUT/commands.txt"
cmd() { echo "$*" >> "$OUT/commands.txt"; "$@"; }

# shellcheck source=perf/scripts/jetstream.sh
. "$ROOT/perf/scripts/jetstream.sh"

# stream_state JSON: "M messages, B bytes" from a stream info reply, or its error.
stream_state() {
  python3 -c 'import json, sys
try:
    d = json.loads(sys.argv[1])
except ValueError:
    sys.exit(print(sys.argv[1]))
s = d.get("state")
print("%s messages, %s bytes" % (s["messages"], s["bytes"]) if s else d.get("error"))' "$1"
}

# --- 1. release binaries (measurement needs them) ---
if [[ -z ${SKIP_BUILD:-} ]]; then
  log "building release binaries"
  (cd "$ROOT" && cmd cargo build --release -p engine -p control -p analytics -p perf -p snapshots)
fi

# --- 2. inputs, cached per N ---
if [[ ! -s $WORK/links.snap || ! -s $WORK/nginx.conf ]]; then
  log "generating $N links"
  python3 "$ROOT/deploy/gen-links.py" "$N" > "$WORK/links.csv"
  cmd "$BIN/snapshot" build --input "$WORK/links.csv" --output "$WORK/links.snap"
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NGINX_PORT=$(free_port)
# TLS material for this run only (in $TMP, deleted at the end): CA, leaf, ticket key.
TLS_DIR=$TMP/tls
PREPARE_TLS=()
if [[ $TLS_MODES == 1 ]]; then
  cmd "$ROOT/perf/scripts/tls-certs.sh" "$TLS_DIR" "$TLS_NAME"
  NGINX_TLS_PORT=$(free_port)
  PREPARE_TLS=("$NGINX_TLS_PORT" "$TLS_DIR" "$TLS_NAME")
fi
cmd python3 "$ROOT/perf/scripts/prepare.py" "$WORK/links.csv" "$WORK" "$NGINX_PORT" "$SERVER_CPU" "${PREPARE_TLS[@]}"

# --- 3. the machine ---
HW_COUNTERS=1
if perf stat -e instructions,cycles true 2>&1 | grep -q "not supported"; then HW_COUNTERS=0; fi
PERF_STAT=${PERF_STAT:-$HW_COUNTERS}
ENGINES=()
for s in $SERVERS; do [[ $s == engine || $s == engine-* ]] && ENGINES+=("$s"); done
# The engine serves TLS on --tls-listen (both backends).
ENGINE_TLS=0
if [[ $TLS_MODES == 1 && ${#ENGINES[@]} -gt 0 ]]; then
  ENGINE_TLS=1
fi
if [[ $TLS_MODES == 1 && " $SERVERS " == *" hyper "* ]]; then
  echo "hyper: plain HTTP only, no TLS modes" >> "$OUT/notes.txt"
fi
if [[ $CLICKS == 1 && ${#ENGINES[@]} -gt 0 ]] && ! js_api '$JS.API.INFO' > /dev/null; then
  echo "no JetStream at $NATS_URL: start nats-server -js, set NATS_URL, or run with CLICKS=0" >&2; exit 1
fi
{
  echo "date: $(date -u +%FT%TZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
  echo "cores: $(nproc)"
  echo "kernel: $(uname -r)"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "git: $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- engine perf || echo ' (engine/ or perf/ modified)')"
  echo "nginx: $(nginx -v 2>&1 | cut -d/ -f2), $(nginx -V 2>&1 | grep -o 'built with OpenSSL [^ ]*' || echo 'OpenSSL version unknown'), running on $(openssl version 2>/dev/null || echo 'unknown')"
  echo "modes: $MODES$([[ $TLS_MODES == 1 ]] && echo "; TLS: SNI $TLS_NAME, ECDSA P-256 leaf from a per-run test CA, TLS 1.3 + X25519, engine TLS $([[ $ENGINE_TLS == 1 ]] && echo on || echo off)")"
  echo "links: $N, of which $(wc -l < "$WORK/codes.txt") are asked for (codes colliding case-insensitively are left out)"
  echo "hardware counters (instructions, cycles): $([[ $HW_COUNTERS == 1 ]] && echo yes || echo 'not supported on this VM: server cost is CPU time (/proc/PID/stat) per request, user-space instructions from valgrind')"
  echo "click capture: $([[ $CLICKS == 1 ]] && echo "on, $NATS_URL ($(nats-server --version 2>/dev/null || echo 'nats-server version unknown'))" || echo off)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt" >&2
EVENTS=task-clock
[[ $HW_COUNTERS == 1 ]] && EVENTS=task-clock,instructions,cycles

# --- 4. servers ---
PIDS=()
declare -A ADDR TLSADDR SPID ADMIN STREAMS
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # The engines' streams: contents for the record, then deleted.
  for s in "${!STREAMS[@]}"; do
    for st in ${STREAMS[$s]}; do
      info=$(js_api "\$JS.API.STREAM.INFO.$st" 2>&1 || true)
      echo "$s stream $st: $(stream_state "$info")" >> "$OUT/clicks.txt"
      js_api "\$JS.API.STREAM.DELETE.$st" > /dev/null 2>&1 || echo "could not delete stream $st at $NATS_URL" >&2
    done
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

# wait_ready FILE: the JSON readiness line's FIELD (listen or admin).
wait_ready() {
  for _ in $(seq 1 600); do
    if grep -q '"ready"' "$1" 2>/dev/null; then
      python3 -c 'import json,sys; print(next(json.loads(l)[sys.argv[2]] for l in open(sys.argv[1]) if "ready" in l))' "$1" "${2:-listen}"
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

for s in $SERVERS; do
  case $s in
    nginx)
      taskset -c "$SERVER_CPU" nginx -c "$WORK/nginx.conf" -p "$WORK" > "$OUT/nginx.log" 2>&1 &
      PIDS+=($!); wait_port "$NGINX_PORT"
      ADDR[nginx]=127.0.0.1:$NGINX_PORT
      if [[ $TLS_MODES == 1 ]]; then wait_port "$NGINX_TLS_PORT"; TLSADDR[nginx]=127.0.0.1:$NGINX_TLS_PORT; fi
      SPID[nginx]=$(pgrep -P "$(cat "$WORK/nginx.pid")" | head -1)   # the worker
      echo "taskset -c $SERVER_CPU nginx -c $WORK/nginx.conf" >> "$OUT/commands.txt" ;;
    engine|engine-*)
      c=(taskset -c "$SERVER_CPU" "$BIN/engine" serve --snapshot "$WORK/links.snap" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --cores 1)
      [[ $s != engine && $ENGINE_IO_FLAG == 1 ]] && c+=(--io "${s#engine-}")
      tls_port=
      if [[ $ENGINE_TLS == 1 ]]; then
        tls_port=$(free_port)
        c+=(--tls-listen "127.0.0.1:$tls_port" --tls-certs "$TLS_DIR/certs")
      fi
      if [[ $CLICKS == 1 ]]; then
        # Private streams and subjects: a click stream on clicks.> (the
        # default) would overlap any CLICKS stream already on the server and
        # the engine could not create it; LINKS is left alone the same way.
        # The engine creates neither stream: the click stream is made here
        # with limits, as analytics would; no link changes flow in a run, so
        # unsigned ones may be allowed (a development setting).
        tag=${RUN_ID}_${s//-/_}
        create_clicks_stream "PERF_CLICKS_$tag" "perf.$tag.clicks.>"
        c+=(--nats "$NATS_URL" --node-id perf
            --clicks-stream "PERF_CLICKS_$tag" --clicks-subject-prefix "perf.$tag.clicks"
            --links-stream "PERF_LINKS_$tag" --links-subject "perf.$tag.links"
            --allow-unsigned-links --state-dir "$TMP/state-$s")
        STREAMS[$s]="PERF_CLICKS_$tag PERF_LINKS_$tag"
      else
        c+=(--state-dir "$TMP/state-$s")
      fi
      echo "${c[*]}" >> "$OUT/commands.txt"
      "${c[@]}" > "$OUT/$s.out" 2> "$OUT/$s.log" &
      PIDS+=($!); SPID[$s]=$!
      ADDR[$s]=$(wait_ready "$OUT/$s.out")
      ADMIN[$s]=$(wait_ready "$OUT/$s.out" admin)
      if [[ -n $tls_port ]]; then wait_port "$tls_port"; TLSADDR[$s]=127.0.0.1:$tls_port; fi ;;
    hyper)
      c=(taskset -c "$SERVER_CPU" "$BIN/perf-hyper-ref" --input "$WORK/links.csv" --listen 127.0.0.1:0)
      echo "${c[*]}" >> "$OUT/commands.txt"
      "${c[@]}" > "$OUT/hyper.out" 2> "$OUT/hyper.log" &
      PIDS+=($!); SPID[hyper]=$!
      ADDR[hyper]=$(wait_ready "$OUT/hyper.out") ;;
    *) echo "unknown server $s" >&2; exit 2 ;;
  esac
  log "$s ready on ${ADDR[$s]}${TLSADDR[$s]:+, TLS on ${TLSADDR[$s]}} (pid ${SPID[$s]})"
done

# --- 5. rounds, alternating ---
# has_mode SERVER MODE: whether SERVER runs in connection mode MODE.
has_mode() {
  [[ $2 != tls-* || -n ${TLSADDR[$1]:-} ]]
}

# run SERVER CONNS CONNECTION_MODE LOOP ROUND [extra perf-load flags]: one
# client run; over its measured window (from 1 s after the generator starts
# sending) the server's /proc/PID/stat and /proc/interrupts are read before
# and after (and perf stat attached if PERF_STAT=1).
run() {
  local s=$1 conns=$2 cmode=$3 mode=$4 r=$5; shift 5
  mkdir -p "$OUT/runs/$cmode"
  local base=$OUT/runs/$cmode/$s-c$conns-$mode-$r pid=${SPID[$s]}
  local target=(-u "${ADDR[$s]}")
  [[ $cmode == tls-* ]] && target=(-u "${TLSADDR[$s]}" --sni "$TLS_NAME" --ca "$TLS_DIR/ca.crt")
  local c=("$BIN/perf" load "${target[@]}" --mode "$cmode" -k "$WORK/codes.txt" -c "$conns" -t 1 --pin "$CLIENT_CPU"
           -d "$SECS" --warmup 1 --distribution "$DIST" --unknown "$UNKNOWN" --json "$base.json" "$@")
  [[ $r == 1 ]] && echo "${c[*]}" >> "$OUT/commands.txt"
  "${c[@]}" > "$base.txt" 2>&1 &
  local client=$!
  # The generator logs "load starts" once its request sequence is built.
  for _ in $(seq 1 300); do grep -q "load starts" "$base.txt" && break; sleep 0.05; done
  sleep 1
  local t0 t1 st0 st1
  t0=$(date +%s%N); st0=$(cat "/proc/$pid/stat"); cat /proc/interrupts > "$base.irq.before"
  if [[ $PERF_STAT == 1 ]]; then
    echo "# window_s=$SECS" > "$base.perfstat"
    perf stat -x, -e "$EVENTS" -p "$pid" -o "$base.perfstat.tmp" -- sleep "$SECS" 2>/dev/null || true
    cat "$base.perfstat.tmp" >> "$base.perfstat"; rm -f "$base.perfstat.tmp"
  else
    sleep "$SECS"
  fi
  cat /proc/interrupts > "$base.irq.after"; st1=$(cat "/proc/$pid/stat"); t1=$(date +%s%N)
  printf 'window_ns=%s\nclk_tck=%s\nserver_cpu=%s\nstat_before=%s\nstat_after=%s\n' \
    "$((t1 - t0))" "$(getconf CLK_TCK)" "$SERVER_CPU" "$st0" "$st1" > "$base.proc"
  wait $client
  log "$s $cmode c$conns $mode round $r: $(grep -hE "requests/s|TLS:" "$base.txt" | xargs)"
}
echo "per run, over the measured window: /proc/SERVER_PID/stat and /proc/interrupts before and after$([[ $PERF_STAT == 1 ]] && echo ", perf stat -x, -e $EVENTS -p SERVER_PID -- sleep $SECS")" >> "$OUT/commands.txt"
for r in $(seq 1 "$ROUNDS"); do
  for cmode in $MODES; do
    for conns in $CONNS; do
      for s in $SERVERS; do
        if has_mode "$s" "$cmode"; then run "$s" "$conns" "$cmode" closed "$r"; fi
      done
      if [[ $OPEN == 1 ]]; then
        for s in $SERVERS; do
          if has_mode "$s" "$cmode"; then run "$s" "$conns" "$cmode" open "$r" --rate "${MODE_RATE[$cmode]}"; fi
        done
      fi
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"

# --- 6. clicks: what the engines counted (the streams' contents are added,
# and the streams deleted, by cleanup once the engines have flushed) ---
for s in "${ENGINES[@]}"; do
  if [[ -n ${ADMIN[$s]:-} ]]; then
    { echo "$s (http://${ADMIN[$s]}/metrics):"
      curl -s "http://${ADMIN[$s]}/metrics" | grep -E '^engine_click' || echo "  no engine_click* metrics"
    } >> "$OUT/clicks.txt"
  fi
done

# --- 7. the generator against wrk, same server ---
if [[ ${WRK:-1} == 1 && " $SERVERS " == *" nginx "* ]]; then
  log "wrk vs perf against nginx"
  mkdir -p "$OUT/wrk"
  c1=${CONNS%% *}
  echo "perf/wrk-vs-perf.sh ${ADDR[nginx]} $WORK/codes.txt $WORK/wrk-paths.lua $OUT/wrk 3 $SECS $c1 $CLIENT_CPU" >> "$OUT/commands.txt"
  PERF_BIN=$BIN/perf "$ROOT/perf/wrk-vs-perf.sh" "${ADDR[nginx]}" "$WORK/codes.txt" "$WORK/wrk-paths.lua" "$OUT/wrk" 3 "$SECS" "$c1" "$CLIENT_CPU" > "$OUT/wrk/summary.txt" 2>&1 || true
  tail -3 "$OUT/wrk/summary.txt" >&2
fi

# --- 8. user-space instructions per request under valgrind (where perf stat has none) ---
if [[ ${INSTRUCTIONS:-$((1 - HW_COUNTERS))} == 1 ]] && command -v valgrind > /dev/null; then
  log "instructions per request under valgrind (${INSTR_N:-100000} links)"
  echo "OUT=$OUT/instructions SKIP_BUILD=1 SERVERS=\"$SERVERS\" ENGINE_IO_FLAG=$ENGINE_IO_FLAG CLICKS=$CLICKS NATS_URL=$NATS_URL perf/instructions.sh ${INSTR_N:-100000}" >> "$OUT/commands.txt"
  OUT=$OUT/instructions SKIP_BUILD=1 SERVERS="$SERVERS" ENGINE_IO_FLAG=$ENGINE_IO_FLAG CLICKS=$CLICKS NATS_URL=$NATS_URL \
    "$ROOT/perf/instructions.sh" "${INSTR_N:-100000}" >&2 || true
fi

# --- 9. stop the servers (the engines flush their clicks), record and delete the streams ---
cleanup
trap - EXIT
[[ -s $OUT/clicks.txt ]] && cat "$OUT/clicks.txt" >&2

[[ -s $OUT/notes.txt ]] && cat "$OUT/notes.txt" >&2

# --- 10. the table and the plots ---
cmd "$BIN/perf" summarize "$OUT"
log "results in $OUT"
