# Sourced by the perf scripts. JetStream API requests without a nats CLI or
# client library (neither is on these machines): plain NATS protocol over a
# socket, from python3.

# js_api SUBJECT: one JetStream API request (empty body) to NATS_URL; prints
# the JSON reply, fails if there is none within 5 s.
js_api() {
  python3 - "$NATS_URL" "$1" <<'PY'
import socket, sys
from urllib.parse import urlparse
url = urlparse(sys.argv[1])
s = socket.create_connection((url.hostname, url.port or 4222), timeout=5)
f = s.makefile("rb")
f.readline()  # INFO
s.sendall(b'CONNECT {"verbose":false}\r\nSUB _INBOX.perf 1\r\nPUB %s _INBOX.perf 0\r\n\r\n' % sys.argv[2].encode())
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
