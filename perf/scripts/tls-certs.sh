#!/usr/bin/env bash
# Makes the TLS material of one harness run with openssl: a throwaway test
# CA and an ECDSA P-256 leaf for NAME signed by it, and a session ticket key.
# Nothing here is of any use beyond the run; the harness deletes it.
#
# Usage: perf/scripts/tls-certs.sh DIR NAME
# Writes:
#   DIR/ca.crt               the CA certificate (the generator's --ca)
#   DIR/certs/NAME.crt       leaf + CA chain, PEM  } the engine's --tls-certs DIR/certs
#   DIR/certs/NAME.key       leaf key, PKCS#8 PEM  } and nginx's certificate
#   DIR/ticket.key           80 random bytes: nginx's ssl_session_ticket_key
set -euo pipefail
DIR=$1 NAME=$2
mkdir -p "$DIR/certs"
cd "$DIR"
# openssl chats on stderr; keep it for failures only.
ossl() {
  local err
  if ! err=$(openssl "$@" 2>&1 > /dev/null); then echo "openssl $*: $err" >&2; exit 1; fi
}
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
ossl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=perf harness test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.crt
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "certs/$NAME.key"
ossl req -new -key "certs/$NAME.key" -subj "/CN=$NAME" -out leaf.csr
printf 'subjectAltName=DNS:%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' "$NAME" > leaf.ext
ossl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 2 \
  -extfile leaf.ext -out leaf.crt
cat leaf.crt ca.crt > "certs/$NAME.crt"
head -c 80 /dev/urandom > ticket.key
rm -f leaf.csr leaf.ext leaf.crt ca.srl ca.key
chmod 600 "certs/$NAME.key" ticket.key
