//! TLS for tests: certificate pairs signed by a fresh CA of the test's own,
//! and one HTTPS exchange over a real handshake that reports which leaf the
//! server presented (for "is the renewed certificate served?").
//!
//! The client uses rustls with the *ring* provider (the engine serves with
//! aws-lc-rs), trusts only the roots it is given and sends the SNI it is
//! told, so a test can ask a server on 127.0.0.1 for any name.

use anyhow::{Context as _, bail};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// A fresh CA and a leaf for `names` signed by it, all PEM.
#[derive(Debug, Clone)]
pub struct TestPair {
    pub root_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestPair {
    pub fn new(names: &[&str]) -> anyhow::Result<TestPair> {
        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "testkit root");
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate()?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let leaf = rcgen::CertificateParams::new(names)?.signed_by(&key, &issuer)?;
        Ok(TestPair {
            root_pem: ca_cert.pem(),
            cert_pem: leaf.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Writes `NAME.crt` and `NAME.key` into `dir` (an engine's
    /// `--tls-certs` layout).
    pub fn write(&self, dir: &std::path::Path, name: &str) -> anyhow::Result<()> {
        std::fs::write(dir.join(format!("{name}.crt")), &self.cert_pem)?;
        std::fs::write(dir.join(format!("{name}.key")), &self.key_pem)?;
        Ok(())
    }
}

/// The DER of the first certificate of a PEM chain.
pub fn leaf_der(chain_pem: &str) -> anyhow::Result<Vec<u8>> {
    let leaf = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()
        .context("no certificate in the chain")??;
    Ok(leaf.to_vec())
}

/// What one HTTPS exchange saw.
#[derive(Debug, Clone)]
pub struct TlsExchange {
    /// The leaf certificate the server presented (DER).
    pub leaf: Vec<u8>,
    /// The whole answer, head and body.
    pub response: String,
}

impl TlsExchange {
    /// The status code of the answer (0 if it has none).
    pub fn status(&self) -> u16 {
        self.response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// A header of the answer (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let head = self.response.split("\r\n\r\n").next()?;
        head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A client trusting only `root_pem` (one or more PEM certificates).
pub fn client_config(root_pem: &[u8]) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_pem) {
        roots.add(cert?)?;
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    ))
}

/// `GET path` over TLS to `addr` with SNI and `Host` `sni` (a DNS name or
/// an IP address), trusting `root_pem` only; the handshake must succeed and
/// verify. Blocking.
pub fn https_get(
    addr: SocketAddr,
    sni: &str,
    root_pem: &[u8],
    path: &str,
) -> anyhow::Result<TlsExchange> {
    let name = ServerName::try_from(sni.to_owned())?;
    let conn = rustls::ClientConnection::new(client_config(root_pem)?, name)?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    match tls.read_to_end(&mut response) {
        Ok(_) => {}
        // Some servers close without close_notify.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {}
        Err(e) => return Err(e.into()),
    }
    let leaf = match tls.conn.peer_certificates() {
        Some([leaf, ..]) => leaf.to_vec(),
        _ => bail!("the server presented no certificate"),
    };
    Ok(TlsExchange {
        leaf,
        response: String::from_utf8_lossy(&response).into_owned(),
    })
}
