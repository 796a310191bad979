//! Choosing the I/O backend: an explicit choice is honoured and reported in
//! the readiness line, `auto` reports what it chose, and a bad value is a
//! clear error. (Every other engine test runs on both backends: deploy/test.sh
//! runs the suite once per `ENGINE_TEST_IO`.)

mod common;

use common::snapshot_dir;
use snapshots::Link;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn ready_line(io: &str, path: &str) -> serde_json::Value {
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args(["--cores", "1", "--snapshot", path, "--io", io])
        .arg("--state-dir")
        .arg(state.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

#[test]
fn explicit_and_automatic_choices_are_reported() {
    let (_dir, path) = snapshot_dir(1, &[Link::new("a", "https://a/1")]);
    let path = path.to_str().unwrap();
    assert_eq!(ready_line("glommio", path)["io"], "glommio");
    let auto = ready_line("auto", path);
    let chosen = auto["io"].as_str().unwrap_or_default().to_owned();
    assert!(chosen == "uring" || chosen == "glommio", "{auto}");
    if chosen == "uring" {
        assert_eq!(ready_line("uring", path)["io"], "uring");
    }
}

#[test]
fn an_unknown_backend_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(["serve", "--io", "epoll"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("uring") && stderr.contains("glommio"),
        "{stderr}"
    );
}
