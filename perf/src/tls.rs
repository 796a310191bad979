//! The generator's TLS client: rustls on aws-lc-rs, the engine's provider.
//!
//! One `ClientConfig` is built before the run: TLS 1.3 only unless asked
//! otherwise, X25519 as the only key exchange (so no server can answer with
//! a HelloRetryRequest for another group), the test CA as the only root,
//! ALPN `http/1.1`, SNI the name given. Cipher suites in the browsers'
//! order, AES-128-GCM/SHA-256 first: a server that follows the client's
//! order (nginx's default) then negotiates what one that imposes its own
//! (the engine) does, and both are measured on the suite browsers get.
//!
//! Certificates are checked against the CA as always, but the chain is
//! verified once ([`CachedChainVerifier`]): every connection of a run gets
//! the same bytes, and rebuilding the chain costs the client an ECDSA
//! verification per handshake (a fifth of its CPU in `tls-full`, which
//! shares the machine with the server measured). The server's handshake
//! signature is still verified on every connection.
//!
//! Resumption: `tls-keepalive` and `tls-full` offer nothing (a full
//! handshake per connection). `tls-resume` gives every connection slot its
//! own [`SlotTicket`] store holding the newest ticket that slot received,
//! offered (and used up) by the slot's next connection. rustls looks
//! tickets up by server name, and every slot has the same name, so the slots
//! hold clones of the one config that differ only in that store; the clones
//! are made once, before the run. Whether the server resumed is what
//! rustls's `handshake_kind()` says after each handshake (counted in
//! [`crate::stats::TlsStats`]).

use crate::mode::Mode;
use anyhow::{Context, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionStore, Resumption, Tls12ClientSessionValue};
use rustls::client::{Tls12Resumption, Tls13ClientSessionValue, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, NamedGroup};
use rustls::{RootCertStore, SignatureScheme, version};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// TLS versions the client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Versions {
    /// TLS 1.3 only (the default).
    #[default]
    Tls13,
    /// TLS 1.2 only.
    Tls12,
    /// Both; the server picks (TLS 1.3 with any current server).
    Any,
}

impl std::str::FromStr for Versions {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Versions> {
        match s {
            "1.3" => Ok(Versions::Tls13),
            "1.2" => Ok(Versions::Tls12),
            "any" => Ok(Versions::Any),
            _ => bail!("TLS version {s:?}: expected 1.3, 1.2 or any"),
        }
    }
}

/// What the client is made from.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// PEM file of the CA certificate(s) to trust, and nothing else.
    pub ca: std::path::PathBuf,
    /// Server name sent as SNI and checked against the certificate.
    pub sni: String,
    pub versions: Versions,
}

/// The client side of every TLS connection of a run.
#[derive(Debug)]
pub struct TlsClient {
    name: ServerName<'static>,
    /// One config for every slot, or (tls-resume) one per slot.
    configs: Vec<Arc<ClientConfig>>,
    /// tls-resume: each slot's store, for counting the tickets received.
    stores: Vec<Arc<SlotTicket>>,
    verifier: Arc<CachedChainVerifier>,
}

impl TlsClient {
    /// Builds the config for `mode` and, for `tls-resume`, one clone with
    /// its own ticket store per connection slot (`slots` = connections).
    pub fn new(opts: &TlsOptions, mode: Mode, slots: usize) -> anyhow::Result<TlsClient> {
        if !mode.tls() {
            bail!("mode {mode} does not use TLS");
        }
        let name = ServerName::try_from(opts.sni.clone())
            .with_context(|| format!("--sni {:?} is not a DNS name or IP address", opts.sni))?;
        let verifier = Arc::new(CachedChainVerifier::new(&opts.ca)?);
        let base = client_config(verifier.clone(), opts.versions)?;
        let mut stores = Vec::new();
        let configs = if mode.resumes() {
            (0..slots.max(1))
                .map(|_| {
                    let store = Arc::new(SlotTicket::default());
                    stores.push(store.clone());
                    let mut c = base.clone();
                    c.resumption = Resumption::store(store)
                        .tls12_resumption(Tls12Resumption::SessionIdOrTickets);
                    Arc::new(c)
                })
                .collect()
        } else {
            // No ticket kept. The ClientHello still offers PSK-DHE resumption
            // (rustls always does for TLS 1.3), so the server issues its
            // tickets, as for a browser's first visit.
            let mut c = base;
            c.resumption = Resumption::disabled();
            vec![Arc::new(c)]
        };
        Ok(TlsClient {
            name,
            configs,
            stores,
            verifier,
        })
    }

    /// Full chain verifications so far (one per run, or per minute, unless
    /// the server changes its certificate).
    pub fn chain_verifications(&self) -> u64 {
        self.verifier.verifications.load(Ordering::Relaxed)
    }

    /// tls-resume: TLS 1.3 tickets received so far, over every slot (0 in
    /// the other modes, which keep none).
    pub fn tickets_received(&self) -> u64 {
        self.stores
            .iter()
            .map(|s| s.received.load(Ordering::Relaxed))
            .sum()
    }

    /// A new connection for connection slot `slot`.
    pub fn connect(&self, slot: usize) -> Result<ClientConnection, rustls::Error> {
        let config = &self.configs[slot % self.configs.len()];
        ClientConnection::new(config.clone(), self.name.clone())
    }

    pub fn server_name(&self) -> &ServerName<'static> {
        &self.name
    }
}

/// Seeds aws-lc's random generator on the calling thread: its first use
/// gathers CPU jitter entropy for tens of milliseconds, which belongs
/// before a run, not in its client CPU.
pub fn warm_up_random() {
    let _ = provider().secure_random.fill(&mut [0u8; 32]);
}

/// The provider: aws-lc-rs, X25519 only, suites in the browsers' order.
pub fn provider() -> CryptoProvider {
    use rustls::crypto::aws_lc_rs::{cipher_suite::*, default_provider, kx_group};
    CryptoProvider {
        cipher_suites: vec![
            TLS13_AES_128_GCM_SHA256,
            TLS13_AES_256_GCM_SHA384,
            TLS13_CHACHA20_POLY1305_SHA256,
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        kx_groups: vec![kx_group::X25519],
        ..default_provider()
    }
}

/// The roots of a CA file.
fn roots(ca: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .with_context(|| format!("reading the CA file {}", ca.display()))?;
    for cert in certs {
        let cert = cert.with_context(|| format!("parsing the CA file {}", ca.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("{}: a certificate is not a usable root", ca.display()))?;
    }
    if roots.is_empty() {
        bail!("the CA file {} holds no certificate", ca.display());
    }
    Ok(roots)
}

/// The base config: `verifier`, `versions`, ALPN `http/1.1`.
pub fn client_config(
    verifier: Arc<CachedChainVerifier>,
    versions: Versions,
) -> anyhow::Result<ClientConfig> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match versions {
        Versions::Tls13 => &[&version::TLS13],
        Versions::Tls12 => &[&version::TLS12],
        Versions::Any => &[&version::TLS13, &version::TLS12],
    };
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(versions)
        .context("the provider does not support the TLS versions asked for")?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// rustls's webpki verifier over the CA file, remembering the last chain
/// it accepted: the same end-entity and intermediates for the same name,
/// accepted less than [`CachedChainVerifier::REVERIFY`] ago, are accepted
/// again without rebuilding the chain. Handshake signatures always go to
/// webpki.
#[derive(Debug)]
pub struct CachedChainVerifier {
    inner: Arc<WebPkiServerVerifier>,
    /// The last chain accepted.
    last: Mutex<Option<Accepted>>,
    verifications: AtomicU64,
}

/// A chain [`CachedChainVerifier`] accepted.
#[derive(Debug)]
struct Accepted {
    name: ServerName<'static>,
    end_entity: Vec<u8>,
    intermediates: Vec<Vec<u8>>,
    at: Instant,
}

impl CachedChainVerifier {
    /// How long an accepted chain is trusted without a new check (a run's
    /// certificate lives two days; a minute keeps expiry honest).
    pub const REVERIFY: Duration = Duration::from_secs(60);

    pub fn new(ca: &Path) -> anyhow::Result<CachedChainVerifier> {
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ca)?), Arc::new(provider()))
                .build()
                .with_context(|| format!("a verifier for the CA file {}", ca.display()))?;
        Ok(CachedChainVerifier {
            inner,
            last: Mutex::new(None),
            verifications: AtomicU64::new(0),
        })
    }
}

impl ServerCertVerifier for CachedChainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(a) = &*lock(&self.last)
            && a.at.elapsed() < Self::REVERIFY
            && a.name == *server_name
            && a.end_entity[..] == end_entity[..]
            && a.intermediates.len() == intermediates.len()
            && a.intermediates
                .iter()
                .zip(intermediates)
                .all(|(x, y)| x[..] == y[..])
        {
            return Ok(ServerCertVerified::assertion());
        }
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        *lock(&self.last) = Some(Accepted {
            name: server_name.to_owned(),
            end_entity: end_entity.to_vec(),
            intermediates: intermediates.iter().map(|c| c.to_vec()).collect(),
            at: Instant::now(),
        });
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// One connection slot's session memory: the newest TLS 1.3 ticket (used
/// up when offered, as tickets are single-use) and the TLS 1.2 session.
#[derive(Debug, Default)]
pub struct SlotTicket {
    tls13: Mutex<Option<Tls13ClientSessionValue>>,
    tls12: Mutex<Option<Tls12ClientSessionValue>>,
    /// TLS 1.3 tickets received (servers send one or two per handshake).
    received: AtomicU64,
}

impl ClientSessionStore for SlotTicket {
    // X25519 is the only group offered: there is nothing to remember.
    fn set_kx_hint(&self, _: ServerName<'static>, _: NamedGroup) {}

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        None
    }

    fn set_tls12_session(&self, _: ServerName<'static>, value: Tls12ClientSessionValue) {
        *lock(&self.tls12) = Some(value);
    }

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        lock(&self.tls12).clone()
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {
        *lock(&self.tls12) = None;
    }

    fn insert_tls13_ticket(&self, _: ServerName<'static>, value: Tls13ClientSessionValue) {
        self.received.fetch_add(1, Ordering::Relaxed);
        *lock(&self.tls13) = Some(value);
    }

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        lock(&self.tls13).take()
    }
}

/// A poisoned lock can only mean a load thread panicked mid-assignment of
/// a plain Option; the value is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_a_missing_ca_is_named() {
        assert_eq!("1.3".parse::<Versions>().unwrap(), Versions::Tls13);
        assert_eq!("any".parse::<Versions>().unwrap(), Versions::Any);
        assert!("1.1".parse::<Versions>().is_err());
        let opts = TlsOptions {
            ca: "/nonexistent/ca.pem".into(),
            sni: "perf.test".into(),
            versions: Versions::Tls13,
        };
        let err = TlsClient::new(&opts, Mode::TlsFull, 1).unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/ca.pem"),
            "{err:#}"
        );
        let err = TlsClient::new(&opts, Mode::Close, 1).unwrap_err();
        assert!(err.to_string().contains("does not use TLS"), "{err}");
    }
}
