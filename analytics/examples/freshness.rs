//! Click-to-queryable freshness through the sidecar: how long after a batch
//! is published its rows can be counted in ClickHouse, at a steady load.
//!
//! Publishes `BATCHES` batches (default 200) of `EVENTS_PER_BATCH` events
//! (default 100) at `RATE` events per second (default 2,000: a batch every
//! 50 ms) while a poller counts `clicks` every few milliseconds; a batch is
//! "queryable" at the first poll that sees its rows. Resolution is one poll
//! (~5 ms plus the count query). Needs the local services.
//!
//! `cargo run --release -p analytics --example freshness`
//!
//! At 100k clicks/s (a batch of 1,000 every 10 ms, for 10 s):
//!
//! `RATE=100000 EVENTS_PER_BATCH=1000 BATCHES=1000 cargo run --release -p analytics --example freshness`

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use snapshots::click::{ClickBatchWriter, ClickEvent};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let batches = env_or("BATCHES", 200);
    let per_batch = env_or("EVENTS_PER_BATCH", 100);
    let rate = env_or("RATE", 2_000).max(1);
    let interval = Duration::from_micros(per_batch * 1_000_000 / rate);
    let ch = testkit::ClickHouseDatabase::create_with_prefix("analytics_fresh").await?;
    let nats = testkit::JetStreamScope::connect_with_prefix("analytics_fresh").await?;
    let config = analytics::Config {
        nats: nats.url().to_owned(),
        clickhouse: ch.url().to_owned(),
        database: ch.name().to_owned(),
        geoip: vec![testkit::fixtures::geoip_city()],
        metrics: "127.0.0.1:0".parse()?,
        stream: nats.stream_name("CLICKS"),
        subjects: nats.subject("clicks.>"),
        consumer: "fresh".into(),
        ..Default::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sidecar = tokio::spawn(analytics::run(config, move |_| {
        let _ = tx.send(());
    }));
    rx.await?;

    // The poller: (time, rows visible).
    let poll_ch = ch.url().to_owned();
    let poll_db = ch.name().to_owned();
    let total = batches * per_batch;
    let poller = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut seen = Vec::new();
        loop {
            let body = http
                .post(format!("{poll_ch}/?database={poll_db}"))
                .body("SELECT count() FROM clicks")
                .send()
                .await?
                .text()
                .await?;
            let n: u64 = body.trim().parse()?;
            seen.push((Instant::now(), n));
            if n >= total {
                return anyhow::Ok(seen);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });

    let js = nats.jetstream();
    let subject = nats.subject("clicks.fresh-node");
    let mut writer = ClickBatchWriter::new("fresh-node", 64 * 1024);
    let mut published = Vec::new();
    let codes: Vec<String> = (0..50).map(|i| format!("c{i}")).collect();
    let mut tick = tokio::time::interval(interval);
    let publishing = Instant::now();
    for b in 0..batches {
        tick.tick().await;
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&b.to_be_bytes());
        writer.begin(id);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as u64;
        for i in 0..per_batch {
            let mut event_id = [0u8; 16];
            event_id[..8].copy_from_slice(&(b * per_batch + i).to_be_bytes());
            event_id[8..].copy_from_slice(b"freshnes");
            writer.push(&ClickEvent {
                event_id,
                ts_ms: now_ms,
                status: 302,
                ip: IpAddr::V4(Ipv4Addr::new(81, 2, 69, (i % 250) as u8)),
                code: codes[(i % 50) as usize].as_bytes(),
                user_agent:
                    b"Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
                referrer: b"",
                accept_language: b"en",
                host: b"sho.rt",
                domain: b"sho.rt",
                org_id: 0,
                rule: 0,
            });
        }
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("{b:032x}").as_str());
        let sent = Instant::now();
        js.publish_with_headers(subject.clone(), headers, writer.finish().to_vec().into())
            .await?
            .await?;
        published.push(sent);
    }
    let published_in = publishing.elapsed();
    let seen = poller.await??;
    sidecar.abort();

    // Batches become visible in publish order (one consumer, groups in order).
    let mut lat: Vec<Duration> = published
        .iter()
        .enumerate()
        .map(|(b, sent)| {
            let needed = (b as u64 + 1) * per_batch;
            let (at, _) = seen.iter().find(|(_, n)| *n >= needed).expect("all seen");
            at.saturating_duration_since(*sent)
        })
        .collect();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{batches} batches x {per_batch} events every {interval:?} (published at {:.0} events/s): \
         freshness p50 {:?}, p99 {:?}, max {:?}",
        (batches * per_batch) as f64 / published_in.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        lat[lat.len() - 1]
    );
    Ok(())
}
