#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png: runs the dashboard's end-to-end browser test
# (e2e/tests/dashboard_clicks.rs: real engine, analytics, control, ClickHouse, headless
# Chromium) with DASHBOARD_SCREENSHOTS pointing there; it saves one PNG per page.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
deploy/services.sh up
cargo build --locked -p engine -p control -p analytics
DASHBOARD_SCREENSHOTS="$repo/docs/screenshots" \
  cargo test --locked -p e2e --test dashboard_clicks -- --nocapture
ls -l docs/screenshots
