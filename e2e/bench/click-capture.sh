#!/usr/bin/env bash
# Issue 5's engine-side measurements, with the release engine and the
# project's load generator (perf load), engine pinned to CPU 0 and the
# generator to CPU 1:
#
#  1. capture cost: the same closed-loop load against `engine serve` with
#     click capture on (publishing to the local NATS, own stream) and with
#     --no-clicks, alternating, ROUNDS rounds. The engine's CPU time
#     (perf stat -e task-clock on the whole process, publisher thread
#     included, until every captured click is published) per response.
#  2. publisher throughput: a private nats-server is stopped, SPOOL_N
#     requests are spooled, the server is started again and the spool's
#     replay into JetStream is timed (events/s, from the engine's metrics).
#
# Usage (from the workspace root; builds nothing):
#   cargo build --release -p engine -p perf -p snapshots   # once
#   e2e/bench/click-capture.sh [SNAPSHOT CODES]
# Environment: ROUNDS (3), SECS (5), CONNS (64), SPOOL_N (200000),
# NATS_URL (nats://127.0.0.1:4222), BIN (target/release).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
CONNS=${CONNS:-64}
SPOOL_N=${SPOOL_N:-200000}
NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
BIN=${BIN:-target/release}
WORK=$(mktemp -d /tmp/e2e-click-capture.XXXXXX)
TAG="e2ebench$$"

if [[ $# -ge 2 ]]; then
    SNAP=$1
    CODES=$2
else
    # Four links are enough for a cost per request; the perf harness's
    # 100k-link snapshot is used when present (perf/run.sh 100000).
    SNAP=/tmp/perf-harness-100000/links.snap
    CODES=/tmp/perf-harness-100000/codes.txt
fi
cp "$SNAP" "$WORK/links.snap"
cp "$CODES" "$WORK/codes.txt"

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# start_engine LOG ARGS... : starts the engine on CPU 0, waits for its ready
# line, sets ENGINE_PID, LISTEN and ADMIN.
start_engine() {
    local out=$1
    shift
    taskset -c 0 "$BIN/engine" serve --listen 127.0.0.1:0 --admin 127.0.0.1:0 --cores 1 \
        --snapshot "$WORK/links.snap" "$@" >"$out" 2>"$out.err" &
    ENGINE_PID=$!
    PIDS+=("$ENGINE_PID")
    for _ in $(seq 300); do
        grep -q '"ready"' "$out" 2>/dev/null && break
        sleep 0.1
    done
    LISTEN=$(jq -r .listen <"$out")
    ADMIN=$(jq -r .admin <"$out")
}

# shellcheck source=perf/scripts/jetstream.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../perf/scripts/jetstream.sh"

metric() { # metric NAME: sum over labels from the engine's /metrics
    curl -s "http://$ADMIN/metrics" | awk -v n="$1" '$1 ~ "^"n"({|$)" { s += $2 } END { print s + 0 }'
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "engine: $(git log -1 --format='%h %cI' -- engine/src) ($BIN/engine)"
echo
create_clicks_stream "CLICKS_$TAG" "$TAG.clicks.>"
echo "mode round responses rps engine_cpu_ms us_per_response captured published"
for round in $(seq "$ROUNDS"); do
    for mode in clicks no-clicks; do
        if [[ $mode == clicks ]]; then
            # No link changes in this run: unsigned ones are allowed (dev only).
            args=(--nats "$NATS_URL" --node-id "$TAG" --links-stream "LINKS_$TAG" --links-subject "$TAG.links"
                --clicks-stream "CLICKS_$TAG" --clicks-subject-prefix "$TAG.clicks"
                --allow-unsigned-links --state-dir "$WORK/state-$mode-$round")
        else
            args=(--no-clicks --state-dir "$WORK/state-$mode-$round")
        fi
        start_engine "$WORK/$mode-$round.ready" "${args[@]}"
        perf stat -e task-clock -x, -o "$WORK/$mode-$round.stat" -p "$ENGINE_PID" &
        STAT_PID=$!
        "$BIN/perf" load --target "$LISTEN" --keys "$WORK/codes.txt" -c "$CONNS" -d "$SECS" \
            --pin 1 --json "$WORK/$mode-$round.json" >/dev/null 2>&1
        if [[ $mode == clicks ]]; then
            # The publisher's work counts too: wait until it caught up.
            for _ in $(seq 200); do
                [[ $(metric engine_clicks_captured_total) == $(metric engine_click_events_published_total) ]] && break
                sleep 0.05
            done
            captured=$(metric engine_clicks_captured_total)
            published=$(metric engine_click_events_published_total)
        else
            captured=- published=-
        fi
        kill -INT "$STAT_PID"
        wait "$STAT_PID" || true
        kill "$ENGINE_PID"
        wait "$ENGINE_PID" 2>/dev/null || true
        ms=$(awk -F, '/task-clock/ { print $1 }' "$WORK/$mode-$round.stat")
        responses=$(jq .requests "$WORK/$mode-$round.json")
        rps=$(jq .rps "$WORK/$mode-$round.json")
        echo "$mode $round $responses $(printf %.0f "$rps") $(printf %.0f "$ms") $(echo "$ms * 1000 / $responses" | bc -l | xargs printf %.2f) $captured $published"
    done
done

# Remove the benchmark's streams from the shared NATS.
for st in "CLICKS_$TAG" "LINKS_$TAG"; do js_api "\$JS.API.STREAM.DELETE.$st" >/dev/null 2>&1 || true; done

echo
echo "publisher: $SPOOL_N clicks spooled with a private nats-server down, then replayed"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/js"
nats-server -js -a 127.0.0.1 -p "$PORT" -sd "$WORK/js" >/dev/null 2>&1 &
NATS_PID=$!
PIDS+=("$NATS_PID")
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
create_stream "nats://127.0.0.1:$PORT" CLICKS "clicks.>"
start_engine "$WORK/spool.ready" --nats "nats://127.0.0.1:$PORT" --node-id "$TAG" \
    --allow-unsigned-links --state-dir "$WORK/spool2"
kill "$NATS_PID"
wait "$NATS_PID" 2>/dev/null || true
"$BIN/perf" load --target "$LISTEN" --keys "$WORK/codes.txt" -c "$CONNS" -n "$SPOOL_N" -d 120 \
    --pin 1 --json "$WORK/spool-load.json" >/dev/null 2>&1
for _ in $(seq 600); do
    [[ $(metric engine_click_events_spooled_total) == "$SPOOL_N" ]] && break
    sleep 0.05
done
echo "spooled: $(metric engine_click_events_spooled_total) events, $(metric engine_click_spool_batches) batches, $(metric engine_click_spool_bytes) bytes"
nats-server -js -a 127.0.0.1 -p "$PORT" -sd "$WORK/js" >/dev/null 2>&1 &
NATS_PID=$!
PIDS+=("$NATS_PID")
start=$(date +%s.%N)
first=""
for _ in $(seq 2400); do
    replayed=$(metric engine_click_events_replayed_total)
    if [[ -z $first && $replayed != 0 ]]; then first=$(date +%s.%N); fi
    [[ $(metric engine_click_spool_batches) == 0 && $replayed == "$SPOOL_N" ]] && break
    sleep 0.05
done
end=$(date +%s.%N)
echo "replayed: $(metric engine_click_events_replayed_total) events in $(echo "$end - $start" | bc -l | xargs printf %.2f) s from nats-server start" \
    "($(echo "$end - ${first:-$start}" | bc -l | xargs printf %.2f) s from the first replayed batch):" \
    "$(echo "$SPOOL_N / ($end - ${first:-$start})" | bc -l | xargs printf %.0f) events/s"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
