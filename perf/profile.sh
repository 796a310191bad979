#!/usr/bin/env bash
# Where a server's CPU goes, kernel included: one server on one core under the
# perf generator in one mode, sampled by `perf record` on the software clock
# (cpu-clock, so it works on VMs without hardware counters), then the top
# symbols of the server process, user and kernel, flat and by caller.
#
# Usage: perf/profile.sh MODE [SERVER]
#   MODE: keepalive close tls-keepalive tls-full tls-resume (perf load --mode)
#   SERVER: engine (the default: io_uring backend) | engine-glommio | nginx
# Env:   N=100000 links  CONNS=64  SECS=5  CLICKS=1 (click capture on, as
#        perf/run.sh; needs JetStream at NATS_URL)  NATS_URL=nats://127.0.0.1:4222
#        SERVER_CPU=0 CLIENT_CPU=1  FREQ=4999 (samples per second)
#        OUT=/tmp/profile-MODE-SERVER (perf.data, report.txt, callers.txt)
#        SKIP_BUILD=1 (use target/release as it is)  ENGINE=path (another engine binary, for A/B)
# Reuses perf/run.sh's cached inputs in /tmp/perf-harness-$N (made if missing).
# Not in CI: a diagnosis tool; the numbers that count come from perf/run.sh.
set -euo pipefail
MODE=${1:?usage: perf/profile.sh MODE [SERVER]} SERVER=${2:-engine}
N=${N:-100000} CONNS=${CONNS:-64} SECS=${SECS:-5} CLICKS=${CLICKS:-1}
NATS_URL=${NATS_URL:-nats://127.0.0.1:4222} FREQ=${FREQ:-4999}
SERVER_CPU=${SERVER_CPU:-0} CLIENT_CPU=${CLIENT_CPU:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
ENGINE=${ENGINE:-$BIN/engine}
WORK=/tmp/perf-harness-$N
OUT=${OUT:-/tmp/profile-$MODE-$SERVER}
TLS_NAME=perf.test
# shellcheck source=perf/scripts/need-tools.sh
. "$ROOT/perf/scripts/need-tools.sh"
need_tools nginx perf taskset openssl
mkdir -p "$WORK" "$OUT"
TMP=$(mktemp -d /tmp/perf-profile.XXXXXX)
PIDS=()
STREAM=
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n $STREAM ]]; then
    # shellcheck disable=SC2016
    js_api "\$JS.API.STREAM.DELETE.$STREAM" > /dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

if [[ -z ${SKIP_BUILD:-} ]]; then
  (cd "$ROOT" && cargo build --release --locked -p engine -p control -p analytics -p perf -p snapshots)
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
if [[ ! -s $WORK/links.snap ]]; then
  python3 "$ROOT/deploy/gen-links.py" "$N" > "$WORK/links.csv"
  "$BIN/snapshot" build --input "$WORK/links.csv" --output "$WORK/links.snap"
fi
"$ROOT/perf/scripts/tls-certs.sh" "$TMP/tls" "$TLS_NAME"
PORT=$(free_port) TLS_PORT=$(free_port)
python3 "$ROOT/perf/scripts/prepare.py" "$WORK/links.csv" "$TMP" "$PORT" "$SERVER_CPU" \
  "$TLS_PORT" "$TMP/tls" "$TLS_NAME"

wait_port() {
  for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done
  echo "port $1 never opened" >&2; exit 1
}
case $SERVER in
  nginx)
    taskset -c "$SERVER_CPU" nginx -c "$TMP/nginx.conf" -p "$TMP" > "$OUT/server.log" 2>&1 &
    PIDS+=($!)
    wait_port "$PORT"; wait_port "$TLS_PORT"
    PID=$(pgrep -P "$(cat "$TMP/nginx.pid")" | head -1) ;;
  engine|engine-*)
    PORT=$(free_port) TLS_PORT=$(free_port)
    c=(taskset -c "$SERVER_CPU" "$ENGINE" serve --snapshot "$WORK/links.snap"
       --listen "127.0.0.1:$PORT" --admin 127.0.0.1:0 --cores 1
       --tls-listen "127.0.0.1:$TLS_PORT" --tls-certs "$TMP/tls/certs" --state-dir "$TMP/state")
    [[ $SERVER == engine-* ]] && c+=(--io "${SERVER#engine-}")
    if [[ $CLICKS == 1 ]]; then
      # shellcheck source=perf/scripts/jetstream.sh
      . "$ROOT/perf/scripts/jetstream.sh"
      tag=profile_$$
      STREAM=PROFILE_CLICKS_$tag
      create_clicks_stream "$STREAM" "profile.$tag.clicks.>"
      c+=(--nats "$NATS_URL" --node-id profile --clicks-stream "$STREAM"
          --clicks-subject-prefix "profile.$tag.clicks" --links-stream "PROFILE_LINKS_$tag"
          --links-subject "profile.$tag.links" --allow-unsigned-links)
    fi
    "${c[@]}" > "$OUT/server.out" 2> "$OUT/server.log" &
    PIDS+=($!); PID=$!
    wait_port "$PORT"; wait_port "$TLS_PORT" ;;
  *) echo "unknown server $SERVER (engine, engine-glommio, nginx)" >&2; exit 2 ;;
esac

target=(-u "127.0.0.1:$PORT")
[[ $MODE == tls-* ]] && target=(-u "127.0.0.1:$TLS_PORT" --sni "$TLS_NAME" --ca "$TMP/tls/ca.crt")
"$BIN/perf" load "${target[@]}" --mode "$MODE" -k "$TMP/codes.txt" -c "$CONNS" -t 1 \
  --pin "$CLIENT_CPU" -d "$((SECS + 2))" --warmup 1 > "$OUT/load.txt" 2>&1 &
client=$!
for _ in $(seq 1 300); do grep -q "load starts" "$OUT/load.txt" && break; sleep 0.05; done
sleep 1
# utime + stime of every thread of the server, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
t0=$(cpu_ticks)
perf record -F "$FREQ" -e cpu-clock -g -p "$PID" -o "$OUT/perf.data" -- sleep "$SECS" 2> "$OUT/record.log"
t1=$(cpu_ticks)
wait "$client"
rate=$(grep -m1 -oE '^ *[0-9]+ requests/s' "$OUT/load.txt" | grep -oE '[0-9]+' || echo 0)
if [[ $rate -gt 0 ]]; then
  # The generator's rate over its whole run stands in for the window's.
  cpu_us=$(python3 -c "print(round(($t1 - $t0) / $(getconf CLK_TCK) / ($rate * $SECS) * 1e6, 2))")
  echo "server CPU per request: $cpu_us us ($((t1 - t0)) ticks over ${SECS}s at $rate req/s; sampling included)" > "$OUT/cpu.txt"
fi
# Flat (self time) by symbol, then by thread and object; `|| true`: a short
# run may have no line of some kind.
report() { perf report -i "$OUT/perf.data" --stdio -g none "$@" 2> /dev/null | grep -vE '^#|^$' || true; }
report --no-children --sort sym | head -60 > "$OUT/report.txt"
report --no-children --sort comm,dso > "$OUT/threads.txt"
report --children --sort sym | head -80 > "$OUT/callers.txt"
echo "== $SERVER, $MODE: $(grep -m1 -E 'requests/s' "$OUT/load.txt" || true)"
cat "$OUT/cpu.txt" 2>/dev/null || true
cat "$OUT/threads.txt"
head -40 "$OUT/report.txt"
echo "(all in $OUT: report.txt flat, threads.txt, callers.txt with children, perf.data)"
