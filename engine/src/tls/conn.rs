//! One TLS connection driven by byte buffers, the shape an io_uring loop
//! needs: ciphertext in ([`TlsConn::receive`]), plaintext requests out
//! ([`TlsConn::plaintext`], [`TlsConn::consume`]), plaintext answers in and
//! ciphertext out ([`TlsConn::send`], [`TlsConn::take_output`]). It never
//! touches a socket.
//!
//! A backend's turn for a connection:
//!
//! ```text
//! match tls.receive(received) {
//!     Ok(()) => {
//!         let progress = session.process(core, tls.plaintext(), .., &mut answers);
//!         tls.consume(progress.consumed);
//!         tls.send(&answers, &mut out); answers.clear();
//!         tls.take_output(&mut out);          // handshake records, tickets
//!     }
//!     Err(e) => { tls.take_output(&mut out); /* send it, then close */ }
//! }
//! ```
//!
//! On an error [`TlsConn::take_output`] gives what is owed before closing:
//! the alert rustls queued for a failed handshake (garbage, an SSLv3 or
//! TLS 1.0 hello, a name without certificate), or, for plain HTTP sent to
//! the TLS port, a plain-text `400` that says to use `https://`.
//!
//! Why rustls's buffered `ServerConnection` rather than the unbuffered API:
//! in rustls 0.23 both copy each received record's plaintext into a fresh
//! `Vec` and each sent record through one, so neither is allocation-free
//! per request (the same allocations per exchange). The unbuffered one
//! saves ~500 instructions (~0.1 µs) per keep-alive exchange, under 1% of a
//! request's kernel work (`bench/README.md`); the buffered one handles
//! alerts, partial records and queued tickets itself and keeps this file
//! short. kTLS would need the unbuffered API; the interface here does not
//! change if it moves. Everything of ours is reused: the plaintext buffer
//! keeps its capacity, ciphertext goes straight into the caller's output
//! buffer.

use rustls::{ServerConfig, ServerConnection};
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;

/// What a client that spoke plain HTTP to the TLS port gets before the
/// connection closes.
pub const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain\r\n\
Content-Length: 43\r\n\
Connection: close\r\n\
\r\n\
This port speaks HTTPS: use an https:// URL";

/// Plaintext buffer capacity a connection starts with (a browser's head is
/// under 1 KiB; a pipelining client grows it).
const PLAIN_CAPACITY: usize = 4096;

/// Why a connection must close. After any of these, send what
/// [`TlsConn::take_output`] gives, then close.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("plain HTTP sent to the TLS port")]
    PlainHttp,
    #[error("TLS handshake failed: {0}")]
    Handshake(rustls::Error),
    #[error("TLS error after the handshake: {0}")]
    Traffic(rustls::Error),
    /// The client sent `close_notify`: it sends nothing more. What it sent
    /// before is still in [`TlsConn::plaintext`].
    #[error("the client closed TLS (close_notify)")]
    Closed,
}

/// Why a handshake failed, as `engine_tls_handshake_failures_total{reason}`
/// counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// Plain HTTP sent to the TLS port.
    PlainHttp,
    /// A protocol version the node does not speak (SSLv3, TLS 1.0, 1.1).
    ProtocolVersion,
    /// Nothing else in common (cipher suites, groups, signature schemes).
    Incompatible,
    /// No certificate for the name asked for, and no default.
    NoCertificate,
    /// Bytes that are not TLS, or a message out of place.
    Malformed,
    /// The client ended it with an alert (e.g. it refused the certificate).
    PeerAlert,
    /// Not done within the header timeout of the accept.
    Timeout,
    Other,
}

impl HandshakeFailure {
    pub const ALL: [HandshakeFailure; 8] = [
        HandshakeFailure::PlainHttp,
        HandshakeFailure::ProtocolVersion,
        HandshakeFailure::Incompatible,
        HandshakeFailure::NoCertificate,
        HandshakeFailure::Malformed,
        HandshakeFailure::PeerAlert,
        HandshakeFailure::Timeout,
        HandshakeFailure::Other,
    ];

    /// The `reason` label.
    pub fn name(self) -> &'static str {
        match self {
            HandshakeFailure::PlainHttp => "plain_http",
            HandshakeFailure::ProtocolVersion => "protocol_version",
            HandshakeFailure::Incompatible => "incompatible",
            HandshakeFailure::NoCertificate => "no_certificate",
            HandshakeFailure::Malformed => "malformed",
            HandshakeFailure::PeerAlert => "peer_alert",
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::Other => "other",
        }
    }

    /// The failure an error is, if it ended a handshake.
    pub fn of(error: &TlsError) -> Option<HandshakeFailure> {
        use rustls::{Error, PeerIncompatible as P};
        Some(match error {
            TlsError::PlainHttp => HandshakeFailure::PlainHttp,
            TlsError::Handshake(e) => match e {
                // A hello without `signature_algorithms` is from before
                // TLS 1.2 (which brought the extension): rustls refuses it
                // before it looks at the version.
                Error::PeerIncompatible(
                    P::Tls12NotOffered
                    | P::Tls12NotOfferedOrEnabled
                    | P::SupportedVersionsExtensionRequired
                    | P::SignatureAlgorithmsExtensionRequired,
                ) => HandshakeFailure::ProtocolVersion,
                Error::PeerIncompatible(_) => HandshakeFailure::Incompatible,
                // rustls's words when the resolver has nothing (hs.rs).
                Error::General(m) if m.contains("no server certificate") => {
                    HandshakeFailure::NoCertificate
                }
                Error::InvalidMessage(_)
                | Error::InappropriateHandshakeMessage { .. }
                | Error::InappropriateMessage { .. }
                | Error::PeerMisbehaved(_)
                | Error::DecryptError => HandshakeFailure::Malformed,
                Error::AlertReceived(_) => HandshakeFailure::PeerAlert,
                _ => HandshakeFailure::Other,
            },
            TlsError::Traffic(_) | TlsError::Closed => return None,
        })
    }

    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug)]
pub struct TlsConn {
    tls: ServerConnection,
    /// Decrypted bytes not consumed yet.
    plain: Vec<u8>,
    /// No byte received yet (plain HTTP is recognised on the first ones).
    fresh: bool,
    plain_http: bool,
}

impl TlsConn {
    /// A connection on `config` (the core's current one).
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsConn, rustls::Error> {
        let mut tls = ServerConnection::new(config)?;
        // Output is bounded by the session's own limit and moved out after
        // every write, so rustls's buffer limit would only turn a write into
        // a failure.
        tls.set_buffer_limit(None);
        Ok(TlsConn {
            tls,
            plain: Vec::with_capacity(PLAIN_CAPACITY),
            fresh: true,
            plain_http: false,
        })
    }

    /// Takes ciphertext the peer sent: advances the handshake, decrypts
    /// application data onto [`TlsConn::plaintext`].
    pub fn receive(&mut self, mut data: &[u8]) -> Result<(), TlsError> {
        if self.fresh && !data.is_empty() {
            self.fresh = false;
            if looks_like_http(data) {
                self.plain_http = true;
                return Err(TlsError::PlainHttp);
            }
        }
        let handshaking = self.tls.is_handshaking();
        let fail = |e| match handshaking {
            true => TlsError::Handshake(e),
            false => TlsError::Traffic(e),
        };
        while !data.is_empty() {
            // `read_tls` takes at most what rustls buffers at once; the
            // records it took are processed before it takes more.
            match self.tls.read_tls(&mut data) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(fail(rustls::Error::General(e.to_string()))),
            }
            self.tls.process_new_packets().map_err(fail)?;
            match self.tls.reader().read_to_end(&mut self.plain) {
                Ok(_) => return Err(TlsError::Closed),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(fail(rustls::Error::General(e.to_string()))),
            }
        }
        Ok(())
    }

    /// Decrypted request bytes not consumed yet.
    #[inline]
    pub fn plaintext(&self) -> &[u8] {
        &self.plain
    }

    /// Drops the first `n` plaintext bytes (requests answered).
    #[inline]
    pub fn consume(&mut self, n: usize) {
        self.plain.drain(..n);
    }

    /// Encrypts `answer` and appends the records to `out`. Before the
    /// handshake completes rustls holds the bytes and sends them once it can
    /// (they come out of a later [`TlsConn::take_output`]).
    pub fn send(&mut self, answer: &[u8], out: &mut Vec<u8>) {
        if answer.is_empty() {
            return;
        }
        // With no buffer limit the writer takes everything.
        self.tls
            .writer()
            .write_all(answer)
            .expect("rustls's buffer has no limit");
        self.take_output(out);
    }

    /// Appends everything owed to the peer to `out`: handshake records,
    /// tickets, records of earlier answers, an alert after an error, or the
    /// plain-text answer to plain HTTP.
    pub fn take_output(&mut self, out: &mut Vec<u8>) {
        if self.plain_http {
            out.extend_from_slice(PLAIN_HTTP_ANSWER);
            self.plain_http = false;
            return;
        }
        while self.tls.wants_write() {
            // Writing into a Vec cannot fail.
            if self.tls.write_tls(out).is_err() {
                break;
            }
        }
    }

    /// Queues a `close_notify` (the answer before a close); take it with
    /// [`TlsConn::take_output`].
    pub fn close(&mut self) {
        self.tls.send_close_notify();
    }

    pub fn is_handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// The SNI name the client asked for.
    pub fn server_name(&self) -> Option<&str> {
        self.tls.server_name()
    }

    /// The rustls connection, for what this wrapper does not expose
    /// (negotiated version, handshake kind, secrets for kTLS).
    pub fn rustls(&self) -> &ServerConnection {
        &self.tls
    }
}

/// Whether the first bytes are an HTTP request line rather than a TLS
/// record: a TLS handshake record starts with 0x16, an SSLv2 hello with a
/// byte of the high bit set; an HTTP method is upper-case ASCII.
fn looks_like_http(data: &[u8]) -> bool {
    let method_len = data
        .iter()
        .take(8)
        .take_while(|b| b.is_ascii_uppercase())
        .count();
    method_len >= 3 && (data.len() == method_len || data[method_len] == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_alloc;
    use crate::tls::certs::load_dir;
    use crate::tls::config::{TlsSettings, provider, server_config, ticketer};
    use crate::tls::testpki::{TestCa, exchange, handshake, now};
    use rustls::server::ServerSessionMemoryCache;
    use rustls::{ClientConfig, ClientConnection, HandshakeKind};

    struct Fixture {
        ca: TestCa,
        config: Arc<ServerConfig>,
        _dir: tempfile::TempDir,
    }

    /// A server with pairs for `a.test` and `*.w.test`, `default` as its
    /// default name.
    fn fixture(default: Option<&str>) -> Fixture {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        ca.write_pair(dir.path(), "a.test", &["a.test"]);
        ca.write_pair(dir.path(), "_.w.test", &["*.w.test"]);
        let loaded = load_dir(dir.path(), default, None, &provider(), now()).unwrap();
        assert!(loaded.refused.is_empty(), "{:?}", loaded.refused);
        let settings = TlsSettings::new(dir.path());
        let config = server_config(
            Arc::new(loaded.set),
            ticketer(&settings).unwrap(),
            ServerSessionMemoryCache::new(16),
        );
        Fixture {
            ca,
            config,
            _dir: dir,
        }
    }

    fn presented(client: &ClientConnection) -> Vec<String> {
        TestCa::dns_names(&client.peer_certificates().unwrap()[0])
    }

    #[test]
    fn sni_picks_the_certificate_the_client_sees() {
        let f = fixture(Some("a.test"));
        let client_config = Arc::new(f.ca.client_config());
        for (sni, want) in [
            ("a.test", "a.test"),
            ("x.w.test", "*.w.test"),
            ("y.w.test", "*.w.test"),
        ] {
            let mut client = TestCa::client(&client_config, sni);
            let mut server = TlsConn::new(f.config.clone()).unwrap();
            handshake(&mut client, &mut server).unwrap();
            assert_eq!(presented(&client), [want], "{sni}");
            assert_eq!(server.server_name(), Some(sni));
            assert_eq!(client.alpn_protocol(), Some(&b"http/1.1"[..]));
        }
        // An unknown name gets the default certificate, which the client
        // (rightly) refuses as not covering the name it asked for.
        let mut client = TestCa::client(&client_config, "other.test");
        let mut server = TlsConn::new(f.config.clone()).unwrap();
        let mut c2s = Vec::new();
        client.write_tls(&mut c2s).unwrap();
        server.receive(&c2s).unwrap();
        let mut s2c = Vec::new();
        server.take_output(&mut s2c);
        let mut rd = &s2c[..];
        client.read_tls(&mut rd).unwrap();
        let err = client.process_new_packets().unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName
                        | rustls::CertificateError::NotValidForNameContext { .. }
                )
            ),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_name_without_default_fails_with_an_alert() {
        let f = fixture(None);
        let client_config = Arc::new(f.ca.client_config());
        let mut client = TestCa::client(&client_config, "other.test");
        let mut server = TlsConn::new(f.config.clone()).unwrap();
        let (err, sent) = handshake(&mut client, &mut server).unwrap_err();
        assert!(matches!(err, TlsError::Handshake(_)), "{err}");
        // One alert record: content type 21, fatal (2), access_denied (49).
        assert_eq!(sent, [21, 3, 3, 0, 2, 2, 49]);
        let mut rd = &sent[..];
        client.read_tls(&mut rd).unwrap();
        let err = client.process_new_packets().unwrap_err();
        assert!(matches!(err, rustls::Error::AlertReceived(_)), "{err:?}");
    }

    #[test]
    fn second_handshake_resumes_with_a_ticket() {
        let f = fixture(None);
        for versions in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(f.ca.root()).unwrap();
            let client_config = Arc::new(
                ClientConfig::builder_with_provider(Arc::new(provider()))
                    .with_protocol_versions(&[versions])
                    .unwrap()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            );
            let mut kinds = Vec::new();
            for _ in 0..3 {
                let mut client = TestCa::client(&client_config, "a.test");
                let mut server = TlsConn::new(f.config.clone()).unwrap();
                handshake(&mut client, &mut server).unwrap();
                // TLS 1.3 tickets arrive after the handshake, with the
                // first answer at the latest.
                exchange(&mut client, &mut server, &mut Vec::new());
                kinds.push(server.rustls().handshake_kind().unwrap());
            }
            assert_eq!(
                kinds,
                [
                    HandshakeKind::Full,
                    HandshakeKind::Resumed,
                    HandshakeKind::Resumed
                ],
                "{versions:?}"
            );
        }
    }

    #[test]
    fn plain_http_is_told_to_use_https() {
        let f = fixture(None);
        for request in [
            &b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"[..],
            b"HEAD",
            b"OPTIONS * HTTP/1.1\r\n",
        ] {
            let mut server = TlsConn::new(f.config.clone()).unwrap();
            let err = server.receive(request).unwrap_err();
            assert!(matches!(err, TlsError::PlainHttp), "{err}");
            let mut out = Vec::new();
            server.take_output(&mut out);
            assert_eq!(out, PLAIN_HTTP_ANSWER);
            let text = std::str::from_utf8(PLAIN_HTTP_ANSWER).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.contains(&format!("Content-Length: {}", body.len())));
        }
    }

    #[test]
    fn failed_handshakes_answer_with_an_alert() {
        let f = fixture(Some("a.test"));
        // A TLS 1.0 ClientHello (record version 3.1, hello version 3.1, no
        // supported_versions extension): protocol_version (70).
        let mut hello = vec![0x01, 0, 0, 0, 0x03, 0x01];
        hello.extend_from_slice(&[0; 32]); // random
        hello.extend_from_slice(&[0, 0, 2, 0xc0, 0x2b, 1, 0]); // no session id, one suite, null compression
        // Extensions: signature_algorithms (ECDSA P-256 SHA-256, RSA-PSS
        // SHA-256), supported_groups (X25519); no supported_versions.
        let extensions = [
            0, 0x0d, 0, 6, 0, 4, 4, 3, 8, 4, 0, 0x0a, 0, 4, 0, 2, 0, 0x1d,
        ];
        hello.extend_from_slice(&[0, extensions.len() as u8]);
        hello.extend_from_slice(&extensions);
        let len = hello.len() - 4;
        hello[1..4].copy_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8]);
        let mut record = vec![
            0x16,
            0x03,
            0x01,
            (hello.len() >> 8) as u8,
            hello.len() as u8,
        ];
        record.extend_from_slice(&hello);
        // An SSLv3 one is the same with 3.0; garbage is neither.
        let mut sslv3 = record.clone();
        sslv3[2] = 0;
        sslv3[10] = 0;
        // A ClientHello whose body is junk; a record that is no TLS at all.
        let bad_hello = b"\x16\x03\x01\x00\x08\x01\x00\x00\x04abcd".to_vec();
        let noise = b"\x00\x01\x02 not tls at all".to_vec();
        for (name, bytes) in [
            ("tls1.0", record),
            ("sslv3", sslv3),
            ("bad hello", bad_hello),
            ("noise", noise),
        ] {
            let mut server = TlsConn::new(f.config.clone()).unwrap();
            let err = server.receive(&bytes).unwrap_err();
            assert!(matches!(err, TlsError::Handshake(_)), "{name}: {err}");
            let mut out = Vec::new();
            server.take_output(&mut out);
            assert_eq!(
                out.first(),
                Some(&21),
                "{name}: an alert record, got {out:?}"
            );
            assert_eq!(out.get(5), Some(&2), "{name}: fatal");
            if name == "tls1.0" || name == "sslv3" {
                assert_eq!(out[6], 70, "{name}: protocol_version");
            }
        }
        // A handshake message longer than rustls accepts: an error, no
        // alert owed; the caller just closes.
        let mut server = TlsConn::new(f.config.clone()).unwrap();
        let err = server.receive(b"\x16\x03\x01\x00\x05hello").unwrap_err();
        assert!(matches!(err, TlsError::Handshake(_)), "{err}");
    }

    #[test]
    fn keep_alive_exchanges_reuse_the_buffers() {
        let f = fixture(None);
        let client_config = Arc::new(f.ca.client_config());
        let mut client = TestCa::client(&client_config, "a.test");
        let mut server = TlsConn::new(f.config.clone()).unwrap();
        handshake(&mut client, &mut server).unwrap();
        let mut out = Vec::with_capacity(16 * 1024);
        exchange(&mut client, &mut server, &mut out);
        // The server's side of a request: what our buffers do costs
        // nothing; rustls allocates a few chunks of its own per record.
        let mut c2s = Vec::with_capacity(16 * 1024);
        let mut alloc_per_request = Vec::new();
        for _ in 0..3 {
            c2s.clear();
            client
                .writer()
                .write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
                .unwrap();
            while client.wants_write() {
                client.write_tls(&mut c2s).unwrap();
            }
            out.clear();
            alloc_per_request.push(test_alloc::count(|| {
                server.receive(&c2s).unwrap();
                let n = server.plaintext().len();
                server.consume(n);
                server.send(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                    &mut out,
                );
            }));
            let mut rd = &out[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd).unwrap();
                client.process_new_packets().unwrap();
            }
        }
        assert_eq!(server.plain.capacity(), PLAIN_CAPACITY);
        // rustls 0.23: one Vec for the received record's plaintext, one per
        // sent record (encrypt), one for its chunk queue entry at most.
        assert!(
            alloc_per_request.iter().all(|&n| n <= 3),
            "{alloc_per_request:?}"
        );
    }

    #[test]
    fn close_notify_either_way() {
        let f = fixture(None);
        let client_config = Arc::new(f.ca.client_config());
        let mut client = TestCa::client(&client_config, "a.test");
        let mut server = TlsConn::new(f.config.clone()).unwrap();
        handshake(&mut client, &mut server).unwrap();
        // Ours: the client reads a clean end.
        server.close();
        let mut out = Vec::new();
        server.take_output(&mut out);
        let mut rd = &out[..];
        client.read_tls(&mut rd).unwrap();
        client.process_new_packets().unwrap();
        assert_eq!(client.reader().read(&mut [0u8; 8]).unwrap(), 0);
        // Theirs: the server is told.
        client.send_close_notify();
        let mut c2s = Vec::new();
        client.write_tls(&mut c2s).unwrap();
        assert!(matches!(server.receive(&c2s), Err(TlsError::Closed)));
    }

    #[test]
    fn http_detection_leaves_tls_alone() {
        assert!(looks_like_http(b"GET / HTTP/1.1\r\n"));
        assert!(looks_like_http(b"PRI * HTTP/2.0"));
        assert!(looks_like_http(b"GET"));
        assert!(!looks_like_http(b"\x16\x03\x01\x02\x00"));
        assert!(!looks_like_http(b"\x80\x2e\x01\x03\x00"));
        assert!(!looks_like_http(b"GE"));
        assert!(!looks_like_http(b"GET/"));
    }

    /// A ClientHello of `version` for SNI `a.test`, as clients before TLS
    /// 1.2 send it (no `signature_algorithms`), or with that extension.
    fn old_hello(version: u16, signature_algorithms: bool) -> Vec<u8> {
        let [major, minor] = version.to_be_bytes();
        let mut body = vec![major, minor];
        body.extend_from_slice(&[7u8; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 2, 0x00, 0x2f, 1, 0]);
        let extensions = if signature_algorithms { 23 } else { 15 };
        body.extend_from_slice(&[0, extensions, 0, 0, 0, 11, 0, 9, 0, 0, 6]);
        body.extend_from_slice(b"a.test");
        if signature_algorithms {
            // ecdsa_secp256r1_sha256
            body.extend_from_slice(&[0, 13, 0, 4, 0, 2, 4, 3]);
        }
        let mut record = vec![0x16, major, minor, 0, body.len() as u8 + 4, 1, 0, 0];
        record.push(body.len() as u8);
        record.extend_from_slice(&body);
        record
    }

    #[test]
    fn failures_are_classified_by_reason() {
        let f = fixture(None);
        let reason = |bytes: &[u8]| {
            let mut server = TlsConn::new(f.config.clone()).unwrap();
            HandshakeFailure::of(&server.receive(bytes).unwrap_err())
        };
        assert_eq!(
            reason(b"GET / HTTP/1.1\r\n"),
            Some(HandshakeFailure::PlainHttp)
        );
        assert_eq!(
            reason(b"\x00\x01garbage"),
            Some(HandshakeFailure::Malformed)
        );
        for version in [0x0300, 0x0301, 0x0302] {
            for signature_algorithms in [false, true] {
                assert_eq!(
                    reason(&old_hello(version, signature_algorithms)),
                    Some(HandshakeFailure::ProtocolVersion),
                    "{version:#x} {signature_algorithms}"
                );
            }
        }
        let client_config = Arc::new(f.ca.client_config());
        let mut client = TestCa::client(&client_config, "other.test");
        let mut server = TlsConn::new(f.config.clone()).unwrap();
        let (err, _) = handshake(&mut client, &mut server).unwrap_err();
        assert_eq!(
            HandshakeFailure::of(&err),
            Some(HandshakeFailure::NoCertificate)
        );
        // Every reason has its own label.
        let mut names: Vec<_> = HandshakeFailure::ALL.iter().map(|f| f.name()).collect();
        names.dedup();
        assert_eq!(names.len(), HandshakeFailure::ALL.len());
        for (i, f) in HandshakeFailure::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
    }
}
