//! A nats-server of the test's own: its own port and store directory, so the
//! test can stop and restart it (outages) or give it users and permissions
//! (the deploy's `deploy/nats/auth.conf.template`, with one engine user per
//! node from `deploy/nats/engine-user.conf.template`) without touching the
//! shared server on 4222.

use crate::nats_process::NatsProcess;
use anyhow::{Context as _, bail};
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The deploy's users-and-permissions template, the very file deploy fills in.
const AUTH_TEMPLATE: &str = include_str!("../../deploy/nats/auth.conf.template");
/// One engine node's user, placed at [`ENGINE_USERS`] once per node.
const ENGINE_USER_TEMPLATE: &str = include_str!("../../deploy/nats/engine-user.conf.template");
/// The line of [`AUTH_TEMPLATE`] the engine users replace.
const ENGINE_USERS: &str = "@ENGINE_USERS@";

/// The engine node [`PrivateNats::with_auth`] makes a user for.
pub const ENGINE_NODE: &str = "node1";

/// The users of the template: one per service role, one per engine node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Control,
    /// The engine of this node id: it may ask for visit leases on
    /// `<lease subject>.<node>` only, and publish click batches on
    /// `<clicks prefix>.<node>` only.
    Engine(&'static str),
    Analytics,
    /// Full access, for people and tools (and tests that set up streams).
    Operator,
}

impl Role {
    /// The engine of [`ENGINE_NODE`], the one [`PrivateNats::with_auth`] knows.
    pub const ENGINE: Role = Role::Engine(ENGINE_NODE);
    /// The users every server with auth has (engines: one per node asked for).
    const SERVICES: [Role; 3] = [Role::Control, Role::Analytics, Role::Operator];

    /// The NATS user name (`engine-<node>` for an engine, as deploy/nats.sh
    /// names them); it also names the client's inbox prefix.
    pub fn user(self) -> String {
        match self {
            Role::Control => "control".into(),
            Role::Engine(node) => format!("engine-{node}"),
            Role::Analytics => "analytics".into(),
            Role::Operator => "operator".into(),
        }
    }
}

/// The names the permissions are written for (the template's `@NAMES@`).
#[derive(Debug, Clone)]
pub struct StreamNames {
    pub links_stream: String,
    pub links_subject: String,
    /// Visit lease requests go to `<lease_subject>.<node>`.
    pub lease_subject: String,
    pub clicks_stream: String,
    /// Click batches go to `<prefix>.<node>`.
    pub clicks_subject_prefix: String,
    pub clicks_consumer: String,
    /// The sidecar publishes enriched clicks on `<subject>.<org>`.
    pub enriched_subject: String,
    /// Control's stream of them and its durable consumer (`link.clicked`).
    pub enriched_stream: String,
    pub enriched_consumer: String,
}

impl Default for StreamNames {
    /// The production names.
    fn default() -> Self {
        StreamNames {
            links_stream: "LINKS".into(),
            links_subject: "links.changes".into(),
            lease_subject: "links.lease".into(),
            clicks_stream: "CLICKS".into(),
            clicks_subject_prefix: "clicks".into(),
            clicks_consumer: "analytics".into(),
            enriched_subject: "enriched.clicks".into(),
            enriched_stream: "ENRICHED".into(),
            enriched_consumer: "control-webhooks".into(),
        }
    }
}

/// A running private nats-server with JetStream. Killed on drop; its store
/// and credential files are removed.
#[derive(Debug)]
pub struct PrivateNats {
    process: NatsProcess,
    /// The address it listens on (loopback unless [`start_on`](Self::start_on)).
    ip: IpAddr,
    port: u16,
    dir: tempfile::TempDir,
    config: Option<PathBuf>,
}

impl PrivateNats {
    /// An open server (no users), like the shared one.
    pub fn start() -> anyhow::Result<PrivateNats> {
        Self::launch(None)
    }

    /// An open server listening on `ip` (e.g. a [`crate::NetNs`]'s host-side
    /// address, so processes in namespaces reach it).
    pub fn start_on(ip: IpAddr) -> anyhow::Result<PrivateNats> {
        let mut nats = Self::prepare(None)?;
        nats.ip = ip;
        nats.process.set_ip(ip);
        nats.restart()?;
        Ok(nats)
    }

    /// A server with the deploy's users and permissions for `names`, and
    /// one engine, [`Role::ENGINE`]; each user's password is in
    /// [`password_file`](Self::password_file).
    pub fn with_auth(names: &StreamNames) -> anyhow::Result<PrivateNats> {
        Self::with_auth_nodes(names, &[ENGINE_NODE])
    }

    /// [`with_auth`](Self::with_auth) with a user per engine node of `nodes`
    /// ([`Role::Engine`]`(node)`), as deploy/nats.sh makes them for its
    /// `ENGINE_NODES`.
    pub fn with_auth_nodes(names: &StreamNames, nodes: &[&str]) -> anyhow::Result<PrivateNats> {
        Self::launch(Some((names, nodes)))
    }

    /// An open server's port and store, not started yet: for tests of a
    /// client that starts before its server does ([`restart`](Self::restart)
    /// starts it).
    pub fn not_started() -> anyhow::Result<PrivateNats> {
        Self::prepare(None)
    }

    fn launch(names: Option<(&StreamNames, &[&str])>) -> anyhow::Result<PrivateNats> {
        let mut nats = Self::prepare(names)?;
        nats.restart()?;
        Ok(nats)
    }

    fn prepare(names: Option<(&StreamNames, &[&str])>) -> anyhow::Result<PrivateNats> {
        let dir = tempfile::Builder::new().prefix("testkit-nats-").tempdir()?;
        let config = match names {
            Some((names, nodes)) => Some(write_auth(dir.path(), names, nodes)?),
            None => None,
        };
        let port = crate::free_port();
        Ok(PrivateNats {
            process: NatsProcess::new(port, dir.path().join("server.log")),
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            dir,
            config,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("nats://{}", SocketAddr::new(self.ip, self.port))
    }

    /// The file holding `role`'s password (only with [`with_auth`](Self::with_auth),
    /// and for an engine of one of the nodes it was given).
    pub fn password_file(&self, role: Role) -> PathBuf {
        self.dir.path().join(format!("{}.password", role.user()))
    }

    /// `role`'s password.
    pub fn password(&self, role: Role) -> String {
        std::fs::read_to_string(self.password_file(role)).unwrap_or_default()
    }

    /// A client connected as `role`, with its private inbox prefix.
    pub async fn connect_as(&self, role: Role) -> anyhow::Result<async_nats::Client> {
        self.connect_with(role, self.options_as(role)).await
    }

    /// The options [`connect_as`](Self::connect_as) uses, to add to (an
    /// event callback that sees the server's permission errors, say) before
    /// [`connect_with`](Self::connect_with).
    pub fn options_as(&self, role: Role) -> async_nats::ConnectOptions {
        async_nats::ConnectOptions::new()
            .user_and_password(role.user(), self.password(role))
            .custom_inbox_prefix(format!("_INBOX_{}", role.user()))
            .connection_timeout(Duration::from_secs(3))
    }

    /// Connects with `options` (from [`options_as`](Self::options_as)`(role)`).
    pub async fn connect_with(
        &self,
        role: Role,
        options: async_nats::ConnectOptions,
    ) -> anyhow::Result<async_nats::Client> {
        options
            .connect(self.url())
            .await
            .with_context(|| format!("connecting to the private nats-server as {}", role.user()))
    }

    /// SIGKILL, and wait until the port refuses connections.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts it (again) on the same port and store; waits until it accepts.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let mut args: Vec<OsString> = Vec::new();
        if let Some(config) = &self.config {
            args.extend(["-c".into(), config.into()]);
        }
        args.extend(
            [
                "-js",
                "-a",
                &self.ip.to_string(),
                "-p",
                &self.port.to_string(),
                "-sd",
            ]
            .map(OsString::from),
        );
        args.push(self.dir.path().join("store").into());
        self.process.spawn(&args)?;
        self.process.wait_listening()
    }
}

/// Fills in the template with `names`, an engine user per node of `nodes`
/// and a fresh password per user (files `<user>.password`, mode 0600, in
/// `dir`, as deploy/nats.sh writes them); returns the config's path.
fn write_auth(dir: &Path, names: &StreamNames, nodes: &[&str]) -> anyhow::Result<PathBuf> {
    let mut config = String::new();
    for line in without_comments(AUTH_TEMPLATE) {
        if line.trim() != ENGINE_USERS {
            config.push_str(line);
            config.push('\n');
            continue;
        }
        for node in nodes {
            // What the engine keeps of its --node-id, as deploy/nats.sh checks.
            if node.is_empty()
                || node.len() > snapshots::click::MAX_NODE_ID_LEN
                || !node
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                bail!("engine node id {node:?}: 1 to 64 letters, digits, '_' or '-'");
            }
            let password = new_password(dir, &format!("engine-{node}"))?;
            for line in without_comments(ENGINE_USER_TEMPLATE) {
                config.push_str(
                    &line
                        .replace("@NODE@", node)
                        .replace("@ENGINE_PASSWORD@", &password),
                );
                config.push('\n');
            }
        }
    }
    let mut config = config
        .replace("@LINKS_STREAM@", &names.links_stream)
        .replace("@LINKS_SUBJECT@", &names.links_subject)
        .replace("@LEASE_SUBJECT@", &names.lease_subject)
        .replace("@CLICKS_STREAM@", &names.clicks_stream)
        .replace("@CLICKS_SUBJECT_PREFIX@", &names.clicks_subject_prefix)
        .replace("@CLICKS_CONSUMER@", &names.clicks_consumer)
        .replace("@ENRICHED_SUBJECT@", &names.enriched_subject)
        .replace("@ENRICHED_STREAM@", &names.enriched_stream)
        .replace("@ENRICHED_CONSUMER@", &names.enriched_consumer);
    for role in Role::SERVICES {
        let user = role.user();
        let password = new_password(dir, &user)?;
        let placeholder = format!("@{}_PASSWORD@", user.to_ascii_uppercase());
        config = config.replace(&placeholder, &password);
    }
    if let Some(at) = config.find('@') {
        let near: String = config[at..].chars().take(40).collect();
        bail!("the auth template has a name testkit does not fill: {near:?}");
    }
    let path = dir.join("auth.conf");
    std::fs::write(&path, config)?;
    Ok(path)
}

/// The template's lines but its comments, which name the placeholders too.
fn without_comments(template: &str) -> impl Iterator<Item = &str> {
    template
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
}

/// A fresh password for `user`, written to `<dir>/<user>.password` (0600).
fn new_password(dir: &Path, user: &str) -> anyhow::Result<String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let password = crate::unique_name("pw");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join(format!("{user}.password")))?;
    std::io::Write::write_all(&mut file, password.as_bytes())?;
    Ok(password)
}
