#!/usr/bin/env bash
# Snapshot distribution by pull: what control's `GET /engine/snapshot` delivers to many
# engines at once, and what it costs control. A measurement script, not a test: run it on
# a quiet machine (it times things).
#
#   perf/distribution.sh [N] [PULLERS...]     N links (default 1000000), pullers per round
#                                             (default 1 10 50)
#
# It makes a scratch database, imports N links (`control import --from csv`, about 9k
# links/s here), starts control (release) with the engines' token, builds a snapshot
# generation, then for each round starts P concurrent full downloads (curl, as an engine's
# first pull) and reports the wall time, the bytes, the aggregate rate, and control's
# resident memory before, at peak and after (/proc/PID/status VmRSS and VmHWM: the route
# streams the file in 256 KiB reads, so memory must not grow with P). Then it asks once
# with `?have=<latest>` (304: an engine that is current gets nothing) and once resuming
# from the middle with `Range` + `If-Range` (206). Everything it made is removed at the end.
#
# The numbers feed the 100-node model in docs/CAPACITY.md ("Snapshot distribution").
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
N="${1:-1000000}"
shift || true
PULLERS=("${@:-1 10 50}")
read -r -a PULLERS <<<"${PULLERS[*]}"
BIN="$repo/target/release"
TOKEN="distribution-bench-token"

deploy/services.sh up >/dev/null
[ -x "$BIN/control" ] || cargo build --release --locked -p control
command -v curl >/dev/null || { echo "needs curl" >&2; exit 1; }

db="distbench_$$"
work=$(mktemp -d)
url="postgres://postgres@127.0.0.1:5432/$db"
control_pid=""
cleanup() {
  [ -n "$control_pid" ] && kill "$control_pid" 2>/dev/null && wait "$control_pid" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $db"
RUST_LOG=warn "$BIN/control" keys create --org bench --database-url "$url" >/dev/null
OPERATOR=$("$BIN/control" keys create --operator --database-url "$url" \
  | grep -oE '[A-Za-z0-9_]+_[A-Za-z0-9_-]{16,}' | head -1)

echo "== $N links (control import)"
python3 "$repo/deploy/gen-links.py" "$N" >"$work/links.csv"
RUST_LOG=warn "$BIN/control" import --from csv "$work/links.csv" --org bench --database-url "$url" | tail -1

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=warn "$BIN/control" serve --listen "127.0.0.1:$port" --database-url "$url" \
  --snapshot-dir "$work/snapshots" --engine-admin-token "$TOKEN" >"$work/control.out" 2>"$work/control.log" &
control_pid=$!
for _ in $(seq 600); do
  grep -q '"ready"' "$work/control.out" 2>/dev/null && break
  kill -0 "$control_pid" 2>/dev/null || { cat "$work/control.log" >&2; exit 1; }
  sleep 0.1
done
base="http://127.0.0.1:$port"

echo "== snapshot generation"
start=$(date +%s.%N)
built=$(curl -sf -X POST -H "Authorization: Bearer $OPERATOR" "$base/v1/admin/snapshots")
echo "built in $(echo "$(date +%s.%N) - $start" | bc) s: $built"
seq=$(echo "$built" | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"]["seq"])')

rss() { awk -v k="$1:" '$1 == k { print $2 / 1024 }' "/proc/$control_pid/status"; }
auth=(-H "Authorization: Bearer $TOKEN")

for p in "${PULLERS[@]}"; do
  before=$(rss VmRSS)
  start=$(date +%s.%N)
  pids=()
  for i in $(seq "$p"); do
    curl -sf "${auth[@]}" "$base/engine/snapshot" -o /dev/null -w '%{size_download}\n' >"$work/pull.$i" &
    pids+=($!)
  done
  peak=$before
  running() { for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done; return 1; }
  while running; do
    now=$(rss VmRSS)
    peak=$(echo "if ($now > $peak) $now else $peak" | bc)
    sleep 0.05
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  bytes=$(cat "$work"/pull.* | awk '{ s += $1 } END { print s }')
  rm -f "$work"/pull.*
  printf '%3d pullers: %.2f GB in %.2f s, %.0f MB/s aggregate; control RSS %.0f MB before, %.0f MB peak, %.0f MB after\n' \
    "$p" "$(echo "$bytes / 1000000000" | bc -l)" "$secs" "$(echo "$bytes / $secs / 1000000" | bc -l)" \
    "$before" "$peak" "$(rss VmRSS)"
done

echo "== an engine that is current: ?have=$seq"
curl -s "${auth[@]}" "$base/engine/snapshot?have=$seq" -o /dev/null -w 'status %{http_code}, %{size_download} bytes\n'
etag=$(curl -sfI "${auth[@]}" "$base/engine/snapshot" | awk -F': ' 'tolower($1) == "etag" { print $2 }' | tr -d '\r')
size=$(curl -sfI "${auth[@]}" "$base/engine/snapshot" | awk -F': ' 'tolower($1) == "content-length" { print $2 }' | tr -d '\r')
echo "== a resumed download from the middle (Range + If-Range $etag)"
curl -s "${auth[@]}" -H "Range: bytes=$((size / 2))-" -H "If-Range: $etag" "$base/engine/snapshot" \
  -o /dev/null -w 'status %{http_code}, %{size_download} of '"$size"' bytes\n'
echo "control peak RSS over the run (VmHWM): $(rss VmHWM) MB"
