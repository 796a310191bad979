//! `analytics run`: the click-analytics sidecar. See the crate doc of `analytics`.

use std::net::SocketAddr;
use std::path::PathBuf;

use analytics::Config;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "analytics",
    version,
    about = "Click batches from NATS JetStream into ClickHouse"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Consume click batches until stopped (SIGINT/SIGTERM).
    Run(RunArgs),
}

/// Flags override the config file, which overrides the defaults.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// TOML config file (fields as in `analytics::Config`, see
    /// analytics.example.toml) [default: none]
    #[arg(long)]
    config: Option<PathBuf>,
    /// NATS URL, or several comma-separated [default: nats://127.0.0.1:4222]
    #[arg(long)]
    nats: Option<String>,
    /// NATS user of this role (the deploy's is `analytics`) [default: none, anonymous]
    #[arg(long)]
    nats_user: Option<String>,
    /// File holding the NATS user's password; NATS_PASSWORD is read without it [default: none]
    #[arg(long)]
    nats_password_file: Option<PathBuf>,
    /// ClickHouse HTTP URL [default: http://127.0.0.1:8123]
    #[arg(long)]
    clickhouse: Option<String>,
    /// ClickHouse database owned by the sidecar [default: analytics]
    #[arg(long)]
    database: Option<String>,
    /// Make the tables replicated (ReplicatedMergeTree through the server's
    /// ZooKeeper, `{replica}` macro); each sidecar is given one replica
    /// [default: off]
    #[arg(long)]
    clickhouse_replicated: bool,
    /// Replicas an insert must reach before it succeeds, with
    /// --clickhouse-replicated (only with one sidecar writing on 18.16)
    /// [default: 0, off]
    #[arg(long)]
    clickhouse_insert_quorum: Option<u32>,
    /// MaxMind-format .mmdb file for country and city (GeoIP2/GeoLite2, DB-IP
    /// lite); repeat for several (asked in order, e.g. IPv4 and IPv6 files)
    /// [default: none, country and city stay empty]
    #[arg(long)]
    geoip: Vec<PathBuf>,
    /// Prometheus metrics address; port 0 picks one [default: 127.0.0.1:9100]
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// JetStream stream of click batches, owned by the sidecar [default: CLICKS]
    #[arg(long)]
    stream: Option<String>,
    /// Subjects of the stream; with <prefix>.> a batch on <prefix>.<node> must name that node [default: clicks.>]
    #[arg(long)]
    subjects: Option<String>,
    /// Seconds the stream keeps a batch (batches hold full client addresses)
    /// [default: 259200, 72 h]
    #[arg(long)]
    clicks_max_age_secs: Option<u64>,
    /// Most bytes the stream holds; the oldest batches go first
    /// [default: 1073741824, 1 GiB]
    #[arg(long)]
    clicks_max_bytes: Option<i64>,
    /// Copies of the stream a JetStream cluster keeps, 1 to 5 (3 on a
    /// three-node cluster) [default: 1]
    #[arg(long)]
    clicks_replicas: Option<usize>,
    /// Update an existing stream whose settings differ from the sidecar's
    /// (or that has no limits) instead of refusing to start [default: off]
    #[arg(long)]
    adopt_stream: bool,
    /// Durable consumer name [default: analytics]
    #[arg(long)]
    consumer: Option<String>,
    /// Seconds before an unacknowledged batch is redelivered [default: 30]
    #[arg(long)]
    ack_wait_secs: Option<u64>,
    /// Park a batch (and ack it) once ClickHouse has refused it on its own
    /// this many times; unavailability never counts [default: 5]
    #[arg(long)]
    park_after_attempts: Option<u32>,
    /// Days parked batches are kept [default: 30]
    #[arg(long)]
    parked_retention_days: Option<u32>,
    /// Days raw clicks are kept, by whole months [default: 90]
    #[arg(long)]
    raw_retention_days: Option<u32>,
    /// Days the rollups are kept, by whole months [default: 730]
    #[arg(long)]
    rollup_retention_days: Option<u32>,
    /// Publish every stored click as JSON on NATS subject <this>.<org id>
    /// (e.g. clicks.enriched) [default: none, off]
    #[arg(long)]
    enriched_subject: Option<String>,
}

impl RunArgs {
    fn into_config(self) -> Result<Config, servicekit::ConfigError> {
        servicekit::config::load(self.config.as_deref(), |c: &mut Config| {
            servicekit::override_fields!(self => c;
                nats, clickhouse, database, metrics, stream, subjects,
                clicks_max_age_secs, clicks_max_bytes, clicks_replicas, consumer, ack_wait_secs,
                park_after_attempts, parked_retention_days, raw_retention_days,
                rollup_retention_days, clickhouse_insert_quorum;
                optional: nats_user, nats_password_file, enriched_subject);
            if !self.geoip.is_empty() {
                c.geoip = self.geoip.clone();
            }
            if self.adopt_stream {
                c.adopt_stream = true;
            }
            if self.clickhouse_replicated {
                c.clickhouse_replicated = true;
            }
        })
    }
}

fn main() -> std::process::ExitCode {
    servicekit::logging::init();
    let Command::Run(args) = Cli::parse().command;
    let config = match args.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("analytics: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("analytics: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let ready = |addr: SocketAddr| {
            let mut fields = serde_json::Map::new();
            fields.insert("metrics".into(), addr.to_string().into());
            servicekit::ready::announce(fields);
        };
        tokio::select! {
            r = analytics::run(config, ready) => r,
            _ = shutdown_signal() => {
                // Whatever group was in flight is not acked and will be
                // redelivered; the deduplication lookup makes that harmless.
                tracing::info!("stopping");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Said on stderr like a configuration error: this is what an
            // operator reads when the sidecar refuses to start.
            eprintln!("analytics: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
