#!/usr/bin/env bash
# Runs every fuzz target for a while and records what ran and what was found.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     default 300 s, every target
#
# Installs cargo-fuzz from crates.io when missing. cargo-fuzz needs nightly compiler
# flags (sanitizers); this machine has only the stable toolchain, so the build runs with
# RUSTC_BOOTSTRAP=1, which enables them on stable. Corpora grow under fuzz/corpus/
# (gitignored); crashes land in fuzz/artifacts/<target>/ and make the script exit 1.
# A summary (inputs run, corpus size, crashes) goes to fuzz/results/<date>.md.
# Not part of CI: fuzzing wants hours, CI wants minutes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
secs="${1:-300}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(http_request snapshot delta click_batch lease)
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
mkdir -p results
out="results/$(date -u +%Y-%m-%dT%H-%M).md"
{
  echo "# Fuzz run $(date -u +%FT%TZ)"
  echo
  echo "git $(git rev-parse --short HEAD), $(nproc) cores, $(uname -r), ${secs} s per target, \`fuzz/run.sh $secs ${targets[*]}\`"
  echo
  echo "| target | inputs run | corpus | crashes |"
  echo "| --- | --- | --- | --- |"
} >"$out"
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log="$(mktemp)"
  if ! cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    status=1
  fi
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  corpus=$(find "corpus/$t" -type f | wc -l)
  crashes=$(find "artifacts/$t" -type f 2>/dev/null | wc -l)
  echo "| $t | ${runs:-?} | $corpus | $crashes |" >>"$out"
  [ "$crashes" = 0 ] || tail -40 "$log" | sed 's/^/    /' >>"$out"
  rm -f "$log"
done
cat "$out"
exit $status
