//! The TLS modes against an in-process rustls server (aws-lc-rs, TLS 1.3,
//! a P-256 certificate from a CA made here, stateless tickets): every
//! request answered, handshakes counted by kind on both sides, resumption
//! checked from the server's side too, a wrong name or CA refused.
//! Correctness only; no timing is asserted.

use perf::keys::{Distribution, Workload, WorkloadSpec};
use perf::load::{LoadConfig, run};
use perf::mode::Mode;
use perf::tls::{TlsClient, TlsOptions, Versions};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{HandshakeKind, ServerConfig, ServerConnection, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const NAME: &str = "perf.test";

/// A CA and a leaf for `NAME`; the CA's PEM is written to a file of its own
/// (removed on drop) for the client's `--ca`.
struct Pki {
    ca_file: PathBuf,
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "perf test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap(); // ECDSA P-256
        let leaf = rcgen::CertificateParams::new(vec![NAME.to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let ca_file =
            std::env::temp_dir().join(format!("perf-tls-test-{}-{tag}-ca.pem", std::process::id()));
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        Pki {
            ca_file,
            chain: vec![leaf.der().clone(), ca_cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    served: AtomicU64,
    full: AtomicU64,
    resumed: AtomicU64,
}

/// Answers `GET /CODE` over TLS 1.3: 301 for the codes of [`workload`]
/// (`c000`..`c049`), 404 otherwise;
/// after a request saying `Connection: close` it sends close_notify and
/// closes. Counts its handshakes by kind.
struct TlsServer {
    addr: SocketAddr,
    counts: Arc<Counts>,
}

impl TlsServer {
    fn start(pki: &Pki) -> TlsServer {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(pki.chain.clone(), PrivateKeyDer::Pkcs8(pki.key.clone_key()))
            .unwrap();
        config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                shared.accepted.fetch_add(1, Ordering::Relaxed);
                let (config, counts) = (config.clone(), shared.clone());
                std::thread::spawn(move || serve(stream, config, &counts));
            }
        });
        TlsServer { addr, counts }
    }
}

fn serve(tcp: TcpStream, config: Arc<ServerConfig>, counts: &Counts) {
    let mut tls = StreamOwned::new(ServerConnection::new(config).unwrap(), tcp);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut counted = false;
    loop {
        let n = match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !counted {
            counted = true;
            let kind = match tls.conn.handshake_kind() {
                Some(HandshakeKind::Resumed) => &counts.resumed,
                _ => &counts.full,
            };
            kind.fetch_add(1, Ordering::Relaxed);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        let mut close = false;
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let code = head.split(' ').nth(1).unwrap_or("/")[1..].to_owned();
            close = head.to_ascii_lowercase().contains("\r\nconnection: close");
            let conn = if close { "Connection: close\r\n" } else { "" };
            let resp = if code.len() == 4 && code.starts_with('c') {
                format!(
                    "HTTP/1.1 301 Moved Permanently\r\nLocation: https://x/{code}\r\n{conn}Content-Length: 0\r\n\r\n"
                )
            } else {
                format!("HTTP/1.1 404 Not Found\r\n{conn}Content-Length: 9\r\n\r\nnot found")
            };
            out.extend_from_slice(resp.as_bytes());
            counts.served.fetch_add(1, Ordering::Relaxed);
            if close {
                break;
            }
        }
        if tls.write_all(&out).is_err() {
            return;
        }
        if close {
            tls.conn.send_close_notify();
            let _ = tls.flush();
            return;
        }
    }
}

fn workload(mode: Mode) -> Arc<Workload> {
    let codes: Vec<String> = (0..50).map(|i| format!("c{i:03}")).collect();
    let spec = WorkloadSpec {
        distribution: Distribution::Uniform,
        unknown_share: 0.1,
        known_status: 301,
        unknown_status: 404,
        len: 2000,
        seed: 7,
        host: NAME.to_owned(),
        connection_close: mode.new_connection_per_request(),
    };
    Arc::new(Workload::build(&codes, &spec).unwrap())
}

fn config(addr: SocketAddr, pki: &Pki, mode: Mode, count: u64) -> LoadConfig {
    let connections = 4;
    let opts = TlsOptions {
        ca: pki.ca_file.clone(),
        sni: NAME.to_owned(),
        versions: Versions::Tls13,
    };
    LoadConfig {
        addr,
        connections,
        threads: 2,
        pin: vec![],
        depth: 1,
        rate: None,
        // Never reached on a healthy run: the count ends it.
        duration: Duration::from_secs(60),
        count: Some(count),
        warmup: Duration::ZERO,
        drain: Duration::from_secs(10),
        mode,
        tls: Some(Arc::new(TlsClient::new(&opts, mode, connections).unwrap())),
    }
}

#[test]
fn tls_keepalive_does_one_handshake_per_connection() {
    let pki = Pki::new("keepalive");
    let server = TlsServer::start(&pki);
    let mode = Mode::TlsKeepAlive;
    let s = run(
        &config(server.addr, &pki, mode, 400),
        workload(mode),
        "test",
    )
    .unwrap();
    assert_eq!(s.connection_mode, "tls-keepalive");
    assert_eq!((s.requests, s.ok), (400, 400));
    assert_eq!(s.errors.total(), 0, "{:?}", s.errors);
    assert!(
        s.statuses.get(&404).is_some_and(|&n| n > 0),
        "{:?}",
        s.statuses
    );
    let tls = s.tls.unwrap();
    assert_eq!((tls.handshakes, tls.full, tls.resumed), (4, 4, 0));
    assert_eq!(
        tls.negotiated.as_deref(),
        Some("TLSv1_3 Some(TLS13_AES_128_GCM_SHA256) Some(X25519)")
    );
    assert_eq!(server.counts.accepted.load(Ordering::Relaxed), 4);
    assert_eq!(server.counts.served.load(Ordering::Relaxed), 400);
}

#[test]
fn tls_full_does_a_full_handshake_per_request() {
    let pki = Pki::new("full");
    let server = TlsServer::start(&pki);
    let mode = Mode::TlsFull;
    let cfg = config(server.addr, &pki, mode, 120);
    let s = run(&cfg, workload(mode), "test").unwrap();
    assert_eq!((s.requests, s.ok, s.connects), (120, 120, 120));
    assert_eq!(s.errors.total(), 0, "{:?}", s.errors);
    assert_eq!((s.lost, s.reconnects), (0, 0));
    let tls = s.tls.unwrap();
    assert_eq!((tls.handshakes, tls.full, tls.resumed), (120, 120, 0));
    assert_eq!(tls.tickets, 0, "tls-full keeps no ticket");
    // The chain is built once (by each of the two threads at most, if
    // their first handshakes finish together), not per handshake.
    let verified = cfg.tls.as_ref().unwrap().chain_verifications();
    assert!(
        (1..=2).contains(&verified),
        "{verified} chain verifications"
    );
    let c = &server.counts;
    assert_eq!(c.accepted.load(Ordering::Relaxed), 120);
    assert_eq!(
        (
            c.full.load(Ordering::Relaxed),
            c.resumed.load(Ordering::Relaxed)
        ),
        (120, 0)
    );
}

#[test]
fn tls_resume_offers_each_slots_ticket_and_the_server_resumes() {
    let pki = Pki::new("resume");
    let server = TlsServer::start(&pki);
    let mode = Mode::TlsResume;
    let s = run(
        &config(server.addr, &pki, mode, 120),
        workload(mode),
        "test",
    )
    .unwrap();
    assert_eq!((s.requests, s.ok, s.connects), (120, 120, 120));
    assert_eq!(s.errors.total(), 0, "{:?}", s.errors);
    // Each of the 4 slots starts with a full handshake, then resumes with
    // the ticket its previous connection received.
    let tls = s.tls.unwrap();
    assert_eq!((tls.handshakes, tls.full, tls.resumed), (120, 4, 116));
    // rustls sends two tickets after every handshake, resumed ones too.
    assert_eq!(tls.tickets, 240);
    let c = &server.counts;
    assert_eq!(
        (
            c.full.load(Ordering::Relaxed),
            c.resumed.load(Ordering::Relaxed)
        ),
        (4, 116)
    );

    // Open loop: connections opened when due, still resuming.
    let mut cfg = config(server.addr, &pki, mode, 80);
    cfg.rate = Some(2_000.0);
    let s = run(&cfg, workload(mode), "test").unwrap();
    assert_eq!((s.requests, s.ok), (80, 80));
    let tls = s.tls.unwrap();
    assert_eq!((tls.full, tls.resumed), (4, 76));
}

#[test]
fn a_wrong_name_or_ca_is_a_tls_error_and_the_run_still_ends() {
    let pki = Pki::new("wrong");
    let other = Pki::new("other");
    let server = TlsServer::start(&pki);
    let mode = Mode::TlsFull;
    for (ca, sni) in [(&other, NAME), (&pki, "other.test")] {
        let opts = TlsOptions {
            ca: ca.ca_file.clone(),
            sni: sni.to_owned(),
            versions: Versions::Tls13,
        };
        let mut cfg = config(server.addr, &pki, mode, 10);
        cfg.tls = Some(Arc::new(TlsClient::new(&opts, mode, 4).unwrap()));
        cfg.duration = Duration::from_millis(200);
        let s = run(&cfg, workload(mode), "test").unwrap();
        assert_eq!(s.requests, 0);
        assert!(s.errors.tls > 0, "{sni}: {:?}", s.errors);
        assert_eq!(s.tls.unwrap().handshakes, 0);
    }
}
