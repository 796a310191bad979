//! A test ACME CA of the test's own: Debian's `pebble` (RFC 8555 test
//! server) and `pebble-challtestsrv` as its DNS, on free ports, with a fresh
//! https certificate for pebble made here.
//!
//! The mock DNS answers every name with 127.0.0.1 (and no IPv6), so pebble
//! validates an HTTP-01 challenge for any domain at
//! `http://127.0.0.1:HTTP_PORT/.well-known/acme-challenge/TOKEN`: the port
//! the test passes in, where the engine (or whatever serves the answers)
//! listens. Pebble validates at once (`PEBBLE_VA_NOSLEEP`), never rejects a
//! nonce on purpose (`PEBBLE_WFE_NONCEREJECT=0`) and reuses no authorization
//! (`PEBBLE_AUTHZREUSE=0`), so every order runs the whole challenge.
//!
//! Three roots, not to be confused: [`Pebble::ca_root`] is the root of
//! pebble's *own https* (what an ACME client must trust to talk to it);
//! [`Pebble::issuing_root_pem`] is the root pebble *issues* under (what an
//! issued chain verifies against; new every run).

use anyhow::{Context as _, bail};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long pebble and its DNS get to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running pebble and pebble-challtestsrv, killed on drop.
#[derive(Debug)]
pub struct Pebble {
    pebble: Child,
    dns: Child,
    dir: tempfile::TempDir,
    listen: SocketAddr,
    management: SocketAddr,
    http_port: u16,
    /// The mock DNS: where it answers, and its management API.
    dns_addr: SocketAddr,
    dns_management: SocketAddr,
}

impl Pebble {
    /// Starts both, validating HTTP-01 challenges on `http_port`.
    pub fn start(http_port: u16) -> anyhow::Result<Pebble> {
        for program in ["pebble", "pebble-challtestsrv"] {
            if crate::browser::on_path(program).is_none() {
                bail!(
                    "{program} is not installed: run deploy/services.sh (it installs Debian's pebble)"
                );
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("testkit-pebble-")
            .tempdir()?;
        let https = crate::tls::TestPair::new(&["127.0.0.1", "localhost"])?;
        std::fs::write(dir.path().join("root.pem"), &https.root_pem)?;
        std::fs::write(dir.path().join("cert.pem"), &https.cert_pem)?;
        std::fs::write(dir.path().join("key.pem"), &https.key_pem)?;

        let dns_port = crate::free_port();
        let dns_management = crate::free_addr();
        let dns = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-management", &dns_management.to_string()])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .stdout(log_file(dir.path(), "challtestsrv.log")?)
            .stderr(log_file(dir.path(), "challtestsrv.log")?)
            .spawn()
            .context("starting pebble-challtestsrv")?;

        let listen = crate::free_addr();
        let management = crate::free_addr();
        let config = serde_json::json!({ "pebble": {
            "listenAddress": listen.to_string(),
            "managementListenAddress": management.to_string(),
            "certificate": dir.path().join("cert.pem"),
            "privateKey": dir.path().join("key.pem"),
            "httpPort": http_port,
            "tlsPort": crate::free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .current_dir(dir.path())
            .stdout(log_file(dir.path(), "pebble.log")?)
            .stderr(log_file(dir.path(), "pebble.log")?)
            .spawn()
            .context("starting pebble")?;
        let mut running = Pebble {
            pebble,
            dns,
            dir,
            listen,
            management,
            http_port,
            dns_addr: SocketAddr::from(([127, 0, 0, 1], dns_port)),
            dns_management,
        };
        running.wait_listening(&[listen, management, dns_management])?;
        Ok(running)
    }

    fn wait_listening(&mut self, addrs: &[SocketAddr]) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        for addr in addrs {
            while TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_err() {
                let exited = match (self.pebble.try_wait()?, self.dns.try_wait()?) {
                    (Some(status), _) => Some(("pebble", status)),
                    (_, Some(status)) => Some(("challtestsrv", status)),
                    _ => None,
                };
                if let Some((name, status)) = exited {
                    bail!("{name} exited ({status}); {}", self.logs());
                }
                if Instant::now() >= deadline {
                    bail!(
                        "{addr} is not listening after {START_TIMEOUT:?}; {}",
                        self.logs()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// The mock DNS server (UDP and TCP): what control's `--dns-server`
    /// can point at to see the TXT records [`Pebble::set_txt`] adds.
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns_addr
    }

    /// Makes the mock DNS answer `name` (no trailing dot needed) with a TXT
    /// record holding `value` (pebble-challtestsrv's `/set-txt`).
    pub fn set_txt(&self, name: &str, value: &str) -> anyhow::Result<()> {
        let host = format!("{}.", name.trim_end_matches('.'));
        let body = serde_json::json!({ "host": host, "value": value }).to_string();
        let mut tcp = TcpStream::connect_timeout(&self.dns_management, Duration::from_secs(5))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            tcp,
            "POST /set-txt HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.dns_management,
            body.len()
        )?;
        let mut answer = String::new();
        tcp.read_to_string(&mut answer)?;
        if !answer.starts_with("HTTP/1.1 200") {
            bail!(
                "set-txt {host}: {}",
                answer.lines().next().unwrap_or_default()
            );
        }
        Ok(())
    }

    /// The tail of both logs, for error messages.
    pub fn logs(&self) -> String {
        let tail = |name: &str| {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        };
        format!(
            "pebble.log:\n{}\nchalltestsrv.log:\n{}",
            tail("pebble.log"),
            tail("challtestsrv.log")
        )
    }

    /// The ACME directory URL (`https://127.0.0.1:PORT/dir`).
    pub fn directory_url(&self) -> String {
        format!("https://{}/dir", self.listen)
    }

    /// A PEM file with the root of pebble's own https certificate, for the
    /// ACME client (`control serve --acme-ca-root`).
    pub fn ca_root(&self) -> PathBuf {
        self.dir.path().join("root.pem")
    }

    /// The port HTTP-01 challenges are fetched from.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The PEM root pebble issues under (`/roots/0` on its management
    /// port), to verify issued chains against.
    pub fn issuing_root_pem(&self) -> anyhow::Result<String> {
        let root = std::fs::read(self.ca_root())?;
        https_get(self.management, &root, "/roots/0")
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in [&mut self.pebble, &mut self.dns] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn log_file(dir: &Path, name: &str) -> anyhow::Result<Stdio> {
    Ok(Stdio::from(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(name))?,
    ))
}

/// `GET https://ADDR/PATH` trusting `root_pem` only; the body.
fn https_get(addr: SocketAddr, root_pem: &[u8], path: &str) -> anyhow::Result<String> {
    let exchange = crate::tls::https_get(addr, &addr.ip().to_string(), root_pem, path)?;
    let text = exchange.response;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("no end of headers in pebble's answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path} on pebble's management port: {head}");
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Ok(dechunk(body));
    }
    Ok(body.to_owned())
}

/// The body of a chunked answer.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
