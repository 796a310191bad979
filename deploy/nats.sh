#!/usr/bin/env bash
# The stack's own NATS server, with authentication: one user per role (control, analytics,
# operator) and one per engine node (engine-<node id>), with exactly the permissions
# deploy/nats/auth.conf.template gives each (deploy/nats/engine-user.conf.template for the
# engines). The machine's shared NATS on 4222 (no users; the tests use it) is left alone.
#
#   deploy/nats.sh [up]     write the config and passwords if missing, start, wait
#   deploy/nats.sh down     stop the server this script started
#   deploy/nats.sh status   say whether it answers
#
# Everything lives under $STACK_DIR/nats (default <repo>/.stack/nats): auth.conf (mode
# 0600), <user>.password (0600, one line; services read them with --nats-password-file:
# control.password, analytics.password, engine-<node>.password for each engine node),
# the JetStream store and the log. Passwords are made once and kept, so a restart keeps
# every process's credentials valid.
#
# Environment: STACK_DIR, STACK_NATS_PORT (default 4223), ENGINE_NODES (the engines' node
# ids, separated by spaces or commas; default "demo", the node deploy/up.sh starts: each
# gets the user engine-<node>, allowed to ask for visit leases and publish click batches as
# that node only; an id is at most 64 characters, what the engine keeps), and the
# names the permissions are written for: LINKS_STREAM, LINKS_SUBJECT, LEASE_SUBJECT,
# CLICKS_STREAM, CLICKS_SUBJECT_PREFIX, CLICKS_CONSUMER, ENRICHED_SUBJECT (default
# enriched.clicks: the sidecar's --enriched-subject and control's), ENRICHED_STREAM,
# ENRICHED_CONSUMER (defaults: the services' defaults). A server of ours already running gets the config written again and
# reloaded (SIGHUP), so changed permissions apply without a restart.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${STACK_DIR:-$repo/.stack}"
DIR="$STACK_DIR/nats"
PORT="${STACK_NATS_PORT:-4223}"
PID="$DIR/nats-server.pid"
ROLES=(control analytics operator)
IFS=', ' read -r -a ENGINE_NODES <<<"${ENGINE_NODES:-demo}"

die() { echo "nats.sh: $*" >&2; exit 1; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
ours_running() { [[ -f $PID ]] && kill -0 "$(cat "$PID")" 2>/dev/null; }

# password_file USER: USER's password file, made (random) if missing.
password_file() {
  [[ -s $DIR/$1.password ]] ||
    head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$DIR/$1.password"
  echo "$DIR/$1.password"
}

# The per-node template once per engine node, for @ENGINE_USERS@.
engine_users() {
  local node block
  for node in "${ENGINE_NODES[@]}"; do
    # A subject token that also names the user's inbox prefix: the characters the engine
    # keeps of its --node-id, and no more than it keeps (engine/src/clicks/mod.rs,
    # snapshots::click::MAX_NODE_ID_LEN), or its subjects would not be the user's.
    [[ $node =~ ^[A-Za-z0-9_-]{1,64}$ ]] ||
      die "engine node id ${node@Q}: 1 to 64 letters, digits, '_' or '-'"
    block=$(grep -v '^[[:space:]]*#' "$repo/deploy/nats/engine-user.conf.template")
    block=${block//@NODE@/$node}
    block=${block//@ENGINE_PASSWORD@/$(cat "$(password_file "engine-$node")")}
    printf '%s\n' "$block"
  done
}

write_config() {
  umask 077
  mkdir -p "$DIR/store"
  # Bash 5.2 would read '&' in a replacement as the match; passwords and templates have
  # none, but say what is meant.
  shopt -u patsub_replacement 2>/dev/null || true
  local role template users
  for role in "${ROLES[@]}"; do password_file "$role" >/dev/null; done
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
  template=$(grep -v '^[[:space:]]*#' "$repo/deploy/nats/auth.conf.template")
  users=$(engine_users)
  printf '%s\n' "${template//@ENGINE_USERS@/$users}" | sed "${sed_args[@]}" >"$DIR/auth.conf"
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
  echo "nats (auth) started on 127.0.0.1:$PORT (users: ${ROLES[*]} ${ENGINE_NODES[*]/#/engine-}; passwords in $DIR)"
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
