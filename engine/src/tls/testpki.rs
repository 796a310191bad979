//! Test-only certificates made with rcgen: a CA, pairs written the way the
//! certificate directory wants them, and rustls clients that trust the CA.
//! No key here is of any real use.

use super::conn::{TlsConn, TlsError};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn days_from_now(days: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::days(days)
}

pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    cert: rcgen::Certificate,
}

impl TestCa {
    pub fn new() -> TestCa {
        TestCa::new_dated(-1, 365)
    }

    /// A CA valid from `before` to `after` days from now.
    pub fn new_dated(before: i64, after: i64) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "engine test CA");
        params.not_before = days_from_now(before);
        params.not_after = days_from_now(after);
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            issuer: rcgen::Issuer::new(params, key),
            cert,
        }
    }

    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    pub fn root(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// A leaf for `sans` with `key`, valid `before`..`after` days from now;
    /// returns the chain PEM (leaf, CA).
    fn leaf(&self, sans: &[&str], key: &rcgen::KeyPair, before: i64, after: i64) -> String {
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_before = days_from_now(before);
        params.not_after = days_from_now(after);
        let leaf = params.signed_by(key, &self.issuer).unwrap();
        format!("{}{}", leaf.pem(), self.cert.pem())
    }

    /// `STEM.crt` and `STEM.key` (PKCS#8 P-256) for `sans`.
    pub fn write_pair(&self, dir: &Path, stem: &str, sans: &[&str]) {
        self.write_pair_dated(dir, stem, sans, -1, 90);
    }

    pub fn write_pair_dated(&self, dir: &Path, stem: &str, sans: &[&str], before: i64, after: i64) {
        let key = rcgen::KeyPair::generate().unwrap();
        write(
            dir,
            stem,
            &self.leaf(sans, &key, before, after),
            &key.serialize_pem(),
        );
    }

    /// The key as SEC1 `EC PRIVATE KEY`.
    pub fn write_pair_sec1(&self, dir: &Path, stem: &str, sans: &[&str]) {
        let key = rcgen::KeyPair::generate().unwrap();
        let sec1 = pkcs8_inner(&key.serialize_der());
        write(
            dir,
            stem,
            &self.leaf(sans, &key, -1, 90),
            &pem("EC PRIVATE KEY", &sec1),
        );
    }

    /// An RSA 2048 key as PKCS#1 `RSA PRIVATE KEY`.
    pub fn write_pair_rsa(&self, dir: &Path, stem: &str, sans: &[&str]) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let pkcs1 = pkcs8_inner(&key.serialize_der());
        write(
            dir,
            stem,
            &self.leaf(sans, &key, -1, 90),
            &pem("RSA PRIVATE KEY", &pkcs1),
        );
    }

    /// The DNS names a certificate is for.
    pub fn dns_names(cert: &CertificateDer<'_>) -> Vec<String> {
        let cert = webpki::EndEntityCert::try_from(cert).unwrap();
        cert.valid_dns_names().map(str::to_string).collect()
    }

    /// A client trusting this CA, with rustls's aws-lc-rs defaults (TLS 1.3
    /// and 1.2, AES-256 first), ALPN `http/1.1`.
    pub fn client_config(&self) -> ClientConfig {
        self.client_config_with(
            rustls::crypto::aws_lc_rs::default_provider(),
            rustls::DEFAULT_VERSIONS,
        )
    }

    /// A client on `provider` (its suites in its order) and `versions`.
    pub fn client_config_with(
        &self,
        provider: rustls::crypto::CryptoProvider,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> ClientConfig {
        let mut roots = RootCertStore::empty();
        roots.add(self.root()).unwrap();
        let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }

    pub fn client(config: &Arc<ClientConfig>, sni: &str) -> ClientConnection {
        let name = ServerName::try_from(sni.to_string()).unwrap();
        ClientConnection::new(config.clone(), name).unwrap()
    }
}

/// Runs the handshake between `client` and `server` over buffers;
/// returns the server's error if it failed and what it sent last.
pub fn handshake(
    client: &mut ClientConnection,
    server: &mut TlsConn,
) -> Result<(), (TlsError, Vec<u8>)> {
    let mut c2s = Vec::new();
    let mut s2c = Vec::new();
    for _ in 0..10 {
        c2s.clear();
        while client.wants_write() {
            client.write_tls(&mut c2s).unwrap();
        }
        s2c.clear();
        if let Err(e) = server.receive(&c2s) {
            server.take_output(&mut s2c);
            return Err((e, s2c));
        }
        server.take_output(&mut s2c);
        if c2s.is_empty() && s2c.is_empty() {
            break;
        }
        let mut rd = &s2c[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).unwrap();
            client.process_new_packets().unwrap();
        }
    }
    assert!(!client.is_handshaking() && !server.is_handshaking());
    Ok(())
}

/// One request from the client, answered by the server.
pub fn exchange(client: &mut ClientConnection, server: &mut TlsConn, out: &mut Vec<u8>) {
    let mut c2s = Vec::new();
    client
        .writer()
        .write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    while client.wants_write() {
        client.write_tls(&mut c2s).unwrap();
    }
    out.clear();
    server.receive(&c2s).unwrap();
    assert_eq!(server.plaintext(), b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    let n = server.plaintext().len();
    server.consume(n);
    server.send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", out);
    let mut rd = &out[..];
    while !rd.is_empty() {
        client.read_tls(&mut rd).unwrap();
        client.process_new_packets().unwrap();
    }
    let mut answer = [0u8; 128];
    let n = client.reader().read(&mut answer).unwrap();
    assert_eq!(
        &answer[..n],
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    );
}

fn write(dir: &Path, stem: &str, chain: &str, key: &str) {
    std::fs::write(dir.join(format!("{stem}.crt")), chain).unwrap();
    std::fs::write(dir.join(format!("{stem}.key")), key).unwrap();
}

/// The privateKey OCTET STRING of a PKCS#8 document: SEC1 for EC keys
/// (without the curve, which rustls accepts), PKCS#1 for RSA.
fn pkcs8_inner(der: &[u8]) -> Vec<u8> {
    fn element(input: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = input[0];
        let (len, start) = if input[1] < 0x80 {
            (input[1] as usize, 2)
        } else {
            let n = (input[1] & 0x7f) as usize;
            let len = input[2..2 + n]
                .iter()
                .fold(0, |a, &b| (a << 8) | b as usize);
            (len, 2 + n)
        };
        (tag, &input[start..start + len], &input[start + len..])
    }
    let (_, body, _) = element(der);
    let (_, _, rest) = element(body); // version
    let (_, _, rest) = element(rest); // algorithm
    let (tag, key, _) = element(rest);
    assert_eq!(tag, 0x04);
    key.to_vec()
}

fn pem(label: &str, der: &[u8]) -> String {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in der.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                text.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
