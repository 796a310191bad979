//! The generator against a tiny in-process server: every request answered,
//! statuses checked, pipelining, server-side closes, one request per new
//! connection. Correctness only; no timing is asserted.

use perf::keys::{Distribution, Workload, WorkloadSpec};
use perf::load::{LoadConfig, run};
use perf::mode::Mode;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Answers `GET /CODE`: 301 for known codes, 500 for `bad`, 404 otherwise;
/// closes the connection after `close_every` responses (0: never) and after
/// a request saying `Connection: close`.
struct TinyServer {
    addr: SocketAddr,
    served: Arc<AtomicU64>,
    accepted: Arc<AtomicU64>,
}

impl TinyServer {
    fn start(known: HashSet<String>, close_every: u64) -> TinyServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let known = Arc::new(known);
        let (counter, accepts) = (served.clone(), accepted.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                accepts.fetch_add(1, Ordering::Relaxed);
                let (known, counter) = (known.clone(), counter.clone());
                std::thread::spawn(move || serve(stream, &known, &counter, close_every));
            }
        });
        TinyServer {
            addr,
            served,
            accepted,
        }
    }
}

fn serve(mut s: TcpStream, known: &HashSet<String>, served: &AtomicU64, close_every: u64) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut on_this = 0;
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        let mut close = false;
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let path = head.split(' ').nth(1).unwrap_or("/");
            let code = &path[1..];
            on_this += 1;
            close = close_every > 0 && on_this % close_every == 0
                || head.to_ascii_lowercase().contains("\r\nconnection: close");
            let conn = if close { "Connection: close\r\n" } else { "" };
            let resp = if code == "bad" {
                format!("HTTP/1.1 500 Oops\r\n{conn}Content-Length: 4\r\n\r\noops")
            } else if known.contains(code) {
                format!(
                    "HTTP/1.1 301 Moved Permanently\r\nLocation: https://x/{code}\r\n{conn}Content-Length: 0\r\n\r\n"
                )
            } else {
                format!("HTTP/1.1 404 Not Found\r\n{conn}Content-Length: 9\r\n\r\nnot found")
            };
            out.extend_from_slice(resp.as_bytes());
            served.fetch_add(1, Ordering::Relaxed);
            if close {
                break;
            }
        }
        if s.write_all(&out).is_err() || close {
            return;
        }
    }
}

fn codes(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("c{i:04}")).collect()
}

fn workload(codes: &[String], addr: SocketAddr, unknown: f64) -> Arc<Workload> {
    Arc::new(Workload::build(codes, &spec(addr, unknown)).unwrap())
}

fn spec(addr: SocketAddr, unknown: f64) -> WorkloadSpec {
    WorkloadSpec {
        distribution: Distribution::Zipf(1.0),
        unknown_share: unknown,
        known_status: 301,
        unknown_status: 404,
        len: 5000,
        seed: 3,
        host: addr.to_string(),
        connection_close: false,
    }
}

fn config(addr: SocketAddr, count: u64) -> LoadConfig {
    LoadConfig {
        addr,
        connections: 4,
        threads: 2,
        pin: vec![],
        depth: 1,
        rate: None,
        // A bound that is never reached on a healthy run: the count ends it.
        duration: Duration::from_secs(60),
        count: Some(count),
        warmup: Duration::ZERO,
        drain: Duration::from_secs(10),
        mode: Mode::KeepAlive,
        tls: None,
    }
}

#[test]
fn closed_loop_counts_every_response_and_checks_statuses() {
    let codes = codes(200);
    let server = TinyServer::start(codes.iter().cloned().collect(), 0);
    let w = workload(&codes, server.addr, 0.2);
    let expected_404 = (0..1000).filter(|&i| w.expect[i % w.len()] == 404).count() as u64;
    let summary = run(&config(server.addr, 1000), w, "test").unwrap();
    assert_eq!(summary.requests, 1000);
    assert_eq!(summary.ok, 1000);
    assert_eq!(summary.errors.total(), 0, "{:?}", summary.errors);
    assert_eq!(server.served.load(Ordering::Relaxed), 1000);
    let got_404 = summary.statuses.get(&404).copied().unwrap_or(0);
    // Connections start at different offsets of the sequence, so the 404
    // count is near, not equal to, the first 1000 entries' share.
    assert!(
        got_404 > 100 && got_404 < 350,
        "404s: {got_404} (sequence head: {expected_404})"
    );
    assert_eq!(summary.statuses.values().sum::<u64>(), 1000);
    assert!(summary.latency_us.p50 > 0.0 && summary.latency_us.max >= summary.latency_us.p99);
}

#[test]
fn wrong_statuses_are_counted_as_errors() {
    // "bad" is in the list, so 301 is expected, and the server answers 500.
    let codes = vec!["bad".to_owned()];
    let server = TinyServer::start(HashSet::new(), 0);
    let summary = run(
        &config(server.addr, 300),
        workload(&codes, server.addr, 0.0),
        "test",
    )
    .unwrap();
    assert_eq!(summary.requests, 300);
    assert_eq!(summary.errors.status, 300);
    assert_eq!(summary.ok, 0);
    assert_eq!(summary.statuses.get(&500), Some(&300));
}

#[test]
fn pipelined_and_open_loop_runs_complete() {
    let codes = codes(50);
    let server = TinyServer::start(codes.iter().cloned().collect(), 0);
    let mut cfg = config(server.addr, 2000);
    cfg.depth = 8;
    let summary = run(&cfg, workload(&codes, server.addr, 0.0), "test").unwrap();
    assert_eq!(
        (summary.requests, summary.ok, summary.errors.total()),
        (2000, 2000, 0)
    );

    let mut cfg = config(server.addr, 400);
    cfg.rate = Some(20_000.0);
    let summary = run(&cfg, workload(&codes, server.addr, 0.0), "test").unwrap();
    assert_eq!(summary.mode, "open");
    assert_eq!(
        (summary.requests, summary.ok, summary.errors.total()),
        (400, 400, 0)
    );
}

#[test]
fn server_closes_are_reconnected_without_errors() {
    let codes = codes(50);
    let server = TinyServer::start(codes.iter().cloned().collect(), 7);
    let summary = run(
        &config(server.addr, 700),
        workload(&codes, server.addr, 0.0),
        "test",
    )
    .unwrap();
    assert_eq!(summary.requests, 700);
    assert_eq!(summary.errors.total(), 0, "{:?}", summary.errors);
    assert!(
        summary.reconnects >= 90,
        "reconnects {}",
        summary.reconnects
    );
}

#[test]
fn a_dead_port_is_a_connect_error_and_the_run_still_ends() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut cfg = config(addr, 10);
    cfg.duration = Duration::from_millis(100);
    let summary = run(&cfg, workload(&codes(5), addr, 0.0), "test").unwrap();
    assert_eq!(summary.requests, 0);
    assert!(summary.errors.connect > 0);
}

#[test]
fn non_loopback_targets_are_refused() {
    let mut cfg = config("10.0.0.1:80".parse().unwrap(), 1);
    cfg.duration = Duration::from_millis(1);
    let err = run(&cfg, workload(&codes(5), cfg.addr, 0.0), "test").unwrap_err();
    assert!(err.to_string().contains("only loopback"), "{err}");
}

#[test]
fn close_mode_opens_a_connection_per_request() {
    let codes = codes(50);
    let server = TinyServer::start(codes.iter().cloned().collect(), 0);
    let spec = WorkloadSpec {
        connection_close: true,
        ..spec(server.addr, 0.1)
    };
    let w = Arc::new(Workload::build(&codes, &spec).unwrap());
    let mut cfg = config(server.addr, 300);
    cfg.mode = Mode::Close;
    let summary = run(&cfg, w.clone(), "test").unwrap();
    assert_eq!(summary.connection_mode, "close");
    assert_eq!((summary.requests, summary.ok), (300, 300));
    assert_eq!(summary.errors.total(), 0, "{:?}", summary.errors);
    // Planned closes are neither errors nor reconnects.
    assert_eq!((summary.lost, summary.reconnects), (0, 0));
    assert_eq!(summary.connects, 300);
    assert_eq!(server.accepted.load(Ordering::Relaxed), 300);
    assert_eq!(server.served.load(Ordering::Relaxed), 300);

    // Open loop: each request's connection is opened when it is due.
    cfg.rate = Some(5_000.0);
    cfg.count = Some(200);
    let summary = run(&cfg, w.clone(), "test").unwrap();
    assert_eq!(summary.mode, "open");
    assert_eq!(
        (summary.requests, summary.ok, summary.connects),
        (200, 200, 200)
    );
    assert_eq!(server.accepted.load(Ordering::Relaxed), 500);

    cfg.depth = 2;
    let err = run(&cfg, w, "test").unwrap_err();
    assert!(err.to_string().contains("depth must be 1"), "{err}");
}

#[test]
fn tls_modes_need_a_tls_client() {
    let mut cfg = config("127.0.0.1:9".parse().unwrap(), 1);
    cfg.mode = Mode::TlsFull;
    let err = run(&cfg, workload(&codes(5), cfg.addr, 0.0), "test").unwrap_err();
    assert!(err.to_string().contains("needs a TLS client"), "{err}");
}
