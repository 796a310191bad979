# Sourced by the deploy scripts that install Debian packages (services.sh,
# clickhouse-cluster.sh): one way to install what is missing.
#
#   apt_install PACKAGE...   install those not yet installed (one `apt-get update` per
#                            script run), starting no system service: the scripts start
#                            everything themselves (and ClickHouse must not be the system one)
#
# The sourcing script defines `die MESSAGE` and may set APT_WHO (its name, for messages).

APT_UPDATED=0
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  (( ${#missing[@]} )) || return 0
  [[ $(id -u) -eq 0 ]] || die "need root to apt-get install ${missing[*]}"
  echo "${APT_WHO:-deploy}: installing ${missing[*]}" >&2
  if (( ! APT_UPDATED )); then
    apt-get update -qq >&2
    APT_UPDATED=1
  fi
  # A policy-rc.d that refuses keeps the packages' init scripts from starting services.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
  fi
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || rc=$?
  (( made_policy )) && rm -f "$policy"
  (( rc == 0 )) || die "apt-get install ${missing[*]} failed (exit $rc)"
}
