//! A JetStream cluster of the test's own: three nats-server processes on
//! loopback, each with its own client, route and monitoring port and its
//! own store directory, under a cluster name nobody else uses, so a test
//! can kill and restart a node (a lost server under load) without touching
//! the shared server on 4222 or another test's cluster.

use crate::nats_process::NatsProcess;
use anyhow::{Context as _, bail};
use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Nodes in the cluster: the smallest that keeps a quorum without one.
pub const CLUSTER_SIZE: usize = 3;

/// How long the cluster gets to elect its JetStream meta leader. Raft's
/// election timeouts are seconds, and a loaded test machine adds more.
const META_LEADER_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Node {
    process: NatsProcess,
    port: u16,
    monitor_port: u16,
    config: PathBuf,
}

/// Three running nats-servers forming one JetStream cluster; every node is
/// killed and every store removed on drop.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<Node>,
    name: String,
    dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts the three nodes together and returns once JetStream has a
    /// meta leader (streams can be created).
    pub fn start() -> anyhow::Result<NatsCluster> {
        let dir = tempfile::Builder::new()
            .prefix("testkit-nats-cluster-")
            .tempdir()?;
        let name = crate::unique_name("cluster");
        let ports: Vec<[u16; 3]> = (0..CLUSTER_SIZE)
            .map(|_| [crate::free_port(), crate::free_port(), crate::free_port()])
            .collect();
        let mut nodes = Vec::with_capacity(CLUSTER_SIZE);
        for (i, [port, route_port, monitor_port]) in ports.iter().copied().enumerate() {
            let routes: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| format!("\"nats-route://127.0.0.1:{}\"", p[1]))
                .collect();
            let store = dir.path().join(format!("n{i}"));
            let config = dir.path().join(format!("n{i}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: \"n{i}\"\n\
                     listen: \"127.0.0.1:{port}\"\n\
                     http: \"127.0.0.1:{monitor_port}\"\n\
                     jetstream {{ store_dir: \"{store}\" }}\n\
                     cluster {{\n  name: \"{name}\"\n  listen: \"127.0.0.1:{route_port}\"\n  routes: [{routes}]\n}}\n",
                    store = store.display(),
                    routes = routes.join(", "),
                ),
            )?;
            nodes.push(Node {
                process: NatsProcess::new(port, dir.path().join(format!("n{i}.log"))),
                port,
                monitor_port,
                config,
            });
        }
        let mut cluster = NatsCluster { nodes, name, dir };
        for i in 0..CLUSTER_SIZE {
            cluster.spawn(i)?;
        }
        for i in 0..CLUSTER_SIZE {
            cluster.nodes[i].process.wait_listening()?;
        }
        for i in 0..CLUSTER_SIZE {
            cluster.wait_meta_leader(i)?;
        }
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        node.process
            .spawn(&[OsString::from("-c"), node.config.clone().into()])
    }

    /// The cluster's name (unique to this cluster).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Node `i`'s server name (`n0`, `n1`, `n2`), as stream info names leaders.
    pub fn server_name(i: usize) -> String {
        format!("n{i}")
    }

    /// The node whose server name is `name`.
    pub fn node_of(name: &str) -> Option<usize> {
        (0..CLUSTER_SIZE).find(|i| Self::server_name(*i) == name)
    }

    /// Node `i`'s client URL.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].port)
    }

    /// Every node's client URL, comma-separated: what a service is given.
    pub fn urls(&self) -> String {
        (0..CLUSTER_SIZE)
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A client that knows every node (and fails over between them).
    pub async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        let servers: Vec<async_nats::ServerAddr> = (0..CLUSTER_SIZE)
            .map(|i| self.url(i).parse())
            .collect::<Result<_, _>>()?;
        async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(3))
            .connect(servers)
            .await
            .context("connecting to the test's NATS cluster")
    }

    /// The node that leads stream `name` now, if it has a leader.
    pub async fn stream_leader(
        js: &async_nats::jetstream::Context,
        name: &str,
    ) -> anyhow::Result<Option<usize>> {
        let mut stream = js.get_stream(name).await?;
        let info = stream.info().await?;
        Ok(info
            .cluster
            .as_ref()
            .and_then(|c| c.leader.as_deref())
            .and_then(Self::node_of))
    }

    /// SIGKILLs node `i` and waits until its port refuses connections.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].process.stop();
    }

    /// Whether node `i` runs (it was not killed, or was restarted).
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].process.is_running()
    }

    /// Starts node `i` again on its ports and store and waits until it
    /// accepts connections and knows the meta leader (it rejoined).
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.spawn(i)?;
        self.nodes[i].process.wait_listening()?;
        self.wait_meta_leader(i)
    }

    /// Node `i`'s log, for assertion messages.
    pub fn log(&self, i: usize) -> String {
        self.nodes[i].process.log_text()
    }

    /// Polls node `i`'s `/jsz` until it names a meta leader.
    fn wait_meta_leader(&mut self, i: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + META_LEADER_TIMEOUT;
        loop {
            self.nodes[i].process.check_alive()?;
            if let Ok(jsz) = http_get_json(self.nodes[i].monitor_port, "/jsz")
                && jsz["meta_cluster"]["leader"]
                    .as_str()
                    .is_some_and(|l| !l.is_empty())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "node n{i} of cluster {} knows no JetStream meta leader after {META_LEADER_TIMEOUT:?}; its log:\n{}",
                    self.name,
                    self.log(i)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Where the stores and logs are (removed on drop).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// A GET to the monitoring port, its body as JSON (HTTP/1.0: the server
/// closes the connection after the body, so reading to the end is the body).
fn http_get_json(port: u16, path: &str) -> anyhow::Result<serde_json::Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .context("no HTTP body")?;
    Ok(serde_json::from_str(body)?)
}
