//! `control serve` configuration on the shared pattern
//! ([`servicekit::config`]): defaults, an optional TOML file, flags, one
//! validation before anything connects.

use serde::Deserialize;
use servicekit::{ConfigError, ServiceConfig};
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
    /// NATS URL, or several comma-separated (a cluster). `None` (default): no
    /// change relay runs; the outbox keeps filling.
    pub nats: Option<String>,
    /// NATS user of this role (the deploy's is `control`). Default: none,
    /// anonymous (a development server without users).
    pub nats_user: Option<String>,
    /// File holding that user's password; without it `NATS_PASSWORD` is
    /// read. Default: none.
    pub nats_password_file: Option<PathBuf>,
    /// Ed25519 private key (PKCS#8 PEM, `openssl genpkey -algorithm ed25519`)
    /// that signs every link change the relay publishes; engines apply only
    /// changes signed by a key they trust. Required with `nats` unless
    /// `allow_unsigned_links`. Default: none.
    pub links_signing_key: Option<PathBuf>,
    /// Publish link changes unsigned (development only: engines then need
    /// their own `allow_unsigned_links`). Default false.
    pub allow_unsigned_links: bool,
    /// JetStream stream for link changes. Default `LINKS`.
    pub links_stream: String,
    /// Subject of that stream. Default `links.changes`.
    pub links_subject: String,
    /// Subject prefix engines ask for visit leases on (every instance
    /// answers `<lease_subject>.*`; docs/max-visits.md). Default
    /// `links.lease`.
    pub lease_subject: String,
    /// Oldest change the stream keeps, seconds. Default 604800 (7 days); at
    /// least 10 snapshot intervals, so an engine that loads any kept snapshot
    /// finds every later change still in the stream.
    pub links_stream_max_age_secs: u64,
    /// Most bytes the stream keeps (oldest changes dropped first). Default
    /// 1073741824 (1 GiB).
    pub links_stream_max_bytes: i64,
    /// When the stream exists with other settings: `false` (default) refuses
    /// to relay into it (logged, `control_links_stream_mismatch` 1, `/readyz`
    /// says why); `true` updates it to these settings.
    pub links_stream_adopt: bool,
    /// Copies of the stream a JetStream cluster keeps (1 to 5; at most the
    /// cluster's size). Default 1 (a single server); a three-node cluster
    /// sets 3, so the stream survives the loss of any one node. A stream
    /// with another count is refused or adopted like any other setting.
    pub links_stream_replicas: usize,
    /// ClickHouse HTTP URL. `None` (default): the stats endpoints answer 503.
    pub clickhouse: Option<String>,
    /// ClickHouse database holding `clicks`. Default `analytics`.
    pub clickhouse_database: String,
    /// Public base of short links, e.g. `https://sho.rt`. Default `http://127.0.0.1:8080`.
    pub short_base: String,
    /// Accept targets on loopback, private and link-local addresses (and
    /// `localhost`). Default `false`: public hosts only.
    pub allow_private_targets: bool,
    /// The deployment's default domain (`sho.rt`): the name of domain 0,
    /// which links without a `domain` (and every link made before domains)
    /// live on. Lowercase ASCII, punycode for internationalised names.
    /// Nobody may claim it or its subdomains. Default: none (unnamed; the
    /// engines then answer every host name as the default domain).
    pub default_domain: Option<String>,
    /// What proves an organization may have a domain: `dns-txt` (a TXT
    /// record `_links-verification.NAME` holding the domain's token: control
    /// of the zone), `http` (the token served at
    /// `http://NAME/.well-known/links-domain-verification/TOKEN` by the
    /// engines: only that the name routes here) or `both`. Default `dns-txt`:
    /// with `http` alone, a name someone else still points here (a dangling
    /// CNAME after they left) can be claimed by anyone.
    pub domain_verification: DomainVerification,
    /// The DNS server (`ADDR:PORT`, UDP and TCP) TXT records are looked up
    /// at. Default: none, the system's resolvers (`/etc/resolv.conf`).
    pub dns_server: Option<SocketAddr>,
    /// Test and operations only: `NAME=ADDR:PORT` makes the domain
    /// verification fetch for NAME connect to ADDR:PORT (like curl's
    /// `--connect-to`), for names without DNS. Default: none.
    pub verify_resolve: Vec<ResolveOverride>,
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
    /// Milliseconds between tries of an instance that is not the leader to
    /// take the leadership lock, and between the leader's checks that it
    /// still holds it (`crate::leader`): about the longest a handover takes
    /// after a leader dies. Default 1000.
    pub leader_retry_ms: u64,
    /// Serve the API only and never take the leadership (`crate::leader`):
    /// for instances added to scale the API beside ones that run the
    /// deployment-wide tasks. Default false.
    pub api_only: bool,
    /// Length of generated codes. Default 7 (62^7 ≈ 3.5e12 codes).
    pub code_length: usize,
    /// Seconds after its deletion, or its expiry (links without an
    /// `expired_url`), that a link is purged from PostgreSQL, the snapshots
    /// and the engines. Default 2592000 (30 days).
    pub purge_after_secs: u64,
    /// Seconds between purge rounds. Default 3600.
    pub purge_interval_secs: u64,
    /// Seconds a link's click total (from ClickHouse) is cached. Default 60.
    pub click_totals_ttl_secs: u64,
    /// Where export files are written (`crate::exports`); with several
    /// instances, storage they all share, or downloads reaching another
    /// instance than the writer answer 503. Default `./exports`.
    pub export_dir: PathBuf,
    /// Seconds an export's file is kept after it is done. Default 86400 (a day).
    pub export_ttl_secs: u64,
    /// Exports an organization may have queued or running at once (429
    /// beyond). Default 2.
    pub export_max_active: u32,
    /// Longest range of one export, days. Default 366.
    pub export_max_range_days: u64,
    /// Export jobs this instance runs at once (0: none; jobs run on other
    /// instances). Default 1.
    pub export_workers: usize,
    /// Largest request body, bytes; a larger one gets 413. Default 1048576 (1 MiB).
    pub max_body_bytes: usize,
    /// Token bucket per API key: sustained requests per second. Default 50.
    pub rate_per_key: f64,
    /// Token bucket per API key: burst. Default 100.
    pub burst_per_key: u32,
    /// Token bucket per client IP: sustained requests per second. Default 100.
    pub rate_per_ip: f64,
    /// Token bucket per client IP: burst. Default 200.
    pub burst_per_ip: u32,

    // --- accounts (users, sessions, mail, CORS) ---
    /// Public URL of this API as browsers reach it, e.g.
    /// `https://links.example.com`. Default `http://127.0.0.1:8000`. Three
    /// uses: the links in invitation and reset mails; the origin a
    /// cookie-authenticated write must come from; and the session cookie's
    /// `Secure` attribute, set when this is `https` (the cookie is then
    /// named `__Host-session`). `http` is accepted only for a loopback host
    /// (plain-http local development such as `deploy/up.sh`), so a cookie
    /// never travels in clear across a network.
    pub public_url: String,
    /// A session ends after this many seconds without a request. Default 43200 (12 h).
    pub session_idle_secs: u64,
    /// A session ends this many seconds after sign-in, used or not. Default 604800 (7 days).
    pub session_absolute_secs: u64,
    /// Sign-in attempts per second per client IP (token bucket). Default 0.2 (one per 5 s).
    pub login_rate_per_ip: f64,
    /// Sign-in attempts per client IP: burst. Default 20.
    pub login_burst_per_ip: u32,
    /// Sign-in attempts per second per e-mail address, whether or not an
    /// account has it. Default 0.0167 (one a minute).
    pub login_rate_per_email: f64,
    /// Sign-in attempts per e-mail address: burst. Default 10.
    pub login_burst_per_email: u32,
    /// Origins (`https://dash.example.com`) whose pages may call this API
    /// from a browser with credentials (CORS). Default none: same-origin only.
    pub cors_origins: Vec<String>,
    /// SMTP server for invitation and reset mails, as lettre reads it:
    /// `smtps://user@host:465` or `smtp://user@host:587?tls=required`.
    /// Default none: mails are written to the log.
    pub smtp_url: Option<String>,
    /// File holding the SMTP password; without it `SMTP_PASSWORD` is read. Default none.
    pub smtp_password_file: Option<PathBuf>,
    /// Sender of those mails. Default `shortener <no-reply@localhost>`.
    pub mail_from: String,

    // --- certificates by ACME (crate::acme) ---
    /// ACME directory URL (`https://acme-v02.api.letsencrypt.org/directory`).
    /// Default none: no certificates are ordered, and the certificate routes
    /// answer 503.
    pub acme_directory: Option<String>,
    /// Contacts of the ACME account (`mailto:ops@example.com`), for the CA's
    /// expiry and policy mails. Default none.
    pub acme_contact: Vec<String>,
    /// PEM root certificate the ACME directory's own https is checked
    /// against instead of the system's roots: a test CA's (pebble's). Default
    /// none: the system's roots.
    pub acme_ca_root: Option<PathBuf>,
    /// File with the 32-byte key (64 hex digits, mode 0600) that seals the
    /// ACME account key and every certificate's private key in PostgreSQL.
    /// Required with `acme_directory`. Default none.
    pub acme_key_file: Option<PathBuf>,
    /// Seconds between looks for certificates due (issuance requested, 2/3
    /// of a lifetime passed, a retry due); a request over the API wakes the
    /// task at once. Default 60.
    pub acme_check_interval_secs: u64,
    /// Seconds before the first retry of a failed order; each further
    /// failure doubles it, up to a day. Default 300.
    pub acme_retry_base_secs: u64,
    /// Seconds to wait for every engine to serve a challenge answer before
    /// asking the CA to validate. Default 60.
    pub acme_publish_timeout_secs: u64,

    // --- webhooks (crate::webhooks) ---
    /// File with the 32-byte key (64 hex digits, mode 0600; `openssl rand
    /// -hex 32`) that seals webhook signing secrets in PostgreSQL (as
    /// `acme_key_file` seals certificate keys). Default none: the webhook
    /// routes answer 503 and nothing is delivered.
    pub webhook_key_file: Option<PathBuf>,
    /// Accept webhook URLs over plain http and on loopback, private and
    /// link-local addresses (development and tests). Default `false`:
    /// https to public addresses only, checked again at every connection.
    pub allow_private_webhooks: bool,
    /// Milliseconds a delivery may take (connect to end of answer) before it
    /// counts as a failure. Default 10000.
    pub webhook_timeout_ms: u64,
    /// Backoff before the second attempt, milliseconds; each further retry
    /// doubles it up to `webhook_retry_cap_ms`, and the wait is drawn at
    /// random between 0 and that (full jitter). Default 30000.
    pub webhook_retry_base_ms: u64,
    /// Longest backoff, milliseconds. Default 1800000 (30 min): 8 attempts
    /// then span at most about an hour.
    pub webhook_retry_cap_ms: u64,
    /// Attempts before a delivery becomes a dead letter. Default 8.
    pub webhook_max_attempts: u32,
    /// Failures in a row that open an endpoint's circuit breaker. Default 5.
    pub webhook_breaker_failures: u32,
    /// Milliseconds an open breaker waits before one probe delivery
    /// (half-open). Default 60000.
    pub webhook_breaker_cooldown_ms: u64,
    /// Deliveries this instance sends at once (0: none; other instances
    /// deliver). Default 8.
    pub webhook_concurrency: usize,
    /// Milliseconds between looks for due deliveries when no link write
    /// wakes the sender. Default 1000.
    pub webhook_poll_ms: u64,
    /// The analytics sidecar's enriched-click subject prefix (its
    /// `enriched_subject`, e.g. `enriched.clicks`). With `nats` and
    /// `webhook_key_file`, control keeps the JetStream stream
    /// `enriched_stream` on `<prefix>.>` and sends `link.clicked` webhooks
    /// from it through a durable consumer all instances share
    /// (`crate::webhooks::clicks`). Default: none, `link.clicked` is not sent.
    pub enriched_subject: Option<String>,
    /// The stream that keeps the enriched clicks for control (control owns
    /// its settings; `links_stream_replicas` and `links_stream_adopt` apply
    /// to it too). Default `ENRICHED`.
    pub enriched_stream: String,
    /// Oldest click that stream keeps, seconds: clicks older than that when
    /// control gets to them (it was down longer) are not sent. Default
    /// 86400 (a day).
    pub enriched_stream_max_age_secs: u64,
    /// Most bytes that stream keeps (oldest clicks dropped first). Default
    /// 1073741824 (1 GiB).
    pub enriched_stream_max_bytes: i64,
    /// Most clicks in one `link.clicked` event. Default 100.
    pub webhook_click_batch: usize,
    /// Longest a click waits for its event to fill, milliseconds. Default
    /// 1000.
    pub webhook_click_wait_ms: u64,
    /// Seconds a delivered delivery, and an event no delivery needs any
    /// more, are kept (`crate::webhooks::prune`); pending deliveries and
    /// dead letters stay. Default 604800 (7 days).
    pub webhook_retention_secs: u64,
    /// Seconds between the leader's pruning rounds. Default 3600.
    pub webhook_prune_interval_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8000".parse().expect("literal address"),
            database_url: "postgres://postgres@127.0.0.1:5432/shortener".into(),
            nats: None,
            links_stream: snapshots::streams::LINKS_STREAM.into(),
            links_subject: snapshots::streams::LINKS_SUBJECT.into(),
            lease_subject: snapshots::lease::DEFAULT_LEASE_SUBJECT.into(),
            links_stream_max_age_secs: 7 * 24 * 3600,
            links_stream_max_bytes: 1 << 30,
            links_stream_adopt: false,
            links_stream_replicas: 1,
            nats_user: None,
            nats_password_file: None,
            links_signing_key: None,
            allow_unsigned_links: false,
            clickhouse: None,
            clickhouse_database: "analytics".into(),
            short_base: "http://127.0.0.1:8080".into(),
            allow_private_targets: false,
            default_domain: None,
            domain_verification: DomainVerification::DnsTxt,
            dns_server: None,
            verify_resolve: Vec::new(),
            engine_admin: Vec::new(),
            engine_admin_token: None,
            snapshot_dir: PathBuf::from("snapshots"),
            snapshot_interval_secs: 300,
            snapshot_keep: 5,
            reconcile_interval_secs: 2,
            leader_retry_ms: 1000,
            api_only: false,
            code_length: 7,
            purge_after_secs: 30 * 24 * 3600,
            purge_interval_secs: 3600,
            click_totals_ttl_secs: 60,
            export_dir: PathBuf::from("exports"),
            export_ttl_secs: 86_400,
            export_max_active: 2,
            export_max_range_days: 366,
            export_workers: 1,
            max_body_bytes: 1 << 20,
            rate_per_key: 50.0,
            burst_per_key: 100,
            rate_per_ip: 100.0,
            burst_per_ip: 200,
            public_url: "http://127.0.0.1:8000".into(),
            session_idle_secs: 12 * 3600,
            session_absolute_secs: 7 * 24 * 3600,
            login_rate_per_ip: 0.2,
            login_burst_per_ip: 20,
            login_rate_per_email: 1.0 / 60.0,
            login_burst_per_email: 10,
            cors_origins: Vec::new(),
            smtp_url: None,
            smtp_password_file: None,
            mail_from: "shortener <no-reply@localhost>".into(),
            acme_directory: None,
            acme_contact: Vec::new(),
            acme_ca_root: None,
            acme_key_file: None,
            acme_check_interval_secs: 60,
            acme_retry_base_secs: 300,
            acme_publish_timeout_secs: 60,
            webhook_key_file: None,
            allow_private_webhooks: false,
            webhook_timeout_ms: 10_000,
            webhook_retry_base_ms: 30_000,
            webhook_retry_cap_ms: 30 * 60 * 1000,
            webhook_max_attempts: 8,
            webhook_breaker_failures: 5,
            webhook_breaker_cooldown_ms: 60_000,
            webhook_concurrency: 8,
            webhook_poll_ms: 1000,
            enriched_subject: None,
            enriched_stream: "ENRICHED".into(),
            enriched_stream_max_age_secs: 86_400,
            enriched_stream_max_bytes: 1 << 30,
            webhook_click_batch: 100,
            webhook_click_wait_ms: 1000,
            webhook_retention_secs: 7 * 24 * 3600,
            webhook_prune_interval_secs: 3600,
        }
    }
}

/// How many snapshot intervals the stream must cover at least.
pub const STREAM_AGE_INTERVALS: u64 = 10;

/// What proves an organization may have a domain ([`Config::domain_verification`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DomainVerification {
    /// The token in a TXT record at `_links-verification.NAME`.
    DnsTxt,
    /// The token served by the engines at the well-known path.
    Http,
    /// Both.
    Both,
}

impl DomainVerification {
    pub fn needs_dns(self) -> bool {
        matches!(self, DomainVerification::DnsTxt | DomainVerification::Both)
    }

    pub fn needs_http(self) -> bool {
        matches!(self, DomainVerification::Http | DomainVerification::Both)
    }
}

/// A `verify_resolve` entry: the verification fetch for `name` connects to
/// `addr`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ResolveOverride {
    pub name: String,
    pub addr: SocketAddr,
}

impl TryFrom<String> for ResolveOverride {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for ResolveOverride {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, addr) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not NAME=ADDR:PORT"))?;
        let addr = addr
            .parse()
            .map_err(|e| format!("{addr:?} in {s:?} is not ADDR:PORT: {e}"))?;
        Ok(ResolveOverride {
            name: name.trim().to_ascii_lowercase(),
            addr,
        })
    }
}

impl ServiceConfig for Config {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(name) = &self.default_domain
            && let Err(e) = snapshots::domain::validate_name(name)
        {
            return Err(ConfigError::invalid(
                "default_domain",
                format!("{name:?}: {e}"),
            ));
        }
        if !(5..=32).contains(&self.code_length) {
            return Err(ConfigError::invalid(
                "code_length",
                format!(
                    "{} is out of range 5..=32 (short codes must stay hard to guess)",
                    self.code_length
                ),
            ));
        }
        match url::Url::parse(&self.short_base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => {
                return Err(ConfigError::invalid(
                    "short_base",
                    format!(
                        "{:?} is not an absolute http(s) URL with a host",
                        self.short_base
                    ),
                ));
            }
        }
        for (name, value) in [
            ("burst_per_key", self.burst_per_key as u64),
            ("burst_per_ip", self.burst_per_ip as u64),
            ("snapshot_interval_secs", self.snapshot_interval_secs),
            ("reconcile_interval_secs", self.reconcile_interval_secs),
            ("leader_retry_ms", self.leader_retry_ms),
            ("purge_after_secs", self.purge_after_secs),
            ("purge_interval_secs", self.purge_interval_secs),
            ("click_totals_ttl_secs", self.click_totals_ttl_secs),
            ("export_ttl_secs", self.export_ttl_secs),
            ("export_max_active", u64::from(self.export_max_active)),
            ("export_max_range_days", self.export_max_range_days),
            ("snapshot_keep", self.snapshot_keep as u64),
            ("max_body_bytes", self.max_body_bytes as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(name, "must be at least 1, got 0"));
            }
        }
        for (name, value) in [
            ("rate_per_key", self.rate_per_key),
            ("rate_per_ip", self.rate_per_ip),
        ] {
            if !(value > 0.0 && value.is_finite()) {
                return Err(ConfigError::invalid(
                    name,
                    format!("must be a positive number of requests per second, got {value}"),
                ));
            }
        }
        let min_age = self
            .snapshot_interval_secs
            .saturating_mul(STREAM_AGE_INTERVALS);
        if self.links_stream_max_age_secs < min_age {
            return Err(ConfigError::invalid(
                "links_stream_max_age_secs",
                format!(
                    "{} s is shorter than {STREAM_AGE_INTERVALS} snapshot intervals ({min_age} s): \
                     an engine on an older snapshot would miss changes",
                    self.links_stream_max_age_secs
                ),
            ));
        }
        if self.links_stream_max_bytes < 1 << 20 {
            return Err(ConfigError::invalid(
                "links_stream_max_bytes",
                format!("{} is below 1 MiB (1048576)", self.links_stream_max_bytes),
            ));
        }
        if !(1..=5).contains(&self.links_stream_replicas) {
            return Err(ConfigError::invalid(
                "links_stream_replicas",
                format!(
                    "{} is out of range 1..=5 (JetStream's limit)",
                    self.links_stream_replicas
                ),
            ));
        }
        if let Some(nats) = self.nats_settings() {
            nats.validate()?;
            if self.links_signing_key.is_none() && !self.allow_unsigned_links {
                return Err(ConfigError::invalid(
                    "links_signing_key",
                    "required with nats: engines apply only signed link changes \
                     (openssl genpkey -algorithm ed25519 -out links-signing.pem); \
                     allow_unsigned_links is for development",
                ));
            }
        }
        self.links_signer()?;
        self.validate_accounts()?;
        self.validate_acme()?;
        self.validate_webhooks()?;
        Ok(())
    }
}

impl Config {
    /// The webhook settings.
    fn validate_webhooks(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("webhook_timeout_ms", self.webhook_timeout_ms),
            ("webhook_retry_base_ms", self.webhook_retry_base_ms),
            ("webhook_retry_cap_ms", self.webhook_retry_cap_ms),
            ("webhook_max_attempts", u64::from(self.webhook_max_attempts)),
            (
                "webhook_breaker_failures",
                u64::from(self.webhook_breaker_failures),
            ),
            (
                "webhook_breaker_cooldown_ms",
                self.webhook_breaker_cooldown_ms,
            ),
            ("webhook_poll_ms", self.webhook_poll_ms),
            ("webhook_retention_secs", self.webhook_retention_secs),
            (
                "webhook_prune_interval_secs",
                self.webhook_prune_interval_secs,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(name, "must be at least 1, got 0"));
            }
        }
        if self.webhook_retry_cap_ms < self.webhook_retry_base_ms {
            return Err(ConfigError::invalid(
                "webhook_retry_cap_ms",
                format!(
                    "{} ms is below webhook_retry_base_ms ({} ms)",
                    self.webhook_retry_cap_ms, self.webhook_retry_base_ms
                ),
            ));
        }
        if self.webhook_max_attempts > 100 {
            return Err(ConfigError::invalid(
                "webhook_max_attempts",
                format!("{} is over 100", self.webhook_max_attempts),
            ));
        }
        self.validate_enriched()
    }

    /// The `link.clicked` source: off, or everything it needs.
    fn validate_enriched(&self) -> Result<(), ConfigError> {
        if !(1..=1000).contains(&self.webhook_click_batch) {
            return Err(ConfigError::invalid(
                "webhook_click_batch",
                format!("{} is out of range 1..=1000", self.webhook_click_batch),
            ));
        }
        if self.webhook_click_wait_ms == 0 {
            return Err(ConfigError::invalid(
                "webhook_click_wait_ms",
                "must be at least 1, got 0",
            ));
        }
        let Some(prefix) = &self.enriched_subject else {
            return Ok(());
        };
        let tokens: Vec<&str> = prefix.split('.').collect();
        if tokens.iter().any(|t| {
            t.is_empty() || t.contains(|c: char| c == '*' || c == '>' || c.is_whitespace())
        }) {
            return Err(ConfigError::invalid(
                "enriched_subject",
                format!(
                    "{prefix:?} is not a NATS subject without wildcards (e.g. enriched.clicks)"
                ),
            ));
        }
        // The stream takes `<prefix>.>`: it may not overlap the other streams.
        let under = |subject: &str| subject.starts_with(&format!("{prefix}."));
        if tokens[0] == snapshots::streams::CLICKS_SUBJECT_PREFIX || under(&self.links_subject) {
            return Err(ConfigError::invalid(
                "enriched_subject",
                format!(
                    "{prefix:?} overlaps the click or link stream's subjects \
                     (use the sidecar's, e.g. enriched.clicks)"
                ),
            ));
        }
        if self.nats.is_none() {
            return Err(ConfigError::invalid(
                "enriched_subject",
                "needs nats (the enriched clicks come through JetStream)",
            ));
        }
        if self.webhook_key_file.is_none() {
            return Err(ConfigError::invalid(
                "enriched_subject",
                "needs webhook_key_file (the clicks are sent as webhooks)",
            ));
        }
        if let Some(c) = self
            .enriched_stream
            .chars()
            .find(|&c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
        {
            return Err(ConfigError::invalid(
                "enriched_stream",
                format!("{c:?} is not allowed in a stream name"),
            ));
        }
        if self.enriched_stream.is_empty() || self.enriched_stream == self.links_stream {
            return Err(ConfigError::invalid(
                "enriched_stream",
                "must be a name of its own (not links_stream)",
            ));
        }
        if self.enriched_stream_max_age_secs < 60 {
            return Err(ConfigError::invalid(
                "enriched_stream_max_age_secs",
                format!("{} is below 60", self.enriched_stream_max_age_secs),
            ));
        }
        if self.enriched_stream_max_bytes < 1 << 20 {
            return Err(ConfigError::invalid(
                "enriched_stream_max_bytes",
                format!(
                    "{} is below 1 MiB (1048576)",
                    self.enriched_stream_max_bytes
                ),
            ));
        }
        Ok(())
    }

    pub fn webhook_retention(&self) -> Duration {
        Duration::from_secs(self.webhook_retention_secs)
    }

    pub fn webhook_prune_interval(&self) -> Duration {
        Duration::from_secs(self.webhook_prune_interval_secs)
    }

    pub fn webhook_click_wait(&self) -> Duration {
        Duration::from_millis(self.webhook_click_wait_ms)
    }

    pub fn webhook_timeout(&self) -> Duration {
        Duration::from_millis(self.webhook_timeout_ms)
    }

    pub fn webhook_poll(&self) -> Duration {
        Duration::from_millis(self.webhook_poll_ms)
    }
}

impl Config {
    /// The ACME settings: all or nothing.
    fn validate_acme(&self) -> Result<(), ConfigError> {
        let Some(directory) = &self.acme_directory else {
            for (name, set) in [
                ("acme_contact", !self.acme_contact.is_empty()),
                ("acme_ca_root", self.acme_ca_root.is_some()),
                ("acme_key_file", self.acme_key_file.is_some()),
            ] {
                if set {
                    return Err(ConfigError::invalid(
                        name,
                        "is set without acme_directory (ACME is off)",
                    ));
                }
            }
            return Ok(());
        };
        match url::Url::parse(directory) {
            Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
            _ => {
                return Err(ConfigError::invalid(
                    "acme_directory",
                    format!("{directory:?} is not an https URL (ACME requires https)"),
                ));
            }
        }
        if self.acme_key_file.is_none() {
            return Err(ConfigError::invalid(
                "acme_key_file",
                "required with acme_directory: it seals the account and certificate keys \
                 in PostgreSQL (openssl rand -hex 32 > acme.key; chmod 600 acme.key)",
            ));
        }
        for contact in &self.acme_contact {
            if !contact.starts_with("mailto:") || contact.len() < 10 {
                return Err(ConfigError::invalid(
                    "acme_contact",
                    format!("{contact:?} is not a mailto: URL (mailto:ops@example.com)"),
                ));
            }
        }
        for (name, value) in [
            ("acme_check_interval_secs", self.acme_check_interval_secs),
            ("acme_retry_base_secs", self.acme_retry_base_secs),
            ("acme_publish_timeout_secs", self.acme_publish_timeout_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(name, "must be at least 1, got 0"));
            }
        }
        Ok(())
    }

    /// The accounts settings (a block of its own).
    fn validate_accounts(&self) -> Result<(), ConfigError> {
        public_origin(&self.public_url)?;
        if self.session_idle_secs < 60 {
            return Err(ConfigError::invalid(
                "session_idle_secs",
                format!("{} s is under a minute", self.session_idle_secs),
            ));
        }
        if self.session_absolute_secs < self.session_idle_secs {
            return Err(ConfigError::invalid(
                "session_absolute_secs",
                format!(
                    "{} s is shorter than session_idle_secs ({} s)",
                    self.session_absolute_secs, self.session_idle_secs
                ),
            ));
        }
        for (name, rate, burst_name, burst) in [
            (
                "login_rate_per_ip",
                self.login_rate_per_ip,
                "login_burst_per_ip",
                self.login_burst_per_ip,
            ),
            (
                "login_rate_per_email",
                self.login_rate_per_email,
                "login_burst_per_email",
                self.login_burst_per_email,
            ),
        ] {
            if !(rate > 0.0 && rate.is_finite()) {
                return Err(ConfigError::invalid(
                    name,
                    format!("must be a positive number of attempts per second, got {rate}"),
                ));
            }
            if burst == 0 {
                return Err(ConfigError::invalid(
                    burst_name,
                    "must be at least 1, got 0",
                ));
            }
        }
        for origin in &self.cors_origins {
            check_origin(origin).map_err(|e| ConfigError::invalid("cors_origins", e))?;
        }
        if let Some(url) = &self.smtp_url {
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "smtp" | "smtps") && u.host_str().is_some() => {}
                _ => {
                    return Err(ConfigError::invalid(
                        "smtp_url",
                        format!("{url:?} is not an smtp:// or smtps:// URL with a host"),
                    ));
                }
            }
            if url::Url::parse(url).is_ok_and(|u| u.password().is_some()) {
                return Err(ConfigError::invalid(
                    "smtp_url",
                    "holds a password; put it in smtp_password_file (or SMTP_PASSWORD)",
                ));
            }
        }
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::invalid(
                "mail_from",
                format!(
                    "{:?} is not a mailbox (`Name <user@host>` or `user@host`)",
                    self.mail_from
                ),
            ));
        }
        Ok(())
    }

    /// The origin of `public_url` (`scheme://host[:port]`), which
    /// cookie-authenticated writes must come from.
    pub fn public_origin(&self) -> String {
        public_origin(&self.public_url).unwrap_or_default()
    }

    /// Whether session cookies are `Secure` (`public_url` is https).
    pub fn cookie_secure(&self) -> bool {
        url::Url::parse(&self.public_url).is_ok_and(|u| u.scheme() == "https")
    }

    /// `public_url` without a trailing slash.
    pub fn public_url_trimmed(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }

    pub fn session_idle(&self) -> Duration {
        Duration::from_secs(self.session_idle_secs)
    }

    pub fn session_absolute(&self) -> Duration {
        Duration::from_secs(self.session_absolute_secs)
    }
}

/// The origin of the public URL, or why it cannot be one.
fn public_origin(public_url: &str) -> Result<String, ConfigError> {
    let invalid = |why: String| ConfigError::invalid("public_url", why);
    let u = url::Url::parse(public_url)
        .map_err(|e| invalid(format!("{public_url:?} is not a URL: {e}")))?;
    let Some(host) = u.host() else {
        return Err(invalid(format!("{public_url:?} has no host")));
    };
    match u.scheme() {
        "https" => {}
        "http" => {
            let loopback = match host {
                url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
                url::Host::Ipv4(a) => a.is_loopback(),
                url::Host::Ipv6(a) => a.is_loopback(),
            };
            if !loopback {
                return Err(invalid(format!(
                    "{public_url:?} is plain http on a host that is not loopback: session \
                     cookies would cross the network in clear; use https"
                )));
            }
        }
        _ => return Err(invalid(format!("{public_url:?} is not http(s)"))),
    }
    if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
        return Err(invalid(format!(
            "{public_url:?} must not hold a query, fragment or user"
        )));
    }
    Ok(u.origin().ascii_serialization())
}

/// Checks one CORS origin: `scheme://host[:port]` exactly, never `*`.
pub fn check_origin(origin: &str) -> Result<(), String> {
    let u = url::Url::parse(origin).map_err(|e| format!("{origin:?} is not an origin: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err(format!("{origin:?} is not an http(s) origin"));
    }
    if u.origin().ascii_serialization() != origin {
        return Err(format!(
            "{origin:?} is not an origin as browsers send it (scheme://host[:port], no path \
             or trailing slash, lowercase host): {:?}",
            u.origin().ascii_serialization()
        ));
    }
    Ok(())
}

impl Config {
    /// Where NATS is and who control is there; `None` without `nats`.
    pub fn nats_settings(&self) -> Option<servicekit::nats::NatsSettings> {
        Some(servicekit::nats::NatsSettings {
            servers: self.nats.clone()?,
            user: self.nats_user.clone(),
            password_file: self.nats_password_file.clone(),
        })
    }

    /// The key that signs link changes, read from `links_signing_key`.
    pub fn links_signer(&self) -> Result<Option<snapshots::signing::DeltaSigner>, ConfigError> {
        self.links_signing_key
            .as_deref()
            .map(snapshots::signing::DeltaSigner::from_pem_file)
            .transpose()
            .map_err(|e| ConfigError::invalid("links_signing_key", e.to_string()))
    }
}

impl Config {
    /// The short base without a trailing slash.
    pub fn short_base_trimmed(&self) -> &str {
        self.short_base.trim_end_matches('/')
    }

    pub fn purge_after(&self) -> Duration {
        Duration::from_secs(self.purge_after_secs)
    }

    pub fn purge_interval(&self) -> Duration {
        Duration::from_secs(self.purge_interval_secs)
    }

    pub fn click_totals_ttl(&self) -> Duration {
        Duration::from_secs(self.click_totals_ttl_secs)
    }

    pub fn snapshot_interval(&self) -> Duration {
        Duration::from_secs(self.snapshot_interval_secs)
    }

    pub fn reconcile_interval(&self) -> Duration {
        Duration::from_secs(self.reconcile_interval_secs)
    }

    pub fn leader_retry(&self) -> Duration {
        Duration::from_millis(self.leader_retry_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acme_settings_come_together() {
        let field = |c: Config| c.validate().unwrap_err().field();
        let acme = || Config {
            acme_directory: Some("https://ca.example/dir".into()),
            acme_key_file: Some("/etc/control/acme.key".into()),
            ..Config::default()
        };
        acme().validate().unwrap();
        for (c, name) in [
            (
                Config {
                    acme_key_file: None,
                    ..acme()
                },
                "acme_key_file",
            ),
            (
                Config {
                    acme_directory: Some("http://ca.example/dir".into()),
                    ..acme()
                },
                "acme_directory",
            ),
            (
                Config {
                    acme_contact: vec!["ops@example.com".into()],
                    ..acme()
                },
                "acme_contact",
            ),
            (
                Config {
                    acme_retry_base_secs: 0,
                    ..acme()
                },
                "acme_retry_base_secs",
            ),
            (
                Config {
                    acme_directory: None,
                    ..acme()
                },
                "acme_key_file",
            ),
            (
                Config {
                    acme_ca_root: Some("/tmp/root.pem".into()),
                    ..Config::default()
                },
                "acme_ca_root",
            ),
        ] {
            assert_eq!(field(c), Some(name));
        }
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8000");
        assert_eq!(c.links_stream, "LINKS");
        assert_eq!(c.clickhouse_database, "analytics");
        assert_eq!(c.code_length, 7);
        assert_eq!(c.max_body_bytes, 1_048_576);
        assert_eq!(c.links_stream_max_age_secs, 604_800);
        assert!(!c.allow_private_targets);
        assert_eq!(c.enriched_subject, None);
        assert_eq!(c.enriched_stream, "ENRICHED");
        assert_eq!(c.webhook_click_batch, 100);
        assert_eq!(c.webhook_click_wait_ms, 1000);
        assert_eq!(c.webhook_retention_secs, 604_800);
    }

    #[test]
    fn link_clicked_needs_nats_webhooks_and_a_subject_of_its_own() {
        let on = || Config {
            nats: Some("nats://127.0.0.1:4222".into()),
            allow_unsigned_links: true,
            webhook_key_file: Some("/etc/shortener/webhooks.key".into()),
            enriched_subject: Some("enriched.clicks".into()),
            ..Config::default()
        };
        on().validate().unwrap();
        let refused = |tweak: fn(&mut Config)| {
            let mut c = on();
            tweak(&mut c);
            c.validate().unwrap_err().field()
        };
        assert_eq!(refused(|c| c.nats = None), Some("enriched_subject"));
        assert_eq!(
            refused(|c| c.webhook_key_file = None),
            Some("enriched_subject")
        );
        for subject in ["clicks.enriched", "links", "enriched.*", "enriched.", "a b"] {
            let mut c = on();
            c.enriched_subject = Some(subject.into());
            assert_eq!(
                c.validate().unwrap_err().field(),
                Some("enriched_subject"),
                "{subject}"
            );
        }
        assert_eq!(
            refused(|c| c.enriched_stream = "LINKS".into()),
            Some("enriched_stream")
        );
        assert_eq!(
            refused(|c| c.enriched_stream = "A.B".into()),
            Some("enriched_stream")
        );
        assert_eq!(
            refused(|c| c.webhook_click_batch = 0),
            Some("webhook_click_batch")
        );
        assert_eq!(
            refused(|c| c.enriched_stream_max_age_secs = 1),
            Some("enriched_stream_max_age_secs")
        );
    }

    #[test]
    fn toml_subset_and_unknown_fields() {
        let c: Config =
            servicekit::config::from_toml("code_length = 9\nengine_admin = [\"127.0.0.1:9080\"]")
                .unwrap();
        assert_eq!(c.code_length, 9);
        assert_eq!(c.engine_admin, vec!["127.0.0.1:9080".to_string()]);
        assert_eq!(c.listen, Config::default().listen);
        let err = servicekit::config::from_toml::<Config>("colde_length = 9").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn validation_refusals_name_the_field() {
        let refused = |tweak: fn(&mut Config)| {
            let mut c = Config::default();
            tweak(&mut c);
            c.validate().unwrap_err().field()
        };
        assert_eq!(refused(|c| c.code_length = 3), Some("code_length"));
        assert_eq!(
            refused(|c| c.short_base = "ftp://x".into()),
            Some("short_base")
        );
        assert_eq!(refused(|c| c.rate_per_ip = 0.0), Some("rate_per_ip"));
        assert_eq!(refused(|c| c.snapshot_keep = 0), Some("snapshot_keep"));
        assert_eq!(refused(|c| c.max_body_bytes = 0), Some("max_body_bytes"));
        assert_eq!(
            refused(|c| c.links_stream_max_age_secs = 60),
            Some("links_stream_max_age_secs")
        );
        assert_eq!(
            refused(|c| c.links_stream_max_bytes = 10),
            Some("links_stream_max_bytes")
        );
        assert_eq!(
            refused(|c| c.links_stream_replicas = 0),
            Some("links_stream_replicas")
        );
        assert_eq!(
            refused(|c| c.nats = Some("nats://x:1,".into())),
            Some("links_signing_key")
        );
        assert_eq!(refused(|c| c.nats = Some("http://x".into())), Some("nats"));
        assert_eq!(
            refused(|c| c.links_signing_key = Some("/nonexistent.pem".into())),
            Some("links_signing_key")
        );
        assert_eq!(
            refused(|c| c.public_url = "http://links.example.com".into()),
            Some("public_url")
        );
        assert_eq!(
            refused(|c| c.cors_origins = vec!["*".into()]),
            Some("cors_origins")
        );
        assert_eq!(
            refused(|c| c.cors_origins = vec!["https://dash.example.com/".into()]),
            Some("cors_origins")
        );
        assert_eq!(
            refused(|c| c.session_absolute_secs = 600),
            Some("session_absolute_secs")
        );
        assert_eq!(
            refused(|c| c.smtp_url = Some("smtp://u:secret@mail.example.com".into())),
            Some("smtp_url")
        );
        assert_eq!(
            refused(|c| c.mail_from = "nobody".into()),
            Some("mail_from")
        );
        assert_eq!(
            refused(|c| c.login_burst_per_email = 0),
            Some("login_burst_per_email")
        );
    }

    #[test]
    fn cookies_are_secure_unless_the_public_url_is_loopback_http() {
        let mut c = Config::default();
        assert!(!c.cookie_secure());
        assert_eq!(c.public_origin(), "http://127.0.0.1:8000");
        c.public_url = "https://Links.Example.com/".into();
        c.validate().unwrap();
        assert!(c.cookie_secure());
        assert_eq!(c.public_origin(), "https://links.example.com");
        c.public_url = "http://localhost:3000".into();
        c.validate().unwrap();
    }

    #[test]
    fn a_relay_signs_unless_told_it_is_a_development_setup() {
        let mut c = Config {
            nats: Some("nats://127.0.0.1:4222".into()),
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().field(), Some("links_signing_key"));
        c.allow_unsigned_links = true;
        c.validate().unwrap();
        let keys = testkit::LinkKeys::new().unwrap();
        c.allow_unsigned_links = false;
        c.links_signing_key = Some(keys.signing_key());
        c.validate().unwrap();
        assert_eq!(
            c.links_signer().unwrap().unwrap().key_id(),
            keys.signer().key_id()
        );
    }
}
