#!/usr/bin/env bash
# User-space instructions per redirect of the release engine with click
# capture on (publishing to the local NATS, own stream) and with --no-clicks,
# counted by valgrind (cachegrind, no cache simulation): deterministic and
# unaffected by the neighbours' load, on a VM without hardware counters.
# Same method as perf/instructions.sh: each mode runs twice, answering N1 and
# N2 requests (perf load, closed loop, 8 connections); per request =
# (Ir(N2) - Ir(N1)) / (N2 - N1), which cancels start-up and shutdown. With
# clicks on, the engine is stopped only once every captured click is
# published, so the publisher thread's work (encoding is on the request
# path; batching, async-nats, acks) is in the count. Kernel work and
# nats-server's own work are not.
#
# Usage (workspace root): cargo build --release -p engine -p perf   # once
#        e2e/bench/click-instructions.sh [SNAPSHOT CODES]
# Env:   N1 (2000), N2 (12000), NATS_URL (nats://127.0.0.1:4222), BIN (target/release),
#        MODES ("no-clicks clicks"), TOP=DIR: keep where each mode's extra
#        (N2 - N1) requests' instructions go, by function (cg_annotate), in DIR
set -euo pipefail
N1=${N1:-2000}
N2=${N2:-12000}
NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
BIN=${BIN:-target/release}
WORK=$(mktemp -d /tmp/e2e-click-instr.XXXXXX)
TAG="e2einstr$$"
cp "${1:-/tmp/perf-harness-100000/links.snap}" "$WORK/links.snap"
cp "${2:-/tmp/perf-harness-100000/codes.txt}" "$WORK/codes.txt"
trap 'rm -rf "$WORK"' EXIT
# shellcheck source=perf/scripts/jetstream.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../perf/scripts/jetstream.sh"
create_clicks_stream "CLICKS_$TAG" "$TAG.clicks.>"

# one MODE COUNT -> prints Ir of a whole engine run that served COUNT requests
one() {
    local mode=$1 n=$2 base=$WORK/$1-$2 pid listen admin args
    if [[ $mode == clicks ]]; then
        args=(--nats "$NATS_URL" --node-id "$TAG" --links-stream "LINKS_$TAG" --links-subject "$TAG.links"
            --clicks-stream "CLICKS_$TAG" --clicks-subject-prefix "$TAG.clicks"
            --allow-unsigned-links --state-dir "$base.state")
    else
        args=(--no-clicks --state-dir "$base.state")
    fi
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$base.cg" \
        "$BIN/engine" serve --snapshot "$WORK/links.snap" --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
        --cores 1 "${args[@]}" >"$base.out" 2>"$base.err" &
    pid=$!
    for _ in $(seq 1200); do
        grep -q '"ready"' "$base.out" 2>/dev/null && break
        sleep 0.1
    done
    listen=$(head -1 "$base.out" | jq -r .listen)
    admin=$(head -1 "$base.out" | jq -r .admin)
    "$BIN/perf" load -u "$listen" -k "$WORK/codes.txt" -c 8 -n "$n" -d 600 --json "$base.json" >"$base.load" 2>&1
    if [[ $mode == clicks ]]; then
        for _ in $(seq 1200); do
            m=$(curl -s "http://$admin/metrics")
            c=$(awk '$1 ~ /^engine_clicks_captured_total/ { s += $2 } END { print s + 0 }' <<<"$m")
            p=$(awk '$1 ~ /^engine_click_events_published_total/ { s += $2 } END { print s + 0 }' <<<"$m")
            [[ $c == "$p" && $c -ge $n ]] && break
            sleep 0.1
        done
        echo "clicks $n: captured $c published $p" >&2
    fi
    kill -TERM "$pid"
    wait "$pid" || true
    awk '/I +refs:/ {gsub(",", "", $4); print $4}' "$base.err"
}

echo "$(valgrind --version), engine at $(git log -1 --format=%h -- engine/src), N1=$N1 N2=$N2"
for mode in ${MODES:-no-clicks clicks}; do
    a=$(one "$mode" "$N1")
    b=$(one "$mode" "$N2")
    echo "$mode: Ir($N1)=$a Ir($N2)=$b per request $(((b - a) / (N2 - N1)))"
    if [[ -n ${TOP:-} ]]; then
        mkdir -p "$TOP"
        cg_diff "$WORK/$mode-$N1.cg" "$WORK/$mode-$N2.cg" >"$WORK/$mode-diff.cg" 2>/dev/null
        cg_annotate "$WORK/$mode-diff.cg" 2>/dev/null | sed -n '/Ir .*file:function/,/^$/p' | head -60 >"$TOP/$mode-top.txt" || true
    fi
done

for st in "CLICKS_$TAG" "LINKS_$TAG"; do js_api "\$JS.API.STREAM.DELETE.$st" >/dev/null 2>&1 || true; done
