//! `engine`: the redirect node. See the crate documentation and README.md.

use clap::{Args, Parser, Subcommand};
use engine::config::Config;
use std::net::SocketAddr;
use std::path::PathBuf;

/// mimalloc rather than glibc's malloc. The redirect path allocates nothing,
/// but a TLS handshake in rustls allocates and frees a few hundred small
/// buffers; glibc's malloc and free were 6.8% of a full handshake's CPU in
/// the profile (`perf/profile.sh tls-full`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "engine",
    version,
    about = "Thread-per-core redirect node: serves GET /{code} from a link snapshot plus the change stream"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve redirects. Prints one JSON line to stdout once every core is
    /// listening: {"event":"ready","listen":ADDR,"admin":ADDR,"cores":N,"io":"uring"|"glommio"}, plus "tls_listen":ADDR with TLS.
    Serve(ServeArgs),
}

/// Flags override the config file; the file overrides the defaults
/// (`servicekit::config::load`).
#[derive(Args)]
struct ServeArgs {
    /// TOML config file (every key is a field of engine::config::Config; unknown keys are refused) [default: none, the defaults below].
    #[arg(long, env = "ENGINE_CONFIG")]
    config: Option<PathBuf>,
    /// Snapshot file to serve from start (never written by the engine); reloaded on SIGHUP and when it changes [default: none: the engine answers 503 until a snapshot is pushed, unless the state directory holds one].
    #[arg(long)]
    snapshot: Option<PathBuf>,
    /// The engine's own directory (pushed snapshots, click spool; 0700, one engine each) [default: $STATE_DIRECTORY when systemd sets it, else ./engine-state].
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Redirect listener address [default: 127.0.0.1:8080]; port 0 picks a free port.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin listener (/healthz, /readyz, /metrics, PUT /snapshot, PUT /certs/NAME) [default: 127.0.0.1:9080].
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// TLS (HTTPS) redirect listener, bound by every core beside --listen; needs --tls-certs [default: none, no TLS port]. Port 0 picks a free port (the readiness line says which).
    #[arg(long)]
    tls_listen: Option<SocketAddr>,
    /// Directory of NAME.crt (PEM chain, leaf first) + NAME.key (PEM key) pairs, one per SNI name, `_.example.com` for a wildcard; re-read when it changes (a bad pair is refused and logged, the previous one keeps serving); needs --tls-listen [default: none].
    #[arg(long)]
    tls_certs: Option<PathBuf>,
    /// Session ticket key file shared by the nodes, one 96-hex-digit key per line, the first seals and all open; re-read when it changes [default: none: each node's own keys, rotated in memory].
    #[arg(long)]
    tls_ticket_key_file: Option<PathBuf>,
    /// Certificate (NAME of a pair) for clients that send no SNI or a name with no pair [default: none: such handshakes end with an alert].
    #[arg(long)]
    tls_default_cert: Option<String>,
    /// Control's snapshot URL (http://CONTROL/engine/snapshot) to pull newer snapshots from, with --admin-token as the credential [default: none: snapshots are pushed].
    #[arg(long)]
    pull_snapshot: Option<String>,
    /// Milliseconds between snapshot pulls (a failed pull backs off up to a minute) [default: 2000].
    #[arg(long)]
    pull_interval_ms: Option<u64>,
    /// Look for a changed --snapshot file and TLS certificates every this many ms; 0 turns both watches off [default: 2000].
    #[arg(long)]
    watch_interval_ms: Option<u64>,
    /// Number of cores (executors), from CPU 0 up [default: every CPU available].
    #[arg(long)]
    cores: Option<usize>,
    /// NATS URL for the link change stream and click publishing, or several comma-separated [default: none: standalone, no changes applied, no clicks].
    #[arg(long)]
    nats: Option<String>,
    /// NATS user of this role (the deploy's is `engine`) [default: none, anonymous].
    #[arg(long)]
    nats_user: Option<String>,
    /// File holding the NATS user's password; NATS_PASSWORD is read without it [default: none].
    #[arg(long)]
    nats_password_file: Option<PathBuf>,
    /// Public key (Ed25519 PEM, the public half of control's --links-signing-key) whose signed link changes are applied; repeat for several (key rotation). Required with --nats [default: none].
    #[arg(long = "links-verify-key")]
    links_verify_keys: Vec<PathBuf>,
    /// Apply unsigned link changes when no --links-verify-key is given. For development only: anyone who can publish on the change subject then redirects any code [default: off].
    #[arg(long)]
    allow_unsigned_links: bool,
    /// JetStream stream of link changes, control's: waited for, never created, refused without limits [default: LINKS].
    #[arg(long)]
    links_stream: Option<String>,
    /// Subject of the link change stream [default: links.changes].
    #[arg(long)]
    links_subject: Option<String>,
    /// Subject prefix of visit lease requests (links with max_visits) [default: links.lease].
    #[arg(long)]
    lease_subject: Option<String>,
    /// Bearer token required by PUT /snapshot; required when --admin is not a loopback address [default: none].
    #[arg(long, env = "ENGINE_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Largest snapshot PUT /snapshot accepts, in bytes [default: the format's limit, 2147483711].
    #[arg(long)]
    max_snapshot_bytes: Option<u64>,
    /// How far past the newest change sequence the engine knows a pushed snapshot may be; further is refused (409) unless the push says ?force=true [default: 100000].
    #[arg(long)]
    snapshot_sequence_max_lead: Option<u64>,
    /// Cache-Control max-age of 301/308 answers in seconds, never past the link's expiry; 0 sends no-store [default: 60].
    #[arg(long)]
    permanent_max_age: Option<u64>,
    /// Status of expired and disabled links, 404 or 410 [default: 410].
    #[arg(long)]
    gone_status: Option<u16>,
    /// Where `/` redirects (302) on a domain without a root redirect of its own [default: none, 404].
    #[arg(long)]
    root_redirect: Option<String>,
    /// What a request whose Host names no served domain gets: auto (the default domain while no domain is configured: an unnamed default and no other; else 404), default-domain, or not-found. Requests without a Host or with an IP literal always get the default domain [default: auto].
    #[arg(long, value_enum)]
    unknown_host: Option<engine::config::UnknownHost>,
    /// glommio I/O memory per core in KiB; counts against RLIMIT_MEMLOCK [default: 512].
    #[arg(long)]
    io_memory_kib: Option<usize>,
    /// I/O backend of redirect connections: uring (the engine's own io_uring per core), glommio (glommio's sockets), auto (uring where the kernel supports it) [default: auto].
    #[arg(long, value_enum)]
    io: Option<engine::config::IoChoice>,
    /// Provided 4 KiB receive buffers per core for the uring backend, a power of two [default: 1024].
    #[arg(long)]
    uring_buffers: Option<u16>,
    /// Time a client has to send a request head, ms [default: 10000].
    #[arg(long)]
    header_timeout_ms: Option<u64>,
    /// Idle keep-alive timeout, ms [default: 60000].
    #[arg(long)]
    idle_timeout_ms: Option<u64>,
    /// A new connection's first byte must arrive within this, ms, while its core's connection slots are more than 3/4 full (otherwise the header timeout applies from accept) [default: 1000].
    #[arg(long)]
    crowded_first_byte_timeout_ms: Option<u64>,
    /// Connection limit per core [default: 16384].
    #[arg(long)]
    max_connections_per_core: Option<usize>,
    /// Time given to in-flight requests on SIGTERM, ms [default: 5000].
    #[arg(long)]
    shutdown_grace_ms: Option<u64>,
    /// Do not capture clicks even with --nats [default: clicks are captured when --nats is set].
    #[arg(long)]
    no_clicks: bool,
    /// Node id in click records and the subject clicks.<node-id> [default: the host name].
    #[arg(long)]
    node_id: Option<String>,
    /// MaxMind-format GeoIP database (.mmdb) for redirect rules on the visitor's country [default: none; country rules never match].
    #[arg(long)]
    geoip: Option<PathBuf>,
    /// A proxy whose --client-ip-header is believed (address or CIDR; repeat for more) [default: none].
    #[arg(long = "trusted-proxy")]
    trusted_proxies: Vec<String>,
    /// The header a trusted proxy names the client in; its right-most address that is not a trusted proxy is the client [default: x-forwarded-for].
    #[arg(long, value_enum)]
    client_ip_header: Option<engine::config::ClientIpHeader>,
    /// Leading bits of a client's IPv4 address kept in click records [default: 24].
    #[arg(long)]
    click_ipv4_prefix: Option<u8>,
    /// Leading bits of a client's IPv6 address kept in click records [default: 48].
    #[arg(long)]
    click_ipv6_prefix: Option<u8>,
    /// JetStream stream of click batches, analytics': never created, refused without limits (clicks are spooled meanwhile) [default: CLICKS].
    #[arg(long)]
    clicks_stream: Option<String>,
    /// Click subject prefix; batches go to <prefix>.<node-id> [default: clicks].
    #[arg(long)]
    clicks_subject_prefix: Option<String>,
    /// Events per click batch [default: 1000].
    #[arg(long)]
    click_batch_events: Option<u32>,
    /// Age after which a click batch is sent, ms [default: 100].
    #[arg(long)]
    click_batch_age_ms: Option<u64>,
    /// Size limit of the click spool (<state-dir>/spool) in bytes; beyond it clicks are dropped and counted [default: 1 GiB].
    #[arg(long)]
    click_spool_max_bytes: Option<u64>,
}

impl ServeArgs {
    /// Defaults, then `--config`, then these flags, then one validation.
    fn into_config(self) -> Result<Config, servicekit::ConfigError> {
        servicekit::config::load(self.config.as_deref(), |config: &mut Config| {
            servicekit::override_fields!(self => config;
                listen, admin, links_stream, links_subject, lease_subject, permanent_max_age, gone_status,
                io_memory_kib, io, uring_buffers, header_timeout_ms, idle_timeout_ms,
                crowded_first_byte_timeout_ms, max_connections_per_core, shutdown_grace_ms,
                clicks_stream, clicks_subject_prefix, click_batch_events, click_batch_age_ms,
                click_spool_max_bytes, max_snapshot_bytes, snapshot_sequence_max_lead,
                client_ip_header, click_ipv4_prefix, click_ipv6_prefix, watch_interval_ms,
                unknown_host, pull_interval_ms;
                optional: node_id, snapshot, state_dir, cores, nats, nats_user,
                nats_password_file, admin_token, root_redirect, tls_listen, tls_certs,
                tls_ticket_key_file, tls_default_cert, pull_snapshot, geoip
            );
            if self.no_clicks {
                config.clicks = false;
            }
            if self.allow_unsigned_links {
                config.allow_unsigned_links = true;
            }
            if !self.links_verify_keys.is_empty() {
                config.links_verify_keys = self.links_verify_keys.clone();
            }
            if !self.trusted_proxies.is_empty() {
                config.trusted_proxies = self.trusted_proxies.clone();
            }
        })
    }
}

fn main() {
    servicekit::logging::init();
    let Cli {
        command: Command::Serve(args),
    } = Cli::parse();
    // A config error's message already includes its cause: `{e}`, not `{e:#}`.
    let config = args.into_config().unwrap_or_else(|e| {
        eprintln!("engine: {e}");
        std::process::exit(1);
    });
    if let Err(e) = engine::server::serve(config) {
        eprintln!("engine: {e:#}");
        std::process::exit(1);
    }
}
