//! One nats-server child process, the part [`crate::PrivateNats`] and
//! [`crate::NatsCluster`] share: started with the arguments its owner
//! chooses, its stderr in a log file, waited for until it accepts
//! connections, SIGKILLed on stop and on drop.

use anyhow::{Context as _, bail};
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a nats-server gets to listen after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug)]
pub(crate) struct NatsProcess {
    child: Option<Child>,
    /// The client address: up means it accepts connections there.
    ip: IpAddr,
    port: u16,
    /// Its stderr (overwritten at each start).
    log: PathBuf,
}

impl NatsProcess {
    pub(crate) fn new(port: u16, log: PathBuf) -> NatsProcess {
        NatsProcess {
            child: None,
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            log,
        }
    }

    /// Where it listens when not on loopback (its owner passes `-a IP`).
    pub(crate) fn set_ip(&mut self, ip: IpAddr) {
        self.ip = ip;
    }

    /// Starts `nats-server ARGS` without waiting (a cluster starts its
    /// nodes together: each waits for the others' routes).
    pub(crate) fn spawn(&mut self, args: &[OsString]) -> anyhow::Result<()> {
        self.stop();
        let child = Command::new("nats-server")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(&self.log)
                    .with_context(|| format!("creating {}", self.log.display()))?,
            ))
            .spawn()
            .context("starting nats-server (is it installed? deploy/services.sh installs it)")?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the client port accepts; fails at once if the process
    /// exited (with its log in the error).
    pub(crate) fn wait_listening(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect((self.ip, self.port)).is_err() {
            self.check_alive()?;
            if Instant::now() > deadline {
                self.stop();
                bail!(
                    "nats-server not listening on {} after {START_TIMEOUT:?}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// An error with the log when the process has exited.
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("nats-server on port {} is not started", self.port);
        };
        if let Some(status) = child.try_wait()? {
            self.child = None;
            bail!(
                "nats-server on port {} exited ({status}):\n{}",
                self.port,
                self.log_text()
            );
        }
        Ok(())
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL, and wait until the port refuses connections.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((self.ip, self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for NatsProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
