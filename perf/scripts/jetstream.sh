# Sourced by the perf scripts. JetStream API requests without a nats CLI or
# client library (neither is on these machines): plain NATS protocol over a
# socket, from python3.

# js_api SUBJECT [BODY]: one JetStream API request to NATS_URL; prints the
# JSON reply, fails if there is none within 5 s.
js_api() {
  python3 - "$NATS_URL" "$1" "${2:-}" <<'PY'
import socket, sys
from urllib.parse import urlparse
url = urlparse(sys.argv[1])
body = sys.argv[3].encode()
s = socket.create_connection((url.hostname, url.port or 4222), timeout=5)
f = s.makefile("rb")
f.readline()  # INFO
s.sendall(b'CONNECT {"verbose":false}\r\nSUB _INBOX.perf 1\r\nPUB %s _INBOX.perf %d\r\n%s\r\n' % (sys.argv[2].encode(), len(body), body))
while True:
    line = f.readline()
    if not line:
        sys.exit("NATS closed the connection")
    if line.startswith(b"PING"):
        s.sendall(b"PONG\r\n")
    elif line.startswith(b"-ERR"):
        sys.exit(line.decode().strip())
    elif line.startswith(b"MSG"):
        print(f.read(int(line.split()[-1]) + 2)[:-2].decode())
        break
PY
}

# create_clicks_stream NAME SUBJECT: a click stream as analytics makes it, with
# limits (the engine never creates one and refuses one without limits).
create_clicks_stream() {
  local config
  config=$(printf '{"name":"%s","subjects":["%s"],"storage":"file","max_age":%d,"max_bytes":%d,"duplicate_window":%d}' \
    "$1" "$2" $((3600 * 1000000000)) $((1 << 30)) $((120 * 1000000000)))
  js_api "\$JS.API.STREAM.CREATE.$1" "$config" | grep -q '"config"' ||
    { echo "could not create stream $1 at $NATS_URL" >&2; return 1; }
}
