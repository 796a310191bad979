#!/usr/bin/env bash
# A three-node NATS JetStream cluster on loopback, to try the services on a cluster (not
# used by up.sh or the tests: those start their own, testkit::NatsCluster).
#
#   deploy/cluster.sh [up]    write the configs, start the three nodes, wait for a meta leader
#   deploy/cluster.sh down    stop the nodes this script started (their stores are kept)
#   deploy/cluster.sh status  each node's state and the meta leader
#
# Nodes n0, n1, n2 listen for clients on 127.0.0.1:4231-4233, for routes on 6231-6233,
# for monitoring on 8231-8233; everything lives under $STACK_DIR/nats-cluster (default
# <repo>/.stack/nats-cluster): n<i>.conf, n<i>/ (JetStream store), n<i>.log, n<i>.pid.
# The nodes have no users (like the tests' server on 4222): for role users, put the
# authorization block of deploy/nats/auth.conf.template (filled in as deploy/nats.sh does)
# in each node's config.
#
# Then give every service all three servers and three replicas, e.g.:
#   control serve   --nats nats://127.0.0.1:4231,nats://127.0.0.1:4232,nats://127.0.0.1:4233 --links-stream-replicas 3 ...
#   analytics run   --nats nats://127.0.0.1:4231,nats://127.0.0.1:4232,nats://127.0.0.1:4233 --clicks-replicas 3 ...
#   engine serve    --nats nats://127.0.0.1:4231,nats://127.0.0.1:4232,nats://127.0.0.1:4233 ...
# (an existing stream on one replica is refused until --links-stream-adopt / --adopt-stream).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${STACK_DIR:-$repo/.stack}"
DIR="$STACK_DIR/nats-cluster"
NODES=(0 1 2)

die() { echo "cluster.sh: $*" >&2; exit 1; }
client_port() { echo $((4231 + $1)); }
route_port() { echo $((6231 + $1)); }
monitor_port() { echo $((8231 + $1)); }
running() { [[ -f $DIR/n$1.pid ]] && kill -0 "$(cat "$DIR/n$1.pid")" 2>/dev/null; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
meta_leader() {
  curl -fsS "http://127.0.0.1:$(monitor_port "$1")/jsz" 2>/dev/null |
    sed -n 's/.*"leader": *"\([^"]*\)".*/\1/p' | head -n1
}

write_config() {
  local i=$1 j routes=()
  for j in "${NODES[@]}"; do
    [[ $j == "$i" ]] || routes+=("\"nats-route://127.0.0.1:$(route_port "$j")\"")
  done
  cat >"$DIR/n$i.conf" <<EOF
server_name: "n$i"
listen: "127.0.0.1:$(client_port "$i")"
http: "127.0.0.1:$(monitor_port "$i")"
jetstream { store_dir: "$DIR/n$i" }
cluster {
  name: "shortener"
  listen: "127.0.0.1:$(route_port "$i")"
  routes: [$(IFS=,; echo "${routes[*]}")]
}
EOF
}

up() {
  command -v nats-server >/dev/null || die "nats-server is missing (deploy/services.sh installs it)"
  mkdir -p "$DIR"
  local i
  for i in "${NODES[@]}"; do
    if running "$i"; then
      continue
    fi
    answers "$(client_port "$i")" && die "127.0.0.1:$(client_port "$i") is taken by another server"
    mkdir -p "$DIR/n$i"
    write_config "$i"
    nats-server -c "$DIR/n$i.conf" >>"$DIR/n$i.log" 2>&1 &
    echo $! >"$DIR/n$i.pid"
  done
  # Ready when every node knows the meta leader (streams can be created).
  local deadline=$((SECONDS + 60))
  for i in "${NODES[@]}"; do
    until [[ -n $(meta_leader "$i") ]]; do
      running "$i" || die "n$i exited; see $DIR/n$i.log"
      ((SECONDS < deadline)) || die "no JetStream meta leader after 60 s; see $DIR/n*.log"
      sleep 0.2
    done
  done
  echo "nats cluster up: nats://127.0.0.1:4231,nats://127.0.0.1:4232,nats://127.0.0.1:4233 (meta leader $(meta_leader 0))"
}

down() {
  local i
  for i in "${NODES[@]}"; do
    if running "$i"; then
      kill "$(cat "$DIR/n$i.pid")"
      while running "$i"; do sleep 0.1; done
    fi
    rm -f "$DIR/n$i.pid"
  done
  echo "nats cluster stopped (stores kept in $DIR)"
}

status() {
  local i
  for i in "${NODES[@]}"; do
    if running "$i"; then
      echo "n$i: running on 127.0.0.1:$(client_port "$i"), meta leader $(meta_leader "$i")"
    else
      echo "n$i: stopped"
    fi
  done
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: deploy/cluster.sh [up|down|status]" ;;
esac
