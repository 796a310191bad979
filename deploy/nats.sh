#!/usr/bin/env bash
# The stack's own NATS server, with authentication: one user per role (control, engine,
# analytics, operator) and exactly the permissions deploy/nats/auth.conf.template gives
# each. The machine's shared NATS on 4222 (no users; the tests use it) is left alone.
#
#   deploy/nats.sh [up]     write the config and passwords if missing, start, wait
#   deploy/nats.sh down     stop the server this script started
#   deploy/nats.sh status   say whether it answers
#
# Everything lives under $STACK_DIR/nats (default <repo>/.stack/nats): auth.conf (mode
# 0600), <role>.password (0600, one line; services read them with --nats-password-file),
# the JetStream store and the log. Passwords are made once and kept, so a restart keeps
# every process's credentials valid.
#
# Environment: STACK_DIR, STACK_NATS_PORT (default 4223), and the names the permissions
# are written for: LINKS_STREAM, LINKS_SUBJECT, CLICKS_STREAM, CLICKS_SUBJECT_PREFIX,
# CLICKS_CONSUMER, ENRICHED_SUBJECT (default enriched.clicks: the sidecar's
# --enriched-subject and control's), ENRICHED_STREAM, ENRICHED_CONSUMER (defaults: the
# services' defaults). A server of ours already running gets the config written again and
# reloaded (SIGHUP), so changed permissions apply without a restart.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${STACK_DIR:-$repo/.stack}"
DIR="$STACK_DIR/nats"
PORT="${STACK_NATS_PORT:-4223}"
PID="$DIR/nats-server.pid"
ROLES=(control engine analytics operator)

die() { echo "nats.sh: $*" >&2; exit 1; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
ours_running() { [[ -f $PID ]] && kill -0 "$(cat "$PID")" 2>/dev/null; }

write_config() {
  umask 077
  mkdir -p "$DIR/store"
  local role
  for role in "${ROLES[@]}"; do
    [[ -s $DIR/$role.password ]] ||
      head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$DIR/$role.password"
  done
  local sed_args=(
    -e "s|@LINKS_STREAM@|${LINKS_STREAM:-LINKS}|g"
    -e "s|@LINKS_SUBJECT@|${LINKS_SUBJECT:-links.changes}|g"
    -e "s|@LEASE_SUBJECT@|${LEASE_SUBJECT:-links.lease}|g"
    -e "s|@CLICKS_STREAM@|${CLICKS_STREAM:-CLICKS}|g"
    -e "s|@CLICKS_SUBJECT_PREFIX@|${CLICKS_SUBJECT_PREFIX:-clicks}|g"
    -e "s|@CLICKS_CONSUMER@|${CLICKS_CONSUMER:-analytics}|g"
    -e "s|@ENRICHED_SUBJECT@|${ENRICHED_SUBJECT:-enriched.clicks}|g"
    -e "s|@ENRICHED_STREAM@|${ENRICHED_STREAM:-ENRICHED}|g"
    -e "s|@ENRICHED_CONSUMER@|${ENRICHED_CONSUMER:-control-webhooks}|g"
  )
  for role in "${ROLES[@]}"; do
    sed_args+=(-e "s|@${role^^}_PASSWORD@|$(cat "$DIR/$role.password")|g")
  done
  grep -v '^[[:space:]]*#' "$repo/deploy/nats/auth.conf.template" | sed "${sed_args[@]}" >"$DIR/auth.conf"
  ! grep -q '@' "$DIR/auth.conf" || die "auth.conf has an unfilled @NAME@"
}

up() {
  if answers; then
    ours_running || die "127.0.0.1:$PORT is taken by another server (set STACK_NATS_PORT)"
    # Same passwords, the template's current permissions.
    write_config
    kill -HUP "$(cat "$PID")"
    echo "nats (auth) running on 127.0.0.1:$PORT (permissions reloaded)"
    return
  fi
  command -v nats-server >/dev/null || die "nats-server is missing (deploy/services.sh installs it)"
  write_config
  start-stop-daemon --start --background --make-pidfile --pidfile "$PID" \
    --exec "$(command -v nats-server)" -- -c "$DIR/auth.conf" -a 127.0.0.1 -p "$PORT" \
    -js -sd "$DIR/store" -l "$DIR/nats-server.log" ||
    die "start-stop-daemon failed"
  for _ in $(seq 1 100); do answers && break; sleep 0.1; done
  answers || die "not answering on 127.0.0.1:$PORT (see $DIR/nats-server.log)"
  echo "nats (auth) started on 127.0.0.1:$PORT (users: ${ROLES[*]}; passwords in $DIR)"
}

case "${1:-up}" in
  up) up ;;
  down)
    if ours_running; then
      start-stop-daemon --stop --pidfile "$PID" --retry TERM/5/KILL/2 >/dev/null || true
      echo "nats (auth) stopped"
    fi
    rm -f "$PID" ;;
  status)
    if answers; then echo "nats (auth) up 127.0.0.1:$PORT"; else echo "nats (auth) down 127.0.0.1:$PORT"; exit 1; fi ;;
  *) die "usage: deploy/nats.sh [up|down|status]" ;;
esac
