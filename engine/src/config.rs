//! `engine serve` configuration: an optional TOML file, overridden by flags,
//! loaded the way every service loads its settings ([`servicekit::config`]).
//!
//! Every field has a default (see [`Config::default`]), unknown keys in the
//! file are an error, and [`Config::validate`] runs once before anything
//! starts, so a typo never becomes a silently ignored setting.

use serde::Deserialize;
use servicekit::{ConfigError, ServiceConfig};
use snapshots::link::validate_target;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `engine serve` needs. Field docs name the default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Snapshot file to serve from start. Default: none (the engine starts
    /// unready and answers 503 until a snapshot is pushed).
    pub snapshot: Option<PathBuf>,
    /// Directory for snapshots pushed to the admin port when no `snapshot`
    /// path is set. Default: the system temp directory.
    pub snapshot_dir: Option<PathBuf>,
    /// Redirect listener. Default `127.0.0.1:8080`; port 0 picks one.
    pub listen: SocketAddr,
    /// Admin listener (health, metrics, snapshot push). Default `127.0.0.1:9080`.
    pub admin: SocketAddr,
    /// Executors, one per CPU starting at CPU 0. Default: every online CPU.
    pub cores: Option<usize>,
    /// NATS server for the link change stream. Default: none (standalone).
    pub nats: Option<String>,
    /// JetStream stream of link changes. Default `LINKS`.
    pub links_stream: String,
    /// Subject of that stream. Default `links.changes`.
    pub links_subject: String,
    /// Bearer token required by `PUT /snapshot`. Default: none (open; the
    /// admin port should then listen on loopback only).
    pub admin_token: Option<String>,
    /// `Cache-Control: max-age` of 301 and 308 answers, seconds; 0 sends
    /// `no-store`. Default 3600.
    pub permanent_max_age: u64,
    /// Status for expired and disabled links: 404 or 410. Default 410.
    pub gone_status: u16,
    /// Where `/` redirects (302). Default: none, `/` is 404.
    pub root_redirect: Option<String>,
    /// Longest request target, bytes (414 beyond). Default 4096.
    pub max_uri_bytes: usize,
    /// Longest request head, bytes (431 beyond). Default 8192.
    pub max_head_bytes: usize,
    /// Largest request body read and discarded; a larger one gets 413 and a
    /// closed connection. Default 65536.
    pub max_body_bytes: u64,
    /// Time a client has to send a whole request head, ms (408 after). Default 10000.
    pub header_timeout_ms: u64,
    /// Idle keep-alive connections are closed after this, ms. Default 60000.
    pub idle_timeout_ms: u64,
    /// Connections per core; further ones are closed on accept. Default 16384.
    pub max_connections_per_core: usize,
    /// On SIGTERM, time in-flight requests get before exit, ms. Default 5000.
    pub shutdown_grace_ms: u64,
    /// glommio registered I/O memory per executor, KiB. It counts against
    /// `RLIMIT_MEMLOCK` (see README). Default 512.
    pub io_memory_kib: usize,
    /// I/O backend of redirect connections: `uring` (the engine's own ring
    /// per core), `glommio` (glommio's sockets), or `auto` (uring where the
    /// kernel supports it, else glommio). Default `auto`.
    pub io: IoChoice,
    /// Provided receive buffers per core for the uring backend (4 KiB each,
    /// a power of two up to 32768). Default 1024.
    pub uring_buffers: u16,
    /// Listen backlog per core. Default 1024.
    pub backlog: u32,
    /// Poll the snapshot file for changes every this many ms; 0 disables.
    /// Default 2000.
    pub watch_interval_ms: u64,
    /// Capture clicks and publish them (only with `nats`). Default true.
    pub clicks: bool,
    /// This node's id in click records and the subject `clicks.<node_id>`.
    /// Default: the host name (characters outside `[A-Za-z0-9_-]` become `_`).
    pub node_id: Option<String>,
    /// Peers whose `Forwarded` / `X-Forwarded-For` headers are believed
    /// (addresses or CIDR blocks). Default: none (the socket peer is the client).
    pub trusted_proxies: Vec<String>,
    /// JetStream stream of click batches. Default `CLICKS`.
    pub clicks_stream: String,
    /// Subject prefix: batches go to `<prefix>.<node_id>`. Default `clicks`.
    pub clicks_subject_prefix: String,
    /// Events per batch before it is handed over. Default 1000.
    pub click_batch_events: u32,
    /// Age after which a non-empty batch is handed over, ms. Default 100.
    pub click_batch_age_ms: u64,
    /// Batches waiting between the cores and the publisher; beyond it, a
    /// core drops the batch (counted). Default 1024.
    pub click_channel_batches: usize,
    /// Spool directory for batches NATS cannot take. Default:
    /// `<temp dir>/engine-spool-<node_id>-<listen port>`. One engine per
    /// directory (locked).
    pub click_spool_dir: Option<PathBuf>,
    /// Spool size limit in bytes; beyond it clicks are dropped (counted).
    /// Default 1 GiB.
    pub click_spool_max_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            snapshot: None,
            snapshot_dir: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin: SocketAddr::from(([127, 0, 0, 1], 9080)),
            cores: None,
            nats: None,
            links_stream: snapshots::streams::LINKS_STREAM.to_owned(),
            links_subject: snapshots::streams::LINKS_SUBJECT.to_owned(),
            admin_token: None,
            permanent_max_age: 3600,
            gone_status: 410,
            root_redirect: None,
            max_uri_bytes: 4096,
            max_head_bytes: 8192,
            max_body_bytes: 65536,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections_per_core: 16_384,
            shutdown_grace_ms: 5000,
            io_memory_kib: 512,
            io: IoChoice::Auto,
            uring_buffers: 1024,
            backlog: 1024,
            watch_interval_ms: 2000,
            clicks: true,
            node_id: None,
            trusted_proxies: Vec::new(),
            clicks_stream: snapshots::streams::CLICKS_STREAM.to_owned(),
            clicks_subject_prefix: snapshots::streams::CLICKS_SUBJECT_PREFIX.to_owned(),
            click_batch_events: 1000,
            click_batch_age_ms: 100,
            click_channel_batches: 1024,
            click_spool_dir: None,
            click_spool_max_bytes: 1 << 30,
        }
    }
}

/// The `io` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum IoChoice {
    Auto,
    Uring,
    Glommio,
}

impl ServiceConfig for Config {
    /// Checks every field against the others; the error names the field.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.gone_status != 404 && self.gone_status != 410 {
            return Err(ConfigError::invalid(
                "gone_status",
                format!("must be 404 or 410, not {}", self.gone_status),
            ));
        }
        if let Some(url) = &self.root_redirect {
            validate_target(url).map_err(|reason| {
                ConfigError::invalid(
                    "root_redirect",
                    format!("{url:?} is not a valid target: {reason}"),
                )
            })?;
        }
        if self.cores == Some(0) {
            return Err(ConfigError::invalid("cores", "must be at least 1"));
        }
        if self.max_uri_bytes < 16 || self.max_uri_bytes >= self.max_head_bytes {
            return Err(ConfigError::invalid(
                "max_uri_bytes",
                format!(
                    "{} must be at least 16 and below max_head_bytes ({})",
                    self.max_uri_bytes, self.max_head_bytes
                ),
            ));
        }
        for (name, value) in [
            ("header_timeout_ms", self.header_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            (
                "max_connections_per_core",
                self.max_connections_per_core as u64,
            ),
            ("io_memory_kib", self.io_memory_kib as u64),
            ("backlog", u64::from(self.backlog)),
            ("click_batch_events", u64::from(self.click_batch_events)),
            ("click_batch_age_ms", self.click_batch_age_ms),
            ("click_channel_batches", self.click_channel_batches as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(name, "must be greater than 0"));
            }
        }
        if self.uring_buffers < 2 || !self.uring_buffers.is_power_of_two() {
            return Err(ConfigError::invalid(
                "uring_buffers",
                format!(
                    "must be a power of two from 2 to 32768, not {}",
                    self.uring_buffers
                ),
            ));
        }
        for (field, name) in [
            ("links_stream", &self.links_stream),
            ("clicks_stream", &self.clicks_stream),
        ] {
            if name.is_empty()
                || name.bytes().any(|b| {
                    b.is_ascii_whitespace() || matches!(b, b'.' | b'*' | b'>' | b'/' | b'\\')
                })
            {
                return Err(ConfigError::invalid(
                    field,
                    format!("{name:?} is not a valid stream name"),
                ));
            }
        }
        self.proxies()?;
        Ok(())
    }
}

impl Config {
    /// The trusted proxies, parsed.
    pub fn proxies(&self) -> Result<Vec<crate::clicks::client_ip::Cidr>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                p.parse()
                    .map_err(|problem| ConfigError::invalid("trusted_proxies", problem))
            })
            .collect()
    }

    /// Whether clicks are captured: enabled and a NATS server to send them to.
    pub fn clicks_enabled(&self) -> bool {
        self.clicks && self.nats.is_some()
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    /// Where pushed snapshots are written before they are checked.
    pub fn push_dir(&self) -> PathBuf {
        if let Some(dir) = &self.snapshot_dir {
            return dir.clone();
        }
        match self.snapshot.as_ref().and_then(|p| p.parent()) {
            // Beside the snapshot, so the rename over it is atomic.
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            Some(_) => PathBuf::from("."),
            None => std::env::temp_dir(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use servicekit::config::from_toml;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let config = Config::default();
        assert!(config.validate().is_ok());
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.admin.to_string(), "127.0.0.1:9080");
        assert_eq!(config.links_stream, "LINKS");
        assert_eq!(config.links_subject, "links.changes");
        assert_eq!(from_toml::<Config>("").unwrap(), config);
    }

    #[test]
    fn file_is_strict() {
        let err = from_toml::<Config>("listen = \"0.0.0.0:80\"\nlisen = 1\n").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let config: Config = from_toml("gone_status = 404\ncores = 2\nio = \"glommio\"\n").unwrap();
        assert_eq!(
            (config.gone_status, config.cores, config.io),
            (404, Some(2), IoChoice::Glommio)
        );
    }

    #[test]
    fn refusals() {
        let bad = |f: fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            let err = c.validate().unwrap_err();
            (err.field().unwrap(), err.to_string())
        };
        assert_eq!(
            bad(|c| c.gone_status = 200),
            (
                "gone_status",
                "gone_status: must be 404 or 410, not 200".into()
            )
        );
        assert_eq!(bad(|c| c.cores = Some(0)).0, "cores");
        assert_eq!(
            bad(|c| c.root_redirect = Some("ftp://x".into())).0,
            "root_redirect"
        );
        assert_eq!(
            bad(|c| c.idle_timeout_ms = 0),
            (
                "idle_timeout_ms",
                "idle_timeout_ms: must be greater than 0".into()
            )
        );
        assert_eq!(
            bad(|c| c.uring_buffers = 1000),
            (
                "uring_buffers",
                "uring_buffers: must be a power of two from 2 to 32768, not 1000".into()
            )
        );
        assert_eq!(bad(|c| c.links_stream = "a.b".into()).0, "links_stream");
        assert_eq!(
            bad(|c| c.trusted_proxies = vec!["nope".into()]).0,
            "trusted_proxies"
        );
    }
}
