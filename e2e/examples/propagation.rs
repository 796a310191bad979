//! Change propagation to an idle engine: from publishing a signed link
//! change on the real NATS to the engine serving it, `N` times (default
//! 200), one change at a time with `GAP_MS` (default 50) of idleness
//! between them, so every change meets an idle engine.
//!
//! For each change the clock starts just before the publish (as control's
//! relay would send it) and stops at the first answer carrying the new
//! target, polled on a keep-alive connection every 200 µs (the resolution);
//! the engine runs on `CORES` cores (default 1: with more, the poll
//! reaches one core and the others may still be behind) with the I/O
//! backend `IO` (default `auto`). Prints p50, p99 and max. A benchmark, not
//! a test: run it on a quiet machine.
//!
//! ```sh
//! cargo build --release -p engine
//! E2E_BIN_DIR=target/release cargo run --release -p e2e --example propagation
//! ```

use snapshots::Link;
use snapshots::delta::LinkDelta;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Asks for `/code` until the answer's `Location` is `target`.
fn poll_until_served(stream: &mut TcpStream, code: &str, target: &str) -> anyhow::Result<()> {
    let request = format!("GET /{code} HTTP/1.1\r\nHost: bench\r\n\r\n");
    let expected = format!("Location: {target}\r\n");
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        stream.write_all(request.as_bytes())?;
        // Answers are one read each (redirects carry no body).
        let n = stream.read(&mut buf)?;
        anyhow::ensure!(n > 0, "the engine closed the connection");
        if std::str::from_utf8(&buf[..n]).is_ok_and(|text| text.contains(&expected)) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{code} not served in 10 s");
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = env_or("N", 200);
    let gap = Duration::from_millis(env_or("GAP_MS", 50));
    let cores = env_or("CORES", 1).to_string();
    let io = std::env::var("IO").unwrap_or_else(|_| "auto".into());
    testkit::require_services().await?;
    let scope = testkit::JetStreamScope::connect_with_prefix("e2e_prop").await?;
    let (stream, subject) = (scope.stream_name("LINKS"), scope.subject("links.changes"));
    // The stream as control makes it: with limits.
    scope
        .create_stream(async_nats::jetstream::stream::Config {
            name: stream.clone(),
            subjects: vec![subject.clone()],
            max_age: Duration::from_secs(3600),
            max_bytes: 64 << 20,
            ..Default::default()
        })
        .await?;
    let keys = testkit::LinkKeys::new()?;
    let dir = tempfile::tempdir()?;
    let snapshot = dir.path().join("links.snap");
    let mut builder = snapshots::SnapshotBuilder::new(1);
    builder.push(Link::new("p", "https://example.com/0"))?;
    builder.write_to(&snapshot)?;
    let url = testkit::nats_url();
    let verify_key = keys.verify_key();
    let state = dir.path().join("state");
    let engine = e2e::Proc::spawn(
        "engine",
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--cores",
            &cores,
            "--io",
            &io,
            "--snapshot",
            snapshot.to_str().unwrap(),
            "--nats",
            &url,
            "--links-stream",
            &stream,
            "--links-subject",
            &subject,
            "--links-verify-key",
            verify_key.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--no-clicks",
        ],
    )
    .await?;
    let listen = engine.listen();
    let admin = engine.ready["admin"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // Wait until the engine consumes the stream.
    testkit::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(20),
        || async {
            let readyz = async {
                reqwest::get(format!("http://{admin}/readyz"))
                    .await?
                    .json::<serde_json::Value>()
                    .await
            };
            readyz.await.is_ok_and(|v| v["nats_connected"] == true)
        },
    )
    .await?;
    let mut poller = TcpStream::connect(&listen)?;
    poller.set_nodelay(true)?;
    poller.set_read_timeout(Some(Duration::from_secs(10)))?;
    poll_until_served(&mut poller, "p", "https://example.com/0")?;

    let js = scope.jetstream();
    let mut samples = Vec::with_capacity(n as usize);
    for i in 1..=n {
        tokio::time::sleep(gap).await;
        let target = format!("https://example.com/{i}");
        let (headers, payload) = keys.signed(&LinkDelta::upsert(i + 1, Link::new("p", &target)));
        let started = Instant::now();
        let ack = js
            .publish_with_headers(subject.clone(), headers, payload.into())
            .await?;
        let (back, elapsed) = tokio::task::spawn_blocking(move || {
            let result = poll_until_served(&mut poller, "p", &target);
            (poller, result.map(|()| started.elapsed()))
        })
        .await?;
        poller = back;
        samples.push(elapsed?);
        ack.await?;
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "publish-to-served on an idle engine ({cores} core(s), io {io}, {n} changes, {} ms apart): \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        gap.as_millis(),
        ms(percentile(&samples, 0.50)),
        ms(percentile(&samples, 0.99)),
        ms(samples[samples.len() - 1]),
    );
    Ok(())
}
