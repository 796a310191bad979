#!/usr/bin/env bash
# `control import` of a large file: a measurement script, not a test (it times things;
# run it on a quiet machine, and read its numbers as indicative on a shared one).
#
#   control/bench/import.sh [N]     N links (default 1000000)
#
# It writes a CSV of N links (target, code, title, tags; every 1000th row without a code,
# so random codes are drawn too), makes a scratch database (migrated by `control keys
# create`, which also makes the organization), and times `control import --from csv`
# of the whole file: parsing, checks, multi-row inserts, one outbox row per link, the
# progress record. Then it checks every link and outbox row is there, and times
# `control export`. The binary is $PROFILE's (default release), built if missing.
# Everything it made is removed at the end.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
N="${1:-1000000}"
PROFILE="${PROFILE:-release}"
case "$PROFILE" in dev) target_dir=debug ;; *) target_dir="$PROFILE" ;; esac
BIN="$repo/target/$target_dir/control"

deploy/services.sh up >/dev/null
[ -x "$BIN" ] || cargo build --locked --profile "$PROFILE" -p control

db="importbench_$$"
work=$(mktemp -d)
url="postgres://postgres@127.0.0.1:5432/$db"
cleanup() {
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $db"
RUST_LOG=warn "$BIN" keys create --org bench --database-url "$url" >/dev/null

echo "writing $N links..."
python3 - "$N" "$work/links.csv" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("target,code,title,tags\n")
    for i in range(n):
        code = "" if i % 1000 == 999 else f"imp{i}"
        f.write(f"https://example.com/articles/{i}?ref=import,{code},Article {i},news|t{i % 50}\n")
PY
ls -l "$work/links.csv" | awk '{printf "file: %.0f MB\n", $5/1e6}'

start=$(date +%s.%N)
RUST_LOG=warn "$BIN" import --from csv "$work/links.csv" --org bench --database-url "$url" | tail -1
end=$(date +%s.%N)
secs=$(echo "$end - $start" | bc)
echo "import: $N links in ${secs} s ($(echo "$N / $secs" | bc) links/s)"

links=$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc "SELECT count(*) FROM links")
outbox=$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc "SELECT count(*) FROM link_outbox")
echo "links: $links, outbox rows: $outbox"
[ "$links" = "$N" ] && [ "$outbox" = "$N" ] || { echo "MISMATCH" >&2; exit 1; }

start=$(date +%s.%N)
RUST_LOG=warn "$BIN" export --org bench --database-url "$url" >"$work/export.csv"
end=$(date +%s.%N)
echo "export: $(($(wc -l <"$work/export.csv") - 1)) links in $(echo "$end - $start" | bc) s"
