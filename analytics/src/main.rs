//! `analytics run`: the click-analytics sidecar. See the crate doc of `analytics`.

use std::io::Write as _;
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
    /// TOML config file (fields as in `analytics::Config`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// NATS URL [default: nats://127.0.0.1:4222]
    #[arg(long)]
    nats: Option<String>,
    /// ClickHouse HTTP URL [default: http://127.0.0.1:8123]
    #[arg(long)]
    clickhouse: Option<String>,
    /// ClickHouse database owned by the sidecar [default: analytics]
    #[arg(long)]
    database: Option<String>,
    /// MaxMind-format .mmdb file for country and city (GeoIP2/GeoLite2, DB-IP
    /// lite); repeat for several (asked in order, e.g. IPv4 and IPv6 files)
    #[arg(long)]
    geoip: Vec<PathBuf>,
    /// Prometheus metrics address; port 0 picks one [default: 127.0.0.1:9100]
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// JetStream stream [default: CLICKS]
    #[arg(long)]
    stream: Option<String>,
    /// Subjects of the stream if the sidecar creates it [default: clicks.>]
    #[arg(long)]
    subjects: Option<String>,
    /// Durable consumer name [default: analytics]
    #[arg(long)]
    consumer: Option<String>,
    /// Seconds before an unacknowledged batch is redelivered [default: 30]
    #[arg(long)]
    ack_wait_secs: Option<u64>,
}

impl RunArgs {
    fn into_config(self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        macro_rules! take {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { c.$field = v; } )* };
        }
        take!(
            nats,
            clickhouse,
            database,
            metrics,
            stream,
            subjects,
            consumer,
            ack_wait_secs
        );
        if !self.geoip.is_empty() {
            c.geoip = self.geoip;
        }
        c.validate()?;
        Ok(c)
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let Command::Run(args) = Cli::parse().command;
    let config = match args.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("analytics: {e:#}");
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
            let line = serde_json::json!({"event": "ready", "metrics": addr.to_string()});
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
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
            tracing::error!("{e:#}");
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
