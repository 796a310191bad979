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
    push_with(engine, "/snapshot", body, &auth)
}

/// PUT `target` with `headers` (each ending in CRLF): (status, body).
fn push_with(engine: &Engine, target: &str, body: &[u8], headers: &str) -> (u16, String) {
    let mut request = format!(
        "PUT {target} HTTP/1.1\r\nHost: a\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
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
    let (dir, path) = snapshot_dir(1, &generation(1));
    let state = dir.path().join("state");
    let engine = Arc::new(Engine::start(&[
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "2",
        "--state-dir",
        state.to_str().unwrap(),
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
    // The operator's file is never written; the pushed generations are kept
    // in the state directory (the newest two), and a restart serves the
    // newest.
    assert_eq!(snapshots::Snapshot::open(&path).unwrap().sequence(), 1);
    let mut kept: Vec<String> = std::fs::read_dir(state.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        vec![
            format!("pushed-{:020}.snap", 10),
            format!("pushed-{:020}.snap", 11)
        ]
    );
    drop(Arc::into_inner(engine).expect("clients are done"));
    let engine = Engine::start(&[
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "1",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(
        engine.get("/c7"),
        (302, Some("https://example.com/7/gen11".into()))
    );
    assert!(
        engine.readyz()["snapshot"]["source"]
            .as_str()
            .unwrap()
            .starts_with("push (")
    );
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
    // The scheme in any case (RFC 9110), as control accepts it.
    let (status, body) = push_with(
        &engine,
        "/snapshot",
        &snapshot_bytes(6, &generation(6)),
        "Authorization: bearer s3cret\r\n",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        engine.get("/c1"),
        (302, Some("https://example.com/1/gen6".into()))
    );
    assert_eq!(engine.metric_sum("engine_snapshot_refusals_total", ""), 3.0);
    // Refused uploads left nothing behind; the accepted one is kept.
    assert_eq!(
        pushed_files(&engine),
        vec![format!("pushed-{:020}.snap", 6)]
    );
}

/// The file names in the engine's `snapshots/` state directory.
fn pushed_files(engine: &Engine) -> Vec<String> {
    let dir = engine.state.as_ref().unwrap().path().join("snapshots");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn starts_without_snapshot_unready_until_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(&["--cores", "2", "--state-dir", dir.path().to_str().unwrap()]);
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
    assert!(
        dir.path()
            .join(format!("snapshots/pushed-{:020}.snap", 3))
            .exists()
    );
}

/// A pushed sequence far past anything the engine knows (`u64::MAX` would
/// make it ignore every later change, and look up to date to control
/// forever) is refused unless the push says `force=true`.
#[test]
fn an_implausible_sequence_is_refused_unless_forced() {
    let (_dir, path) = snapshot_dir(5, &generation(5));
    let engine = Engine::start(&[
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "1",
        "--snapshot-sequence-max-lead",
        "10",
    ]);
    for sequence in [u64::MAX, 16] {
        let (status, body) = push(
            &engine,
            &snapshot_bytes(sequence, &generation(sequence)),
            None,
        );
        assert_eq!(status, 409, "{body}");
        assert!(
            body.contains("implausible_sequence") && body.contains("force=true"),
            "{body}"
        );
    }
    assert_eq!(
        engine.get("/c1"),
        (302, Some("https://example.com/1/gen5".into()))
    );
    assert!(
        pushed_files(&engine).is_empty(),
        "{:?}",
        pushed_files(&engine)
    );
    // Within the lead: fine.
    let (status, body) = push(&engine, &snapshot_bytes(15, &generation(15)), None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = push_with(
        &engine,
        "/snapshot?force=true",
        &snapshot_bytes(1000, &generation(1000)),
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        engine.get("/c1"),
        (302, Some("https://example.com/1/gen1000".into()))
    );
    let (status, body) = push_with(&engine, "/snapshot?force=maybe", b"x", "");
    assert_eq!(status, 400, "{body}");
}

/// One upload at a time, no bigger than the limit, and a refused or broken
/// upload leaves no file behind.
#[test]
fn uploads_are_one_at_a_time_bounded_and_leave_nothing_when_refused() {
    let (_dir, path) = snapshot_dir(5, &generation(5));
    let good = snapshot_bytes(6, &generation(6));
    let limit = good.len().to_string();
    let engine = Engine::start(&[
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "1",
        "--max-snapshot-bytes",
        &limit,
    ]);
    // Too large by its Content-Length: refused before anything is written.
    let (status, body) = push(&engine, &vec![0u8; good.len() + 1], None);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("--max-snapshot-bytes"), "{body}");
    // An upload under way: half its body sent.
    let mut first = TcpStream::connect(engine.admin).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    first
        .write_all(
            format!(
                "PUT /snapshot HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
                good.len()
            )
            .as_bytes(),
        )
        .unwrap();
    first.write_all(&good[..good.len() / 2]).unwrap();
    eventually(Duration::from_secs(10), "upload file created", || {
        !pushed_files(&engine).is_empty()
    });
    let response = raw(
        engine.admin,
        &[
            format!(
                "PUT /snapshot HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                good.len()
            )
            .as_bytes(),
            &good,
        ]
        .concat(),
    );
    let parsed = common::parse_responses(&response);
    assert_eq!(
        parsed[0].status,
        429,
        "{:?}",
        String::from_utf8_lossy(&response)
    );
    assert_eq!(parsed[0].header("retry-after"), Some("5"));
    assert!(String::from_utf8_lossy(&parsed[0].body).contains("push_in_progress"));
    // The first client goes away mid-body: its file goes too.
    drop(first);
    eventually(Duration::from_secs(10), "broken upload removed", || {
        pushed_files(&engine).is_empty()
    });
    let (status, body) = push(&engine, &good, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        pushed_files(&engine),
        vec![format!("pushed-{:020}.snap", 6)]
    );
}

/// An admin port others can reach is not open by default: without a token
/// the engine refuses to start, naming the flags.
#[test]
fn a_non_loopback_admin_port_without_a_token_refuses_to_start() {
    let state = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0"])
        .arg("--state-dir")
        .arg(state.path())
        .env_remove("ENGINE_ADMIN_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It must exit on its own; one still running after 10 s started.
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the engine started with an open admin port on 0.0.0.0");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("admin_token")
            && stderr.contains("--admin-token")
            && stderr.contains("0.0.0.0:0"),
        "{stderr}"
    );
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
    let status = engine.process.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
