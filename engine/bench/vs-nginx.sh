#!/usr/bin/env bash
# Engine vs nginx (map + return 301, one worker, access_log off) serving the
# same links, one server core each (CPU 0), wrk on the other core (CPU 1),
# in the same run. Release build. Also prints the CPU time per request of
# each server process (perf stat task-clock; this VM has no hardware
# counters), which other load skews less than throughput. Usage:
#   engine/bench/vs-nginx.sh [LINKS=1000000] [CONNECTIONS=64] [SECONDS=10]
set -euo pipefail
N=${1:-1000000}; CONNS=${2:-64}; SECS=${3:-10}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=perf/scripts/need-tools.sh
. "$ROOT/perf/scripts/need-tools.sh"
need_tools nginx wrk taskset
WORK=$(mktemp -d /tmp/engine-vs-nginx.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$ROOT"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p engine -p snapshots

# Links, minus codes that collide case-insensitively (nginx map keys are
# case-insensitive), so both servers serve exactly the same table.
python3 deploy/gen-links.py "$N" | python3 -c '
import sys
seen = set(); out = open(sys.argv[1], "w"); conf = open(sys.argv[2], "w"); codes = open(sys.argv[3], "w")
next(sys.stdin); out.write("code,target\n")
rows = [l.rstrip("\n").split(",", 1) for l in sys.stdin]
lower = {}
for code, _ in rows: lower[code.lower()] = lower.get(code.lower(), 0) + 1
kept = 0
for code, target in rows:
    if lower[code.lower()] > 1: continue
    out.write(f"{code},{target}\n"); conf.write(f"/{code} {target};\n")
    if kept < 100000: codes.write(f"/{code}\n")
    kept += 1
print(f"{kept} links ({len(rows) - kept} dropped for case-insensitive collisions)", file=sys.stderr)
' "$WORK/links.csv" "$WORK/map.conf" "$WORK/paths.txt"
target/release/snapshot build --input "$WORK/links.csv" --output "$WORK/links.snap" >/dev/null

cat > "$WORK/paths.lua" <<'LUA'
local paths = {}
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], { Host = "bench" })
end
LUA

mkdir -p "$WORK/nginx/logs"
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
worker_cpu_affinity 01;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  map_hash_max_size 4194304;
  map_hash_bucket_size 256;
  map \$uri \$target { include $WORK/map.conf; }
  server {
    listen 127.0.0.1:18081 reuseport backlog=4096;
    location / { if (\$target) { return 301 \$target; } return 404; }
  }
}
CONF

run_wrk() { # name url pid
  perf stat -x, -e task-clock -p "$3" -o "$WORK/$1.perf" -- sleep "$SECS" 2>/dev/null &
  local perf_pid=$!
  PATHS="$WORK/paths.txt" taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$WORK/paths.lua" "$2" > "$WORK/$1.wrk"
  wait "$perf_pid" || true
  local rps p50 p99 total cpu_ms
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$1.wrk")
  p50=$(awk '$1=="50%" {print $2}' "$WORK/$1.wrk")
  p99=$(awk '$1=="99%" {print $2}' "$WORK/$1.wrk")
  total=$(awk '/requests in/ {print $1}' "$WORK/$1.wrk")
  cpu_ms=$(awk -F, '/task-clock/ {print int($1)}' "$WORK/$1.perf")
  printf '%-7s %9s req/s  p50 %8s  p99 %8s  server CPU %5s us/req  %s\n' "$1" "$rps" "$p50" "$p99" \
    "$(awk -v ms="${cpu_ms:-0}" -v n="${total:-1}" 'BEGIN {printf "%.1f", ms * 1000 / n}')" \
    "$(grep -E 'Non-2xx|Socket errors' "$WORK/$1.wrk" | tr -s ' ' | tr '\n' ' ')"
}

taskset -c 0 nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
target/release/engine serve --snapshot "$WORK/links.snap" --cores 1 --listen 127.0.0.1:18080 \
  --admin 127.0.0.1:0 --state-dir "$WORK/engine-state" > "$WORK/engine.ready" 2> "$WORK/engine.log" &
for _ in $(seq 200); do
  curl -s -o /dev/null "http://127.0.0.1:18081$(head -1 "$WORK/paths.txt")" && [ -s "$WORK/engine.ready" ] && break
  sleep 0.1
done
# Both answer the same link the same way.
P=$(sed -n 7p "$WORK/paths.txt")
[ "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:18080$P")" = \
  "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:18081$P")" ] || { echo "servers disagree on $P"; exit 1; }

echo "$(nproc) CPUs, $(uname -r), $CONNS connections, ${SECS}s each, wrk on CPU 1, servers on CPU 0"
ENGINE_PID=$(pgrep -f "engine serve --snapshot $WORK/links.snap" | head -1)
NGINX_PID=$(pgrep -P "$(cat "$WORK/nginx/nginx.pid")" | head -1)
for round in 1 2; do
  run_wrk engine http://127.0.0.1:18080 "$ENGINE_PID"
  run_wrk nginx http://127.0.0.1:18081 "$NGINX_PID"
done
