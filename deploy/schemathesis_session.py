# Schemathesis auth for deploy/schemathesis.sh's session pass: every generated request is
# sent as a signed-in user, with the session cookie and that session's CSRF token
# (X-CSRF-Token), as a browser would send them.
#
# Every request goes out with a live session, whatever the fuzzer did before it: the fuzzer
# signs out (DELETE /v1/session) as it goes, so after a sign-out, or any 401, the next
# request signs in again. What the run checks is then the same from one run to the next
# (a cached, possibly ended session would make later answers depend on the order), without
# the cost of a sign-in (an argon2 hash) per request.
#
# Environment (set by the script): SCHEMATHESIS_BASE, SCHEMATHESIS_EMAIL,
# SCHEMATHESIS_PASSWORD_FILE, SCHEMATHESIS_SESSION_COOKIE (the cookie's name: `session` on
# plain http, `__Host-session` on https).
import os

import requests
import schemathesis

BASE = os.environ["SCHEMATHESIS_BASE"]
EMAIL = os.environ["SCHEMATHESIS_EMAIL"]
COOKIE = os.environ.get("SCHEMATHESIS_SESSION_COOKIE", "session")
with open(os.environ["SCHEMATHESIS_PASSWORD_FILE"], encoding="utf-8") as f:
    PASSWORD = f.read().strip()

# The live session: (cookie, csrf token), or None once it may have ended.
_session = None


def _sign_in():
    r = requests.post(f"{BASE}/v1/session", json={"email": EMAIL, "password": PASSWORD}, timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"sign-in failed: {r.status_code} {r.text}")
    return r.cookies[COOKIE], r.json()["csrf_token"]


# refresh_interval=None: asked for every request; the session is kept here instead.
@schemathesis.auth(refresh_interval=None)
class SignedIn:
    def get(self, case, ctx):
        global _session
        if _session is None:
            _session = _sign_in()
        return _session

    def set(self, case, data, ctx):
        cookie, csrf = data
        case.cookies = case.cookies or {}
        case.cookies[COOKIE] = cookie
        case.headers = case.headers or {}
        case.headers["X-CSRF-Token"] = csrf


@schemathesis.hook
def after_call(context, case, response):
    global _session
    signed_out = case.method.upper() == "DELETE" and case.path == "/v1/session"
    if response.status_code == 401 or (signed_out and response.status_code < 300):
        _session = None
