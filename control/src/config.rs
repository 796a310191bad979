//! `control serve` configuration: an optional TOML file, overridden by flags.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `control serve` needs. Every field has a default (see
/// [`Config::default`]); a TOML file may set any subset, flags override it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the REST API. Default `127.0.0.1:8000`; port 0 picks a free one
    /// (the chosen address is printed on the readiness line).
    pub listen: SocketAddr,
    /// PostgreSQL URL. Default `postgres://postgres@127.0.0.1:5432/shortener`.
    pub database_url: String,
    /// NATS URL. `None` (default): no change relay runs; the outbox keeps filling.
    pub nats: Option<String>,
    /// JetStream stream for link changes. Default `LINKS`.
    pub links_stream: String,
    /// Subject of that stream. Default `links.changes`.
    pub links_subject: String,
    /// ClickHouse HTTP URL. `None` (default): the stats endpoints answer 503.
    pub clickhouse: Option<String>,
    /// ClickHouse database holding `clicks`. Default `analytics`.
    pub clickhouse_database: String,
    /// Public base of short links, e.g. `https://sho.rt`. Default `http://127.0.0.1:8080`.
    pub short_base: String,
    /// Engine admin addresses (`host:port`) snapshots are pushed to. Default none.
    pub engine_admin: Vec<String>,
    /// Bearer token sent with `PUT /snapshot` (the engine's `--admin-token`). Default none.
    pub engine_admin_token: Option<String>,
    /// Where snapshot generations are written. Default `./snapshots`.
    pub snapshot_dir: PathBuf,
    /// Seconds between scheduled snapshot builds (only when links changed). Default 300.
    pub snapshot_interval_secs: u64,
    /// Snapshot generations kept on disk. Default 5.
    pub snapshot_keep: usize,
    /// Seconds between engine reconcile checks. Default 2.
    pub reconcile_interval_secs: u64,
    /// Length of generated codes. Default 7 (62^7 ≈ 3.5e12 codes).
    pub code_length: usize,
    /// Token bucket per API key: sustained requests per second. Default 50.
    pub rate_per_key: f64,
    /// Token bucket per API key: burst. Default 100.
    pub burst_per_key: u32,
    /// Token bucket per client IP: sustained requests per second. Default 100.
    pub rate_per_ip: f64,
    /// Token bucket per client IP: burst. Default 200.
    pub burst_per_ip: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8000".parse().expect("literal address"),
            database_url: "postgres://postgres@127.0.0.1:5432/shortener".into(),
            nats: None,
            links_stream: snapshots::streams::LINKS_STREAM.into(),
            links_subject: snapshots::streams::LINKS_SUBJECT.into(),
            clickhouse: None,
            clickhouse_database: "analytics".into(),
            short_base: "http://127.0.0.1:8080".into(),
            engine_admin: Vec::new(),
            engine_admin_token: None,
            snapshot_dir: PathBuf::from("snapshots"),
            snapshot_interval_secs: 300,
            snapshot_keep: 5,
            reconcile_interval_secs: 2,
            code_length: 7,
            rate_per_key: 50.0,
            burst_per_key: 100,
            rate_per_ip: 100.0,
            burst_per_ip: 200,
        }
    }
}

/// A setting that cannot work, with the value that was given.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("code_length {0} is out of range 5..=32 (short codes must stay hard to guess)")]
    CodeLength(usize),
    #[error("short_base {0:?} is not an absolute http(s) URL with a host")]
    ShortBase(String),
    #[error("{name} must be at least 1, got {value}")]
    Zero { name: &'static str, value: u64 },
    #[error("{name} must be a positive number of requests per second, got {value}")]
    Rate { name: &'static str, value: f64 },
    #[error("snapshot_keep must be at least 1")]
    Keep,
}

impl Config {
    /// Reads a TOML file.
    pub fn from_toml_file(path: &std::path::Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
    }

    /// Checks the settings before anything starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(5..=32).contains(&self.code_length) {
            return Err(ConfigError::CodeLength(self.code_length));
        }
        match url::Url::parse(&self.short_base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => return Err(ConfigError::ShortBase(self.short_base.clone())),
        }
        for (name, value) in [
            ("burst_per_key", self.burst_per_key as u64),
            ("burst_per_ip", self.burst_per_ip as u64),
            ("snapshot_interval_secs", self.snapshot_interval_secs),
            ("reconcile_interval_secs", self.reconcile_interval_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { name, value });
            }
        }
        for (name, value) in [
            ("rate_per_key", self.rate_per_key),
            ("rate_per_ip", self.rate_per_ip),
        ] {
            if !(value > 0.0 && value.is_finite()) {
                return Err(ConfigError::Rate { name, value });
            }
        }
        if self.snapshot_keep == 0 {
            return Err(ConfigError::Keep);
        }
        Ok(())
    }

    /// The short base without a trailing slash.
    pub fn short_base_trimmed(&self) -> &str {
        self.short_base.trim_end_matches('/')
    }

    /// The host of the short base, lowercased (links to it would loop).
    pub fn short_host(&self) -> Option<String> {
        url::Url::parse(&self.short_base)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    }

    pub fn snapshot_interval(&self) -> Duration {
        Duration::from_secs(self.snapshot_interval_secs)
    }

    pub fn reconcile_interval(&self) -> Duration {
        Duration::from_secs(self.reconcile_interval_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = Config::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.listen.to_string(), "127.0.0.1:8000");
        assert_eq!(c.links_stream, "LINKS");
        assert_eq!(c.clickhouse_database, "analytics");
        assert_eq!(c.code_length, 7);
    }

    #[test]
    fn toml_subset_and_unknown_fields() {
        let c: Config =
            toml::from_str("code_length = 9\nengine_admin = [\"127.0.0.1:9080\"]").unwrap();
        assert_eq!(c.code_length, 9);
        assert_eq!(c.engine_admin, vec!["127.0.0.1:9080".to_string()]);
        assert_eq!(c.listen, Config::default().listen);
        let err = toml::from_str::<Config>("colde_length = 9").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn validation_refusals() {
        let c = Config {
            code_length: 3,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::CodeLength(3)));
        let c = Config {
            short_base: "ftp://x".into(),
            ..Config::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::ShortBase(_))));
        let c = Config {
            rate_per_ip: 0.0,
            ..Config::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Rate {
                name: "rate_per_ip",
                ..
            })
        ));
    }
}
