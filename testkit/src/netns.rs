//! Network namespaces as "hosts": each [`NetNs`] is a namespace of the
//! test's own with one veth pair to this host, so a process started in it
//! ([`NetNs::command`]) has its own address, its own ports and its own
//! loopback, the way an edge node on another machine would.
//!
//! Addressing: every namespace claims a /30 of `10.213.0.0/16`; the host
//! side of its pair is `.1` ([`NetNs::host_ip`]), the namespace side `.2`
//! ([`NetNs::ip`]), and the namespace's default route points at the host
//! side. The host reaches every namespace directly over its pair, and every
//! namespace reaches any host-side address (Linux answers for all of its
//! addresses on every interface), so servers meant for all namespaces (NATS,
//! control) bind one host-side address, e.g. the first namespace's
//! `host_ip`. Traffic goes only over loopback and these pairs.
//!
//! Claims are files in `/run/testkit-netns/` created exclusively, so tests in
//! parallel processes never share a subnet or an interface name; a claim
//! whose namespace is gone (a killed test) is taken over. Dropping a
//! [`NetNs`] deletes the namespace (which deletes its veth pair) and its
//! claim. Needs root (`ip netns`), which this project's test machines have.

use anyhow::{Context as _, bail};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

const CLAIMS: &str = "/run/testkit-netns";
/// /30 blocks in 10.213.0.0/16.
const SLOTS: u32 = 1 << 14;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace with a veth pair to this host; deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    slot: u32,
    claim: PathBuf,
}

impl NetNs {
    /// Creates a namespace and its link to this host, loopback up.
    pub fn create() -> anyhow::Result<NetNs> {
        let name = format!(
            "tk-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let (slot, claim) = claim_slot(&name)?;
        let ns = NetNs { name, slot, claim };
        ns.set_up()
            .with_context(|| format!("setting up network namespace {}", ns.name))?;
        Ok(ns)
    }

    fn set_up(&self) -> anyhow::Result<()> {
        let (host, inner) = (self.host_veth(), self.inner_veth());
        let (host_ip, inner_ip) = (self.host_ip(), self.ip());
        ip(&["netns", "add", &self.name])?;
        ip(&[
            "link", "add", &host, "type", "veth", "peer", "name", &inner, "netns", &self.name,
        ])?;
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host])?;
        ip(&["link", "set", &host, "up"])?;
        let n = ["-n", self.name.as_str()];
        ip(&[
            &n[..],
            &["addr", "add", &format!("{inner_ip}/30"), "dev", &inner],
        ]
        .concat())?;
        ip(&[&n[..], &["link", "set", &inner, "up"]].concat())?;
        ip(&[&n[..], &["link", "set", "lo", "up"]].concat())?;
        ip(&[
            &n[..],
            &["route", "add", "default", "via", &host_ip.to_string()],
        ]
        .concat())?;
        Ok(())
    }

    /// The namespace's name (`ip netns exec NAME ...`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's own address.
    pub fn ip(&self) -> Ipv4Addr {
        self.address(2)
    }

    /// This host's address on the pair (the namespace's default gateway).
    pub fn host_ip(&self) -> Ipv4Addr {
        self.address(1)
    }

    /// `program` to be run inside the namespace (`ip netns exec`, which
    /// execs it: the child's pid is the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    fn address(&self, host: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 213, 0, 0)) + self.slot * 4 + host)
    }

    fn host_veth(&self) -> String {
        format!("tkh{}", self.slot)
    }

    fn inner_veth(&self) -> String {
        format!("tkn{}", self.slot)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if std::env::var_os("TESTKIT_KEEP").is_some() {
            eprintln!("testkit: keeping network namespace {}", self.name);
            return;
        }
        // Deleting the namespace deletes the pair's both ends. A process
        // still inside keeps it alive until it exits; the name goes now.
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("testkit: deleting network namespace {}: {e:#}", self.name);
        }
        // The host end can outlive a namespace a child still holds.
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_veth()])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_file(&self.claim);
    }
}

/// Claims a free slot for namespace `name`, starting at a random one.
fn claim_slot(name: &str) -> anyhow::Result<(u32, PathBuf)> {
    std::fs::create_dir_all(CLAIMS).with_context(|| format!("creating {CLAIMS}"))?;
    let mut random = [0u8; 4];
    getrandom::fill(&mut random).context("getrandom")?;
    let start = u32::from_le_bytes(random) % SLOTS;
    for i in 0..SLOTS {
        let slot = (start + i) % SLOTS;
        let claim = Path::new(CLAIMS).join(slot.to_string());
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&claim)
        {
            Ok(_) => {
                std::fs::write(&claim, name)?;
                return Ok((slot, claim));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // A claim whose namespace is gone was left by a killed test.
                let owner = std::fs::read_to_string(&claim).unwrap_or_default();
                if !owner.is_empty() && !Path::new("/run/netns").join(&owner).exists() {
                    let _ = Command::new("ip")
                        .args(["link", "del", &format!("tkh{slot}")])
                        .stderr(std::process::Stdio::null())
                        .status();
                    std::fs::write(&claim, name)?;
                    return Ok((slot, claim));
                }
            }
            Err(e) => return Err(e).with_context(|| format!("claiming {}", claim.display())),
        }
    }
    bail!("no free subnet in 10.213.0.0/16 ({CLAIMS} is full)")
}

/// Runs `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (Debian's iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Two namespaces, each with its own address, each reaching a server on
    /// a host-side address of the other's pair; gone when dropped. (The
    /// host reaching into a namespace is what e2e's engine nodes test.)
    #[test]
    fn namespaces_reach_servers_on_host_side_addresses() {
        let (a, b) = (NetNs::create().unwrap(), NetNs::create().unwrap());
        assert_ne!(a.ip(), b.ip());
        let server = TcpListener::bind((a.host_ip(), 0)).unwrap();
        let port = server.local_addr().unwrap().port();
        for ns in [&a, &b] {
            let status = ns
                .command("bash")
                .args(["-c", &format!("exec 3<>/dev/tcp/{}/{port}", a.host_ip())])
                .status()
                .unwrap();
            assert!(status.success(), "{} could not reach the host", ns.name());
            server.accept().unwrap();
        }
        // Loopback inside is the namespace's own: nothing listens there.
        let status = a
            .command("bash")
            .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "the namespace's loopback is the host's");
        let name = a.name().to_owned();
        drop(a);
        assert!(!Path::new("/run/netns").join(name).exists());
    }
}
