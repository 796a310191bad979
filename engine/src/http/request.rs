//! Parsing one request head from a connection's buffer.
//!
//! Two phases, as in mini-redis: "is a whole head here?" ([`Parse::Partial`]
//! otherwise) and "what does it say?". Everything returned borrows the
//! connection's buffer; nothing allocates. Every way a head can be wrong maps
//! to exactly one [`Reject`], which maps to one status, and always closes the
//! connection, so a confused client or a smuggling attempt never gets a
//! second request interpreted from the bytes that follow.

/// Most header lines a request may carry; more is `431`.
pub const MAX_HEADERS: usize = 64;

/// Size limits of a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request target in bytes; longer is `414`.
    pub max_uri: usize,
    /// Longest head (request line plus headers) in bytes; longer is `431`
    /// (or `414` when the request line alone does not fit).
    pub max_head: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_uri: 4096,
            max_head: 8192,
        }
    }
}

/// The methods the engine serves; everything else is `405`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// Answered only for a password-protected link (its form), else `405`.
    Post,
    Other,
}

/// How the request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    /// `Content-Length: n`: the next `n` bytes are the body.
    Length(u64),
    /// `Transfer-Encoding: ... chunked`: the engine answers and closes rather
    /// than decode chunks it has no use for.
    Chunked,
}

/// A complete, well-formed request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'b> {
    pub method: Method,
    /// The path, without query: `/abc`. For an absolute-form target
    /// (`http://host/abc?x`) the path part of it.
    pub path: &'b [u8],
    /// The query without the `?` (and without any `#fragment` a client sent).
    pub query: &'b [u8],
    /// HTTP/1.0 (`false`) or 1.1 (`true`).
    pub http11: bool,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    pub body: Body,
    /// Bytes of the head, including the blank line.
    pub head_len: usize,
    /// Raw header values the click record wants; empty when absent.
    pub host: &'b [u8],
    pub user_agent: &'b [u8],
    pub referer: &'b [u8],
    pub accept_language: &'b [u8],
    pub x_forwarded_for: &'b [u8],
    pub forwarded: &'b [u8],
    pub x_real_ip: &'b [u8],
    /// The `Cookie` header (a password gate's pass); empty when absent.
    pub cookie: &'b [u8],
    /// A `POST`'s form body, once whole in the buffer (set by the session,
    /// not the parser; only small bodies that fit the head window).
    pub form: Option<&'b [u8]>,
    /// A `POST` whose small body has not all arrived yet.
    pub form_pending: bool,
}

/// Why a head was refused. Each maps to one status; all close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Malformed syntax, a missing or repeated `Host` on HTTP/1.1, an invalid
    /// or conflicting `Content-Length`, `Transfer-Encoding` with
    /// `Content-Length`, an unsupported transfer coding: `400`.
    BadRequest,
    /// Request target longer than [`Limits::max_uri`]: `414`.
    UriTooLong,
    /// Head longer than [`Limits::max_head`] or too many headers: `431`.
    HeadersTooLarge,
    /// A well-formed HTTP version other than 1.0 and 1.1 (`HTTP/2.0`,
    /// `HTTP/1.2`, `HTTP/3`): `505`. A malformed one is [`Reject::BadRequest`].
    VersionNotSupported,
}

/// The outcome of looking at a buffer.
// A request is a few hundred bytes of slices on the stack; boxing it to
// shrink the other variants would allocate on every request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse<'b> {
    Complete(Request<'b>),
    /// Not a whole head yet and within limits: read more.
    Partial,
    Error(Reject),
}

impl Parse<'_> {
    pub fn is_complete(&self) -> bool {
        matches!(self, Parse::Complete(_))
    }
}

/// Parses the head at the start of `buf`.
pub fn parse<'b>(buf: &'b [u8], limits: &Limits) -> Parse<'b> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(head_len)) => {
            if head_len > limits.max_head {
                return Parse::Error(Reject::HeadersTooLarge);
            }
            match interpret(&req, head_len, limits) {
                Ok(request) => Parse::Complete(request),
                Err(reject) => Parse::Error(reject),
            }
        }
        Ok(httparse::Status::Partial) => partial(buf, limits),
        Err(httparse::Error::TooManyHeaders) => Parse::Error(Reject::HeadersTooLarge),
        Err(httparse::Error::Version) => version_refusal(buf, limits),
        Err(_) => Parse::Error(Reject::BadRequest),
    }
}

/// httparse refuses any version but 1.0 and 1.1 as soon as it sees one:
/// once the request line is whole, say whether it named another version of
/// HTTP (`505`) or was not a version at all (`400`).
fn version_refusal(buf: &[u8], limits: &Limits) -> Parse<'static> {
    let Some(line_end) = buf.iter().position(|&b| b == b'\n') else {
        return partial(buf, limits);
    };
    let line = &buf[..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let version = match line.iter().rposition(|&b| b == b' ') {
        Some(space) => &line[space + 1..],
        None => line,
    };
    // RFC 9112: "HTTP/" DIGIT "." DIGIT; HTTP/2 and HTTP/3 name themselves
    // with the major digit alone.
    let well_formed = match version.strip_prefix(b"HTTP/") {
        Some([major]) => major.is_ascii_digit(),
        Some([major, b'.', minor]) => major.is_ascii_digit() && minor.is_ascii_digit(),
        _ => false,
    };
    Parse::Error(if well_formed {
        Reject::VersionNotSupported
    } else {
        Reject::BadRequest
    })
}

/// A partial head is refused as soon as it can no longer fit.
fn partial(buf: &[u8], limits: &Limits) -> Parse<'static> {
    match buf.iter().position(|&b| b == b'\n') {
        // Method, two spaces and "HTTP/1.1\r\n" around the target: 24 bytes
        // is generous for any method the engine would answer with a 405.
        None if buf.len() > limits.max_uri + 24 || buf.len() >= limits.max_head => {
            Parse::Error(Reject::UriTooLong)
        }
        Some(line_end) if line_end > limits.max_uri + 24 => Parse::Error(Reject::UriTooLong),
        Some(_) if buf.len() >= limits.max_head => Parse::Error(Reject::HeadersTooLarge),
        _ => Parse::Partial,
    }
}

fn interpret<'b>(
    req: &httparse::Request<'_, 'b>,
    head_len: usize,
    limits: &Limits,
) -> Result<Request<'b>, Reject> {
    // httparse only returns Complete with all three set.
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(Reject::BadRequest);
    };
    let target = target.as_bytes();
    if target.len() > limits.max_uri {
        return Err(Reject::UriTooLong);
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        _ => Method::Other,
    };
    let http11 = version == 1;
    let (path, query) = split_target(target, method)?;

    let mut request = Request {
        method,
        path,
        query,
        http11,
        keep_alive: http11,
        body: Body::None,
        head_len,
        host: b"",
        user_agent: b"",
        referer: b"",
        accept_language: b"",
        x_forwarded_for: b"",
        forwarded: b"",
        x_real_ip: b"",
        cookie: b"",
        form: None,
        form_pending: false,
    };
    let mut hosts = 0u32;
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut close = false;
    let mut keep_alive = false;
    for header in req.headers.iter() {
        let name = header.name.as_bytes();
        let value = trim(header.value);
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                hosts += 1;
                request.host = value;
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                let length = parse_length(value).ok_or(Reject::BadRequest)?;
                // Repeated identical lengths are tolerated (RFC 9112 6.3);
                // differing ones are a smuggling attempt.
                if content_length.is_some_and(|seen| seen != length) {
                    return Err(Reject::BadRequest);
                }
                content_length = Some(length);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                // The final coding must be chunked, or the length is unknowable.
                if !last_token_is(value, b"chunked") {
                    return Err(Reject::BadRequest);
                }
                transfer_encoding = true;
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in value.split(|&b| b == b',') {
                    let token = trim(token);
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            10 if name.eq_ignore_ascii_case(b"user-agent") => request.user_agent = value,
            7 if name.eq_ignore_ascii_case(b"referer") => request.referer = value,
            15 if name.eq_ignore_ascii_case(b"accept-language") => request.accept_language = value,
            15 if name.eq_ignore_ascii_case(b"x-forwarded-for") => request.x_forwarded_for = value,
            9 if name.eq_ignore_ascii_case(b"forwarded") => request.forwarded = value,
            9 if name.eq_ignore_ascii_case(b"x-real-ip") => request.x_real_ip = value,
            6 if name.eq_ignore_ascii_case(b"cookie") => request.cookie = value,
            _ => {}
        }
    }
    if http11 && hosts != 1 || hosts > 1 {
        return Err(Reject::BadRequest);
    }
    request.body = match (content_length, transfer_encoding) {
        (Some(_), true) => return Err(Reject::BadRequest),
        // HTTP/1.0 has no chunked coding (RFC 9112 6.1).
        (None, true) if !http11 => return Err(Reject::BadRequest),
        (None, true) => Body::Chunked,
        (Some(0), false) | (None, false) => Body::None,
        (Some(n), false) => Body::Length(n),
    };
    request.keep_alive = !close && (http11 || keep_alive);
    Ok(request)
}

/// Splits a request target into path and query. Origin form (`/p?q`) is the
/// norm; absolute form (`http://h/p?q`) must be accepted too (RFC 9112 3.2.2).
fn split_target(target: &[u8], method: Method) -> Result<(&[u8], &[u8]), Reject> {
    let target = match target.iter().position(|&b| b == b'#') {
        Some(hash) => &target[..hash],
        None => target,
    };
    let path_and_query = if target.first() == Some(&b'/') {
        target
    } else if let Some(rest) = strip_scheme(target) {
        match rest.iter().position(|&b| b == b'/' || b == b'?') {
            Some(start) if rest[start] == b'/' => &rest[start..],
            Some(start) => return Ok((b"/", &rest[start + 1..])),
            None => b"/",
        }
    } else if method == Method::Other {
        // `*` (OPTIONS) or authority form (CONNECT): answered with 405.
        return Ok((target, b""));
    } else {
        return Err(Reject::BadRequest);
    };
    Ok(match path_and_query.iter().position(|&b| b == b'?') {
        Some(q) => (&path_and_query[..q], &path_and_query[q + 1..]),
        None => (path_and_query, b""),
    })
}

/// Why a path could not be percent-decoded into a code buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undecodable {
    /// A `%` not followed by two hex digits: `400`.
    InvalidEscape,
    /// Longer than the buffer once decoded: no code is that long (`404`).
    TooLong,
}

/// `raw` with `%XX` escapes decoded (RFC 3986 2.1), into `buf` when it has
/// any; `raw` itself when it has none (the usual case: one scan, no copy).
/// Never allocates: a code is at most `buf.len()` bytes.
#[inline]
pub fn percent_decode<'a>(raw: &'a [u8], buf: &'a mut [u8]) -> Result<&'a [u8], Undecodable> {
    if !raw.contains(&b'%') {
        return Ok(raw);
    }
    let mut len = 0;
    let mut i = 0;
    while i < raw.len() {
        let byte = match raw[i] {
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    raw.get(i + 1).and_then(|&b| hex(b)),
                    raw.get(i + 2).and_then(|&b| hex(b)),
                ) else {
                    return Err(Undecodable::InvalidEscape);
                };
                i += 3;
                hi << 4 | lo
            }
            other => {
                i += 1;
                other
            }
        };
        if len == buf.len() {
            // Keep checking the escapes: an invalid one is still a 400.
            return match percent_decode_check(&raw[i..]) {
                true => Err(Undecodable::TooLong),
                false => Err(Undecodable::InvalidEscape),
            };
        }
        buf[len] = byte;
        len += 1;
    }
    Ok(&buf[..len])
}

/// Whether every `%` in `raw` starts a valid escape.
fn percent_decode_check(raw: &[u8]) -> bool {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            if raw.get(i + 1).and_then(|&b| hex(b)).is_none()
                || raw.get(i + 2).and_then(|&b| hex(b)).is_none()
            {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[inline]
fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn strip_scheme(target: &[u8]) -> Option<&[u8]> {
    for scheme in [&b"http://"[..], b"https://"] {
        if target.len() > scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(&target[scheme.len()..]);
        }
    }
    None
}

/// A `Content-Length` value: 1 to 18 ASCII digits (no sign, no list).
fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 18 {
        return None;
    }
    value.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

fn last_token_is(value: &[u8], token: &[u8]) -> bool {
    value
        .rsplit(|&b| b == b',')
        .next()
        .is_some_and(|last| trim(last).eq_ignore_ascii_case(token))
}

fn trim(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &[u8]) -> Request<'_> {
        match parse(raw, &Limits::default()) {
            Parse::Complete(r) => r,
            other => panic!("{:?} for {:?}", other, String::from_utf8_lossy(raw)),
        }
    }

    fn err(raw: &[u8]) -> Reject {
        match parse(raw, &Limits::default()) {
            Parse::Error(r) => r,
            other => panic!("{:?} for {:?}", other, String::from_utf8_lossy(raw)),
        }
    }

    #[test]
    fn simple_get() {
        let r = ok(b"GET /abc?x=1#f HTTP/1.1\r\nHost: s\r\nUser-Agent: curl\r\n\r\nGET");
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.path, b"/abc");
        assert_eq!(r.query, b"x=1");
        assert!(r.keep_alive && r.http11);
        assert_eq!(r.user_agent, b"curl");
        assert_eq!(r.head_len, 54);
    }

    #[test]
    fn keep_alive_rules() {
        assert!(!ok(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(!ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x, close\r\n\r\n").keep_alive);
    }

    #[test]
    fn absolute_form() {
        let r = ok(b"GET http://h.example/abc?q HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!((r.path, r.query), (&b"/abc"[..], &b"q"[..]));
        let r = ok(b"GET https://h.example HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(r.path, b"/");
    }

    #[test]
    fn refusals() {
        assert_eq!(err(b"GET / HTTP/1.1\r\n\r\n"), Reject::BadRequest);
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Reject::BadRequest
        );
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Reject::BadRequest
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"),
            Reject::BadRequest
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Reject::BadRequest
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Reject::BadRequest
        );
        assert_eq!(
            err(b"GET abc HTTP/1.1\r\nHost: a\r\n\r\n"),
            Reject::BadRequest
        );
        assert_eq!(err(b"\x00\x01\x02 / HTTP/1.1\r\n\r\n"), Reject::BadRequest);
        let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(5000));
        assert_eq!(err(long.as_bytes()), Reject::UriTooLong);
        let mut many = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 0..70 {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(err(&many), Reject::HeadersTooLarge);
    }

    #[test]
    fn percent_decoding() {
        let mut buf = [0u8; 8];
        assert_eq!(percent_decode(b"rust", &mut buf), Ok(&b"rust"[..]));
        assert_eq!(percent_decode(b"ru%73t", &mut buf), Ok(&b"rust"[..]));
        assert_eq!(percent_decode(b"%72%75%53%74", &mut buf), Ok(&b"ruSt"[..]));
        assert_eq!(percent_decode(b"%7a%7A", &mut buf), Ok(&b"zz"[..]));
        for bad in [&b"ru%7"[..], b"ru%", b"%zz", b"a%g1", b"%%41"] {
            assert_eq!(
                percent_decode(bad, &mut buf),
                Err(Undecodable::InvalidEscape),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            percent_decode(b"%41bcdefghi", &mut buf),
            Err(Undecodable::TooLong)
        );
        assert_eq!(
            percent_decode(b"%41bcdefghi%zz", &mut buf),
            Err(Undecodable::InvalidEscape)
        );
        assert_eq!(
            percent_decode(b"%41bcdefgh", &mut buf),
            Ok(&b"Abcdefgh"[..])
        );
    }

    #[test]
    fn versions_other_than_1_0_and_1_1() {
        for version in ["HTTP/2.0", "HTTP/1.2", "HTTP/2", "HTTP/3", "HTTP/0.9"] {
            let raw = format!("GET / {version}\r\nHost: a\r\n\r\n");
            assert_eq!(
                err(raw.as_bytes()),
                Reject::VersionNotSupported,
                "{version}"
            );
        }
        assert_eq!(
            err(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Reject::VersionNotSupported,
            "the HTTP/2 preface"
        );
        for garbage in [
            "HTTP/2.x",
            "HTTP/22",
            "HTTP/1.1.1",
            "HTTQ/1.1",
            "HTTP/",
            "http/1.1",
        ] {
            let raw = format!("GET / {garbage}\r\nHost: a\r\n\r\n");
            assert_eq!(err(raw.as_bytes()), Reject::BadRequest, "{garbage}");
        }
        // The version is judged once the line is whole.
        assert_eq!(parse(b"GET / HTTP/2", &Limits::default()), Parse::Partial);
        assert!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", &Limits::default()).is_complete());
    }

    #[test]
    fn bodies() {
        let r = ok(
            b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        );
        assert_eq!((r.method, r.body), (Method::Post, Body::Length(5)));
        let r = ok(b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(r.body, Body::Chunked);
    }

    #[test]
    fn partial_limits() {
        let limits = Limits {
            max_uri: 16,
            max_head: 64,
        };
        assert_eq!(parse(b"GET /abc", &limits), Parse::Partial);
        assert_eq!(
            parse(&[b'a'; 41], &limits),
            Parse::Error(Reject::UriTooLong)
        );
        let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
        head.resize(64, b'x');
        assert_eq!(parse(&head, &limits), Parse::Error(Reject::HeadersTooLarge));
    }
}
