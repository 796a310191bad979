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
    /// Snapshot file to serve from start (the operator's; the engine never
    /// writes it). Default: none (the engine starts unready and answers 503
    /// until a snapshot is pushed, unless the state directory holds one).
    pub snapshot: Option<PathBuf>,
    /// The engine's own directory: pushed snapshot generations and the click
    /// spool, mode 0700, one engine per directory (locked). Default:
    /// `$STATE_DIRECTORY` when systemd sets it (`StateDirectory=`), else
    /// `./engine-state` ([`Config::state_dir`] says why).
    pub state_dir: Option<PathBuf>,
    /// Redirect listener. Default `127.0.0.1:8080`; port 0 picks one.
    pub listen: SocketAddr,
    /// Admin listener (health, metrics, snapshot push). Default `127.0.0.1:9080`.
    pub admin: SocketAddr,
    /// TLS redirect listener (HTTPS), bound by every core beside `listen`;
    /// needs `tls_certs`. Default: none (no TLS port). Port 0 picks one.
    pub tls_listen: Option<SocketAddr>,
    /// Directory of `NAME.crt` + `NAME.key` pairs served by SNI name
    /// (`_.example.com` for a wildcard), watched for changes every
    /// `watch_interval_ms`; needs `tls_listen`. Default: none.
    pub tls_certs: Option<PathBuf>,
    /// Session ticket keys shared by every node (one 96-hex-digit key per
    /// line, the first seals; see README). Default: none, each node rotates
    /// keys of its own in memory (a ticket resumes on the node that issued it).
    pub tls_ticket_key_file: Option<PathBuf>,
    /// Name of the pair served to clients that send no SNI or a name with no
    /// pair. Default: none, such handshakes end with an alert.
    pub tls_default_cert: Option<String>,
    /// Executors, one per CPU starting at CPU 0. Default: every online CPU.
    pub cores: Option<usize>,
    /// NATS server for the link change stream and click publishing, or
    /// several comma-separated (a cluster). Default: none (standalone).
    pub nats: Option<String>,
    /// NATS user of this role (the deploy's is `engine`). Default: none,
    /// anonymous (a development server without users).
    pub nats_user: Option<String>,
    /// File holding that user's password; without it `NATS_PASSWORD` is
    /// read. Default: none.
    pub nats_password_file: Option<PathBuf>,
    /// Public keys (Ed25519, SubjectPublicKeyInfo PEM) whose signatures on
    /// link changes are trusted; a change not signed by one of them is
    /// skipped. Required with `nats` unless `allow_unsigned_links`.
    /// Default: none.
    pub links_verify_keys: Vec<PathBuf>,
    /// Apply link changes without a signature check when no verify key is
    /// set (development only: anyone who can publish on the subject then
    /// redirects any code). Default false.
    pub allow_unsigned_links: bool,
    /// JetStream stream of link changes. Default `LINKS`.
    pub links_stream: String,
    /// Subject of that stream. Default `links.changes`.
    pub links_subject: String,
    /// Subject prefix of visit lease requests for links with `max_visits`:
    /// `<lease_subject>.<node_id>` (docs/max-visits.md). Default `links.lease`.
    pub lease_subject: String,
    /// Bearer token required by `PUT /snapshot`. Default: none, allowed only
    /// with a loopback `admin` address.
    pub admin_token: Option<String>,
    /// Control's snapshot URL (`http://CONTROL/engine/snapshot`) the engine
    /// pulls newer snapshots from, presenting `admin_token` (the token
    /// control pushes with; `crate::snapshot_pull`). Plain HTTP: control is
    /// on the operator's network. Default: none, snapshots are pushed (or
    /// read from `snapshot`).
    pub pull_snapshot: Option<String>,
    /// Milliseconds between pulls (each a conditional request; a failed one
    /// backs off, doubling up to a minute, with jitter). Default 2000.
    pub pull_interval_ms: u64,
    /// Largest snapshot `PUT /snapshot` accepts, bytes. Default: the
    /// format's limit (about 2 GiB).
    pub max_snapshot_bytes: u64,
    /// How far past the newest sequence the engine knows (its snapshot, the
    /// last change received, the change stream's last) a pushed snapshot may
    /// be; further is refused unless the push says `?force=true`.
    /// Default 100000 (see README).
    pub snapshot_sequence_max_lead: u64,
    /// `Cache-Control: max-age` of 301 and 308 answers, seconds, never past
    /// the link's own expiry; 0 sends `no-store`. Default 60 (see README).
    pub permanent_max_age: u64,
    /// Status for expired and disabled links: 404 or 410. Default 410.
    pub gone_status: u16,
    /// Where `/` redirects (302) when the request's domain sets no root
    /// redirect of its own. Default: none, `/` is 404.
    pub root_redirect: Option<String>,
    /// What a request whose `Host` names no served domain gets (requests
    /// without a `Host` or with an IP literal always get the default
    /// domain): `auto`, `default-domain` or `not-found`. Default `auto`:
    /// the default domain while the snapshot has no domain but an unnamed
    /// default one (no domains configured), else 404 (`core::domains` says
    /// why).
    pub unknown_host: UnknownHost,
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
    /// A new connection that has not sent its first byte within this, ms,
    /// while its core's connection slots are more than 3/4 full, is closed
    /// (otherwise `header_timeout_ms` applies from accept). Default 1000.
    pub crowded_first_byte_timeout_ms: u64,
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
    /// Poll the snapshot file and the TLS certificate directory (and ticket
    /// key file) for changes every this many ms; 0 disables both.
    /// Default 2000.
    pub watch_interval_ms: u64,
    /// Capture clicks and publish them (only with `nats`). Default true.
    pub clicks: bool,
    /// This node's id in click records and the subject `clicks.<node_id>`.
    /// Default: the host name (characters outside `[A-Za-z0-9_-]` become `_`).
    pub node_id: Option<String>,
    /// A MaxMind-format GeoIP database (`.mmdb`) for redirect rules on the
    /// visitor's country; memory-mapped. Default: none (country rules never
    /// match, counted in `engine_rules_without_geoip_total`).
    pub geoip: Option<PathBuf>,
    /// Peers whose `client_ip_header` is believed (addresses or CIDR
    /// blocks). Default: none (the socket peer is the client).
    pub trusted_proxies: Vec<String>,
    /// The one header that names the client behind a trusted proxy:
    /// `x-forwarded-for`, `forwarded` or `x-real-ip`. Default `x-forwarded-for`.
    pub client_ip_header: ClientIpHeader,
    /// Leading bits of a client's IPv4 address kept in click records (the
    /// rest is zeroed before a click leaves the process). Default 24.
    pub click_ipv4_prefix: u8,
    /// Leading bits of a client's IPv6 address kept in click records.
    /// Default 48.
    pub click_ipv6_prefix: u8,
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
    /// Spool (`<state_dir>/spool`) size limit in bytes; beyond it clicks are dropped (counted).
    /// Default 1 GiB.
    pub click_spool_max_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            snapshot: None,
            state_dir: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin: SocketAddr::from(([127, 0, 0, 1], 9080)),
            tls_listen: None,
            tls_certs: None,
            tls_ticket_key_file: None,
            tls_default_cert: None,
            cores: None,
            nats: None,
            nats_user: None,
            nats_password_file: None,
            links_verify_keys: Vec::new(),
            allow_unsigned_links: false,
            links_stream: snapshots::streams::LINKS_STREAM.to_owned(),
            links_subject: snapshots::streams::LINKS_SUBJECT.to_owned(),
            lease_subject: snapshots::lease::DEFAULT_LEASE_SUBJECT.to_owned(),
            admin_token: None,
            pull_snapshot: None,
            pull_interval_ms: 2000,
            max_snapshot_bytes: MAX_SNAPSHOT_BYTES,
            snapshot_sequence_max_lead: 100_000,
            permanent_max_age: 60,
            gone_status: 410,
            root_redirect: None,
            unknown_host: UnknownHost::Auto,
            max_uri_bytes: 4096,
            max_head_bytes: 8192,
            max_body_bytes: 65536,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            crowded_first_byte_timeout_ms: 1000,
            max_connections_per_core: 16_384,
            shutdown_grace_ms: 5000,
            io_memory_kib: 512,
            io: IoChoice::Auto,
            uring_buffers: 1024,
            backlog: 1024,
            watch_interval_ms: 2000,
            clicks: true,
            node_id: None,
            geoip: None,
            trusted_proxies: Vec::new(),
            client_ip_header: ClientIpHeader::XForwardedFor,
            click_ipv4_prefix: 24,
            click_ipv6_prefix: 48,
            clicks_stream: snapshots::streams::CLICKS_STREAM.to_owned(),
            clicks_subject_prefix: snapshots::streams::CLICKS_SUBJECT_PREFIX.to_owned(),
            click_batch_events: 1000,
            click_batch_age_ms: 100,
            click_channel_batches: 1024,
            click_spool_max_bytes: 1 << 30,
        }
    }
}

/// The largest snapshot file the format allows: its payload limit plus the
/// header.
pub const MAX_SNAPSHOT_BYTES: u64 = snapshots::builder::MAX_PAYLOAD_LEN + 64;

pub use crate::clicks::client_ip::ClientIpHeader;

/// The `unknown_host` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownHost {
    /// `default-domain` while no domain is configured, else `not-found`.
    #[default]
    Auto,
    /// Answered as the default domain.
    DefaultDomain,
    /// 404.
    NotFound,
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
                "crowded_first_byte_timeout_ms",
                self.crowded_first_byte_timeout_ms,
            ),
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
        if self.click_ipv4_prefix > 32 || self.click_ipv6_prefix > 128 {
            return Err(ConfigError::invalid(
                "click_ipv4_prefix",
                format!(
                    "prefixes are at most 32 (IPv4) and 128 (IPv6) bits, not {} and {}",
                    self.click_ipv4_prefix, self.click_ipv6_prefix
                ),
            ));
        }
        if let Some(url) = &self.pull_snapshot {
            if !url.starts_with("http://") {
                return Err(ConfigError::invalid(
                    "pull_snapshot",
                    format!("must be an http:// URL (control's /engine/snapshot), not {url:?}"),
                ));
            }
            if self.admin_token.is_none() {
                return Err(ConfigError::invalid(
                    "pull_snapshot",
                    "needs admin_token: control serves snapshots only to a bearer of the engines' token",
                ));
            }
            if self.pull_interval_ms == 0 {
                return Err(ConfigError::invalid(
                    "pull_interval_ms",
                    "must be at least 1 with pull_snapshot",
                ));
            }
        }
        match &self.admin_token {
            Some(token) if token.trim().is_empty() || token.trim() != token => {
                return Err(ConfigError::invalid(
                    "admin_token",
                    "must be non-empty, without surrounding whitespace",
                ));
            }
            Some(_) => {}
            None if !self.admin.ip().is_loopback() => {
                return Err(ConfigError::invalid(
                    "admin_token",
                    format!(
                        "the admin address {} is not loopback, so PUT /snapshot needs a token: \
                         set --admin-token (or ENGINE_ADMIN_TOKEN), or listen on 127.0.0.1 / [::1] with --admin",
                        self.admin
                    ),
                ));
            }
            None => {}
        }
        if self.max_snapshot_bytes == 0 || self.max_snapshot_bytes > MAX_SNAPSHOT_BYTES {
            return Err(ConfigError::invalid(
                "max_snapshot_bytes",
                format!(
                    "must be from 1 to {MAX_SNAPSHOT_BYTES} (the format's limit), not {}",
                    self.max_snapshot_bytes
                ),
            ));
        }
        if let Some(nats) = self.nats_settings() {
            nats.validate()?;
            if self.links_verify_keys.is_empty() && !self.allow_unsigned_links {
                return Err(ConfigError::invalid(
                    "links_verify_keys",
                    "required with nats: give --links-verify-key FILE (the public half of \
                     control's --links-signing-key, `openssl pkey -in links-signing.pem -pubout`); \
                     --allow-unsigned-links is for development only",
                ));
            }
        } else if self.nats_user.is_some() || self.nats_password_file.is_some() {
            return Err(ConfigError::invalid("nats_user", "needs nats"));
        }
        self.links_verifier()?;
        self.validate_tls()
    }
}

impl Config {
    /// TLS: `tls_listen` and `tls_certs` together or not at all, the other
    /// TLS settings only with them, a port of its own.
    fn validate_tls(&self) -> Result<(), ConfigError> {
        match (&self.tls_listen, &self.tls_certs) {
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    "tls_certs",
                    "--tls-listen needs --tls-certs DIR (the NAME.crt + NAME.key pairs to serve)",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "tls_listen",
                    "--tls-certs needs --tls-listen ADDR (the TLS port)",
                ));
            }
            (None, None) => {
                for (field, set) in [
                    ("tls_ticket_key_file", self.tls_ticket_key_file.is_some()),
                    ("tls_default_cert", self.tls_default_cert.is_some()),
                ] {
                    if set {
                        return Err(ConfigError::invalid(
                            field,
                            "needs --tls-listen and --tls-certs",
                        ));
                    }
                }
                return Ok(());
            }
            (Some(_), Some(_)) => {}
        }
        let tls = self.tls_listen.expect("checked above");
        // Two listeners on one address would share its connections
        // (SO_REUSEPORT): plain HTTP and TLS would land on either.
        if tls.port() != 0 && tls.port() == self.listen.port() && tls.ip() == self.listen.ip() {
            return Err(ConfigError::invalid(
                "tls_listen",
                format!("{tls} is also --listen: the TLS port needs an address of its own"),
            ));
        }
        if let Some(name) = &self.tls_default_cert
            && (name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.'))
        {
            return Err(ConfigError::invalid(
                "tls_default_cert",
                format!("{name:?} is not a certificate name (a NAME of NAME.crt in --tls-certs)"),
            ));
        }
        Ok(())
    }

    /// The TLS settings, when TLS is on.
    pub fn tls_settings(&self) -> Option<crate::tls::config::TlsSettings> {
        self.tls_listen?;
        Some(crate::tls::config::TlsSettings {
            default_name: self.tls_default_cert.clone(),
            ticket_key_file: self.tls_ticket_key_file.clone(),
            ..crate::tls::config::TlsSettings::new(self.tls_certs.clone()?)
        })
    }

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

    /// Where NATS is and who the engine is there; `None` without `nats`.
    pub fn nats_settings(&self) -> Option<servicekit::nats::NatsSettings> {
        Some(servicekit::nats::NatsSettings {
            servers: self.nats.clone()?,
            user: self.nats_user.clone(),
            password_file: self.nats_password_file.clone(),
        })
    }

    /// The keys link changes must be signed with; `None` when none are set
    /// (then `allow_unsigned_links` was checked by [`Config::validate`]).
    pub fn links_verifier(&self) -> Result<Option<snapshots::signing::DeltaVerifier>, ConfigError> {
        if self.links_verify_keys.is_empty() {
            return Ok(None);
        }
        snapshots::signing::DeltaVerifier::from_pem_files(&self.links_verify_keys)
            .map(Some)
            .map_err(|e| ConfigError::invalid("links_verify_keys", e.to_string()))
    }

    /// The state directory: `state_dir`, else `$STATE_DIRECTORY` (systemd's
    /// `StateDirectory=`; the first when it names several), else
    /// `./engine-state`.
    ///
    /// Why a default rather than a start-up error: every engine can receive
    /// a pushed snapshot, so every engine needs the directory, and a flag
    /// required everywhere would only be set to something arbitrary. Why
    /// this one: it is where the operator started the engine (never a shared
    /// directory such as `/tmp`, where another user could pre-create or read
    /// it), the engine makes it 0700 and locks it, so a second engine in the
    /// same place fails at start naming the flag rather than mixing spools.
    pub fn state_dir(&self) -> PathBuf {
        if let Some(dir) = &self.state_dir {
            return dir.clone();
        }
        match std::env::var_os("STATE_DIRECTORY") {
            Some(dirs) if !dirs.is_empty() => {
                let dirs = dirs.to_string_lossy().into_owned();
                PathBuf::from(dirs.split(':').next().unwrap_or(&dirs))
            }
            _ => PathBuf::from("engine-state"),
        }
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

    pub fn crowded_first_byte_timeout(&self) -> Duration {
        Duration::from_millis(self.crowded_first_byte_timeout_ms)
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
        assert_eq!(
            bad(|c| c.max_snapshot_bytes = MAX_SNAPSHOT_BYTES + 1).0,
            "max_snapshot_bytes"
        );
        assert_eq!(bad(|c| c.click_ipv4_prefix = 33).0, "click_ipv4_prefix");
        assert_eq!(bad(|c| c.admin_token = Some(" ".into())).0, "admin_token");
    }

    #[test]
    fn tls_flags_go_together() {
        let tls = |listen: Option<&str>, certs: Option<&str>| Config {
            tls_listen: listen.map(|a| a.parse().unwrap()),
            tls_certs: certs.map(PathBuf::from),
            ..Config::default()
        };
        let field = |c: Config| c.validate().unwrap_err().field().unwrap().to_owned();
        assert_eq!(field(tls(Some("127.0.0.1:8443"), None)), "tls_certs");
        assert_eq!(field(tls(None, Some("/etc/certs"))), "tls_listen");
        assert_eq!(field(tls(Some("127.0.0.1:8080"), Some("/c"))), "tls_listen");
        assert_eq!(
            field(Config {
                tls_ticket_key_file: Some("/k".into()),
                ..Config::default()
            }),
            "tls_ticket_key_file"
        );
        assert_eq!(
            field(Config {
                tls_default_cert: Some("../x".into()),
                ..tls(Some("127.0.0.1:0"), Some("/c"))
            }),
            "tls_default_cert"
        );
        assert!(Config::default().tls_settings().is_none());
        let c = Config {
            tls_default_cert: Some("a.test".into()),
            ..tls(Some("127.0.0.1:0"), Some("/c"))
        };
        c.validate().unwrap();
        let settings = c.tls_settings().unwrap();
        assert_eq!(settings.cert_dir, PathBuf::from("/c"));
        assert_eq!(settings.default_name.as_deref(), Some("a.test"));
        let c: Config =
            from_toml("tls_listen = \"0.0.0.0:443\"\ntls_certs = \"/etc/engine/certs\"\n").unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn a_non_loopback_admin_port_needs_a_token() {
        let mut c = Config {
            admin: "0.0.0.0:9080".parse().unwrap(),
            ..Config::default()
        };
        let err = c.validate().unwrap_err();
        assert_eq!(err.field(), Some("admin_token"));
        let text = err.to_string();
        assert!(
            text.contains("0.0.0.0:9080")
                && text.contains("--admin-token")
                && text.contains("--admin"),
            "{text}"
        );
        c.admin = "[::1]:9080".parse().unwrap();
        c.validate().unwrap();
        c.admin = "10.1.2.3:9080".parse().unwrap();
        c.admin_token = Some("s3cret".into());
        c.validate().unwrap();
    }

    #[test]
    fn nats_needs_verify_keys_unless_unsigned_is_allowed() {
        let mut c = Config {
            nats: Some("nats://127.0.0.1:4222,nats://127.0.0.2:4222".into()),
            ..Config::default()
        };
        let err = c.validate().unwrap_err();
        assert_eq!(err.field(), Some("links_verify_keys"));
        assert!(err.to_string().contains("--allow-unsigned-links"), "{err}");
        c.allow_unsigned_links = true;
        c.validate().unwrap();
        c.links_verify_keys = vec!["/nonexistent.pem".into()];
        let err = c.validate().unwrap_err();
        assert!(err.to_string().contains("/nonexistent.pem"), "{err}");
        let (signer, _) = snapshots::signing::DeltaSigner::generate();
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("verify.pem");
        std::fs::write(&key, signer.public_key_pem()).unwrap();
        c.links_verify_keys = vec![key];
        c.allow_unsigned_links = false;
        c.validate().unwrap();
        assert!(c.links_verifier().unwrap().is_some());
        c.nats = None;
        c.nats_user = Some("engine".into());
        assert_eq!(c.validate().unwrap_err().field(), Some("nats_user"));
    }
}
