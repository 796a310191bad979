//! Start-up under an unprivileged locked-memory limit: 8 MiB is enough for
//! two cores at the default I/O memory, and a limit that is too small is a
//! clear error with a non-zero exit, never a silent one.
//!
//! The tests run as root here, and root's CAP_IPC_LOCK skips the
//! accounting, so the engine runs under `setpriv` without that capability
//! and under `prlimit`, as an unprivileged service would.

mod common;

use common::{Engine, snapshot_dir};
use snapshots::Link;
use std::process::Command;

fn unprivileged(memlock: u64) -> Command {
    let mut command = Command::new("prlimit");
    command.args([
        &format!("--memlock={memlock}"),
        "setpriv",
        "--inh-caps=-ipc_lock",
        "--bounding-set=-ipc_lock",
        "--",
        env!("CARGO_BIN_EXE_engine"),
    ]);
    command
}

#[test]
fn two_cores_start_under_8_mib() {
    let (_dir, path) = snapshot_dir(1, &[Link::new("a", "https://a/1")]);
    let engine = Engine::start_command(
        unprivileged(8 << 20),
        &["--snapshot", path.to_str().unwrap(), "--cores", "2"],
    );
    assert_eq!(engine.cores, 2);
    assert_eq!(engine.get("/a"), (301, Some("https://a/1".into())));
}

#[test]
fn too_small_a_limit_is_a_clear_error() {
    let (dir, path) = snapshot_dir(1, &[Link::new("a", "https://a/1")]);
    let output = unprivileged(64 << 10)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--cores",
            "2",
        ])
        .args(["--snapshot", path.to_str().unwrap()])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty(), "no readiness line on failure");
    assert!(stderr.contains("MemLockLimit(65536/524288)"), "{stderr}");
    assert!(stderr.contains("RLIMIT_MEMLOCK"), "{stderr}");
}
