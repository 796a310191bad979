#!/usr/bin/env bash
# ClickHouse past one server, on loopback, to try the sidecar on (not used by up.sh or the
# tests: those start their own, testkit::ClickHouseReplicas): one ZooKeeper and two
# ClickHouse 18.16 servers that are two replicas of one shard.
#
#   deploy/clickhouse-cluster.sh [up]   install what is missing, write the configs, start, wait
#   deploy/clickhouse-cluster.sh down   stop what this script started (data is kept)
#   deploy/clickhouse-cluster.sh status what answers
#
#   ZooKeeper       127.0.0.1:2191  (Debian's zookeeper package, run as our own process
#                                    with our config; never the system service)
#   replica r0      127.0.0.1:8131 (HTTP), 9131 (native), 9141 (replication)
#   replica r1      127.0.0.1:8132 (HTTP), 9132 (native), 9142 (replication)
#
# Everything lives under $STACK_DIR/clickhouse-cluster (default <repo>/.stack): zookeeper/
# (zoo.cfg, data, log, pid), r0/ and r1/ (config.xml, data, logs, pid). Each server's config
# sets the {replica} macro (r0, r1), ZooKeeper, and a remote_servers cluster `replicas`
# (one shard, both replicas) for queries across them.
#
# Then run one sidecar per replica on the same stream and consumer:
#   analytics run --clickhouse http://127.0.0.1:8131 --clickhouse-replicated --metrics 127.0.0.1:9101 ...
#   analytics run --clickhouse http://127.0.0.1:8132 --clickhouse-replicated --metrics 127.0.0.1:9102 ...
# and point control's stats at either replica (--clickhouse http://127.0.0.1:8131): both hold
# every click (analytics/README.md, "Several ClickHouse servers").
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${STACK_DIR:-$repo/.stack}"
DIR="$STACK_DIR/clickhouse-cluster"
ZK_PORT=2191
REPLICAS=(0 1)
TIMEOUT=60
ZK_JAR=/usr/share/java/zookeeper.jar

die() { echo "clickhouse-cluster.sh: $*" >&2; exit 1; }
http_port() { echo $((8131 + $1)); }
tcp_port() { echo $((9131 + $1)); }
interserver_port() { echo $((9141 + $1)); }
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
zk_ok() { # ZooKeeper answers ruok with imok
  local answer
  answer="$( (exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT" && printf ruok >&3 && timeout 2 cat <&3) 2>/dev/null)" || return 1
  [[ $answer == imok ]]
}
ch_ok() { [[ "$(curl -s --max-time 2 "http://127.0.0.1:$(http_port "$1")/ping" 2>/dev/null)" == "Ok." ]]; }
wait_until() { # CHECK...: for up to $TIMEOUT seconds
  local deadline=$((SECONDS + TIMEOUT))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

APT_WHO=clickhouse-cluster.sh
# shellcheck source=deploy/lib/apt.sh
. "$repo/deploy/lib/apt.sh"

write_zookeeper_config() {
  mkdir -p "$DIR/zookeeper/data"
  cat >"$DIR/zookeeper/zoo.cfg" <<EOF
tickTime=500
initLimit=10
syncLimit=5
dataDir=$DIR/zookeeper/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
EOF
}

write_clickhouse_config() {
  local i=$1 d="$DIR/r$1" j replicas=""
  mkdir -p "$d"/{data,tmp,user_files,format_schemas,log}
  for j in "${REPLICAS[@]}"; do
    replicas+="<replica><host>127.0.0.1</host><port>$(tcp_port "$j")</port></replica>"
  done
  cat >"$d/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>$d/log/clickhouse.log</log>
        <errorlog>$d/log/err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$(http_port "$i")</http_port>
    <tcp_port>$(tcp_port "$i")</tcp_port>
    <interserver_http_port>$(interserver_port "$i")</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mark_cache_size>536870912</mark_cache_size>
    <path>$d/data/</path>
    <tmp_path>$d/tmp/</tmp_path>
    <user_files_path>$d/user_files/</user_files_path>
    <format_schema_path>$d/format_schemas/</format_schema_path>
    <users_config>/etc/clickhouse-server/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <zookeeper>
        <node><host>127.0.0.1</host><port>$ZK_PORT</port></node>
        <session_timeout_ms>10000</session_timeout_ms>
    </zookeeper>
    <macros>
        <shard>01</shard>
        <replica>r$i</replica>
    </macros>
    <remote_servers>
        <replicas>
            <shard><internal_replication>true</internal_replication>$replicas</shard>
        </replicas>
    </remote_servers>
</yandex>
EOF
}

up() {
  [[ -f $ZK_JAR ]] || apt_install zookeeper
  { command -v clickhouse-server >/dev/null && [[ -f /etc/clickhouse-server/users.xml ]]; } ||
    apt_install clickhouse-server clickhouse-client
  command -v curl >/dev/null || apt_install curl
  command -v java >/dev/null || die "java is missing (the zookeeper package should have brought it)"
  mkdir -p "$DIR"

  if ! alive "$DIR/zookeeper/pid"; then
    zk_ok && die "something else answers on 127.0.0.1:$ZK_PORT"
    write_zookeeper_config
    # The jar's manifest names the libraries it needs; logging goes nowhere (no binding).
    nohup java -Xmx256m "-Dzookeeper.log.dir=$DIR/zookeeper" -cp "$ZK_JAR" \
      org.apache.zookeeper.server.ZooKeeperServerMain "$DIR/zookeeper/zoo.cfg" \
      >>"$DIR/zookeeper/zookeeper.log" 2>&1 </dev/null &
    echo $! >"$DIR/zookeeper/pid"
  fi
  wait_until zk_ok || die "ZooKeeper does not answer on 127.0.0.1:$ZK_PORT; see $DIR/zookeeper/zookeeper.log"

  local i
  for i in "${REPLICAS[@]}"; do
    alive "$DIR/r$i/pid" && continue
    ch_ok "$i" && die "something else answers on 127.0.0.1:$(http_port "$i")"
    write_clickhouse_config "$i"
    clickhouse-server --config-file="$DIR/r$i/config.xml" --daemon --pid-file="$DIR/r$i/pid" \
      >"$DIR/r$i/log/launch.log" 2>&1 || { cat "$DIR/r$i/log/launch.log" >&2; die "replica r$i did not start"; }
  done
  for i in "${REPLICAS[@]}"; do
    wait_until ch_ok "$i" || die "replica r$i does not answer on 127.0.0.1:$(http_port "$i"); see $DIR/r$i/log/err.log"
  done
  echo "clickhouse replicas up: http://127.0.0.1:8131 (r0), http://127.0.0.1:8132 (r1); zookeeper 127.0.0.1:$ZK_PORT"
}

stop_pid() { # pidfile
  local pid
  alive "$1" || { rm -f "$1"; return 0; }
  pid="$(cat "$1")"
  kill "$pid"
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || { kill -9 "$pid" 2>/dev/null || true; break; }
    sleep 0.1
  done
  rm -f "$1"
}

down() {
  local i
  for i in "${REPLICAS[@]}"; do stop_pid "$DIR/r$i/pid"; done
  stop_pid "$DIR/zookeeper/pid"
  echo "clickhouse replicas and zookeeper stopped (data kept in $DIR)"
}

status() {
  local i rc=0
  if zk_ok; then echo "zookeeper: up on 127.0.0.1:$ZK_PORT"; else echo "zookeeper: down"; rc=1; fi
  for i in "${REPLICAS[@]}"; do
    if ch_ok "$i"; then echo "r$i: up on http://127.0.0.1:$(http_port "$i")"; else echo "r$i: down"; rc=1; fi
  done
  return $rc
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: deploy/clickhouse-cluster.sh [up|down|status]" ;;
esac
