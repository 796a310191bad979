//! `perf`: the load generator (`perf load`) and the harness summary
//! (`perf summarize`). See the crate documentation and README.md.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use perf::keys::{self, Distribution, Workload, WorkloadSpec};
use perf::load::{self, LoadConfig};
use perf::mode::Mode;
use perf::tls::{TlsClient, TlsOptions, Versions};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "perf",
    version,
    about = "Perf lab: HTTP/1.1 load generator and harness summary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load a loopback HTTP/1.1 server with GET /CODE requests, plain or over
    /// TLS, on kept-alive or new connections, and report throughput, latency
    /// percentiles and errors.
    Load(Box<LoadArgs>),
    /// Read a harness results directory (runs/*.json) and write summary.md
    /// and plot.svg into it; prints the table.
    Summarize {
        /// The results directory, e.g. perf/results/2026-11-22T02-30.
        dir: PathBuf,
    },
    /// Ask each page of a list many times, one after another on one
    /// connection and then from several connections at once, and report
    /// p50/p95/p99/max per page; any answer but 200 fails the run.
    Pages(PagesArgs),
}

#[derive(Args)]
struct PagesArgs {
    /// host:port; only 127.0.0.0/8 and ::1 are accepted.
    #[arg(long, short = 'u')]
    target: String,
    /// NAME<TAB>PATH per line.
    #[arg(long)]
    pages: PathBuf,
    /// The Cookie header to send (a signed-in session).
    #[arg(long)]
    cookie: Option<String>,
    /// Unmeasured requests per page first.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Measured requests per page, in a row on one connection.
    #[arg(long, short = 'n', default_value_t = 200)]
    requests: usize,
    /// Connections asking each page at once afterwards (0: none).
    #[arg(long, short = 'c', default_value_t = 4)]
    concurrency: usize,
    /// Measured requests per page of the concurrent phase, in all.
    #[arg(long, default_value_t = 100)]
    concurrent_requests: usize,
    /// p95 target, ms: marked in the table when missed.
    #[arg(long, default_value_t = 100.0)]
    target_ms: f64,
    /// Seconds to wait for one response.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct LoadArgs {
    /// host:port; only 127.0.0.0/8 and ::1 are accepted.
    #[arg(long, short = 'u')]
    target: String,
    /// keepalive: every request on connections kept open; close: one request
    /// per new connection (`Connection: close`); tls-keepalive, tls-full (a
    /// new connection and full handshake per request), tls-resume (a new
    /// connection per request, resuming with the slot's last ticket): the
    /// same over TLS.
    #[arg(long, default_value = "keepalive")]
    mode: Mode,
    /// TLS modes: the server name sent (SNI) and checked against the
    /// certificate; also the Host header.
    #[arg(long)]
    sni: Option<String>,
    /// TLS modes: PEM file of the CA to trust (the only root).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// TLS modes: versions offered, 1.3, 1.2 or any.
    #[arg(long, default_value = "1.3")]
    tls_version: Versions,
    /// Codes: one per line, CSV with the code first (links.csv), or a snapshot file.
    #[arg(long, short = 'k')]
    keys: PathBuf,
    /// uniform, zipf (s = 1) or zipf:S.
    #[arg(long, default_value = "uniform")]
    distribution: Distribution,
    /// Share of requests for unknown codes (expecting --expect-unknown), 0..1.
    #[arg(long, default_value_t = 0.0)]
    unknown: f64,
    /// Status expected for a known code.
    #[arg(long, default_value_t = 301)]
    expect: u16,
    /// Status expected for an unknown code.
    #[arg(long, default_value_t = 404)]
    expect_unknown: u16,
    /// Connections in total.
    #[arg(long, short = 'c', default_value_t = 64)]
    connections: usize,
    /// Threads (each with its own epoll).
    #[arg(long, short = 't', default_value_t = 1)]
    threads: usize,
    /// CPUs to pin threads to, comma-separated (thread i on the i-th, cycling).
    #[arg(long, value_delimiter = ',')]
    pin: Vec<usize>,
    /// Requests in flight per connection (HTTP pipelining; 1 in the
    /// new-connection modes).
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// Open loop at this total rate (requests/s); default: closed loop.
    #[arg(long, short = 'R')]
    rate: Option<f64>,
    /// Measured seconds (after warm-up); also bounds --count runs.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many requests.
    #[arg(long, short = 'n')]
    count: Option<u64>,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Seconds to wait for responses in flight after the last send.
    #[arg(long, default_value_t = 2.0)]
    drain: f64,
    /// Requests in the pre-encoded sequence before it repeats.
    #[arg(long, default_value_t = 1 << 20)]
    sequence: usize,
    /// Seed of the sequence.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the summary as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Load(args) => run_load(*args),
        Command::Summarize { dir } => {
            let table = perf::summary::summarize(&dir)?;
            print!("{table}");
            Ok(())
        }
        Command::Pages(args) => run_pages(args),
    }
}

fn run_pages(a: PagesArgs) -> anyhow::Result<()> {
    let cfg = perf::pages::PagesConfig {
        addr: perf::target::loopback(&a.target)?,
        cookie: a.cookie,
        warmup: a.warmup,
        requests: a.requests,
        concurrency: a.concurrency,
        concurrent_requests: a.concurrent_requests,
        timeout: secs(a.timeout, "timeout")?,
    };
    let pages = perf::pages::load_pages(&a.pages)?;
    let results = perf::pages::run(&cfg, &pages)?;
    print!("{}", perf::pages::table(&results, a.target_ms));
    if let Some(path) = &a.json {
        let json = serde_json::to_string_pretty(&results)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn secs(s: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("--{what} {s} is not a duration"))
}

fn run_load(a: LoadArgs) -> anyhow::Result<()> {
    let addr = perf::target::loopback(&a.target)?;
    let tls = if a.mode.tls() {
        let (Some(sni), Some(ca)) = (a.sni.clone(), a.ca.clone()) else {
            anyhow::bail!("--mode {} needs --sni NAME and --ca FILE", a.mode);
        };
        let opts = TlsOptions {
            ca,
            sni,
            versions: a.tls_version,
        };
        Some(Arc::new(TlsClient::new(&opts, a.mode, a.connections)?))
    } else {
        if a.sni.is_some() || a.ca.is_some() {
            anyhow::bail!(
                "--sni and --ca are for the TLS modes, not --mode {}",
                a.mode
            );
        }
        None
    };
    let codes = keys::load_codes(&a.keys)?;
    let spec = WorkloadSpec {
        distribution: a.distribution,
        unknown_share: a.unknown,
        known_status: a.expect,
        unknown_status: a.expect_unknown,
        len: a.sequence,
        seed: a.seed,
        host: match (&a.sni, a.mode.tls()) {
            (Some(name), true) => name.clone(),
            _ => perf::target::host_header(&addr),
        },
        connection_close: a.mode.new_connection_per_request(),
    };
    let workload = Arc::new(Workload::build(&codes, &spec)?);
    let label = format!(
        "{} over {} codes from {}, {:.1}% unknown",
        a.distribution,
        codes.len(),
        a.keys.display(),
        a.unknown * 100.0
    );
    drop(codes);
    let cfg = LoadConfig {
        addr,
        connections: a.connections,
        threads: a.threads,
        pin: a.pin,
        depth: a.depth,
        rate: a.rate,
        duration: secs(a.duration, "duration")?,
        count: a.count,
        warmup: secs(a.warmup, "warmup")?,
        drain: secs(a.drain, "drain")?,
        mode: a.mode,
        tls,
    };
    tracing::info!(%addr, mode = %cfg.mode, connections = cfg.connections, threads = cfg.threads, "load starts");
    let summary = load::run(&cfg, workload, &label)?;
    print!("{}", summary.print());
    if let Some(path) = &a.json {
        let json = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
