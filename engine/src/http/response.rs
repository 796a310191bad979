//! Writing responses into a connection's reused output buffer.
//!
//! Every response is built from static byte strings, the link's target, the
//! executor's cached `Date` and the preformatted `Cache-Control` line; once
//! the output buffer has grown to a batch's size, writing a response does not
//! allocate. Redirects have an empty body; refusals carry a one-line text body
//! so a person with curl sees what happened.

use crate::http::date::HttpDate;
use snapshots::RedirectStatus;

/// Every status the engine answers with, in metric order.
pub const STATUSES: [u16; 19] = [
    301, 302, 307, 308, 400, 404, 405, 408, 410, 413, 414, 431, 500, 503, 505, 200, 303, 403, 429,
];

/// Index of `status` in [`STATUSES`] (the last slot for anything else).
#[inline]
pub fn status_index(status: u16) -> usize {
    match status {
        301 => 0,
        302 => 1,
        307 => 2,
        308 => 3,
        400 => 4,
        404 => 5,
        405 => 6,
        408 => 7,
        410 => 8,
        413 => 9,
        414 => 10,
        431 => 11,
        500 => 12,
        505 => 14,
        200 => 15,
        303 => 16,
        403 => 17,
        429 => 18,
        _ => 13,
    }
}

/// Responses that are not redirects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canned {
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    Gone,
    PayloadTooLarge,
    UriTooLong,
    HeadersTooLarge,
    /// No snapshot loaded yet.
    NotReady,
    VersionNotSupported,
}

impl Canned {
    pub fn status(self) -> u16 {
        match self {
            Canned::BadRequest => 400,
            Canned::NotFound => 404,
            Canned::MethodNotAllowed => 405,
            Canned::RequestTimeout => 408,
            Canned::Gone => 410,
            Canned::PayloadTooLarge => 413,
            Canned::UriTooLong => 414,
            Canned::HeadersTooLarge => 431,
            Canned::NotReady => 503,
            Canned::VersionNotSupported => 505,
        }
    }

    /// Status line plus headers specific to the response.
    fn head(self) -> &'static [u8] {
        match self {
            Canned::BadRequest => b"HTTP/1.1 400 Bad Request\r\nCache-Control: no-store\r\n",
            Canned::NotFound => b"HTTP/1.1 404 Not Found\r\nCache-Control: no-store\r\n",
            Canned::MethodNotAllowed => {
                b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nCache-Control: no-store\r\n"
            }
            Canned::RequestTimeout => b"HTTP/1.1 408 Request Timeout\r\nCache-Control: no-store\r\n",
            Canned::Gone => b"HTTP/1.1 410 Gone\r\nCache-Control: no-store\r\n",
            Canned::PayloadTooLarge => {
                b"HTTP/1.1 413 Content Too Large\r\nCache-Control: no-store\r\n"
            }
            Canned::UriTooLong => b"HTTP/1.1 414 URI Too Long\r\nCache-Control: no-store\r\n",
            Canned::HeadersTooLarge => {
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nCache-Control: no-store\r\n"
            }
            Canned::NotReady => {
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nCache-Control: no-store\r\n"
            }
            Canned::VersionNotSupported => {
                b"HTTP/1.1 505 HTTP Version Not Supported\r\nCache-Control: no-store\r\n"
            }
        }
    }

    /// `Content-Type`, `Content-Length`, blank line.
    fn tail(self) -> &'static [u8] {
        match self {
            Canned::BadRequest => b"Content-Type: text/plain\r\nContent-Length: 12\r\n\r\n",
            Canned::NotFound => b"Content-Type: text/plain\r\nContent-Length: 10\r\n\r\n",
            Canned::MethodNotAllowed => b"Content-Type: text/plain\r\nContent-Length: 19\r\n\r\n",
            Canned::RequestTimeout => b"Content-Type: text/plain\r\nContent-Length: 16\r\n\r\n",
            Canned::Gone => b"Content-Type: text/plain\r\nContent-Length: 5\r\n\r\n",
            Canned::PayloadTooLarge => b"Content-Type: text/plain\r\nContent-Length: 18\r\n\r\n",
            Canned::UriTooLong => b"Content-Type: text/plain\r\nContent-Length: 13\r\n\r\n",
            Canned::HeadersTooLarge => b"Content-Type: text/plain\r\nContent-Length: 26\r\n\r\n",
            Canned::NotReady => b"Content-Type: text/plain\r\nContent-Length: 19\r\n\r\n",
            Canned::VersionNotSupported => {
                b"Content-Type: text/plain\r\nContent-Length: 27\r\n\r\n"
            }
        }
    }

    fn body(self) -> &'static [u8] {
        match self {
            Canned::BadRequest => b"bad request\n",
            Canned::NotFound => b"not found\n",
            Canned::MethodNotAllowed => b"method not allowed\n",
            Canned::RequestTimeout => b"request timeout\n",
            Canned::Gone => b"gone\n",
            Canned::PayloadTooLarge => b"content too large\n",
            Canned::UriTooLong => b"uri too long\n",
            Canned::HeadersTooLarge => b"request headers too large\n",
            Canned::NotReady => b"no snapshot loaded\n",
            Canned::VersionNotSupported => b"http version not supported\n",
        }
    }
}

/// How the connection continues after this response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persist {
    /// HTTP/1.1 default: no header needed.
    KeepAlive11,
    /// HTTP/1.0 that asked for keep-alive: say yes explicitly.
    KeepAlive10,
    /// `Connection: close`; the engine closes after writing.
    Close,
}

impl Persist {
    pub fn new(keep_alive: bool, http11: bool) -> Persist {
        match (keep_alive, http11) {
            (false, _) => Persist::Close,
            (true, true) => Persist::KeepAlive11,
            (true, false) => Persist::KeepAlive10,
        }
    }

    fn header(self) -> &'static [u8] {
        match self {
            Persist::KeepAlive11 => b"",
            Persist::KeepAlive10 => b"Connection: keep-alive\r\n",
            Persist::Close => b"Connection: close\r\n",
        }
    }
}

/// Per-executor pieces every response shares.
#[derive(Debug, Clone)]
pub struct Preformatted {
    /// `Date: ...\r\n`, rewritten by the executor's clock tick.
    pub date_line: [u8; 37],
    /// `Cache-Control: public, max-age=N\r\n` for 301 and 308, for links
    /// that live at least that long.
    pub permanent_cache: Box<[u8]>,
    /// The configured N (0: `no-store`).
    pub permanent_max_age: u64,
}

const NO_STORE: &[u8] = b"Cache-Control: no-store\r\n";

impl Preformatted {
    pub fn new(permanent_max_age: u64, date: &HttpDate) -> Preformatted {
        let permanent_cache = if permanent_max_age == 0 {
            NO_STORE.to_vec()
        } else {
            format!("Cache-Control: public, max-age={permanent_max_age}\r\n").into_bytes()
        };
        let mut pre = Preformatted {
            date_line: *b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
            permanent_cache: permanent_cache.into_boxed_slice(),
            permanent_max_age,
        };
        pre.set_date(date);
        pre
    }

    /// The `Cache-Control` line of a permanent redirect whose link has
    /// `lifetime` seconds left: never cached past the link's expiry
    /// (`max-age = min(configured, lifetime)`, `no-store` at 0 or below).
    /// Written from a stack buffer: no allocation.
    #[inline]
    fn permanent_cache_line(&self, out: &mut Vec<u8>, lifetime: i64) {
        if self.permanent_max_age == 0 || lifetime <= 0 {
            out.extend_from_slice(NO_STORE);
        } else if lifetime as u64 >= self.permanent_max_age {
            out.extend_from_slice(&self.permanent_cache);
        } else {
            out.extend_from_slice(b"Cache-Control: public, max-age=");
            push_decimal(out, lifetime as u64);
            out.extend_from_slice(b"\r\n");
        }
    }

    pub fn set_date(&mut self, date: &HttpDate) {
        self.date_line[6..35].copy_from_slice(date);
    }

    /// Appends a redirect to `location` (plus the merged `query`, if any)
    /// for a link that never expires.
    pub fn redirect(
        &self,
        out: &mut Vec<u8>,
        status: RedirectStatus,
        location: &[u8],
        query: &[u8],
        persist: Persist,
    ) {
        self.redirect_for(out, status, location, query, persist, i64::MAX);
    }

    /// [`Preformatted::redirect`] for a link with `lifetime` seconds left,
    /// which caps how long a permanent redirect may be cached.
    pub fn redirect_for(
        &self,
        out: &mut Vec<u8>,
        status: RedirectStatus,
        location: &[u8],
        query: &[u8],
        persist: Persist,
        lifetime: i64,
    ) {
        self.redirect_with(out, status, location, query, persist, lifetime, b"");
    }

    /// [`Preformatted::redirect_for`] with `extra` header lines (each
    /// ending in CRLF; a domain's `Strict-Transport-Security`).
    #[allow(clippy::too_many_arguments)]
    pub fn redirect_with(
        &self,
        out: &mut Vec<u8>,
        status: RedirectStatus,
        location: &[u8],
        query: &[u8],
        persist: Persist,
        lifetime: i64,
        extra: &[u8],
    ) {
        out.extend_from_slice(match status {
            RedirectStatus::MovedPermanently => b"HTTP/1.1 301 Moved Permanently\r\nLocation: ",
            RedirectStatus::Found => b"HTTP/1.1 302 Found\r\nLocation: ",
            RedirectStatus::TemporaryRedirect => b"HTTP/1.1 307 Temporary Redirect\r\nLocation: ",
            RedirectStatus::PermanentRedirect => b"HTTP/1.1 308 Permanent Redirect\r\nLocation: ",
        });
        push_location(out, location, query);
        out.extend_from_slice(b"\r\n");
        match status {
            RedirectStatus::MovedPermanently | RedirectStatus::PermanentRedirect => {
                self.permanent_cache_line(out, lifetime)
            }
            // Temporary redirects are decided per request: never cached.
            _ => out.extend_from_slice(b"Cache-Control: private, no-store\r\n"),
        }
        out.extend_from_slice(extra);
        out.extend_from_slice(&self.date_line);
        out.extend_from_slice(persist.header());
        out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    }

    /// A `308` to `https://<host><path>?<query>`: a domain whose plain-HTTP
    /// mode is `redirect-https`. Path bytes outside printable ASCII are
    /// percent-encoded, like the query's.
    pub fn https_redirect(
        &self,
        out: &mut Vec<u8>,
        host: &[u8],
        path: &[u8],
        query: &[u8],
        persist: Persist,
    ) {
        out.extend_from_slice(b"HTTP/1.1 308 Permanent Redirect\r\nLocation: https://");
        out.extend_from_slice(host);
        push_escaped(out, path);
        if !query.is_empty() {
            out.push(b'?');
            push_escaped(out, query);
        }
        out.extend_from_slice(b"\r\n");
        self.permanent_cache_line(out, i64::MAX);
        out.extend_from_slice(&self.date_line);
        out.extend_from_slice(persist.header());
        out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    }

    /// A `200 text/plain` with `body` (a well-known answer), never cached.
    pub fn text(&self, out: &mut Vec<u8>, body: &[u8], head_only: bool, persist: Persist) {
        out.extend_from_slice(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\n",
        );
        out.extend_from_slice(&self.date_line);
        out.extend_from_slice(persist.header());
        out.extend_from_slice(b"Content-Length: ");
        push_decimal(out, body.len() as u64);
        out.extend_from_slice(b"\r\n\r\n");
        if !head_only {
            out.extend_from_slice(body);
        }
    }

    /// An HTML page the engine itself serves (a password gate's form):
    /// `status_line` such as `HTTP/1.1 403 Forbidden\r\n`, then headers that
    /// keep it uncached, unframed and unable to load or send anything but
    /// its own form, `extra` lines, and `body` unless `head_only`.
    pub fn html(
        &self,
        out: &mut Vec<u8>,
        status_line: &[u8],
        body: &[u8],
        head_only: bool,
        persist: Persist,
        extra: &[u8],
    ) {
        out.extend_from_slice(status_line);
        out.extend_from_slice(
            b"Content-Type: text/html; charset=utf-8\r\n\
              Cache-Control: no-store\r\n\
              Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; \
              form-action 'self'; frame-ancestors 'none'; base-uri 'none'\r\n\
              X-Content-Type-Options: nosniff\r\n\
              Referrer-Policy: no-referrer\r\n",
        );
        out.extend_from_slice(extra);
        out.extend_from_slice(&self.date_line);
        out.extend_from_slice(persist.header());
        out.extend_from_slice(b"Content-Length: ");
        push_decimal(out, body.len() as u64);
        out.extend_from_slice(b"\r\n\r\n");
        if !head_only {
            out.extend_from_slice(body);
        }
    }

    /// A `303 See Other` to `location` (plus the merged `query`), never
    /// cached, with `extra` header lines: the answer to a form that
    /// passed, which the browser follows with a GET.
    pub fn see_other(
        &self,
        out: &mut Vec<u8>,
        location: &[u8],
        query: &[u8],
        persist: Persist,
        extra: &[u8],
    ) {
        out.extend_from_slice(b"HTTP/1.1 303 See Other\r\nLocation: ");
        push_location(out, location, query);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(NO_STORE);
        out.extend_from_slice(extra);
        out.extend_from_slice(&self.date_line);
        out.extend_from_slice(persist.header());
        out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    }

    /// Appends a canned response; `head_only` (HEAD) omits the body.
    pub fn canned(&self, out: &mut Vec<u8>, canned: Canned, head_only: bool, persist: Persist) {
        self.canned_with(out, canned, head_only, persist, b"");
    }

    /// [`Preformatted::canned`] with `extra` header lines.
    pub fn canned_with(
        &self,
        out: &mut Vec<u8>,
        canned: Canned,
        head_only: bool,
        persist: Persist,
        extra: &[u8],
    ) {
        out.extend_from_slice(canned.head());
        out.extend_from_slice(extra);
        out.extend_from_slice(&self.date_line);
        out.extend_from_slice(persist.header());
        out.extend_from_slice(canned.tail());
        if !head_only {
            out.extend_from_slice(canned.body());
        }
    }
}

/// Writes `n` in decimal, from a stack buffer (no allocation).
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Writes `bytes`, percent-encoding those outside printable ASCII.
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if (0x21..=0x7e).contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

/// Writes `target` with `query` merged into its query string: `?` when the
/// target has none, `&` when it has one, and any `#fragment` kept last.
/// Query bytes outside printable ASCII are percent-encoded so the header
/// stays valid (the target itself was validated as printable ASCII).
pub fn push_location(out: &mut Vec<u8>, target: &[u8], query: &[u8]) {
    if query.is_empty() {
        out.extend_from_slice(target);
        return;
    }
    let (base, fragment) = match target.iter().position(|&b| b == b'#') {
        Some(hash) => target.split_at(hash),
        None => (target, &b""[..]),
    };
    out.extend_from_slice(base);
    if base.contains(&b'?') {
        if !matches!(base.last(), Some(b'?' | b'&')) {
            out.push(b'&');
        }
    } else {
        out.push(b'?');
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in query {
        if (0x21..=0x7e).contains(&b) && b != b'#' {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
    out.extend_from_slice(fragment);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(target: &str, query: &[u8]) -> String {
        let mut out = Vec::new();
        push_location(&mut out, target.as_bytes(), query);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn query_merge() {
        assert_eq!(loc("https://a.b/x", b""), "https://a.b/x");
        assert_eq!(loc("https://a.b/x", b"u=1"), "https://a.b/x?u=1");
        assert_eq!(loc("https://a.b/x?t=2", b"u=1"), "https://a.b/x?t=2&u=1");
        assert_eq!(loc("https://a.b/x?", b"u=1"), "https://a.b/x?u=1");
        assert_eq!(loc("https://a.b/x?t&", b"u=1"), "https://a.b/x?t&u=1");
        assert_eq!(loc("https://a.b/x#top", b"u=1"), "https://a.b/x?u=1#top");
        assert_eq!(
            loc("https://a.b/x?t=2#top", b"u=1"),
            "https://a.b/x?t=2&u=1#top"
        );
        assert_eq!(loc("https://a.b/", "é".as_bytes()), "https://a.b/?%C3%A9");
    }

    #[test]
    fn canned_lengths_match_bodies() {
        for canned in [
            Canned::BadRequest,
            Canned::NotFound,
            Canned::MethodNotAllowed,
            Canned::RequestTimeout,
            Canned::Gone,
            Canned::PayloadTooLarge,
            Canned::UriTooLong,
            Canned::HeadersTooLarge,
            Canned::NotReady,
            Canned::VersionNotSupported,
        ] {
            let tail = std::str::from_utf8(canned.tail()).unwrap();
            let len: usize = tail
                .split("Content-Length: ")
                .nth(1)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert_eq!(len, canned.body().len(), "{canned:?}");
        }
    }

    #[test]
    fn permanent_redirects_are_never_cached_past_the_link() {
        let cache = |max_age: u64, lifetime: i64| {
            let pre = Preformatted::new(max_age, &crate::http::date::format(0));
            let mut out = Vec::new();
            pre.redirect_for(
                &mut out,
                RedirectStatus::MovedPermanently,
                b"https://x.y/",
                b"",
                Persist::KeepAlive11,
                lifetime,
            );
            let text = String::from_utf8(out).unwrap();
            let line = text
                .lines()
                .find(|l| l.starts_with("Cache-Control"))
                .unwrap();
            line.to_owned()
        };
        assert_eq!(cache(3600, 120), "Cache-Control: public, max-age=120");
        assert_eq!(cache(3600, 1), "Cache-Control: public, max-age=1");
        assert_eq!(cache(3600, 0), "Cache-Control: no-store");
        assert_eq!(cache(3600, -5), "Cache-Control: no-store");
        assert_eq!(cache(60, 120), "Cache-Control: public, max-age=60");
        assert_eq!(cache(60, i64::MAX), "Cache-Control: public, max-age=60");
        assert_eq!(cache(0, 120), "Cache-Control: no-store");
        assert_eq!(
            cache(u64::MAX, 1_234_567_890_123),
            "Cache-Control: public, max-age=1234567890123"
        );
    }

    #[test]
    fn redirect_bytes() {
        let pre = Preformatted::new(60, &crate::http::date::format(0));
        let mut out = Vec::new();
        pre.redirect(
            &mut out,
            RedirectStatus::Found,
            b"https://x.y/",
            b"",
            Persist::Close,
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "HTTP/1.1 302 Found\r\nLocation: https://x.y/\r\nCache-Control: private, no-store\r\n\
             Date: Thu, 01 Jan 1970 00:00:00 GMT\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
    }
}
