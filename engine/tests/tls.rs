//! The TLS port on the real binary: redirects over TLS 1.3 and 1.2, SNI,
//! resumption across connections (and cores), bad handshakes that close
//! only their own connection, certificates replaced and refused without a
//! restart, `PUT /certs/NAME`, and the start-up refusals.
//!
//! TLS is served by the io_uring backend only: under `ENGINE_TEST_IO=glommio`
//! the one test that runs here is that glommio with `--tls-listen` is a
//! clear start-up error; the others need the TLS port and return at once.

mod common;

use common::tls::{Pair, TestCa, TlsClient, raw_exchange, write_pair};
use common::{Engine, eventually, link, parse_responses, snapshot_dir};
use snapshots::RedirectStatus;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// An engine serving `abc` (301) with TLS from a certificate directory.
struct TlsEngine {
    engine: Engine,
    ca: TestCa,
    certs: tempfile::TempDir,
    _snapshot: tempfile::TempDir,
}

impl TlsEngine {
    /// Pairs for `a.test` and `b.test`, then `args`.
    fn start(args: &[&str]) -> TlsEngine {
        let ca = TestCa::new();
        let certs = tempfile::tempdir().unwrap();
        ca.write_pair(certs.path(), "a.test", &["a.test"]);
        ca.write_pair(certs.path(), "b.test", &["b.test"]);
        let (snapshot, path) = snapshot_dir(
            1,
            &[link(
                "abc",
                "https://example.com/x",
                RedirectStatus::MovedPermanently,
            )],
        );
        let mut all = vec![
            "--snapshot",
            path.to_str().unwrap(),
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-certs",
            certs.path().to_str().unwrap(),
        ];
        if !args.contains(&"--cores") {
            all.extend_from_slice(&["--cores", "2"]);
        }
        all.extend_from_slice(args);
        let engine = Engine::start(&all);
        TlsEngine {
            engine,
            ca,
            certs,
            _snapshot: snapshot,
        }
    }

    fn tls(&self) -> SocketAddr {
        self.engine
            .tls_listen
            .expect("the readiness line names the TLS port")
    }

    fn failures(&self, reason: &str) -> f64 {
        self.engine.metric_sum(
            "engine_tls_handshake_failures_total",
            &format!("reason=\"{reason}\""),
        )
    }

    fn dir(&self) -> &Path {
        self.certs.path()
    }
}

#[test]
fn redirects_over_tls_13_and_12() {
    let e = TlsEngine::start(&[]);
    for (version, want) in [
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
    ] {
        let config = e.ca.client(&[version]);
        let mut client = TlsClient::connect(e.tls(), &config, "a.test").unwrap();
        assert_eq!(client.stream.conn.protocol_version(), Some(want));
        assert_eq!(client.stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        // Keep-alive: several requests on the one connection.
        for _ in 0..3 {
            let answer = client.get("/abc");
            assert_eq!(answer.status, 301, "{want:?}");
            assert_eq!(answer.header("location"), Some("https://example.com/x"));
        }
        assert_eq!(client.get("/nope").status, 404);
    }
    // The plain port is unchanged.
    assert_eq!(e.engine.get("/abc").0, 301);
    assert!(
        e.engine
            .metric_sum("engine_tls_handshakes_total", "kind=\"full\"")
            >= 2.0
    );
}

#[test]
fn sni_chooses_the_certificate() {
    let e = TlsEngine::start(&[]);
    let wildcard = e.ca.write_pair(e.dir(), "_.w.test", &["*.w.test"]);
    let config = e.ca.client(&[]);
    let a = TlsClient::connect(e.tls(), &config, "a.test").unwrap();
    let b = TlsClient::connect(e.tls(), &config, "b.test").unwrap();
    assert_ne!(a.leaf(), b.leaf());
    // The client checked each against the name it asked for; the pair
    // added after start is served too, once the directory is re-read.
    eventually(WAIT, "the wildcard pair served", || {
        TlsClient::connect(e.tls(), &config, "x.w.test").is_ok_and(|c| c.leaf() == wildcard)
    });
}

#[test]
fn a_default_certificate_serves_clients_without_sni() {
    let e = TlsEngine::start(&["--tls-default-cert", "a.test"]);
    let mut config = (*e.ca.client(&[])).clone();
    config.enable_sni = false;
    let config = std::sync::Arc::new(config);
    let mut client = TlsClient::connect(e.tls(), &config, "a.test").unwrap();
    assert_eq!(client.get("/abc").status, 301);
}

#[test]
fn tickets_resume_on_later_connections() {
    let e = TlsEngine::start(&[]);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        // One client configuration: its session store keeps the ticket.
        let config = e.ca.client(&[version]);
        let mut first = TlsClient::connect(e.tls(), &config, "a.test").unwrap();
        assert!(!first.resumed());
        // TLS 1.3 tickets come after the handshake: read an answer.
        assert_eq!(first.get("/abc").status, 301);
        // Two cores: the kernel spreads the connections, and every core
        // opens every core's tickets.
        for _ in 0..4 {
            let mut next = TlsClient::connect(e.tls(), &config, "a.test").unwrap();
            assert!(next.resumed(), "{version:?}");
            assert_eq!(next.get("/abc").status, 301);
        }
    }
    assert!(
        e.engine
            .metric_sum("engine_tls_handshakes_total", "kind=\"resumed\"")
            >= 8.0
    );
}

/// A ClientHello of `version` (0x0300 SSLv3, 0x0301 TLS 1.0) for SNI
/// `a.test` (so that the version, not the certificate, is what fails)
/// offering one old cipher suite.
fn old_client_hello(version: u16) -> Vec<u8> {
    let [major, minor] = version.to_be_bytes();
    let mut body = vec![major, minor];
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0, 2, 0x00, 0x2f]); // TLS_RSA_WITH_AES_128_CBC_SHA
    body.extend_from_slice(&[1, 0]); // null compression
    // Extensions: server_name (0) = host_name "a.test".
    body.extend_from_slice(&[0, 15, 0, 0, 0, 11, 0, 9, 0, 0, 6]);
    body.extend_from_slice(b"a.test");
    let mut handshake = vec![1, 0, 0, body.len() as u8];
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, major, minor, 0, handshake.len() as u8];
    record.extend_from_slice(&handshake);
    record
}

#[test]
fn bad_handshakes_close_only_their_connection() {
    let e = TlsEngine::start(&["--cores", "1", "--header-timeout-ms", "1000"]);
    let config = e.ca.client(&[]);
    let mut open = TlsClient::connect(e.tls(), &config, "a.test").unwrap();
    assert_eq!(open.get("/abc").status, 301);

    // Garbage: an alert at most, then the close.
    let answer = raw_exchange(e.tls(), b"\x00\x01\x02 this is not TLS at all\r\n\r\n");
    assert!(answer.is_empty() || answer[0] == 0x15, "{answer:?}");
    // SSLv3 and TLS 1.0: refused with an alert.
    for version in [0x0300, 0x0301] {
        let answer = raw_exchange(e.tls(), &old_client_hello(version));
        assert_eq!(
            answer.first(),
            Some(&0x15),
            "an alert for {version:#x}: {answer:?}"
        );
    }
    // A name without a certificate (and no default): an alert, and the
    // client learns it was refused.
    let err = TlsClient::connect(e.tls(), &config, "other.test")
        .err()
        .unwrap();
    assert!(matches!(err, rustls::Error::AlertReceived(_)), "{err:?}");
    // Plain HTTP: told to use https.
    let answer = raw_exchange(e.tls(), b"GET /abc HTTP/1.1\r\nHost: a.test\r\n\r\n");
    let parsed = parse_responses(&answer);
    assert_eq!(parsed.len(), 1, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(parsed[0].status, 400);
    assert!(String::from_utf8_lossy(&parsed[0].body).contains("https://"));
    // A handshake that stalls is cut off by the header timeout.
    let stalled = &config;
    let hello = {
        let name = rustls::pki_types::ServerName::try_from("a.test").unwrap();
        let mut c = rustls::ClientConnection::new(stalled.clone(), name).unwrap();
        let mut bytes = Vec::new();
        c.write_tls(&mut bytes).unwrap();
        bytes
    };
    let answer = raw_exchange(e.tls(), &hello[..hello.len() / 2]);
    assert!(answer.is_empty(), "{answer:?}");

    // Each was counted by its reason.
    eventually(WAIT, "failures counted", || {
        e.failures("malformed") >= 1.0
            && e.failures("protocol_version") >= 2.0
            && e.failures("no_certificate") >= 1.0
            && e.failures("plain_http") >= 1.0
            && e.failures("timeout") >= 1.0
    });
    // The connection opened before is still served, and so is a new one.
    assert_eq!(open.get("/abc").status, 301);
    let mut fresh = TlsClient::connect(e.tls(), &config, "b.test").unwrap();
    assert_eq!(fresh.get("/abc").status, 301);
}

#[test]
fn certificates_reload_without_restart_and_bad_ones_are_refused() {
    let e = TlsEngine::start(&["--watch-interval-ms", "50"]);
    let config = e.ca.client(&[]);
    let mut before = TlsClient::connect(e.tls(), &config, "a.test").unwrap();
    assert_eq!(before.get("/abc").status, 301);
    let old_leaf = before.leaf();

    // Replaced in the directory: new connections get the new one, the
    // connection made before carries on.
    let replacement = e.ca.write_pair(e.dir(), "a.test", &["a.test"]);
    eventually(WAIT, "the replacement served", || {
        TlsClient::connect(e.tls(), &config, "a.test")
            .unwrap()
            .leaf()
            == replacement
    });
    assert_ne!(replacement, old_leaf);
    assert_eq!(before.get("/abc").status, 301);
    assert!(e.engine.metric_sum("engine_tls_reloads_total", "") >= 1.0);

    // A pair that does not match, and an expired one: refused and counted;
    // the name keeps its previous certificate, the expired name gets none.
    let refusals = e
        .engine
        .metric_sum("engine_tls_certificate_refusals_total", "");
    let other = e.ca.pair(&["a.test"]);
    std::fs::write(e.dir().join("a.test.key"), &other.key).unwrap();
    let expired = e.ca.pair_dated(&["old.test"], -10, -1);
    write_pair(e.dir(), "old.test", &expired);
    eventually(WAIT, "the bad pairs refused", || {
        e.engine
            .metric_sum("engine_tls_certificate_refusals_total", "")
            >= refusals + 2.0
    });
    let mut after = TlsClient::connect(e.tls(), &config, "a.test").unwrap();
    assert_eq!(after.leaf(), replacement);
    assert_eq!(after.get("/abc").status, 301);
    let err = TlsClient::connect(e.tls(), &config, "old.test")
        .err()
        .unwrap();
    assert!(matches!(err, rustls::Error::AlertReceived(_)), "{err:?}");
}

/// An engine that takes pushed pairs (admin token `s3cret`), its state
/// directory, and the temporary directory holding it.
fn pushable() -> (tempfile::TempDir, PathBuf, TlsEngine) {
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().join("state");
    let e = TlsEngine::start(&[
        "--admin-token",
        "s3cret",
        "--state-dir",
        state_dir.to_str().unwrap(),
    ]);
    (state, state_dir, e)
}

/// `PUT path` on the admin port with `body`: (status, body).
fn put(addr: SocketAddr, path: &str, body: &[u8], token: Option<&str>) -> (u16, String) {
    admin_request(addr, "PUT", path, body, token)
}

/// `DELETE path` on the admin port: (status, body).
fn delete(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    admin_request(addr, "DELETE", path, b"", token)
}

fn admin_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    token: Option<&str>,
) -> (u16, String) {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: a\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let answer = common::raw(addr, &request);
    let parsed = parse_responses(&answer);
    assert_eq!(parsed.len(), 1, "{}", String::from_utf8_lossy(&answer));
    (
        parsed[0].status,
        String::from_utf8_lossy(&parsed[0].body).into_owned(),
    )
}

fn pem_body(pair: &Pair) -> Vec<u8> {
    format!("{}{}", pair.chain, pair.key).into_bytes()
}

#[test]
fn put_certs_installs_a_pair() {
    let (_state, state_dir, e) = pushable();
    let admin = e.engine.admin;
    let config = e.ca.client(&[]);
    let pushed = e.ca.pair(&["p.test"]);

    assert_eq!(put(admin, "/certs/p.test", &pem_body(&pushed), None).0, 401);
    let (status, body) = put(admin, "/certs/p.test", &pem_body(&pushed), Some("s3cret"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("p.test"), "{body}");
    // Served at once (the answer came after every core was told), kept
    // private in the state directory.
    let mut client = TlsClient::connect(e.tls(), &config, "p.test").unwrap();
    assert_eq!(client.leaf(), pushed.der);
    assert_eq!(client.get("/abc").status, 301);
    for ext in ["crt", "key"] {
        let file: PathBuf = state_dir.join("certs").join(format!("p.test.{ext}"));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }

    // Bad pairs: 400 naming what is wrong, nothing served or kept.
    let other = e.ca.pair(&["q.test"]);
    let mismatched = format!("{}{}", pushed.chain, other.key);
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("/certs/p.test", mismatched.into_bytes(), "does not match"),
        ("/certs/r.test", pem_body(&other), "does not cover r.test"),
        (
            "/certs/q.test",
            other.chain.clone().into_bytes(),
            "PRIVATE KEY",
        ),
        ("/certs/q.test", b"hello".to_vec(), "BEGIN CERTIFICATE"),
        ("/certs/.hidden", pem_body(&other), "not a certificate name"),
    ];
    for (path, body, says) in cases {
        let (status, answer) = put(admin, path, &body, Some("s3cret"));
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(answer.contains(says), "{path}: {answer}");
    }
    let expired = e.ca.pair_dated(&["q.test"], -10, -1);
    let (status, answer) = put(admin, "/certs/q.test", &pem_body(&expired), Some("s3cret"));
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("expired"), "{answer}");
    let (status, _) = put(admin, "/certs/q.test", &vec![b'x'; 100_000], Some("s3cret"));
    assert_eq!(status, 413);
    // A name the operator's directory serves: 409, the push would be
    // shadowed.
    let a = e.ca.pair(&["a.test"]);
    let (status, answer) = put(admin, "/certs/a.test", &pem_body(&a), Some("s3cret"));
    assert_eq!(status, 409, "{answer}");
    assert!(answer.contains("a.test.crt"), "{answer}");
    let left: Vec<_> = std::fs::read_dir(state_dir.join("certs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(left, ["p.test.crt", "p.test.key"]);
    assert!(TlsClient::connect(e.tls(), &config, "q.test").is_err());
    let boot_id = e.engine.readyz()["boot_id"].as_str().unwrap().to_owned();
    assert_eq!(boot_id.len(), 16, "{boot_id}");
    // The pushed pair survives a restart (it is in the state directory).
    drop(client);
    let TlsEngine {
        engine,
        ca,
        certs,
        _snapshot,
    } = e;
    drop(engine);
    let restarted = Engine::start(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-certs",
        certs.path().to_str().unwrap(),
        "--state-dir",
        state_dir.to_str().unwrap(),
    ]);
    let client =
        TlsClient::connect(restarted.tls_listen.unwrap(), &ca.client(&[]), "p.test").unwrap();
    assert_eq!(client.leaf(), pushed.der);
    // A new process, a new boot id: how control knows to push again.
    assert_ne!(restarted.readyz()["boot_id"].as_str().unwrap(), boot_id);
}

#[test]
fn delete_certs_withdraws_a_pushed_pair() {
    let (_state, state_dir, e) = pushable();
    let admin = e.engine.admin;
    let config = e.ca.client(&[]);
    let pushed = e.ca.pair(&["p.test"]);
    let (status, body) = put(admin, "/certs/p.test", &pem_body(&pushed), Some("s3cret"));
    assert_eq!(status, 200, "{body}");
    let mut kept = TlsClient::connect(e.tls(), &config, "p.test").unwrap();

    assert_eq!(delete(admin, "/certs/p.test", None).0, 401);
    let (status, body) = delete(admin, "/certs/P.test", Some("s3cret"));
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("\"p.test\""), "no longer served: {body}");
    // Gone at once for new connections, and from the state directory; a
    // connection made before keeps working.
    let err = TlsClient::connect(e.tls(), &config, "p.test")
        .err()
        .unwrap();
    assert!(matches!(err, rustls::Error::AlertReceived(_)), "{err:?}");
    assert!(!state_dir.join("certs/p.test.crt").exists());
    assert!(!state_dir.join("certs/p.test.key").exists());
    assert_eq!(kept.get("/abc").status, 301);

    // Again: nothing to remove. The operator's own pair: 409, untouched.
    let (status, body) = delete(admin, "/certs/p.test", Some("s3cret"));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no_such_certificate"), "{body}");
    let (status, body) = delete(admin, "/certs/a.test", Some("s3cret"));
    assert_eq!(status, 409, "{body}");
    assert!(TlsClient::connect(e.tls(), &config, "a.test").is_ok());
    assert_eq!(delete(admin, "/certs/.hidden", Some("s3cret")).0, 400);
}

/// `engine serve ARGS`, expected to fail: its stderr.
fn start_error(args: &[&str]) -> String {
    let state = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(state.path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success(), "{args:?} started");
    assert!(output.stdout.is_empty(), "no readiness line");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn start_up_refuses_what_cannot_serve_tls() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path().to_str().unwrap();
    let err = start_error(&["--tls-listen", "127.0.0.1:0"]);
    assert!(err.contains("--tls-certs"), "{err}");
    let err = start_error(&["--tls-certs", dir]);
    assert!(err.contains("--tls-listen"), "{err}");
    // Nothing usable: the message names the file at fault.
    std::fs::write(certs.path().join("a.test.crt"), "not a certificate").unwrap();
    std::fs::write(certs.path().join("a.test.key"), "not a key").unwrap();
    let err = start_error(&["--tls-listen", "127.0.0.1:0", "--tls-certs", dir]);
    assert!(
        err.contains("a.test.crt") && err.contains("no usable certificate"),
        "{err}"
    );
    let err = start_error(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-certs",
        "/nonexistent/certs",
    ]);
    assert!(err.contains("/nonexistent/certs"), "{err}");
}

#[test]
fn pipelining_beyond_the_output_limit_is_answered_in_full() {
    const REQUESTS: usize = 20_000;
    let e = TlsEngine::start(&["--cores", "1"]);
    let config = e.ca.client(&[]);
    let client = TlsClient::connect(e.tls(), &config, "a.test").unwrap();
    let (mut conn, sock) = (client.stream.conn, client.stream.sock);
    // A small receive window: the engine's sends stall, its output fills,
    // and it must stop answering, hold the rest, and carry on later.
    socket2::SockRef::from(&sock)
        .set_recv_buffer_size(128 * 1024)
        .unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    conn.set_buffer_limit(None);
    for i in 0..=REQUESTS {
        let close = if i == REQUESTS {
            "Connection: close\r\n"
        } else {
            ""
        };
        conn.writer()
            .write_all(format!("GET /abc HTTP/1.1\r\nHost: h\r\n{close}\r\n").as_bytes())
            .unwrap();
    }
    let mut ciphertext = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut ciphertext).unwrap();
    }
    let mut writer = sock.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&ciphertext).unwrap());
    let mut reader = sock;
    let mut plain = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match conn.read_tls(&mut reader) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read: {e} after {} answers", count_301(&plain)),
        }
        conn.process_new_packets().unwrap();
        loop {
            match conn.reader().read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => plain.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
    }
    sender.join().unwrap();
    assert_eq!(count_301(&plain), REQUESTS + 1);
    assert!(plain.ends_with(b"Connection: close\r\nContent-Length: 0\r\n\r\n"));
    // The engine carries on.
    let mut next = TlsClient::connect(e.tls(), &config, "a.test").unwrap();
    assert_eq!(next.get("/abc").status, 301);
}

fn count_301(plain: &[u8]) -> usize {
    plain.windows(13).filter(|w| *w == b"HTTP/1.1 301 ").count()
}

#[test]
fn nodes_sharing_a_ticket_key_file_resume_each_others_tickets() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("ticket.keys");
    let mut raw = [0u8; 48];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut raw)
        .unwrap();
    let line: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&key_file, format!("{line}\n")).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let shared = ["--tls-ticket-key-file", key_file.to_str().unwrap()];
    let a = TlsEngine::start(&shared);
    // Node B serves the same name from its own copy of the pair files.
    let b = Engine::start(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-certs",
        a.dir().to_str().unwrap(),
        shared[0],
        shared[1],
    ]);
    let lone = Engine::start(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-certs",
        a.dir().to_str().unwrap(),
    ]);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let resumes_on = |node: SocketAddr| {
            // A fresh client: its ticket comes from node A.
            let config = a.ca.client(&[version]);
            let mut first = TlsClient::connect(a.tls(), &config, "a.test").unwrap();
            assert_eq!(first.get("/abc").status, 301);
            TlsClient::connect(node, &config, "a.test")
                .unwrap()
                .resumed()
        };
        assert!(resumes_on(b.tls_listen.unwrap()), "{version:?}");
        // A node with keys of its own cannot open it: a full handshake,
        // nothing fails.
        assert!(!resumes_on(lone.tls_listen.unwrap()), "{version:?}");
    }
}

#[test]
fn a_slow_head_over_tls_gets_its_408_encrypted() {
    let e = TlsEngine::start(&["--header-timeout-ms", "500"]);
    let config = e.ca.client(&[]);
    let mut slow = TlsClient::connect(e.tls(), &config, "a.test").unwrap();
    slow.stream
        .write_all(b"GET /abc HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    slow.stream.flush().unwrap();
    let mut answer = Vec::new();
    // The 408, then close_notify: a clean end of the TLS stream.
    slow.stream.read_to_end(&mut answer).unwrap();
    let parsed = parse_responses(&answer);
    assert_eq!(parsed.len(), 1, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(parsed[0].status, 408);
    assert!(e.engine.metric_sum("engine_header_timeouts_total", "") >= 1.0);
}
