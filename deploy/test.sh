#!/usr/bin/env bash
# The project's one test command (the README's second command; .ci/run calls it).
#
#   1. brings up PostgreSQL, NATS JetStream and ClickHouse on loopback (deploy/services.sh),
#   2. checks formatting and clippy (-D warnings) over the whole workspace, and that no
#      module of engine or control imports one that imports it back (deploy/check-cycles.sh),
#   3. builds every crate and test once, then runs all tests in parallel with
#      cargo-nextest (installed from crates.io if missing; plain `cargo test` if that fails),
#   4. runs the engine's integration tests a second time on its other I/O backend
#      (ENGINE_TEST_IO=glommio; the first run uses the io_uring backend),
#   5. fuzzes control's API against its OpenAPI document (deploy/schemathesis.sh: a pinned
#      schemathesis from PyPI, every check, stateful links; control on its own database),
#   6. packages the three services with cargo-deb and installs, runs and purges them on an
#      overlay copy of this host (deploy/packages.sh test; docs/INSTALL.md).
#
# Each test gets its own PostgreSQL database, ClickHouse database and JetStream
# streams (see testkit/), so they run in parallel and leave nothing behind.
# Extra arguments go to the test runner, e.g. `deploy/test.sh -p snapshots`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
step() { printf '\n== %s\n' "$*"; }

step "services"
deploy/services.sh up

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "no import cycles (engine, control)"
deploy/check-cycles.sh

step "build"
cargo build --workspace --all-targets --locked

if ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest"
  cargo install --locked cargo-nextest || true
fi

args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--workspace)
status=0
if cargo nextest --version >/dev/null 2>&1; then
  step "tests (nextest)"
  cargo nextest run --locked --no-fail-fast "${args[@]}" || status=1
  step "engine integration tests on the glommio backend"
  # Selected from the workspace build with a filter rather than `-p engine`,
  # which would unify features differently and rebuild a hundred crates.
  ENGINE_TEST_IO=glommio cargo nextest run --locked --no-fail-fast --workspace \
    -E 'package(engine) & kind(test)' || status=1
  # nextest does not run doctests.
  step "doctests"
  cargo test --locked --doc "${args[@]}" || status=1
else
  step "tests (cargo test)"
  cargo test --locked --no-fail-fast "${args[@]}" || status=1
  step "engine integration tests on the glommio backend"
  ENGINE_TEST_IO=glommio cargo test --locked --no-fail-fast -p engine --test '*' || status=1
fi

# Only on a whole run (no test-runner arguments): it tests the API as a whole.
if [ $# -eq 0 ]; then
  step "API contract: schemathesis against /openapi.json"
  deploy/schemathesis.sh || status=1
  step "Debian packages: installed, serving and purged on an overlay copy of this host"
  deploy/packages.sh test || status=1
fi
exit $status
