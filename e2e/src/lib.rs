//! Helpers for end-to-end tests that run the project's binaries (engine,
//! control, analytics) as child processes against real PostgreSQL, NATS and
//! ClickHouse.
//!
//! Binaries are taken from the cargo target directory next to the test
//! executable (`target/debug/` when the test runs from `target/debug/deps/`);
//! the test script builds every binary first (`cargo build --workspace`).
//! `E2E_BIN_DIR` points elsewhere, e.g. at release builds for measurements.
//! Each child prints one JSON readiness line on stdout
//! (`{"event":"ready","listen":...}`); [`Proc::spawn`] waits for it
//! (through `testkit::ReadyChild`), so tests bind port 0 and never sleep.
//! Children are killed when dropped; their stderr goes to a log file kept
//! when the test fails, for post-mortems.
//!
//! Modules: this file (spawning binaries), [`stack`] (control and an engine
//! following it on PostgreSQL and NATS), [`clicks`] (the click pipeline:
//! engine + analytics sidecar + a private nats-server, and a request plan
//! whose every request has a known expected ClickHouse row).

pub mod clicks;
pub mod stack;

use anyhow::{Context as _, bail};
use std::path::PathBuf;
use tokio::process::Command;

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

/// A running child process that has printed its readiness line
/// ([`testkit::ReadyChild`]: killed on drop, its stderr in a log file kept
/// when the test fails).
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    inner: testkit::ReadyChild,
    /// The parsed readiness line.
    pub ready: serde_json::Value,
}

impl Proc {
    /// Starts `name` with `args` and waits for `"event":"ready"`.
    pub async fn spawn(name: &str, args: &[&str]) -> anyhow::Result<Proc> {
        let command = std::process::Command::new(binary(name)?);
        Self::start(name, name.to_owned(), command, args).await
    }

    /// Starts `name` with `args` inside network namespace `ns` and waits
    /// for `"event":"ready"`.
    pub async fn spawn_in(ns: &testkit::NetNs, name: &str, args: &[&str]) -> anyhow::Result<Proc> {
        let command = ns.command(binary(name)?);
        Self::start(name, format!("{name}@{}", ns.ip()), command, args).await
    }

    /// Runs `command` with `args` as [`testkit::ReadyChild`] `label`.
    async fn start(
        name: &str,
        label: String,
        mut command: std::process::Command,
        args: &[&str],
    ) -> anyhow::Result<Proc> {
        command.args(args);
        let inner =
            tokio::task::spawn_blocking(move || testkit::ReadyChild::spawn(&label, command))
                .await??;
        Ok(Proc {
            name: name.to_owned(),
            ready: inner.ready.clone(),
            inner,
        })
    }

    /// The `listen` address of the readiness line.
    pub fn listen(&self) -> String {
        self.inner.field("listen")
    }

    /// Where the child's stderr goes.
    pub fn log(&self) -> &std::path::Path {
        &self.inner.log
    }

    /// SIGKILL, and wait for the exit.
    pub async fn kill(self) -> anyhow::Result<()> {
        tokio::task::spawn_blocking(move || drop(self)).await?;
        Ok(())
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
