#!/usr/bin/env bash
# The Debian packages: shortener-engine, shortener-control and shortener-analytics, built by
# cargo-deb from each crate's [package.metadata.deb] (units, config files and maintainer
# scripts under deploy/packages/; the install page is docs/INSTALL.md).
#
#   deploy/packages.sh build   build the release binaries and the three .deb files into
#                              target/debian/ (cargo-deb is installed with cargo if missing)
#   deploy/packages.sh test    package what is built (PROFILE, default dev: the binaries
#                              deploy/test.sh's build step made) and install the packages on a
#                              throwaway copy of this host: a mount namespace whose root is an
#                              overlay of / (every write lands in a tmpfs), so this machine's
#                              users, /etc and dpkg database are never touched. There:
#                              `apt-get install ./shortener-*.deb` (offline), the service users,
#                              files and permissions are checked, one line is added to
#                              /etc/shortener/engine.toml (the snapshot to serve), and the
#                              engine is started the way its unit starts it (service user,
#                              CAP_NET_BIND_SERVICE only, LimitMEMLOCK) in a network namespace
#                              of its own, where it must answer a redirect on port 80; then
#                              `apt-get purge` must remove the user and the state directory.
#                              Needs root. deploy/test.sh runs it.
# Env: PROFILE (cargo profile of the binaries to package: release for build, dev for test).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
ACTION=${1:-build}
CARGO_DEB_VERSION=3.8.0
PACKAGES=(engine control analytics)

need_cargo_deb() {
  if [[ "$(cargo deb --version 2>/dev/null)" != *"$CARGO_DEB_VERSION"* ]]; then
    echo "packages.sh: installing cargo-deb $CARGO_DEB_VERSION" >&2
    cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION"
  fi
}

# debs TARGET_DIR OUT [cargo-deb flags]: one .deb per package from the binaries in
# TARGET_DIR/release (cargo-deb packages release builds only; the test stages the dev
# binaries there).
debs() {
  local target=$1 out=$2 p
  shift 2
  need_cargo_deb
  rm -rf "$out"
  for p in "${PACKAGES[@]}"; do
    CARGO_TARGET_DIR=$target cargo deb --no-build -p "$p" --output "$out/" "$@" > /dev/null
  done
}

case $ACTION in
  build)
    PROFILE=${PROFILE:-release}
    [[ $PROFILE == release ]] || { echo "packages.sh build: packages are made of release builds" >&2; exit 2; }
    cargo build --locked --release -p engine -p control -p analytics -p perf -p snapshots
    debs "$repo/target" "$repo/target/debian"
    ls target/debian/shortener-*.deb ;;
  test)
    PROFILE=${PROFILE:-dev}
    [[ $(id -u) == 0 ]] || { echo "packages.sh test: needs root (namespaces, overlay, chroot)" >&2; exit 1; }
    dir=debug; [[ $PROFILE == dev ]] || dir=$PROFILE
    for b in engine control analytics snapshot; do
      [[ -x target/$dir/$b ]] || { echo "packages.sh test: no target/$dir/$b; build first" >&2; exit 1; }
    done
    WORK=$(mktemp -d /tmp/packages-test.XXXXXX)
    trap 'rm -rf "$WORK"' EXIT
    mkdir -p "$WORK/target/release"
    for b in engine control analytics snapshot; do cp "target/$dir/$b" "$WORK/target/release/"; done
    # --fast: light compression; these packages live for a minute.
    debs "$WORK/target" "$WORK/debs" --fast
    ls "$WORK"/debs/shortener-{engine,control,analytics}_*.deb > /dev/null
    # Everything below runs in a private mount namespace: its mounts (the tmpfs, the overlay,
    # the bind mounts) disappear with it, whatever happens. The scripts are files, not stdin:
    # apt and the maintainer scripts may read standard input.
    cat > "$WORK/ns.sh" <<'NS'
set -euo pipefail
WORK=$1
# The overlay's writable layers on a tmpfs: on the root filesystem itself they would lie
# inside the lower layer, which overlayfs refuses.
mkdir -p "$WORK/layers"
mount -t tmpfs -o size=2g packages-test "$WORK/layers"
mkdir -p "$WORK/layers/upper" "$WORK/layers/work" "$WORK/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$WORK/layers/upper,workdir=$WORK/layers/work" "$WORK/root"
R=$WORK/root
for m in proc sys dev; do mount --rbind "/$m" "$R/$m"; done
mount -t tmpfs tmpfs "$R/tmp"
mount -t tmpfs tmpfs "$R/run"
cp "$WORK"/debs/shortener-*.deb "$R/tmp/"
in_root() { chroot "$R" "$@"; }
fail() { echo "packages.sh test: $*" >&2; exit 1; }

echo "== apt-get install ./shortener-{engine,control,analytics}_*.deb (offline, in the copy)"
debs=()
for f in "$WORK"/debs/shortener-*.deb; do debs+=("/tmp/$(basename "$f")"); done
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${debs[@]}" > "$WORK/apt.log" 2>&1 \
  || { cat "$WORK/apt.log" >&2; fail "apt-get install failed"; }

for p in engine control analytics; do
  user=shortener-$p
  in_root getent passwd "$user" > /dev/null || fail "no user $user"
  shell=$(in_root getent passwd "$user" | cut -d: -f7)
  [[ $shell == */nologin || $shell == /bin/false ]] || fail "$user has a login shell ($shell)"
  [[ $(in_root stat -c '%U:%G %a' "/etc/shortener/$p.toml") == "root:$user 640" ]] \
    || fail "/etc/shortener/$p.toml is $(in_root stat -c '%U:%G %a' "/etc/shortener/$p.toml"), not root:$user 640"
  [[ -f $R/lib/systemd/system/shortener-$p.service ]] || fail "no unit shortener-$p.service"
  in_root "/usr/bin/shortener-$p" --version > /dev/null || fail "shortener-$p does not run"
  # Every directive known, the binary and user there: systemd says nothing.
  verdict=$(in_root systemd-analyze verify --man=no "/lib/systemd/system/shortener-$p.service" 2>&1) \
    && [[ -z $verdict ]] || fail "systemd-analyze verify shortener-$p.service: $verdict"
done
grep -q '^AmbientCapabilities=CAP_NET_BIND_SERVICE$' "$R/lib/systemd/system/shortener-engine.service" \
  || fail "the engine unit lost its one capability"
echo "   users, config permissions (root:user 0640), units (systemd-analyze verify) and binaries in place"

echo "== the one config line, then the engine as its unit runs it, in a network namespace"
printf 'code,target\nhello,https://example.com/from-the-package\n' > "$R/tmp/links.csv"
mkdir -p "$R/var/lib/shortener-engine"
in_root /usr/bin/shortener-snapshot build --input /tmp/links.csv --output /var/lib/shortener-engine/links.snap > /dev/null
# What StateDirectory= does for the unit: the directory, owned by the user, 0700.
in_root chown -R shortener-engine:shortener-engine /var/lib/shortener-engine
chmod 0700 "$R/var/lib/shortener-engine"
echo 'snapshot = "/var/lib/shortener-engine/links.snap"' >> "$R/etc/shortener/engine.toml"
cat > "$WORK/net.sh" <<'NET'
set -euo pipefail
R=$1 WORK=$2
ip link set lo up
# User, group, the one ambient capability (ports below 1024), no new privileges, the unit's
# LimitMEMLOCK and STATE_DIRECTORY: as systemd would start it.
# LimitMEMLOCK=64M where this host lets root raise it (a container may not: then the current
# limit, which covers this machine's cores at the default io_memory_kib).
memlock=(prlimit --memlock=67108864 --)
prlimit --memlock=67108864 -- true 2> /dev/null || memlock=()
chroot "$R" "${memlock[@]}" setpriv --reuid shortener-engine --regid shortener-engine \
  --init-groups --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service \
  --bounding-set=-all,+net_bind_service --no-new-privs -- \
  env STATE_DIRECTORY=/var/lib/shortener-engine /usr/bin/shortener-engine serve --config /etc/shortener/engine.toml \
  > "$WORK/engine.out" 2> "$WORK/engine.log" &
engine=$!
for _ in $(seq 1 200); do grep -q '"ready"' "$WORK/engine.out" 2>/dev/null && break; sleep 0.05; done
grep -q '"ready"' "$WORK/engine.out" || { cat "$WORK/engine.log" >&2; echo "packages.sh test: the engine never got ready" >&2; exit 1; }
answer=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' http://127.0.0.1/hello)
kill -TERM "$engine"; wait "$engine" || true
[[ $answer == "301 https://example.com/from-the-package" ]] \
  || { cat "$WORK/engine.log" >&2; echo "packages.sh test: port 80 answered '$answer'" >&2; exit 1; }
echo "   GET http://127.0.0.1/hello on port 80 as shortener-engine: $answer"
NET
unshare --net -- bash "$WORK/net.sh" "$R" "$WORK" < /dev/null
[[ $(in_root stat -c %U /var/lib/shortener-engine/links.snap) == shortener-engine ]] || fail "state dir ownership changed"

echo "== apt-get purge: the users and state directories go"
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q shortener-engine shortener-control shortener-analytics > "$WORK/purge.log" 2>&1 \
  || { cat "$WORK/purge.log" >&2; fail "apt-get purge failed"; }
for p in engine control analytics; do
  ! in_root getent passwd "shortener-$p" > /dev/null || fail "purge left the user shortener-$p"
  [[ ! -e $R/var/lib/shortener-$p ]] || fail "purge left /var/lib/shortener-$p"
  [[ ! -e $R/usr/bin/shortener-$p ]] || fail "purge left /usr/bin/shortener-$p"
done
echo "   gone"
NS
    unshare --mount --propagation private -- bash "$WORK/ns.sh" "$WORK" < /dev/null
    echo "packages.sh test: ok (nothing of it is left on this host)" ;;
  *) echo "usage: deploy/packages.sh build|test" >&2; exit 2 ;;
esac
