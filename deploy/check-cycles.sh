#!/usr/bin/env bash
# No import cycles between the modules of a crate's library: a module never imports one that
# imports it back, directly or through others. Checks engine and control unless crates are named:
#
#   deploy/check-cycles.sh                          # engine and control
#   deploy/check-cycles.sh engine                   # one crate
#   deploy/check-cycles.sh --cargo-modules engine   # and cargo-modules' view of it too
#
# Prints each cycle with the line of every import that closes it; exit status 1 if any.
#
# The check reads the source (deploy/check-cycles.py: `use crate::..`, `super::..`, `self::..`,
# child modules by name, and the same paths written inline; test code left out): python3 only,
# well under a second. `--cargo-modules` adds cargo-modules' module graph as a second opinion
# (installed if missing: 0.27, the last release that builds with this workspace's rustc 1.95;
# the install builds rust-analyzer's crates, about an hour on a busy 2-core machine, and each
# run takes some 30 s). Not `cargo modules dependencies --acyclic` itself: it checks the graph
# of items, where a type and its own methods already make a cycle (it stops at
# `engine::loader::LoadError` -> `LoadError::source`), so this script takes its "uses" edges
# between modules and looks for cycles in those. That graph misses paths written inline in
# expressions: both cycles the engine had before issue 12 went through such paths
# (`crate::uring::Driver::new(..)` in core, `crate::shared::now_ms()` in clicks) and
# cargo-modules saw neither, which is why the source check is the one that counts.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
with_cargo_modules=false
if [ "${1:-}" = "--cargo-modules" ]; then
  with_cargo_modules=true
  shift
fi
crates=("$@")
[ ${#crates[@]} -gt 0 ] || crates=(engine control)
if $with_cargo_modules && ! cargo modules --version >/dev/null 2>&1; then
  cargo install --locked cargo-modules@0.27.0
fi
status=0
for crate in "${crates[@]}"; do
  python3 deploy/check-cycles.py "$crate" || status=1
  if $with_cargo_modules; then
    dot="$(mktemp)"
    if cargo modules dependencies --package "$crate" --lib --no-fns --no-types --no-traits \
        --no-externs --no-sysroot --no-owns >"$dot" 2>&1; then
      python3 deploy/check-cycles.py --dot "$dot" "$crate" || status=1
    else
      cat "$dot" >&2
      status=1
    fi
    rm -f "$dot"
  fi
done
exit $status
