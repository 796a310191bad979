//! Just enough of an HTTP/1.1 response to count it: the status, where it
//! ends (head plus `Content-Length` body), and whether the server will close.
//! httparse does the head; chunked bodies are not expected from a redirect
//! server and count as a parse error rather than being decoded.

/// One look at the front of a connection's read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A whole response of `len` bytes.
    Complete {
        status: u16,
        len: usize,
        close: bool,
    },
    /// Not all of it has arrived.
    Partial,
    /// Not a response we can delimit.
    Invalid,
}

pub fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Invalid,
    };
    let Some(status) = resp.code else {
        return Parsed::Invalid;
    };
    let mut body = 0usize;
    let mut close = resp.version == Some(0);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            match std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
            {
                Some(n) => body = n,
                None => return Parsed::Invalid,
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Invalid;
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.eq_ignore_ascii_case(b"close");
        }
    }
    // 1xx, 204 and 304 carry no body whatever the headers say.
    if status < 200 || status == 204 || status == 304 {
        body = 0;
    }
    if buf.len() < head + body {
        return Parsed::Partial;
    }
    Parsed::Complete {
        status,
        len: head + body,
        close,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimits_heads_and_bodies() {
        let r = b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://x/\r\nContent-Length: 0\r\n\r\nHTTP/1.1 404";
        assert_eq!(
            parse(r),
            Parsed::Complete {
                status: 301,
                len: r.len() - 12,
                close: false
            }
        );
        let r = b"HTTP/1.1 404 Not Found\r\ncontent-length: 5\r\nConnection: close\r\n\r\nabc";
        assert_eq!(parse(r), Parsed::Partial);
        let r = b"HTTP/1.1 404 Not Found\r\ncontent-length: 5\r\nConnection: close\r\n\r\nabcde";
        assert_eq!(
            parse(r),
            Parsed::Complete {
                status: 404,
                len: r.len(),
                close: true
            }
        );
        assert_eq!(parse(b"HTTP/1.1 301 Mo"), Parsed::Partial);
        assert_eq!(
            parse(b"HTTP/1.0 200 OK\r\n\r\n"),
            Parsed::Complete {
                status: 200,
                len: 19,
                close: true
            }
        );
        assert_eq!(parse(b"garbage\r\n\r\n"), Parsed::Invalid);
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Parsed::Invalid
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            Parsed::Invalid
        );
    }
}
