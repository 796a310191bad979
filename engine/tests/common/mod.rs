//! Helpers shared by the engine's integration tests: a running engine that
//! is killed on drop, snapshot files, and raw HTTP over a socket.
#![allow(dead_code)]

pub mod tls;

use snapshots::{Link, RedirectStatus, SnapshotBuilder};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A running `engine serve` (a [`testkit::ReadyChild`]: killed when
/// dropped, its log kept when the test fails).
pub struct Engine {
    pub process: testkit::ReadyChild,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    /// The TLS port, when started with `--tls-listen`.
    pub tls_listen: Option<SocketAddr>,
    pub cores: usize,
    /// The engine's state directory, when the test did not give one.
    pub state: Option<tempfile::TempDir>,
}

impl Engine {
    /// Starts the engine with `args` after `serve --listen 127.0.0.1:0
    /// --admin 127.0.0.1:0` (and a state directory of its own unless `args`
    /// name one) and waits for its readiness line.
    pub fn start(args: &[&str]) -> Engine {
        Self::start_command(Command::new(env!("CARGO_BIN_EXE_engine")), args)
    }

    /// Like [`Engine::start`] with a prepared command (a wrapper such as prlimit).
    ///
    /// The I/O backend is `ENGINE_TEST_IO` (`uring` unless set), and the
    /// readiness line must confirm it: the suite runs once per backend.
    pub fn start_command(mut command: Command, args: &[&str]) -> Engine {
        let io = backend();
        let state = (!args.contains(&"--state-dir")).then(|| tempfile::tempdir().unwrap());
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args(["--io", &io])
            .args(args)
            // ENGINE_TEST_LOG=debug puts more of the engine's log in its log file.
            .env(
                "RUST_LOG",
                std::env::var("ENGINE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            );
        if let Some(state) = &state {
            command.arg("--state-dir").arg(state.path());
        }
        let process = testkit::ReadyChild::spawn("engine", command)
            .unwrap_or_else(|e| panic!("engine did not become ready: {e:#}"));
        let ready = &process.ready;
        assert_eq!(ready["io"], io.as_str(), "{ready}");
        Engine {
            listen: process.field("listen").parse().unwrap(),
            admin: process.field("admin").parse().unwrap(),
            tls_listen: ready["tls_listen"].as_str().map(|a| a.parse().unwrap()),
            cores: ready["cores"].as_u64().unwrap() as usize,
            process,
            state,
        }
    }

    /// `GET /readyz` of the admin port, parsed (whatever its status).
    pub fn readyz(&self) -> serde_json::Value {
        let response = raw(
            self.admin,
            b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        );
        let parsed = parse_responses(&response);
        assert_eq!(parsed.len(), 1, "{}", String::from_utf8_lossy(&response));
        serde_json::from_slice(&parsed[0].body).expect("readyz is JSON")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.listen, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    /// One GET on a fresh connection: (status, Location).
    pub fn get(&self, path: &str) -> (u16, Option<String>) {
        let response = raw(
            self.listen,
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let parsed = parse_responses(&response);
        assert_eq!(parsed.len(), 1, "{}", String::from_utf8_lossy(&response));
        (
            parsed[0].status,
            parsed[0].header("location").map(str::to_owned),
        )
    }

    /// The admin port's `/metrics` text.
    pub fn metrics(&self) -> String {
        let response = raw(
            self.admin,
            b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        );
        String::from_utf8_lossy(&response).into_owned()
    }

    /// Sum of a metric's samples whose labels contain `label` (e.g. `status="301"`).
    pub fn metric_sum(&self, name: &str, label: &str) -> f64 {
        let labels: &[&str] = if label.is_empty() { &[] } else { &[label] };
        testkit::prometheus::sum(&testkit::prometheus::parse(&self.metrics()), name, labels)
    }

    /// Sends a signal to the engine.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.process.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// The backend under test: `ENGINE_TEST_IO`, default `uring`.
pub fn backend() -> String {
    std::env::var("ENGINE_TEST_IO").unwrap_or_else(|_| "uring".to_owned())
}

/// Values of `name{...label...}` samples in Prometheus text (one per
/// series, e.g. per core).
pub fn metric_values(text: &str, name: &str, label: &str) -> Vec<f64> {
    testkit::prometheus::parse(text)
        .into_iter()
        .filter(|(series, _)| {
            let (base, labels) = series.split_once('{').unwrap_or((series, ""));
            base == name && labels.contains(label)
        })
        .map(|(_, value)| value)
        .collect()
}

/// Writes a snapshot of `links` (code, target, status) at `sequence`.
pub fn write_snapshot(path: &Path, sequence: u64, links: &[Link]) {
    let mut builder = SnapshotBuilder::new(sequence);
    for link in links {
        builder.push(link.clone()).unwrap();
    }
    builder.write_to(path).unwrap();
}

pub fn link(code: &str, target: &str, status: RedirectStatus) -> Link {
    Link {
        status,
        ..Link::new(code, target)
    }
}

/// A temp dir with a snapshot at `links.snap`.
pub fn snapshot_dir(sequence: u64, links: &[Link]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("links.snap");
    write_snapshot(&path, sequence, links);
    (dir, path)
}

/// Sends `bytes`, then reads until the server closes (or 10 s pass).
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    read_to_close(&mut stream)
}

pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read: {e} after {:?}", String::from_utf8_lossy(&out)),
        }
    }
    out
}

/// Reads exactly `n` complete responses from a keep-alive connection.
pub fn read_responses(stream: &mut TcpStream, n: usize) -> Vec<Response> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let parsed = parse_responses(&buf);
        if parsed.len() >= n {
            return parsed;
        }
        assert!(
            Instant::now() < deadline,
            "timed out with {} responses",
            parsed.len()
        );
        let read = stream.read(&mut chunk).unwrap();
        assert!(
            read > 0,
            "closed after {} responses: {:?}",
            parsed.len(),
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..read]);
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Every complete response in `bytes` (bodies by Content-Length; HEAD
/// responses are not distinguishable here, so tests of HEAD parse one).
pub fn parse_responses(mut bytes: &[u8]) -> Vec<Response> {
    let mut out = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = response.parse(bytes) else {
            return out;
        };
        let headers: Vec<(String, String)> = response
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        if bytes.len() < head + length {
            return out;
        }
        out.push(Response {
            status: response.code.unwrap(),
            headers,
            body: bytes[head..head + length].to_vec(),
        });
        bytes = &bytes[head + length..];
    }
}

/// Polls `check` every 10 ms until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stream settings as their owners make them: with limits (an hour, 64 MiB),
/// which the engine requires of the streams it uses.
pub fn limited_stream(name: &str, subject: &str) -> async_nats::jetstream::stream::Config {
    async_nats::jetstream::stream::Config {
        name: name.to_owned(),
        subjects: vec![subject.to_owned()],
        max_age: Duration::from_secs(3600),
        max_bytes: 64 << 20,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    }
}
