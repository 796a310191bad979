//! ClickHouse past one server, of the test's own: a ZooKeeper (Debian's
//! `zookeeper` package, run as a child with its own config and data
//! directory) and two ClickHouse 18.16 servers configured as two replicas
//! of one shard (their own ports, data directories, `{replica}` macro and
//! a `remote_servers` cluster naming both), all on loopback and in one
//! temporary directory. The shared server on 8123/9000 is never touched.
//!
//! A replica can be SIGKILLed and started again on the same ports and data
//! (a lost server under load). Everything is killed and removed on drop.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Replicas in the cluster.
pub const REPLICAS: usize = 2;
/// The `remote_servers` cluster the servers' config defines: one shard, both replicas.
pub const CLUSTER_NAME: &str = "replicas";

/// How long ZooKeeper (a JVM) and a ClickHouse server get to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Where Debian's `zookeeper` package puts the server's jar (its manifest
/// names the libraries it needs).
const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";

/// ZooKeeper and two ClickHouse replicas; see the module doc.
#[derive(Debug)]
pub struct ClickHouseReplicas {
    zookeeper: Option<Child>,
    zookeeper_port: u16,
    servers: Vec<Server>,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

#[derive(Debug)]
struct Server {
    child: Option<Child>,
    http_port: u16,
    config: PathBuf,
    log: PathBuf,
}

impl ClickHouseReplicas {
    /// Starts ZooKeeper, then both servers, and returns once every one
    /// answers. Fails with a message naming the missing package when
    /// ZooKeeper or ClickHouse is not installed (`deploy/cluster.sh
    /// clickhouse` and `deploy/services.sh` install them).
    ///
    /// The ports are free when picked but only bound when the servers
    /// start; another test may take one in between. A start that fails on
    /// a taken address is retried with new ports (twice at most).
    pub fn start() -> anyhow::Result<ClickHouseReplicas> {
        let mut attempt = 1;
        loop {
            match Self::start_once() {
                Err(e) if attempt < 3 && format!("{e:#}").contains("Address already in use") => {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn start_once() -> anyhow::Result<ClickHouseReplicas> {
        if !Path::new(ZOOKEEPER_JAR).is_file() {
            bail!(
                "{ZOOKEEPER_JAR} is missing: install Debian's zookeeper package (deploy/clickhouse-cluster.sh does)"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("testkit-clickhouse-replicas-")
            .tempdir()?;
        let zookeeper_port = crate::free_port();
        let servers = (0..REPLICAS)
            .map(|i| Server {
                child: None,
                http_port: crate::free_port(),
                config: dir.path().join(format!("ch{i}/config.xml")),
                log: dir.path().join(format!("ch{i}/stderr.log")),
            })
            .collect();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(3))
            .build()?;
        let mut cluster = ClickHouseReplicas {
            zookeeper: None,
            zookeeper_port,
            servers,
            http,
            dir,
        };
        cluster.start_zookeeper()?;
        let tcp_ports: Vec<u16> = (0..REPLICAS).map(|_| crate::free_port()).collect();
        for i in 0..REPLICAS {
            let config = server_config(
                &cluster.dir.path().join(format!("ch{i}")),
                i,
                cluster.servers[i].http_port,
                &tcp_ports,
                crate::free_port(),
                zookeeper_port,
            );
            for sub in ["data", "tmp", "user_files", "format_schemas", "log"] {
                std::fs::create_dir_all(cluster.dir.path().join(format!("ch{i}/{sub}")))?;
            }
            std::fs::write(&cluster.servers[i].config, config)?;
        }
        for i in 0..REPLICAS {
            cluster.spawn(i)?;
        }
        for i in 0..REPLICAS {
            cluster.wait_ready(i)?;
        }
        Ok(cluster)
    }

    fn start_zookeeper(&mut self) -> anyhow::Result<()> {
        let dir = self.dir.path().join("zookeeper");
        std::fs::create_dir_all(dir.join("data"))?;
        let config = dir.join("zoo.cfg");
        std::fs::write(
            &config,
            format!(
                "tickTime=500\n\
                 initLimit=10\n\
                 syncLimit=5\n\
                 dataDir={data}\n\
                 clientPort={port}\n\
                 clientPortAddress=127.0.0.1\n\
                 maxClientCnxns=0\n\
                 admin.enableServer=false\n\
                 4lw.commands.whitelist=ruok\n",
                data = dir.join("data").display(),
                port = self.zookeeper_port,
            ),
        )?;
        let log = dir.join("zookeeper.log");
        let child = Command::new("java")
            .arg("-Xmx256m")
            .arg(format!("-Dzookeeper.log.dir={}", dir.display()))
            .arg("-cp")
            .arg(ZOOKEEPER_JAR)
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(&config)
            .stdout(Stdio::from(std::fs::File::create(&log)?))
            .stderr(Stdio::from(std::fs::File::create(dir.join("stderr.log"))?))
            .spawn()
            .context("starting ZooKeeper (java; Debian's zookeeper package)")?;
        self.zookeeper = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if zookeeper_ok(self.zookeeper_port) {
                return Ok(());
            }
            if let Some(status) = self
                .zookeeper
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "ZooKeeper exited ({status}): {}",
                    std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "ZooKeeper does not answer ruok on {} after {START_TIMEOUT:?}",
                    self.zookeeper_port
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let server = &mut self.servers[i];
        let child = Command::new("clickhouse-server")
            .arg(format!("--config-file={}", server.config.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&server.log)?,
            ))
            .spawn()
            .context("starting clickhouse-server (deploy/services.sh installs it)")?;
        server.child = Some(child);
        Ok(())
    }

    /// Polls replica `i` until it answers and reaches ZooKeeper (a query
    /// of `system.zookeeper` succeeds): replicated tables can be made.
    fn wait_ready(&mut self, i: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let port = self.servers[i].http_port;
        loop {
            if http_get(port, "/ping").is_some_and(|body| body == "Ok.\n")
                && http_get(
                    port,
                    "/?query=SELECT%20count()%20FROM%20system.zookeeper%20WHERE%20path%20%3D%20%27%2F%27",
                )
                .is_some_and(|body| body.trim().parse::<u64>().is_ok())
            {
                return Ok(());
            }
            let server = &mut self.servers[i];
            if let Some(status) = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                server.child = None;
                bail!("ClickHouse replica {i} exited ({status}):\n{}", self.log(i));
            }
            if Instant::now() > deadline {
                bail!(
                    "ClickHouse replica {i} does not answer on {port} after {START_TIMEOUT:?}:\n{}",
                    self.log(i)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Replica `i`'s HTTP URL (no trailing slash).
    pub fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.servers[i].http_port)
    }

    /// ZooKeeper's `host:port`.
    pub fn zookeeper(&self) -> String {
        format!("127.0.0.1:{}", self.zookeeper_port)
    }

    /// Runs `sql` on replica `i` (with `database` as the default, if
    /// given) and returns the body; a ClickHouse error is an error.
    pub async fn query(
        &self,
        i: usize,
        database: Option<&str>,
        sql: &str,
    ) -> anyhow::Result<String> {
        crate::clickhouse::execute(&self.http, &self.url(i), database, sql).await
    }

    /// SIGKILLs replica `i` (no clean shutdown) and waits until its port is closed.
    pub fn kill(&mut self, i: usize) {
        let server = &mut self.servers[i];
        if let Some(mut child) = server.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", server.http_port)).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops replica `i` the way an operator does (SIGTERM: running
    /// queries get a few seconds to finish) and waits until it has exited;
    /// SIGKILL after 30 s.
    pub fn stop(&mut self, i: usize) {
        let server = &mut self.servers[i];
        if let Some(mut child) = server.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts replica `i` again on its ports and data and waits until it answers.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.kill(i);
        self.spawn(i)?;
        self.wait_ready(i)
    }

    /// Whether replica `i` runs.
    pub fn is_running(&self, i: usize) -> bool {
        self.servers[i].child.is_some()
    }

    /// Replica `i`'s error log and stderr, for assertion messages.
    pub fn log(&self, i: usize) -> String {
        let dir = self.servers[i]
            .config
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let err = std::fs::read_to_string(dir.join("log/err.log")).unwrap_or_default();
        let stderr = std::fs::read_to_string(&self.servers[i].log).unwrap_or_default();
        let tail = |s: &str| {
            s.lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        };
        format!(
            "--- err.log:\n{}\n--- stderr:\n{}",
            tail(&err),
            tail(&stderr)
        )
    }

    /// Where the servers' data, configs and logs are (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for ClickHouseReplicas {
    fn drop(&mut self) {
        for server in &mut self.servers {
            if let Some(mut child) = server.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(mut child) = self.zookeeper.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if crate::keep_resources() {
            self.dir.disable_cleanup(true);
            eprintln!(
                "testkit: TESTKIT_KEEP is set, keeping {}",
                self.dir.path().display()
            );
        }
    }
}

/// A server's whole config: everything is under `dir`, nothing is read
/// from /etc but the packaged users.xml (the `default` user, no password).
fn server_config(
    dir: &Path,
    i: usize,
    http_port: u16,
    tcp_ports: &[u16],
    interserver_port: u16,
    zookeeper_port: u16,
) -> String {
    let d = dir.display();
    let replicas: String = tcp_ports
        .iter()
        .map(|p| format!("<replica><host>127.0.0.1</host><port>{p}</port></replica>"))
        .collect();
    format!(
        r#"<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>{d}/log/clickhouse.log</log>
        <errorlog>{d}/log/err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <interserver_http_port>{interserver_port}</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <path>{d}/data/</path>
    <tmp_path>{d}/tmp/</tmp_path>
    <user_files_path>{d}/user_files/</user_files_path>
    <format_schema_path>{d}/format_schemas/</format_schema_path>
    <users_config>/etc/clickhouse-server/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <zookeeper>
        <node><host>127.0.0.1</host><port>{zookeeper_port}</port></node>
        <session_timeout_ms>10000</session_timeout_ms>
    </zookeeper>
    <macros>
        <shard>01</shard>
        <replica>r{i}</replica>
    </macros>
    <remote_servers>
        <{CLUSTER_NAME}>
            <shard><internal_replication>true</internal_replication>{replicas}</shard>
        </{CLUSTER_NAME}>
    </remote_servers>
</yandex>
"#,
        tcp_port = tcp_ports[i],
    )
}

/// ZooKeeper answers `ruok` with `imok`.
fn zookeeper_ok(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut answer = String::new();
    stream.write_all(b"ruok").is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer == "imok"
}

/// The body of a successful `GET path` on loopback `port` (HTTP/1.0:
/// the server closes the connection after the body).
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_owned()))
}
