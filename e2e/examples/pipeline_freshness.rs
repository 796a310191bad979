//! Click-to-queryable freshness through the whole pipeline, under load: how
//! long after a redirect is answered by the engine its click can be selected
//! in ClickHouse (engine batch age + publish to JetStream + sidecar linger,
//! dedup lookup and insert + the polling query).
//!
//! The engine (one core, default 100 ms batch age unless `BATCH_AGE_MS`)
//! and the sidecar run as child processes; `perf load` (pinned to CPU 1)
//! keeps `RATE` redirects/s (default 5,000) going while `PROBES` (default
//! 200) marked redirects are sent every `PROBE_MS` (default 50) and
//! `clicks` is polled every 10 ms for them; a probe is queryable at the
//! first poll that returns it (resolution: one poll, ~10 ms + the query).
//!
//! ```sh
//! cargo build --release -p engine -p analytics -p perf
//! E2E_BIN_DIR=target/release cargo run -p e2e --example pipeline_freshness
//! ```

use e2e::Proc;
use e2e::clicks::{self, Names};
use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rate = env_or("RATE", 5_000);
    let probes = env_or("PROBES", 200) as usize;
    let probe_every = Duration::from_millis(env_or("PROBE_MS", 50));
    let batch_age = env_or("BATCH_AGE_MS", 100);
    testkit::require_services().await?;
    let scope = testkit::JetStreamScope::connect_with_prefix("e2e_fresh").await?;
    let names = Names::new(&testkit::nats_url(), &scope);
    let ch = testkit::ClickHouseDatabase::create_with_prefix("e2e_fresh").await?;
    let dir = tempfile::tempdir()?;
    let snapshot = clicks::write_snapshot(dir.path())?;
    let codes = dir.path().join("codes.txt");
    std::fs::write(&codes, "r301\n")?;
    let _sidecar = clicks::start_sidecar(&names, &ch).await?;
    let engine: Proc =
        clicks::start_engine_with_age(&names, &snapshot, &dir.path().join("state"), batch_age)
            .await?;
    let listen = engine.listen();

    let seconds = (probes as u64 * probe_every.as_millis() as u64 / 1000 + 5).to_string();
    let mut load = tokio::process::Command::new(e2e::binary("perf")?)
        .args(["load", "--target", &listen, "--keys"])
        .arg(&codes)
        .args([
            "-c",
            "16",
            "--pin",
            "1",
            "-R",
            &rate.to_string(),
            "-d",
            &seconds,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    // Let the load and the pipeline reach their steady state first.
    let http = clicks::client();
    testkit::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            ch.query("SELECT count() FROM clicks")
                .await
                .is_ok_and(|n| n.trim().parse::<u64>().unwrap_or(0) >= rate)
        },
    )
    .await?;

    let mut sent: HashMap<String, Instant> = HashMap::new();
    let mut latencies: Vec<Duration> = Vec::new();
    let mut probes_sent = 0;
    let mut next_probe = Instant::now();
    let deadline = Instant::now() + probe_every * probes as u32 + Duration::from_secs(30);
    while latencies.len() < probes && Instant::now() < deadline {
        if probes_sent < probes && Instant::now() >= next_probe {
            let tag = format!("probe-{probes_sent}");
            probes_sent += 1;
            let status = http
                .get(format!("http://{listen}/r301"))
                .header("accept-language", &tag)
                .header("user-agent", clicks::CHROME_WINDOWS)
                .send()
                .await?
                .status();
            anyhow::ensure!(status == 301, "probe answered {status}");
            sent.insert(tag, Instant::now());
            next_probe += probe_every;
        }
        let seen = ch
            .query("SELECT accept_language FROM clicks WHERE accept_language LIKE 'probe-%'")
            .await?;
        let now = Instant::now();
        for tag in seen.lines() {
            if let Some(at) = sent.remove(tag) {
                latencies.push(now - at);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = load.kill().await;
    anyhow::ensure!(
        latencies.len() == probes,
        "only {} probes arrived",
        latencies.len()
    );
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let rows = ch.query("SELECT count() FROM clicks").await?;
    println!(
        "{probes} probes under {rate} redirects/s (batch age {batch_age} ms, {} rows stored): \
         p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        rows.trim(),
        at(0.50),
        at(0.90),
        at(0.99),
        latencies[latencies.len() - 1]
    );
    Ok(())
}
