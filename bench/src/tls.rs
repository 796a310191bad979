//! In-memory TLS set-up for `benches/tls.rs` and the `tls-instructions`
//! binary: a rustls client and a rustls server joined by byte buffers, for
//! each of rustls's two providers, with only the *server's* calls measured.
//!
//! How the server side is isolated: every call into the server
//! ([`tls_server_new`], [`tls_server_step`], [`tls_server_keepalive`],
//! [`tls_server_drop`]) is its own non-inlined function. Criterion times
//! just those calls (an `Instant` pair around each, ~6 per handshake, a few
//! tens of ns against tens of µs); callgrind counts just those functions
//! (`--toggle-collect='bench::tls::tls_server_*'`). The client's work
//! (building its hello, checking the server's chain and signature) is never
//! counted, so the numbers are what one engine core would spend.
//!
//! Certificates: a test CA and an ECDSA P-256 leaf for [`SERVER_NAME`],
//! made with rcgen at start; key exchange X25519 only (the providers' other
//! groups, including the post-quantum hybrid, are left out so both
//! providers do the same work).

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::{ProducesTickets, ServerSessionMemoryCache};
use rustls::{
    ClientConfig, ClientConnection, HandshakeKind, RootCertStore, ServerConfig, ServerConnection,
    SupportedProtocolVersion,
};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The name the leaf certificate is for and the client asks for.
pub const SERVER_NAME: &str = "sho.rt";

/// A keep-alive request as a load generator sends it.
pub const REQUEST: &[u8] = b"GET /aZ3kP9q HTTP/1.1\r\nHost: sho.rt\r\n\r\n";

/// The engine's answer to it (a 301 with its headers, 180 bytes).
pub const RESPONSE: &[u8] = b"HTTP/1.1 301 Moved Permanently\r\n\
Date: Sun, 01 Nov 2026 12:00:00 GMT\r\n\
Location: https://example.com/landing?src=short\r\n\
Cache-Control: public, max-age=3600\r\n\
Content-Length: 0\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    AwsLcRs,
    Ring,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::AwsLcRs, Provider::Ring];

    pub fn name(self) -> &'static str {
        match self {
            Provider::AwsLcRs => "aws-lc-rs",
            Provider::Ring => "ring",
        }
    }

    pub fn parse(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The provider with X25519 as its only key exchange.
    pub fn crypto(self) -> Arc<CryptoProvider> {
        Arc::new(match self {
            Provider::AwsLcRs => CryptoProvider {
                kx_groups: vec![rustls::crypto::aws_lc_rs::kx_group::X25519],
                ..rustls::crypto::aws_lc_rs::default_provider()
            },
            Provider::Ring => CryptoProvider {
                kx_groups: vec![rustls::crypto::ring::kx_group::X25519],
                ..rustls::crypto::ring::default_provider()
            },
        })
    }

    /// The provider's own ticketer (rotating keys).
    pub fn ticketer(self) -> Arc<dyn ProducesTickets> {
        match self {
            Provider::AwsLcRs => rustls::crypto::aws_lc_rs::Ticketer::new(),
            Provider::Ring => rustls::crypto::ring::Ticketer::new(),
        }
        .expect("ticketer")
    }
}

/// What one handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// TLS 1.3, ECDHE X25519, ECDSA P-256 signature, no resumption.
    Tls13Full,
    /// TLS 1.3 PSK-DHE with a ticket from the previous handshake.
    Tls13Resumed,
    /// TLS 1.2, ECDHE-ECDSA with X25519, no resumption.
    Tls12Full,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Tls13Full, Kind::Tls13Resumed, Kind::Tls12Full];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Tls13Full => "tls13_full",
            Kind::Tls13Resumed => "tls13_resumed",
            Kind::Tls12Full => "tls12_full",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        static TLS12: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        static TLS13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            Kind::Tls12Full => &TLS12,
            _ => &TLS13,
        }
    }
}

/// A test CA and a leaf signed by it, both ECDSA P-256.
#[derive(Debug)]
pub struct Pki {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub root: CertificateDer<'static>,
}

impl Pki {
    pub fn new() -> Pki {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "bench test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA cert");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])
            .expect("leaf params")
            .signed_by(&leaf_key, &issuer)
            .expect("leaf cert");
        Pki {
            chain: vec![leaf.der().clone(), ca.der().clone()],
            key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()).into(),
            root: ca.der().clone(),
        }
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

/// The server's configuration as the engine runs it (`engine::tls::config`)
/// but for the provider and key exchange: TLS 1.3 and 1.2, ALPN `http/1.1`,
/// the provider's rotating ticketer, rustls's default two TLS 1.3 tickets
/// per handshake (their sealing is part of the handshake's cost; the engine
/// sends one since 2026-11-30, so these counts are an upper bound for it).
pub fn server_config(provider: Provider, pki: &Pki) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider.crypto())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(pki.chain.clone(), pki.key.clone_key())
        .expect("server cert");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ticketer = provider.ticketer();
    config.session_storage = ServerSessionMemoryCache::new(1024);
    Arc::new(config)
}

/// The cipher suites a client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// rustls's default order, AES-256-GCM with SHA-384 first (as OpenSSL,
    /// curl and wrk offer; rustls's server follows the client's order).
    Default,
    /// Only the AES-128-GCM / SHA-256 suites (what Chrome and Firefox put
    /// first).
    Aes128,
}

fn client_config(provider: Provider, kind: Kind, pki: &Pki) -> Arc<ClientConfig> {
    client_config_offering(provider, kind, pki, Offer::Default)
}

fn client_config_offering(
    provider: Provider,
    kind: Kind,
    pki: &Pki,
    offer: Offer,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.root.clone()).expect("root");
    let mut crypto = Arc::unwrap_or_clone(provider.crypto());
    if offer == Offer::Aes128 {
        crypto.cipher_suites.retain(|s| {
            let name = format!("{:?}", s.suite());
            name.contains("AES_128_GCM_SHA256")
        });
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(crypto))
        .with_protocol_versions(kind.versions())
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if kind != Kind::Tls13Resumed {
        config.resumption = Resumption::disabled();
    }
    Arc::new(config)
}

#[inline(never)]
pub fn tls_server_new(config: &Arc<ServerConfig>) -> ServerConnection {
    ServerConnection::new(config.clone()).expect("server connection")
}

/// Feeds `input` to the server and appends what it has to send to `out`.
#[inline(never)]
pub fn tls_server_step(server: &mut ServerConnection, input: &[u8], out: &mut Vec<u8>) {
    let mut rd = input;
    while !rd.is_empty() {
        server.read_tls(&mut rd).expect("server read_tls");
        server.process_new_packets().expect("server process");
    }
    while server.wants_write() {
        server.write_tls(out).expect("server write_tls");
    }
}

#[inline(never)]
pub fn tls_server_drop(server: ServerConnection) {
    drop(server);
}

/// One keep-alive exchange on the server: decrypt the request into
/// `plain`, encrypt `response`, append the records to `out`. Returns the
/// plaintext bytes received.
#[inline(never)]
pub fn tls_server_keepalive(
    server: &mut ServerConnection,
    input: &[u8],
    plain: &mut [u8],
    response: &[u8],
    out: &mut Vec<u8>,
) -> usize {
    let mut rd = input;
    while !rd.is_empty() {
        server.read_tls(&mut rd).expect("server read_tls");
        server.process_new_packets().expect("server process");
    }
    let mut got = 0;
    loop {
        match server.reader().read(&mut plain[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("server read: {e}"),
        }
    }
    server.writer().write_all(response).expect("server write");
    while server.wants_write() {
        server.write_tls(out).expect("server write_tls");
    }
    got
}

fn client_take(client: &mut ClientConnection, input: &[u8]) {
    let mut rd = input;
    while !rd.is_empty() {
        client.read_tls(&mut rd).expect("client read_tls");
        client.process_new_packets().expect("client process");
    }
}

fn client_give(client: &mut ClientConnection, out: &mut Vec<u8>) {
    out.clear();
    while client.wants_write() {
        client.write_tls(out).expect("client write_tls");
    }
}

/// Handshakes of one kind with one provider, buffers reused.
#[derive(Debug)]
pub struct Handshakes {
    kind: Kind,
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    c2s: Vec<u8>,
    s2c: Vec<u8>,
}

impl Handshakes {
    pub fn new(provider: Provider, kind: Kind, pki: &Pki) -> Handshakes {
        Handshakes::offering(provider, kind, pki, Offer::Default)
    }

    /// Handshakes with a client offering only `offer`'s suites.
    pub fn offering(provider: Provider, kind: Kind, pki: &Pki, offer: Offer) -> Handshakes {
        let mut h = Handshakes {
            kind,
            server: server_config(provider, pki),
            client: client_config_offering(provider, kind, pki, offer),
            c2s: Vec::with_capacity(16 * 1024),
            s2c: Vec::with_capacity(16 * 1024),
        };
        // The first one gives the client its ticket; the second proves the
        // kind is what it says.
        h.run();
        let (_, server) = h.handshake(&mut Duration::default());
        let want = match kind {
            Kind::Tls13Resumed => HandshakeKind::Resumed,
            _ => HandshakeKind::Full,
        };
        assert_eq!(server.handshake_kind(), Some(want), "{}", kind.name());
        let version = match kind {
            Kind::Tls12Full => rustls::ProtocolVersion::TLSv1_2,
            _ => rustls::ProtocolVersion::TLSv1_3,
        };
        assert_eq!(server.protocol_version(), Some(version));
        h
    }

    /// The negotiated cipher suite, for the record.
    pub fn suite(&mut self) -> String {
        let (_, server) = self.handshake(&mut Duration::default());
        format!(
            "{:?}",
            server.negotiated_cipher_suite().expect("suite").suite()
        )
    }

    /// One complete handshake (tickets included); returns the time spent in
    /// the server's calls.
    pub fn run(&mut self) -> Duration {
        let mut spent = Duration::ZERO;
        let (_, server) = self.handshake(&mut spent);
        let t = Instant::now();
        tls_server_drop(server);
        spent + t.elapsed()
    }

    fn handshake(&mut self, spent: &mut Duration) -> (ClientConnection, ServerConnection) {
        let t = Instant::now();
        let mut server = tls_server_new(&self.server);
        *spent += t.elapsed();
        let name = ServerName::try_from(SERVER_NAME).expect("name");
        let mut client = ClientConnection::new(self.client.clone(), name).expect("client");
        loop {
            client_give(&mut client, &mut self.c2s);
            self.s2c.clear();
            if !self.c2s.is_empty() {
                let t = Instant::now();
                tls_server_step(&mut server, &self.c2s, &mut self.s2c);
                *spent += t.elapsed();
            }
            if self.c2s.is_empty() && self.s2c.is_empty() {
                break;
            }
            client_take(&mut client, &self.s2c);
        }
        assert!(!client.is_handshaking() && !server.is_handshaking());
        (client, server)
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }
}

/// An established TLS 1.3 connection for keep-alive exchanges.
#[derive(Debug)]
pub struct KeepAlive {
    client: ClientConnection,
    server: ServerConnection,
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    plain: Box<[u8]>,
}

impl KeepAlive {
    pub fn new(provider: Provider, pki: &Pki) -> KeepAlive {
        let mut h = Handshakes::new(provider, Kind::Tls13Full, pki);
        let (client, server) = h.handshake(&mut Duration::default());
        let mut k = KeepAlive {
            client,
            server,
            c2s: Vec::with_capacity(16 * 1024),
            s2c: Vec::with_capacity(16 * 1024),
            plain: vec![0; 16 * 1024].into_boxed_slice(),
        };
        k.exchange();
        k
    }

    /// The client's request encrypted, the server's part timed, the answer
    /// read by the client.
    pub fn exchange(&mut self) -> Duration {
        self.client.writer().write_all(REQUEST).expect("request");
        client_give(&mut self.client, &mut self.c2s);
        self.s2c.clear();
        let t = Instant::now();
        let got = tls_server_keepalive(
            &mut self.server,
            &self.c2s,
            &mut self.plain,
            RESPONSE,
            &mut self.s2c,
        );
        let spent = t.elapsed();
        assert_eq!(got, REQUEST.len());
        client_take(&mut self.client, &self.s2c);
        let mut answer = [0u8; 512];
        let n = self.client.reader().read(&mut answer).expect("answer");
        assert_eq!(&answer[..n], RESPONSE);
        spent
    }

    /// The next request's ciphertext, made by the client (untimed); for
    /// driving another server implementation with the same bytes.
    pub fn client_request(client: &mut ClientConnection, out: &mut Vec<u8>) {
        client.writer().write_all(REQUEST).expect("request");
        client_give(client, out);
    }

    /// Hands the server's answer to the client and checks it.
    pub fn client_check_answer(client: &mut ClientConnection, input: &[u8]) {
        client_take(client, input);
        let mut answer = [0u8; 512];
        let n = client.reader().read(&mut answer).expect("answer");
        assert_eq!(&answer[..n], RESPONSE);
    }
}

/// A client for driving another server implementation: its configuration
/// trusts `pki`'s root, TLS 1.3 only, no resumption.
pub fn client(provider: Provider, pki: &Pki) -> ClientConnection {
    let name = ServerName::try_from(SERVER_NAME).expect("name");
    ClientConnection::new(client_config(provider, Kind::Tls13Full, pki), name).expect("client")
}

/// Moves the client's pending records into `out` (cleared first).
pub fn client_flush(client: &mut ClientConnection, out: &mut Vec<u8>) {
    client_give(client, out)
}

/// Hands records to the client.
pub fn client_receive(client: &mut ClientConnection, input: &[u8]) {
    client_take(client, input)
}

/// The same server on rustls's unbuffered API, for comparing the keep-alive
/// cost of the two APIs: ciphertext is kept in our buffer and decrypted
/// from there, records are encoded straight into our output buffer.
pub struct Unbuffered {
    conn: rustls::server::UnbufferedServerConnection,
    incoming: Vec<u8>,
    outgoing: Box<[u8]>,
    out_len: usize,
}

impl std::fmt::Debug for Unbuffered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unbuffered").finish_non_exhaustive()
    }
}

impl Unbuffered {
    pub fn new(config: Arc<ServerConfig>) -> Unbuffered {
        Unbuffered {
            conn: rustls::server::UnbufferedServerConnection::new(config).expect("server"),
            incoming: Vec::with_capacity(32 * 1024),
            outgoing: vec![0; 32 * 1024].into_boxed_slice(),
            out_len: 0,
        }
    }

    /// An established TLS 1.3 connection with `client` (handshake done,
    /// tickets delivered).
    pub fn established(provider: Provider, pki: &Pki) -> (ClientConnection, Unbuffered) {
        let mut server = Unbuffered::new(server_config(provider, pki));
        let mut c = client(provider, pki);
        let mut c2s = Vec::new();
        let mut plain = Vec::new();
        loop {
            client_give(&mut c, &mut c2s);
            let s2c = tls_server_unbuffered(&mut server, &c2s, &mut plain, b"");
            if c2s.is_empty() && s2c.is_empty() {
                break;
            }
            let s2c = s2c.to_vec();
            client_take(&mut c, &s2c);
        }
        assert!(!c.is_handshaking());
        (c, server)
    }
}

/// Feeds `input`, appends decrypted data to `plain`, encrypts `answer` once
/// application data may be sent; returns the records to send.
#[inline(never)]
pub fn tls_server_unbuffered<'a>(
    server: &'a mut Unbuffered,
    input: &[u8],
    plain: &mut Vec<u8>,
    answer: &[u8],
) -> &'a [u8] {
    use rustls::unbuffered::ConnectionState;
    server.out_len = 0;
    server.incoming.extend_from_slice(input);
    let mut answered = answer.is_empty();
    loop {
        let status = server.conn.process_tls_records(&mut server.incoming);
        let discard = status.discard;
        let stop = match status.state.expect("server state") {
            ConnectionState::ReadTraffic(mut r) => {
                while let Some(record) = r.next_record() {
                    plain.extend_from_slice(record.expect("record").payload);
                }
                false
            }
            ConnectionState::EncodeTlsData(mut e) => {
                let n = e
                    .encode(&mut server.outgoing[server.out_len..])
                    .expect("room to encode");
                server.out_len += n;
                false
            }
            ConnectionState::TransmitTlsData(t) => {
                // The caller sends everything encoded when this returns.
                t.done();
                false
            }
            ConnectionState::WriteTraffic(mut w) => {
                if !answered {
                    let n = w
                        .encrypt(answer, &mut server.outgoing[server.out_len..])
                        .expect("room to encrypt");
                    server.out_len += n;
                    answered = true;
                }
                true
            }
            _ => true,
        };
        if discard > 0 {
            server.incoming.drain(..discard);
        }
        if stop {
            break;
        }
    }
    &server.outgoing[..server.out_len]
}
