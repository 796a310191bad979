#!/usr/bin/env bash
# Re-fetches the dashboard's vendored browser assets from the npm registry
# (with `npm pack`, so the registry is whatever npm is configured for),
# checks each tarball's SHA-256 against the pin below, and copies the one
# file the dashboard serves. Nothing is fetched at build or run time: the
# files this writes are committed, and `control` embeds them.
#
# To upgrade: change VERSION, run with UPDATE=1 to print the new digest,
# review the diff of the vendored file, put the digest here, commit.
set -euo pipefail
cd "$(dirname "$0")"

# package  version  sha256 of the npm tarball  file in the tarball  file here
PINS=(
  "htmx.org 2.0.4 a34988d1b9f005a458d593aa8d7486537cb878b8ac3b82703db1268983123ecc package/dist/htmx.min.js htmx-2.0.4.min.js"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for pin in "${PINS[@]}"; do
  read -r name version sum inner out <<<"$pin"
  (cd "$work" && npm pack --silent "$name@$version" >/dev/null)
  tgz="$work/${name}-${version}.tgz"
  got=$(sha256sum "$tgz" | cut -d' ' -f1)
  if [[ "${UPDATE:-0}" == 1 ]]; then
    echo "$name $version $got"
  elif [[ "$got" != "$sum" ]]; then
    echo "fetch.sh: $name@$version: sha256 $got, expected $sum; refusing it" >&2
    exit 1
  fi
  tar -xzf "$tgz" -C "$work" "$inner"
  cp "$work/$inner" "$out"
  rm -rf "$work/package"
  echo "vendored $name@$version -> $out"
done
