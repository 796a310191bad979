//! A service binary as a child process: started, waited for until it prints
//! its readiness line (`{"event":"ready",...}`, see `servicekit::ready`),
//! killed on drop.
//!
//! Its stderr goes to a log file whose path is in every error; the file is
//! removed on drop unless the test is failing (then it is kept for the
//! post-mortem its message points at). Stdout keeps being drained after the
//! readiness line, so the child never blocks on a full pipe.

use anyhow::{Context as _, bail};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a service gets to print its readiness line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running child that has printed its readiness line.
#[derive(Debug)]
pub struct ReadyChild {
    /// The process (signals, `wait`, `kill`).
    pub child: Child,
    /// The parsed readiness line.
    pub ready: serde_json::Value,
    /// Where its stderr goes.
    pub log: PathBuf,
}

impl ReadyChild {
    /// Starts `command` (its program and arguments already set) and waits for
    /// the readiness line. `name` labels the log file and the errors.
    pub fn spawn(name: &str, mut command: Command) -> anyhow::Result<ReadyChild> {
        let log = std::env::temp_dir().join(format!(
            "testkit-{name}-{}-{}.log",
            std::process::id(),
            crate::unique_name("p")
        ));
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent
                    && let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                    && value["event"] == "ready"
                {
                    let _ = tx.send(value);
                    sent = true;
                }
            }
        });
        let ready = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(ready) => ready,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                bail!(
                    "{name} printed no readiness line (exit: {status:?}); its log {}:\n{}",
                    log.display(),
                    tail(&log, 30)
                );
            }
        };
        Ok(ReadyChild { child, ready, log })
    }

    /// A string field of the readiness line (`listen`, `admin`, `metrics`...).
    pub fn field(&self, name: &str) -> String {
        self.ready[name].as_str().unwrap_or_default().to_owned()
    }

    /// The last lines of the child's log, for assertion messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for ReadyChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
