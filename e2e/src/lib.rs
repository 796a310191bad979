//! Helpers for end-to-end tests that run the project's binaries (engine,
//! control, analytics) as child processes against real PostgreSQL, NATS and
//! ClickHouse.
//!
//! Binaries are taken from the cargo target directory next to the test
//! executable (`target/debug/` when the test runs from `target/debug/deps/`);
//! the test script builds every binary first (`cargo build --workspace`).
//! `E2E_BIN_DIR` points elsewhere, e.g. at release builds for measurements.
//! Each child prints one JSON readiness line on stdout
//! (`{"event":"ready","listen":...}`); [`Proc::spawn`] waits for it, so tests
//! bind port 0 and never sleep. Children are killed when dropped; their stderr
//! goes to a log file whose path is printed, for post-mortems.
//!
//! Modules: this file (spawning binaries), [`clicks`] (the click pipeline:
//! engine + analytics sidecar + a private nats-server, and a request plan
//! whose every request has a known expected ClickHouse row).

pub mod clicks;

use anyhow::{Context as _, bail};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The path of a workspace binary built next to this test executable, or in
/// `E2E_BIN_DIR` when set (e.g. `target/release` for measurements).
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("E2E_BIN_DIR") {
        let path = PathBuf::from(dir).join(name);
        if !path.exists() {
            bail!("{} does not exist (E2E_BIN_DIR)", path.display());
        }
        return Ok(path);
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().context("test executable has no directory")?;
    if dir.ends_with("deps") {
        dir = dir.parent().context("deps has no parent")?;
    }
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} does not exist; build the binaries first (cargo build --workspace)",
            path.display()
        );
    }
    Ok(path)
}

/// A running child process that has printed its readiness line.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    child: Child,
    /// The parsed readiness line.
    pub ready: serde_json::Value,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `name` with `args` and waits (up to 30 s) for `"event":"ready"`.
    pub async fn spawn(name: &str, args: &[&str]) -> anyhow::Result<Proc> {
        let log = std::env::temp_dir().join(format!(
            "e2e-{name}-{}-{}.log",
            std::process::id(),
            testkit::unique_name("p")
        ));
        let log_file = std::fs::File::create(&log)?;
        let mut child = Command::new(binary(name)?)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["event"] == "ready"
                {
                    return Ok(v);
                }
            }
            bail!("{name} exited before it was ready; see {}", log.display())
        })
        .await
        .with_context(|| format!("{name} not ready in 30 s; see {}", log.display()))??;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Proc {
            name: name.to_owned(),
            child,
            ready,
            log,
        })
    }

    /// The `listen` address of the readiness line.
    pub fn listen(&self) -> String {
        self.ready["listen"].as_str().unwrap_or_default().to_owned()
    }

    /// SIGKILL, and wait for the exit.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A failing test keeps the log its message points at; a passing
        // one leaves nothing behind.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Starts `engine serve` on one core with its redirect port free, its admin
/// port at `admin` (`127.0.0.1:0` for a free one), and `args` after.
pub async fn spawn_engine(admin: &str, args: &[&str]) -> anyhow::Result<Proc> {
    let mut all = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        admin,
        "--cores",
        "1",
    ];
    all.extend_from_slice(args);
    Proc::spawn("engine", &all).await
}

/// Runs a binary to completion and returns its stdout.
pub async fn run(name: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(binary(name)?).args(args).output().await?;
    if !out.status.success() {
        bail!(
            "{name} {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}
