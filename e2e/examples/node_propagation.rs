//! API commit to served on every edge node: control, NATS and `NODES`
//! (default 3) engines, each engine in a network namespace of its own
//! (`testkit::NetNs`, so a host of its own address), as
//! `e2e::stack::Stack::spawn_engine_in` starts them. `N` times (default
//! 300), one link at a time with `GAP_MS` (default 20) between them, it
//! creates a link through the API and polls every node until each answers
//! with the new link's target.
//!
//! The clock starts just before the `POST /v1/links` is sent (so the
//! commit, the outbox relay, NATS and the engine's apply are all inside it)
//! and stops, per node, at the first answer carrying the target: each node
//! is polled on a keep-alive connection of its own every 200 µs (the
//! resolution), from its own thread. Prints p50, p99 and max per node and
//! over all nodes (the issue's target: p99 ≤ 50 ms on every node).
//!
//! Then a catch-up: the last node is SIGKILLed, `CATCHUP` links (default
//! 20,000) are created through `POST /v1/links/bulk` (1,000 a request), and
//! the node is restarted on its state directory; it prints how long the node
//! took from its readiness line to serving the last of them (it reads the
//! changes since its sequence from the stream), the rate in changes a
//! second, and the stream's bytes per change. These feed the 100-node model
//! in docs/CAPACITY.md. A benchmark, not a test: run it on a quiet machine,
//! as root (`ip netns`).
//!
//! ```sh
//! cargo build --release --locked -p engine -p control
//! E2E_BIN_DIR=target/release cargo run --release -p e2e --example node_propagation
//! ```

use e2e::stack::{Stack, StackOptions, node_admin};
use reqwest::Method;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use testkit::NetNs;

const TOKEN: &str = "node-propagation-token";
const HOST: &str = "sho.rt";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One node's poller: for each `(code, target, started)` it gets, asks the
/// node for `/code` until the answer's `Location` is `target`, and sends
/// back how long after `started` that was.
fn poller(
    ip: Ipv4Addr,
    work: mpsc::Receiver<(String, String, Instant)>,
    done: mpsc::Sender<(usize, Duration)>,
    node: usize,
) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect((ip, 80))?;
    stream.set_nodelay(true)?;
    let mut buf = [0u8; 4096];
    for (code, target, started) in work {
        let request = format!("GET /{code} HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
        let expected = format!("Location: {target}\r\n");
        let deadline = started + Duration::from_secs(60);
        loop {
            stream.write_all(request.as_bytes())?;
            // Answers are one read each (a 404 or a redirect, no big body).
            let n = stream.read(&mut buf)?;
            anyhow::ensure!(n > 0, "node {node} closed the connection");
            if std::str::from_utf8(&buf[..n]).is_ok_and(|text| text.contains(&expected)) {
                let _ = done.send((node, started.elapsed()));
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "{code} not served in 60 s");
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn report(name: &str, times: &mut [Duration]) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:>10}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} links)",
        ms(percentile(times, 0.50)),
        ms(percentile(times, 0.99)),
        ms(*times.last().unwrap()),
        times.len()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (n, gap) = (
        env_or("N", 300),
        Duration::from_millis(env_or("GAP_MS", 20)),
    );
    let count = env_or("NODES", 3) as usize;
    let nodes: Vec<NetNs> = (0..count)
        .map(|_| NetNs::create())
        .collect::<Result<_, _>>()?;
    let hub = nodes[0].host_ip();
    let nats = testkit::PrivateNats::start_on(hub.into())?;
    let mut options = StackOptions::new("e2e_nodeprop");
    options.default_domain = Some(HOST);
    options.control_listen = format!("{hub}:0");
    options.nats_servers = Some(nats.url());
    options.control_args = vec!["--engine-admin-token".into(), TOKEN.into()];
    options.engine_args = vec!["--admin-token".into(), TOKEN.into()];
    options.extra_engine_admins = nodes.iter().map(node_admin).collect();
    let stack = Stack::start(options).await;
    let key = stack
        .create_key(&["--org", "bench", "--scopes", "admin"])
        .await;
    let dirs: Vec<tempfile::TempDir> = (0..count)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let mut engines = Vec::new();
    for (ns, dir) in nodes.iter().zip(&dirs) {
        engines.push(stack.spawn_engine_in(ns, dir.path(), &[]).await);
        stack.wait_following(&node_admin(ns)).await;
    }

    let (done_tx, done) = mpsc::channel();
    let mut work = Vec::new();
    let mut threads = Vec::new();
    for (i, ns) in nodes.iter().enumerate() {
        let (tx, rx) = mpsc::channel();
        work.push(tx);
        let (ip, done_tx) = (ns.ip(), done_tx.clone());
        threads.push(std::thread::spawn(move || poller(ip, rx, done_tx, i)));
    }
    let mut per_node: Vec<Vec<Duration>> = vec![Vec::new(); count];
    for i in 0..n {
        let target = format!("https://propagation.example/{i}");
        let started = Instant::now();
        let (status, body) = stack
            .call(
                &key,
                Method::POST,
                "/v1/links",
                Some(json!({ "target": target })),
            )
            .await;
        anyhow::ensure!(status == 201, "create answered {status}: {body}");
        let code = body["code"].as_str().unwrap_or_default().to_owned();
        for tx in &work {
            tx.send((code.clone(), target.clone(), started))?;
        }
        for _ in 0..count {
            let (node, took) = done
                .recv_timeout(Duration::from_secs(15))
                .map_err(|_| anyhow::anyhow!("a node never served {code}"))?;
            per_node[node].push(took);
        }
        tokio::time::sleep(gap).await;
    }
    drop(work);
    for thread in threads {
        thread.join().expect("poller panicked")?;
    }
    println!("API commit to served, {count} nodes in network namespaces, {n} links:");
    let mut all = Vec::new();
    for (i, times) in per_node.iter_mut().enumerate() {
        all.extend_from_slice(times);
        report(&format!("node {i}"), times);
    }
    report("all nodes", &mut all);

    // Catch-up: the last node misses CATCHUP changes, then comes back.
    let catchup = env_or("CATCHUP", 20_000) as usize;
    let last = nodes.len() - 1;
    engines.pop().expect("an engine per node").kill().await?;
    let created = Instant::now();
    let mut codes = Vec::with_capacity(catchup);
    for chunk in (0..catchup).collect::<Vec<_>>().chunks(1000) {
        let items: Vec<_> = chunk
            .iter()
            .map(|i| json!({ "target": format!("https://catchup.example/{i}"), "custom_alias": format!("cu{i}") }))
            .collect();
        let (status, body) = stack
            .call(
                &key,
                Method::POST,
                "/v1/links/bulk",
                Some(json!({ "create": items })),
            )
            .await;
        anyhow::ensure!(status == 200, "bulk create answered {status}: {body}");
        anyhow::ensure!(
            body["create"]
                .as_array()
                .is_some_and(|r| r.iter().all(|r| r["status"] == 201)),
            "a bulk item failed: {body}"
        );
        codes.extend(chunk.iter().map(|i| format!("cu{i}")));
    }
    let created = created.elapsed();
    let started = Instant::now();
    engines.push(
        stack
            .spawn_engine_in(&nodes[last], dirs[last].path(), &[])
            .await,
    );
    let ready = started.elapsed();
    let (tx, rx) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let ip = nodes[last].ip();
    let thread = std::thread::spawn(move || poller(ip, rx, done_tx, last));
    let code = codes.last().expect("CATCHUP > 0").clone();
    tx.send((
        code,
        format!("https://catchup.example/{}", catchup - 1),
        started,
    ))?;
    drop(tx);
    let (_, served) = done
        .recv_timeout(Duration::from_secs(120))
        .map_err(|_| anyhow::anyhow!("the restarted node never caught up"))?;
    thread.join().expect("poller panicked")?;
    let client = async_nats::connect(nats.url()).await?;
    let info = async_nats::jetstream::new(client)
        .get_stream(&stack.stream)
        .await?
        .info()
        .await?
        .state
        .clone();
    let per_change = info.bytes as f64 / info.messages.max(1) as f64;
    let applying = served.saturating_sub(ready);
    println!(
        "catch-up: {catchup} changes made in {created:.1?} while node {last} was down; restarted, ready in {ready:.1?}, \
         serving the last change {applying:.1?} after that ({:.0} changes/s); the stream holds {} changes, {per_change:.0} bytes each",
        catchup as f64 / applying.as_secs_f64().max(1e-9),
        info.messages
    );
    drop(engines);
    Ok(())
}
