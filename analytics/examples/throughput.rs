//! Sidecar throughput into ClickHouse, enrichment on (GeoIP test database).
//!
//! Publishes `EVENTS` click events (default 1,000,000) in batches of 1,000 to a
//! fresh JetStream stream, then starts the sidecar in-process and measures
//! how long it takes until every row is queryable in a fresh ClickHouse
//! database. Needs the local services (deploy/services.sh).
//!
//! Also reports the CPU the sidecar spent (this process's user + system time
//! over the same interval: the sidecar is all it runs then), as events per
//! second of one core, and the ClickHouse server's CPU over the interval
//! (from /proc), since on one machine the two share the cores.
//!
//! `EVENTS=1000000 cargo run --release -p analytics --example throughput`

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use snapshots::click::ClickBatchWriter;

#[path = "support/mix.rs"]
mod mix;

use mix::BATCH;

/// A realistic spread: many addresses, a few hundred agents, a thousand codes.
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let events: u32 = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let ch = testkit::ClickHouseDatabase::create_with_prefix("analytics_bench").await?;
    let nats = testkit::JetStreamScope::connect_with_prefix("analytics_bench").await?;
    let config = analytics::Config {
        nats: nats.url().to_owned(),
        clickhouse: ch.url().to_owned(),
        database: ch.name().to_owned(),
        geoip: vec![testkit::fixtures::geoip_city()],
        metrics: "127.0.0.1:0".parse()?,
        stream: nats.stream_name("CLICKS"),
        subjects: nats.subject("clicks.>"),
        consumer: "bench".into(),
        ..Default::default()
    };
    nats.create_stream(analytics::nats::stream_config(&config))
        .await?;

    let (agents, codes) = (mix::agents(), mix::codes());
    let mut writer = ClickBatchWriter::new("bench-node", 256 * 1024);
    let js = nats.jetstream();
    let subject = nats.subject("clicks.bench-node");
    let started = Instant::now();
    let mut acks = Vec::new();
    for b in 0..events.div_ceil(BATCH) {
        mix::write_batch(
            &mut writer,
            b,
            BATCH.min(events - b * BATCH),
            &codes,
            &agents,
        );
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("{b:032x}").as_str());
        acks.push(
            js.publish_with_headers(subject.clone(), headers, writer.finish().to_vec().into())
                .await?,
        );
        if acks.len() >= 256 {
            for a in acks.drain(..) {
                a.await?;
            }
        }
    }
    for a in acks {
        a.await?;
    }
    eprintln!("published {events} events in {:?}", started.elapsed());

    let before_rules = process_cpu_secs();
    drop(analytics::enrich::Enricher::new(None, 1));
    let rules_cpu = process_cpu_secs() - before_rules;

    let (tx, rx) = tokio::sync::oneshot::channel();
    let sidecar = tokio::spawn(analytics::run(config, move |_| {
        let _ = tx.send(Instant::now());
    }));
    let ready = rx.await?;
    let cpu_at_ready = process_cpu_secs();
    let server_at_ready = clickhouse_server_cpu_secs();
    loop {
        let n: u64 = ch
            .query("SELECT count() FROM clicks")
            .await?
            .trim()
            .parse()?;
        if n >= u64::from(events) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = ready.elapsed();
    let cpu = process_cpu_secs() - cpu_at_ready;
    let server = clickhouse_server_cpu_secs()
        .zip(server_at_ready)
        .map(|(b, a)| b - a);
    sidecar.abort();
    println!(
        "{events} events enriched and inserted in {:.2} s: {:.0} events/s",
        took.as_secs_f64(),
        f64::from(events) / took.as_secs_f64()
    );
    println!(
        "sidecar CPU {cpu:.2} s: {:.2} us per event, {:.0} events/s on one core",
        cpu * 1e6 / f64::from(events),
        f64::from(events) / cpu
    );
    println!(
        "user-agent rules compiled first, once per process: {rules_cpu:.2} s of CPU (not counted above)"
    );
    if let Some(server) = server {
        println!(
            "ClickHouse server CPU over the same interval {server:.2} s: {:.2} us per event",
            server * 1e6 / f64::from(events)
        );
    }
    Ok(())
}

/// User + system CPU seconds of this process so far.
fn process_cpu_secs() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// User + system CPU seconds of the local clickhouse-server so far, from
/// /proc (`None` when it is not found, e.g. on another host).
fn clickhouse_server_cpu_secs() -> Option<f64> {
    // SAFETY: sysconf only reads a configuration value.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        if comm.trim() != "clickhouse-serv" {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        // Fields after the parenthesised name: utime and stime are 14 and 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        return Some((utime + stime) / tick);
    }
    None
}
