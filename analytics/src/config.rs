//! The sidecar's configuration, on the shared pattern
//! ([`servicekit::config`]): defaults, then an optional TOML file, then flags,
//! then [`ServiceConfig::validate`] once before anything connects.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use servicekit::{ConfigError, ServiceConfig};

/// The stream's duplicate window: JetStream drops a re-published batch with
/// the same `Nats-Msg-Id` within it (the engines' publish retries). The
/// stream's max age may not be shorter.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Everything `analytics run` needs. Every field has a default, so an empty
/// file (or no file) is a valid configuration for a local stack.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// NATS server URL, or several comma-separated (a cluster). Default
    /// `nats://127.0.0.1:4222`.
    pub nats: String,
    /// NATS user of this role (the deploy's is `analytics`). Default: none,
    /// an anonymous connection (a development server without users).
    pub nats_user: Option<String>,
    /// File holding that user's password; without it `NATS_PASSWORD` is
    /// read. Default: none.
    pub nats_password_file: Option<PathBuf>,
    /// ClickHouse HTTP interface. Default `http://127.0.0.1:8123`.
    pub clickhouse: String,
    /// ClickHouse user; `None` uses the server's `default` user.
    pub clickhouse_user: Option<String>,
    /// ClickHouse password (only with `clickhouse_user`).
    pub clickhouse_password: Option<String>,
    /// ClickHouse database the sidecar owns (created on start). Default `analytics`.
    pub database: String,
    /// Make the tables replicated (`ReplicatedMergeTree`, one replica per
    /// server, coordinated by the ZooKeeper of the server's config, which
    /// must define the `{replica}` macro), and catch this replica up with
    /// the others (`SYSTEM SYNC REPLICA`) before deduplicating redelivered
    /// or retried batches, which another sidecar on another replica may
    /// have stored. Default false: plain `MergeTree` on one server. Tables
    /// that already exist keep their engine; the sidecar refuses to start
    /// on a non-replicated `clicks` when this is set.
    pub clickhouse_replicated: bool,
    /// With `clickhouse_replicated`: replicas that must have written an
    /// insert before it succeeds (ClickHouse's `insert_quorum`); the
    /// deduplication lookup then reads with `select_sequential_consistency`.
    /// Default 0, off: on ClickHouse 18.16 quorum inserts into one table
    /// cannot overlap, so with two sidecars writing they refuse each other,
    /// and one refused while filling a rollup leaves that rollup short (see
    /// the README, "Several ClickHouse servers"). Set it (2 on two replicas)
    /// only with a single sidecar writing.
    pub clickhouse_insert_quorum: u32,
    /// MaxMind-format databases for country and city (GeoIP2/GeoLite2 City or
    /// Country, or DB-IP's lite files), asked in order until one knows the
    /// address (DB-IP lite comes as separate IPv4 and IPv6 files). Empty
    /// (the default): country and city stay empty.
    pub geoip: Vec<PathBuf>,
    /// Address of the Prometheus `/metrics` endpoint. Default `127.0.0.1:9100`;
    /// port 0 picks a free port (printed in the readiness line).
    pub metrics: SocketAddr,
    /// JetStream stream of click batches, which the sidecar owns. Default `CLICKS`.
    pub stream: String,
    /// Subjects of the stream. Default `clicks.>`. Of the engines' shape,
    /// `<prefix>.>` or `<prefix>.*`, the token after the prefix names the
    /// node whose batches a subject carries, and a batch naming another is
    /// parked ([`crate::attribution`]); any other filter takes every batch.
    pub subjects: String,
    /// How long the stream keeps a batch, in seconds. Default 259,200 (72 h):
    /// batches hold full client addresses, so the stream keeps them only as
    /// long as a sidecar outage is expected to last. At least 120 (the
    /// duplicate window).
    pub clicks_max_age_secs: u64,
    /// Most bytes the stream holds; beyond it the oldest batches go.
    /// Default 1 GiB (about 4.5 million clicks at ~230 bytes each).
    pub clicks_max_bytes: i64,
    /// Copies of the stream a JetStream cluster keeps, 1 to 5 (at most the
    /// cluster's size). Default 1 (a single server); a three-node cluster
    /// sets 3, so no click batch is lost with any one node.
    pub clicks_replicas: usize,
    /// Update an existing stream whose settings differ from the ones above
    /// (or that has no limits at all) instead of refusing to start.
    /// Default false.
    pub adopt_stream: bool,
    /// Durable consumer name. Default `analytics`.
    pub consumer: String,
    /// Seconds NATS waits for an ack before redelivering. Default 30; the
    /// sidecar sends in-progress acks while it retries, so this only bounds
    /// how long a crashed sidecar holds messages.
    pub ack_wait_secs: u64,
    /// Most batches (messages) inserted together in one ClickHouse insert.
    /// Default 64.
    pub max_group_batches: usize,
    /// Most events in one group; a group closes early at this size. Default 50,000.
    pub max_group_events: usize,
    /// How long to wait for more batches once one has arrived, in
    /// milliseconds. Default 20: bigger inserts under load, little delay otherwise.
    pub linger_ms: u64,
    /// Distinct user agents kept parsed in memory. Default 20,000.
    pub ua_cache_size: usize,
    /// Publish every stored click as JSON on core NATS subject
    /// `<enriched_subject>.<org id>` (`crate::publish`), e.g.
    /// `clicks.enriched`. Default: none, nothing is published.
    pub enriched_subject: Option<String>,
    /// Parts of stored clicks waiting to be published; beyond, they are
    /// dropped (counted) rather than slow the inserts. Default 1024.
    pub enriched_queue: usize,
    /// A batch ClickHouse refuses on its own this many times (with backoff
    /// between tries) is parked in `parked_batches` and acked. Default 5.
    /// Unavailability (ClickHouse down) never counts.
    pub park_after_attempts: u32,
    /// Days a parked batch is kept; older ones are deleted at start and
    /// daily. Default 30.
    pub parked_retention_days: u32,
    /// Days raw `clicks` rows are kept, by whole months: a month's partition
    /// is dropped (at start and daily) once all of it is older. Default 90.
    pub raw_retention_days: u32,
    /// Days the rollups (`org_*_per_*_hll`) are kept, likewise. Default
    /// 730 (two years).
    pub rollup_retention_days: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nats: "nats://127.0.0.1:4222".into(),
            nats_user: None,
            nats_password_file: None,
            clickhouse: "http://127.0.0.1:8123".into(),
            clickhouse_user: None,
            clickhouse_password: None,
            database: "analytics".into(),
            clickhouse_replicated: false,
            clickhouse_insert_quorum: 0,
            geoip: Vec::new(),
            metrics: SocketAddr::from(([127, 0, 0, 1], 9100)),
            stream: snapshots::streams::CLICKS_STREAM.into(),
            subjects: snapshots::streams::CLICKS_SUBJECTS.into(),
            clicks_max_age_secs: 72 * 3600,
            clicks_max_bytes: 1 << 30,
            clicks_replicas: 1,
            adopt_stream: false,
            consumer: "analytics".into(),
            ack_wait_secs: 30,
            max_group_batches: 64,
            max_group_events: 50_000,
            linger_ms: 20,
            ua_cache_size: 20_000,
            enriched_subject: None,
            enriched_queue: 1024,
            park_after_attempts: 5,
            parked_retention_days: 30,
            raw_retention_days: 90,
            rollup_retention_days: 730,
        }
    }
}

/// Whether the NATS filter `filter` (`*` one token, `>` the rest) matches `subject`.
fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    for f in filter.split('.') {
        match (f, subject.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (f, Some(t)) if f == t => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

impl ServiceConfig for Config {
    /// Checks what can be checked without connecting anywhere.
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, problem: &str| Err(ConfigError::invalid(field, problem));
        match url::Url::parse(&self.clickhouse) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(_) => return invalid("clickhouse", "must be an http:// or https:// URL"),
            Err(e) => return invalid("clickhouse", &format!("not a URL: {e}")),
        }
        self.nats_settings().validate()?;
        if !is_identifier(&self.database) {
            return invalid(
                "database",
                "must be a plain identifier: ASCII letters, digits and _, not starting with a digit",
            );
        }
        if self.stream.is_empty()
            || self
                .stream
                .contains(|c: char| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
        {
            return invalid(
                "stream",
                "must be a JetStream stream name (no spaces, '.', '*', '>', '/', '\\')",
            );
        }
        if self.subjects.is_empty() || self.subjects.contains(char::is_whitespace) {
            return invalid("subjects", "must be a subject filter such as clicks.>");
        }
        if self.clicks_max_age_secs < DUPLICATE_WINDOW.as_secs() {
            return invalid(
                "clicks_max_age_secs",
                "must be at least 120 (the stream's duplicate window)",
            );
        }
        if self.clicks_max_bytes < 1 << 20 {
            return invalid("clicks_max_bytes", "must be at least 1048576 (1 MiB)");
        }
        if !(1..=5).contains(&self.clicks_replicas) {
            return invalid("clicks_replicas", "must be 1 to 5 (JetStream's limit)");
        }
        if self.consumer.is_empty()
            || self
                .consumer
                .contains(|c: char| c.is_whitespace() || matches!(c, '.' | '*' | '>'))
        {
            return invalid(
                "consumer",
                "must be a consumer name (no spaces, '.', '*', '>')",
            );
        }
        if self.clickhouse_insert_quorum > 0 && !self.clickhouse_replicated {
            return invalid(
                "clickhouse_insert_quorum",
                "needs clickhouse_replicated (a quorum is of replicas)",
            );
        }
        if self.clickhouse_password.is_some() && self.clickhouse_user.is_none() {
            return invalid("clickhouse_password", "needs clickhouse_user");
        }
        if self.ack_wait_secs < 2 {
            return invalid("ack_wait_secs", "must be at least 2");
        }
        if self.max_group_batches == 0 || self.max_group_events == 0 {
            return invalid("max_group_batches/max_group_events", "must be at least 1");
        }
        if self.ua_cache_size == 0 {
            return invalid("ua_cache_size", "must be at least 1");
        }
        if let Some(prefix) = &self.enriched_subject {
            let bad_token =
                |t: &str| t.is_empty() || t.contains(['*', '>']) || t.contains(char::is_whitespace);
            if prefix.split('.').any(bad_token) {
                return invalid(
                    "enriched_subject",
                    "must be a NATS subject without wildcards (e.g. enriched.clicks)",
                );
            }
            // Published clicks must not land in the click stream itself.
            let sample = format!("{prefix}.1");
            if self
                .subjects
                .split(',')
                .any(|f| subject_matches(f.trim(), &sample))
            {
                return invalid(
                    "enriched_subject",
                    "falls under the click stream's subjects; use another prefix (e.g. enriched.clicks)",
                );
            }
        }
        if self.enriched_queue == 0 {
            return invalid("enriched_queue", "must be at least 1");
        }
        if self.park_after_attempts == 0 {
            return invalid("park_after_attempts", "must be at least 1");
        }
        if self.parked_retention_days == 0 {
            return invalid("parked_retention_days", "must be at least 1");
        }
        if self.raw_retention_days == 0 {
            return invalid("raw_retention_days", "must be at least 1");
        }
        if self.rollup_retention_days < self.raw_retention_days {
            return invalid(
                "rollup_retention_days",
                "must be at least raw_retention_days (the rollups are rebuilt from raw clicks)",
            );
        }
        if let Some(path) = self.geoip.iter().find(|p| !p.is_file()) {
            return invalid(
                "geoip",
                &format!("{} is not a readable file", path.display()),
            );
        }
        Ok(())
    }
}

impl Config {
    /// Where NATS is and who the sidecar is there.
    pub fn nats_settings(&self) -> servicekit::nats::NatsSettings {
        servicekit::nats::NatsSettings {
            servers: self.nats.clone(),
            user: self.nats_user.clone(),
            password_file: self.nats_password_file.clone(),
        }
    }

    /// [`ack_wait_secs`](Self::ack_wait_secs) as a duration.
    pub fn ack_wait(&self) -> Duration {
        Duration::from_secs(self.ack_wait_secs)
    }

    /// How the sidecar's tables are made ([`clickhouse_replicated`](Self::clickhouse_replicated)).
    pub fn replication(&self) -> crate::schema::Replication {
        if self.clickhouse_replicated {
            crate::schema::Replication::Replicated
        } else {
            crate::schema::Replication::Single
        }
    }

    /// [`linger_ms`](Self::linger_ms) as a duration.
    pub fn linger(&self) -> Duration {
        Duration::from_millis(self.linger_ms)
    }

    /// [`clicks_max_age_secs`](Self::clicks_max_age_secs) as a duration.
    pub fn clicks_max_age(&self) -> Duration {
        Duration::from_secs(self.clicks_max_age_secs)
    }
}

/// ClickHouse identifiers the sidecar interpolates into DDL: nothing to escape.
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enriched_subject_stays_out_of_the_click_stream() {
        assert!(subject_matches("clicks.>", "clicks.enriched.1"));
        assert!(!subject_matches("clicks.>", "enriched.clicks.1"));
        assert!(subject_matches("a.*.c", "a.b.c"));
        assert!(!subject_matches("a.*", "a.b.c"));
        let with = |s: &str| Config {
            enriched_subject: Some(s.into()),
            ..Config::default()
        };
        assert!(with("enriched.clicks").validate().is_ok());
        assert_eq!(
            with("clicks.enriched").validate().unwrap_err().field(),
            Some("enriched_subject")
        );
        assert_eq!(
            with("a.>").validate().unwrap_err().field(),
            Some("enriched_subject")
        );
    }

    #[test]
    fn defaults_are_the_documented_ones_and_valid() {
        let c = Config::default();
        assert_eq!(c.nats, "nats://127.0.0.1:4222");
        assert_eq!(c.clickhouse, "http://127.0.0.1:8123");
        assert_eq!(c.database, "analytics");
        assert_eq!(c.metrics.to_string(), "127.0.0.1:9100");
        assert_eq!(c.stream, "CLICKS");
        assert_eq!(c.subjects, "clicks.>");
        assert_eq!(c.consumer, "analytics");
        assert_eq!(c.ack_wait(), Duration::from_secs(30));
        assert_eq!(c.clicks_max_age(), Duration::from_secs(72 * 3600));
        assert_eq!(c.clicks_max_bytes, 1024 * 1024 * 1024);
        assert!(!c.adopt_stream);
        assert!(!c.clickhouse_replicated);
        assert_eq!(c.clickhouse_insert_quorum, 0);
        assert_eq!(c.park_after_attempts, 5);
        assert_eq!(c.parked_retention_days, 30);
        assert_eq!((c.raw_retention_days, c.rollup_retention_days), (90, 730));
        assert!(c.geoip.is_empty());
        c.validate().unwrap();
        // An empty file means the defaults.
        assert_eq!(servicekit::config::from_toml::<Config>("").unwrap(), c);
    }

    #[test]
    fn the_example_file_is_the_defaults() {
        let c: Config =
            servicekit::config::from_toml(include_str!("../analytics.example.toml")).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn file_fields_override_and_unknown_fields_are_refused() {
        let c: Config =
            servicekit::config::from_toml("database = \"stats\"\nmetrics = \"127.0.0.1:0\"")
                .unwrap();
        assert_eq!(c.database, "stats");
        assert_eq!(c.metrics.port(), 0);
        assert_eq!(c.stream, "CLICKS");
        let err = servicekit::config::from_toml::<Config>("databse = \"x\"").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |f: fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            match c.validate() {
                Err(e) => e
                    .field()
                    .unwrap_or_else(|| panic!("expected invalid, got {e}")),
                Ok(()) => panic!("expected invalid, got Ok"),
            }
        };
        assert_eq!(bad(|c| c.database = "drop table".into()), "database");
        assert_eq!(bad(|c| c.clickhouse = "tcp://x:9000".into()), "clickhouse");
        assert_eq!(bad(|c| c.stream = "a.b".into()), "stream");
        assert_eq!(bad(|c| c.consumer = "".into()), "consumer");
        assert_eq!(bad(|c| c.geoip = vec!["/nonexistent.mmdb".into()]), "geoip");
        assert_eq!(bad(|c| c.ack_wait_secs = 0), "ack_wait_secs");
        assert_eq!(bad(|c| c.clicks_max_age_secs = 60), "clicks_max_age_secs");
        assert_eq!(bad(|c| c.clicks_max_bytes = -1), "clicks_max_bytes");
        assert_eq!(bad(|c| c.clicks_replicas = 0), "clicks_replicas");
        assert_eq!(bad(|c| c.park_after_attempts = 0), "park_after_attempts");
        assert_eq!(
            bad(|c| c.clickhouse_insert_quorum = 2),
            "clickhouse_insert_quorum"
        );
        assert_eq!(
            bad(|c| c.parked_retention_days = 0),
            "parked_retention_days"
        );
        assert_eq!(bad(|c| c.raw_retention_days = 0), "raw_retention_days");
        assert_eq!(
            bad(|c| c.rollup_retention_days = 30),
            "rollup_retention_days"
        );
    }
}
