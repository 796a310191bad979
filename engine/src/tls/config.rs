//! The rustls `ServerConfig` of a node, and the settings it is made from.
//!
//! One `Arc<ServerConfig>` per node, handed to every core: the cores share
//! its certificate resolver, its ticketer (so a ticket sealed on one core
//! opens on another) and its session cache. When certificates or ticket
//! keys change the [`super::store::CertStore`] builds a new one around the
//! *same* ticketer and session cache (unless the key file itself changed),
//! so resumption survives a certificate reload; a connection keeps the
//! config it started with.
//!
//! Choices and why:
//! - Provider aws-lc-rs: the cheaper full handshake by a wide margin (table
//!   and commands in `bench/README.md`).
//! - TLS 1.3 and 1.2; ALPN `http/1.1` only (the engine speaks HTTP/1.1).
//! - Cipher suites in the server's order, AES-128-GCM/SHA-256 first: most
//!   of a handshake's hashing is the key schedule's HMACs, and SHA-256 (SHA
//!   extensions) costs far less than the SHA-384 of the AES-256 suite that
//!   OpenSSL, curl and wrk put first: 90 instead of 115 µs per full TLS 1.3
//!   handshake here (`bench/README.md`). AES-128 is no weaker in practice;
//!   ChaCha20 stays available for clients that offer nothing else (a client
//!   without AES instructions that merely *prefers* ChaCha20 gets AES).
//! - Key exchange: the provider's default order, X25519 first, then P-256,
//!   P-384, and the X25519+ML-KEM-768 hybrid last (rustls's
//!   `prefer-post-quantum` feature is off). A client offering both an
//!   X25519 and a hybrid key share (current browsers) gets X25519, the
//!   cheaper; one offering only the hybrid gets the hybrid.
//! - Resumption: TLS 1.3 tickets, one per handshake (rustls sends two by
//!   default, OpenSSL too, so that a client's second *parallel* connection
//!   resumes as well; a short link is one connection and a redirect, and a
//!   resumed handshake brings a new ticket for the next visit, so the second
//!   ticket's sealing, key derivation and record were paid on every full
//!   handshake for nothing), TLS 1.2 tickets, and a session-ID cache of [`TlsSettings::session_cache`]
//!   entries for TLS 1.2 clients without tickets. No 0-RTT: early data is
//!   replayable and a click is not idempotent for the analytics.
//! - Ticket keys: node-local and rotated by rustls (a new key every 6
//!   hours, the previous one still opening tickets), or shared by every
//!   node through a key file ([`super::ticket`]).

use super::ticket::{KeyFileTicketer, TicketKeyError};
use rustls::crypto::CryptoProvider;
use rustls::server::{ProducesTickets, ResolvesServerCert, StoresServerSessions};
use rustls::{ServerConfig, version};
use std::path::PathBuf;
use std::sync::Arc;

/// The TLS settings of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Directory of `NAME.crt` + `NAME.key` pairs ([`super::certs`]).
    pub cert_dir: PathBuf,
    /// A second such directory, of pairs pushed to the admin port (in the
    /// state directory). A name with a pair in both is served from
    /// `cert_dir`: the operator's own files win over a push.
    pub pushed_dir: Option<PathBuf>,
    /// Name whose certificate serves clients without SNI or with a name
    /// that has none.
    pub default_name: Option<String>,
    /// TLS 1.2 session-ID cache entries (tickets need none).
    pub session_cache: usize,
    /// How long a ticket from the key file may be used, in seconds (rustls's
    /// own node-local ticketer has its fixed 12 hours).
    pub ticket_lifetime: u32,
    /// Shared ticket keys; `None` for node-local keys rotated in memory.
    pub ticket_key_file: Option<PathBuf>,
}

impl TlsSettings {
    pub fn new(cert_dir: impl Into<PathBuf>) -> TlsSettings {
        TlsSettings {
            cert_dir: cert_dir.into(),
            pushed_dir: None,
            default_name: None,
            session_cache: 4096,
            ticket_lifetime: 12 * 3600,
            ticket_key_file: None,
        }
    }
}

/// The crypto provider the engine runs TLS on: aws-lc-rs, its cipher
/// suites in the server's order of preference.
pub fn provider() -> CryptoProvider {
    use rustls::crypto::aws_lc_rs::cipher_suite::*;
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
        ..rustls::crypto::aws_lc_rs::default_provider()
    }
}

/// The ticketer the settings ask for: the key file's, or rustls's own
/// (node-local random keys, a new one every 6 hours, tickets valid 12).
pub fn ticketer(settings: &TlsSettings) -> Result<Arc<dyn ProducesTickets>, TicketKeyError> {
    Ok(match &settings.ticket_key_file {
        Some(path) => Arc::new(KeyFileTicketer::load(path, settings.ticket_lifetime)?),
        None => rustls::crypto::aws_lc_rs::Ticketer::new().expect("the system random source works"),
    })
}

/// A node's server configuration around a certificate resolver, a
/// ticketer and a session cache.
pub fn server_config(
    certs: Arc<dyn ResolvesServerCert>,
    ticketer: Arc<dyn ProducesTickets>,
    sessions: Arc<dyn StoresServerSessions>,
) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .expect("the provider supports TLS 1.3 and 1.2")
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ticketer = ticketer;
    config.session_storage = sessions;
    config.max_early_data_size = 0;
    config.send_tls13_tickets = 1;
    // Our order, not the client's: AES-128-GCM first.
    config.ignore_client_order = true;
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::certs::load_dir;
    use crate::tls::conn::TlsConn;
    use crate::tls::testpki::{TestCa, handshake, now};
    use rustls::CipherSuite;
    use rustls::server::ServerSessionMemoryCache;

    #[test]
    fn the_server_picks_aes_128_whatever_the_client_prefers() {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        ca.write_pair(dir.path(), "a.test", &["a.test"]);
        let loaded = load_dir(dir.path(), None, None, &provider(), now()).unwrap();
        let settings = TlsSettings::new(dir.path());
        let config = server_config(
            Arc::new(loaded.set),
            ticketer(&settings).unwrap(),
            ServerSessionMemoryCache::new(16),
        );
        let defaults = rustls::crypto::aws_lc_rs::default_provider;
        let chacha_only = || CryptoProvider {
            cipher_suites: defaults()
                .cipher_suites
                .into_iter()
                .filter(|s| format!("{:?}", s.suite()).contains("CHACHA20"))
                .collect(),
            ..defaults()
        };
        let cases = [
            (
                defaults(),
                &version::TLS13,
                CipherSuite::TLS13_AES_128_GCM_SHA256,
            ),
            (
                defaults(),
                &version::TLS12,
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ),
            (
                chacha_only(),
                &version::TLS13,
                CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
            ),
        ];
        for (client_provider, version, want) in cases {
            // The client's own first choice is never AES-128.
            let first = client_provider.cipher_suites[0].suite();
            assert!(!format!("{first:?}").contains("AES_128"), "{first:?}");
            let client_config = Arc::new(ca.client_config_with(client_provider, &[version]));
            let mut client = TestCa::client(&client_config, "a.test");
            let mut server = TlsConn::new(config.clone()).unwrap();
            handshake(&mut client, &mut server).unwrap();
            let suite = server.rustls().negotiated_cipher_suite().unwrap().suite();
            assert_eq!(suite, want, "{version:?}");
        }
    }
}
