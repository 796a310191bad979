//! Snapshots: swap under load, refusals, starting empty, reload on SIGHUP
//! and on file change, shutdown on SIGTERM.

mod common;

use common::{Engine, eventually, link, raw, snapshot_dir, write_snapshot};
use snapshots::{Link, RedirectStatus};
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

fn generation(sequence: u64) -> Vec<Link> {
    (0..50)
        .map(|i| {
            link(
                &format!("c{i}"),
                &format!("https://example.com/{i}/gen{sequence}"),
                RedirectStatus::Found,
            )
        })
        .collect()
}

fn snapshot_bytes(sequence: u64, links: &[Link]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.snap");
    write_snapshot(&path, sequence, links);
    std::fs::read(path).unwrap()
}

/// PUT /snapshot over a raw socket: (status, body).
fn push(engine: &Engine, body: &[u8], token: Option<&str>) -> (u16, String) {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let mut request = format!(
        "PUT /snapshot HTTP/1.1\r\nHost: a\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let response = raw(engine.admin, &request);
    let parsed = common::parse_responses(&response);
    assert_eq!(parsed.len(), 1, "{}", String::from_utf8_lossy(&response));
    (
        parsed[0].status,
        String::from_utf8_lossy(&parsed[0].body).into_owned(),
    )
}

#[test]
fn swap_under_load_sees_only_old_or_new() {
    let (_dir, path) = snapshot_dir(1, &generation(1));
    let engine = Arc::new(Engine::start(&[
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "2",
    ]));
    let stop = Arc::new(AtomicBool::new(false));
    let max_seen = Arc::new(AtomicU64::new(1));
    // Generation whose push has completed, and the one being pushed.
    let installed = Arc::new(AtomicU64::new(1));
    let pushing = Arc::new(AtomicU64::new(1));
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let (engine, stop, max_seen) = (engine.clone(), stop.clone(), max_seen.clone());
            let (installed, pushing) = (installed.clone(), pushing.clone());
            std::thread::spawn(move || {
                let mut count = 0u64;
                let mut stream = TcpStream::connect(engine.listen).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    // Alternate keep-alive connections and fresh ones so both
                    // cores and both kinds see every swap.
                    let i = count % 50;
                    if count.is_multiple_of(20) {
                        stream = TcpStream::connect(engine.listen).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(10)))
                            .unwrap();
                    }
                    let oldest = installed.load(Ordering::SeqCst);
                    stream
                        .write_all(format!("GET /c{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
                        .unwrap();
                    let response = &common::read_responses(&mut stream, 1)[0];
                    assert_eq!(response.status, 302, "client {client} request {count}");
                    let location = response.header("location").unwrap();
                    let generation: u64 = location.rsplit("gen").next().unwrap().parse().unwrap();
                    // Old or new: no older than what was installed when the
                    // request was sent, no newer than what was being pushed.
                    let newest = pushing.load(Ordering::SeqCst);
                    assert!(
                        location.starts_with(&format!("https://example.com/{i}/gen")),
                        "{location}"
                    );
                    assert!(
                        (oldest..=newest).contains(&generation),
                        "{location} not in {oldest}..={newest}"
                    );
                    max_seen.fetch_max(generation, Ordering::Relaxed);
                    count += 1;
                }
                count
            })
        })
        .collect();
    for sequence in 2..=11 {
        pushing.store(sequence, Ordering::SeqCst);
        let (status, body) = push(
            &engine,
            &snapshot_bytes(sequence, &generation(sequence)),
            None,
        );
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(&format!("\"sequence\":{sequence}")), "{body}");
        installed.store(sequence, Ordering::SeqCst);
        // Once the push returned, every core serves the new generation.
        for _ in 0..8 {
            let (status, location) = engine.get("/c7");
            assert_eq!(
                (status, location.unwrap()),
                (302, format!("https://example.com/7/gen{sequence}"))
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let total: u64 = clients
        .into_iter()
        .map(|c| c.join().expect("client saw an error"))
        .sum();
    assert!(total > 0);
    assert_eq!(max_seen.load(Ordering::Relaxed), 11);
    assert_eq!(engine.metric_sum("engine_snapshot_sequence", ""), 11.0);
    assert_eq!(
        engine.metric_sum("engine_core_snapshot_sequence", ""),
        22.0,
        "both cores on 11"
    );
    // The pushed file replaced the configured path, so a restart serves it.
    assert_eq!(snapshots::Snapshot::open(&path).unwrap().sequence(), 11);
}

#[test]
fn corrupt_stale_and_unauthorized_pushes_are_refused() {
    let (_dir, path) = snapshot_dir(5, &generation(5));
    let engine = Engine::start(&[
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "2",
        "--admin-token",
        "s3cret",
    ]);
    let mut corrupt = snapshot_bytes(6, &generation(6));
    let last = corrupt.len() - 3;
    corrupt[last] ^= 0xff;
    let (status, body) = push(&engine, &corrupt, Some("s3cret"));
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("invalid_snapshot") && body.contains("payload checksum mismatch"),
        "{body}"
    );
    let (status, body) = push(&engine, b"definitely not a snapshot", Some("s3cret"));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("file is 25 bytes"), "{body}");
    let (status, body) = push(&engine, &snapshot_bytes(4, &generation(4)), Some("s3cret"));
    assert_eq!(status, 409, "{body}");
    let (status, _) = push(&engine, &snapshot_bytes(6, &generation(6)), Some("wrong"));
    assert_eq!(status, 401);
    let (status, _) = push(&engine, &snapshot_bytes(6, &generation(6)), None);
    assert_eq!(status, 401);
    // Still serving generation 5, and the file on disk is untouched.
    assert_eq!(
        engine.get("/c1"),
        (302, Some("https://example.com/1/gen5".into()))
    );
    assert_eq!(snapshots::Snapshot::open(&path).unwrap().sequence(), 5);
    let (status, body) = push(&engine, &snapshot_bytes(6, &generation(6)), Some("s3cret"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        engine.get("/c1"),
        (302, Some("https://example.com/1/gen6".into()))
    );
    assert_eq!(engine.metric_sum("engine_snapshot_refusals_total", ""), 3.0);
}

#[test]
fn starts_without_snapshot_unready_until_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&[
        "--cores",
        "2",
        "--snapshot-dir",
        dir.path().to_str().unwrap(),
    ]);
    let response = raw(
        engine.listen,
        b"GET /c1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let parsed = common::parse_responses(&response);
    assert_eq!(parsed[0].status, 503);
    assert_eq!(parsed[0].header("retry-after"), Some("1"));
    let ready = raw(
        engine.admin,
        b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(String::from_utf8_lossy(&ready).starts_with("HTTP/1.1 503"));
    let (status, body) = push(&engine, &snapshot_bytes(3, &generation(3)), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        engine.get("/c1"),
        (302, Some("https://example.com/1/gen3".into()))
    );
    let ready = raw(
        engine.admin,
        b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&ready);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.contains("\"sequence\":3"),
        "{text}"
    );
    assert!(dir.path().join("pushed.snap").exists());
}

#[test]
fn sighup_and_file_change_reload() {
    let (_dir, path) = snapshot_dir(1, &generation(1));
    let engine = Engine::start(&["--snapshot", path.to_str().unwrap(), "--cores", "2"]);
    write_snapshot(&path, 2, &generation(2));
    engine.signal("HUP");
    eventually(Duration::from_secs(10), "SIGHUP reload", || {
        engine.get("/c3").1.as_deref() == Some("https://example.com/3/gen2")
    });
    // The watcher notices a replaced file on its own (default every 2 s).
    write_snapshot(&path, 3, &generation(3));
    eventually(Duration::from_secs(15), "file-change reload", || {
        engine.get("/c3").1.as_deref() == Some("https://example.com/3/gen3")
    });
    // A corrupt file at the path is refused; generation 3 keeps serving.
    // (Replaced by rename, as every snapshot must be: writing over a mapped
    // file in place would change the bytes under the engine.)
    let garbage = path.with_extension("tmp");
    std::fs::write(&garbage, b"garbage").unwrap();
    std::fs::rename(&garbage, &path).unwrap();
    engine.signal("HUP");
    eventually(Duration::from_secs(10), "refusal counted", || {
        engine.metric_sum("engine_snapshot_refusals_total", "") >= 1.0
    });
    assert_eq!(
        engine.get("/c3").1.as_deref(),
        Some("https://example.com/3/gen3")
    );
}

#[test]
fn sigterm_finishes_in_flight_and_exits_zero() {
    let (_dir, path) = snapshot_dir(1, &generation(1));
    let mut engine = Engine::start(&["--snapshot", path.to_str().unwrap(), "--cores", "2"]);
    // A request in flight: head half sent.
    let mut stream = TcpStream::connect(engine.listen).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /c1 HTTP/1.1\r\nHost: a\r\n")
        .unwrap();
    eventually(Duration::from_secs(5), "request in flight", || {
        engine.metric_sum("engine_connections_open", "") == 1.0
    });
    engine.signal("TERM");
    // New connections are refused once the listeners are closed.
    eventually(Duration::from_secs(5), "listener closed", || {
        TcpStream::connect(engine.listen).is_err()
    });
    stream.write_all(b"\r\n").unwrap();
    let rest = common::read_to_close(&mut stream);
    let parsed = common::parse_responses(&rest);
    assert_eq!(parsed.len(), 1, "{:?}", String::from_utf8_lossy(&rest));
    assert_eq!(parsed[0].status, 302);
    assert_eq!(parsed[0].header("connection"), Some("close"));
    let status = engine.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
