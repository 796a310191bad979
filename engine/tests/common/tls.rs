//! TLS for the integration tests: a throwaway rcgen CA, certificate pairs
//! written the way `--tls-certs` wants them, and a rustls client (aws-lc-rs,
//! trusting the CA, ALPN `http/1.1`) over a real socket.

use super::{Response, parse_responses};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn days_from_now(days: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::days(days)
}

pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    cert: rcgen::Certificate,
}

/// A leaf: its chain PEM (leaf, CA), key PEM and DER.
pub struct Pair {
    pub chain: String,
    pub key: String,
    pub der: CertificateDer<'static>,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "engine integration test CA");
        params.not_before = days_from_now(-1);
        params.not_after = days_from_now(30);
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            issuer: rcgen::Issuer::new(params, key),
            cert,
        }
    }

    /// A leaf for `sans` valid `before`..`after` days from now.
    pub fn pair_dated(&self, sans: &[&str], before: i64, after: i64) -> Pair {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_before = days_from_now(before);
        params.not_after = days_from_now(after);
        let leaf = params.signed_by(&key, &self.issuer).unwrap();
        Pair {
            chain: format!("{}{}", leaf.pem(), self.cert.pem()),
            key: key.serialize_pem(),
            der: leaf.der().clone(),
        }
    }

    pub fn pair(&self, sans: &[&str]) -> Pair {
        self.pair_dated(sans, -1, 20)
    }

    /// Writes `STEM.crt` and `STEM.key` into `dir` (by rename, as an
    /// operator or a secret mount replaces them); returns the leaf.
    pub fn write_pair(&self, dir: &Path, stem: &str, sans: &[&str]) -> CertificateDer<'static> {
        let pair = self.pair(sans);
        write_pair(dir, stem, &pair);
        pair.der
    }

    /// A client for `versions` (TLS 1.3 and 1.2 when empty) trusting this
    /// CA, with rustls's in-memory ticket and session store.
    pub fn client(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        let versions = if versions.is_empty() {
            rustls::DEFAULT_VERSIONS
        } else {
            versions
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

pub fn write_pair(dir: &Path, stem: &str, pair: &Pair) {
    for (ext, text) in [("key", &pair.key), ("crt", &pair.chain)] {
        let hidden = dir.join(format!(".{stem}.{ext}.tmp"));
        std::fs::write(&hidden, text).unwrap();
        std::fs::rename(&hidden, dir.join(format!("{stem}.{ext}"))).unwrap();
    }
}

/// A TLS connection to the engine.
pub struct TlsClient {
    pub stream: StreamOwned<ClientConnection, TcpStream>,
}

impl TlsClient {
    /// Connects and completes the handshake.
    pub fn connect(
        addr: SocketAddr,
        config: &Arc<ClientConfig>,
        sni: &str,
    ) -> Result<TlsClient, rustls::Error> {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let name = ServerName::try_from(sni.to_string()).unwrap();
        let conn = ClientConnection::new(config.clone(), name).unwrap();
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            if let Err(e) = stream.conn.complete_io(&mut stream.sock) {
                return Err(
                    match e
                        .into_inner()
                        .map(|inner| inner.downcast::<rustls::Error>())
                    {
                        Some(Ok(tls)) => *tls,
                        other => rustls::Error::General(format!("{other:?}")),
                    },
                );
            }
        }
        Ok(TlsClient { stream })
    }

    /// One keep-alive GET and its answer.
    pub fn get(&mut self, path: &str) -> Response {
        self.stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .unwrap();
        self.stream.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(response) = parse_responses(&buf).into_iter().next() {
                return response;
            }
            assert!(Instant::now() < deadline, "no answer to GET {path}");
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(
                n > 0,
                "closed before answering GET {path}: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The leaf certificate the server presented.
    pub fn leaf(&self) -> CertificateDer<'static> {
        self.stream.conn.peer_certificates().unwrap()[0].clone()
    }

    pub fn resumed(&self) -> bool {
        self.stream.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
    }
}

/// Sends `bytes` on a fresh TCP connection to the TLS port and reads until
/// the engine closes it (at most 10 s): what it answered.
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    super::raw(addr, bytes)
}
