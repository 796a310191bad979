//! Shared by the integration tests: a fresh ClickHouse database and JetStream
//! names per test, batches built with the engine's writer, the sidecar as a
//! child process, and metric scraping.
#![allow(dead_code)] // each test binary uses its own subset

pub mod proxy;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use async_nats::HeaderMap;
use snapshots::click::{ClickBatchWriter, ClickEvent};

pub const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
pub const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
pub const SLACKBOT: &str = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";
/// Resolves to London, GB in MaxMind's GeoIP2-City-Test.mmdb.
pub const LONDON_IP: &str = "81.2.69.142";
/// The test streams' max bytes: JetStream reserves a stream's max bytes on
/// the shared server, so tests ask for little.
pub const TEST_MAX_BYTES: i64 = 64 << 20;
/// The code a poisoned `clicks` table refuses ([`Env::poison_clicks`]).
pub const POISON: &str = "poison";

/// One test's namespace on the shared servers.
pub struct Env {
    pub ch: testkit::ClickHouseDatabase,
    pub nats: testkit::JetStreamScope,
    pub stream: String,
    pub subjects: String,
    pub consumer: String,
}

impl Env {
    pub async fn new() -> Env {
        testkit::require_services().await.expect("services up");
        let ch = testkit::ClickHouseDatabase::create_with_prefix("analytics")
            .await
            .unwrap();
        let nats = testkit::JetStreamScope::connect_with_prefix("analytics")
            .await
            .unwrap();
        let stream = nats.stream_name("CLICKS");
        let subjects = nats.subject("clicks.>");
        let consumer = format!("analytics_{}", nats.token());
        Env {
            ch,
            nats,
            stream,
            subjects,
            consumer,
        }
    }

    /// `clicks.<node>` under the test's prefix.
    pub fn subject(&self, node: &str) -> String {
        self.nats.subject(&format!("clicks.{node}"))
    }

    /// The sidecar's command line for this namespace.
    pub fn sidecar_args(&self, clickhouse: &str) -> Vec<String> {
        sidecar_args(&SidecarTarget {
            nats: self.nats.url(),
            clickhouse,
            database: self.ch.name(),
            stream: &self.stream,
            subjects: &self.subjects,
            consumer: &self.consumer,
        })
    }

    /// Starts the sidecar against the real ClickHouse.
    pub fn start_sidecar(&self) -> Sidecar {
        Sidecar::start(&self.sidecar_args(self.ch.url()), &[])
    }

    /// Publishes one batch and waits for JetStream's ack.
    pub async fn publish(&self, node: &str, msg_id: &str, batch: Vec<u8>) {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id);
        self.nats
            .jetstream()
            .publish_with_headers(self.subject(node), headers, batch.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// The sidecar's configuration for this namespace (what
    /// [`sidecar_args`](Self::sidecar_args) says, without GeoIP).
    pub fn config(&self) -> analytics::Config {
        analytics::Config {
            clickhouse: self.ch.url().to_owned(),
            database: self.ch.name().to_owned(),
            nats: self.nats.url().to_owned(),
            stream: self.stream.clone(),
            subjects: self.subjects.clone(),
            consumer: self.consumer.clone(),
            clicks_max_bytes: TEST_MAX_BYTES,
            ..Default::default()
        }
    }

    /// Creates the stream the way the sidecar would, so tests can publish first.
    pub async fn create_stream(&self) {
        self.nats
            .create_stream(analytics::nats::stream_config(&self.config()))
            .await
            .unwrap();
    }

    /// Creates the sidecar's schema and makes ClickHouse refuse every insert
    /// into `clicks` that has a row with code [`POISON`]: a `MATERIALIZED`
    /// column computed on insert, before anything is written, raises
    /// `throwIf` (code 395). The row types leave ClickHouse nothing to refuse
    /// (strings take any bytes, ids are exactly 16 bytes, times are clamped
    /// to `DateTime`, and 18.16 has no per-insert partition limit), so this
    /// is how a test gets a real refusal from the real server.
    pub async fn poison_clicks(&self) {
        analytics::store::Store::new(&self.config())
            .create_schema()
            .await
            .unwrap();
        self.ch
            .query(&format!(
                "ALTER TABLE clicks ADD COLUMN refuse UInt8 MATERIALIZED throwIf(code = '{POISON}')"
            ))
            .await
            .unwrap();
    }

    /// The sidecar's consumer as NATS sees it now (`None` before it exists).
    pub async fn consumer_info(&self) -> Option<async_nats::jetstream::consumer::Info> {
        let consumer: async_nats::jetstream::consumer::PullConsumer = self
            .nats
            .jetstream()
            .get_consumer_from_stream(&self.consumer, &self.stream)
            .await
            .ok()?;
        consumer.get_info().await.ok()
    }

    /// A single number from ClickHouse.
    pub async fn number(&self, sql: &str) -> u64 {
        let text = self.ch.query(sql).await.unwrap();
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{sql} gave {text:?}"))
    }

    pub async fn rows(&self) -> u64 {
        self.number("SELECT count() FROM clicks").await
    }

    /// Waits until `clicks` has `n` rows and the sidecar has acked everything
    /// (nothing pending, nothing awaiting ack), then checks the count again:
    /// "exactly n", not "at least n at some moment".
    pub async fn settle_exactly(&self, sidecar: &Sidecar, n: u64) {
        let waited = testkit::wait_for(
            Duration::from_secs(60),
            Duration::from_millis(50),
            || async { self.rows().await == n },
        )
        .await;
        assert!(
            waited.is_ok(),
            "expected {n} rows, have {}",
            self.rows().await
        );
        testkit::wait_for(
            Duration::from_secs(30),
            Duration::from_millis(50),
            || async {
                let m = sidecar.metrics().await;
                m.get("analytics_consumer_pending") == Some(&0.0)
                    && m.get("analytics_consumer_ack_pending") == Some(&0.0)
            },
        )
        .await
        .expect("consumer drained");
        assert_eq!(
            self.rows().await,
            n,
            "row count changed after the consumer drained"
        );
        assert_eq!(
            self.number("SELECT uniqExact(event_id) FROM clicks").await,
            n,
            "duplicate event ids stored"
        );
    }
}

/// Where a sidecar reads and writes.
pub struct SidecarTarget<'a> {
    pub nats: &'a str,
    pub clickhouse: &'a str,
    pub database: &'a str,
    pub stream: &'a str,
    pub subjects: &'a str,
    pub consumer: &'a str,
}

/// The one sidecar command line the tests use: `target`, the test GeoIP
/// database, metrics on a free port, the tests' stream size limit, and
/// retention off.
pub fn sidecar_args(target: &SidecarTarget<'_>) -> Vec<String> {
    [
        "run",
        "--nats",
        target.nats,
        "--clickhouse",
        target.clickhouse,
        "--database",
        target.database,
        "--geoip",
        geoip_fixture().to_str().unwrap(),
        "--metrics",
        "127.0.0.1:0",
        "--stream",
        target.stream,
        "--subjects",
        target.subjects,
        "--consumer",
        target.consumer,
        "--clicks-max-bytes",
        &TEST_MAX_BYTES.to_string(),
        // The fixtures' clicks are dated November 2025: past the default
        // 90 days, the retention task at start would drop their
        // partition under a test's feet (tests/retention.rs tests it).
        "--raw-retention-days",
        "36500",
        "--rollup-retention-days",
        "36500",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn geoip_fixture() -> PathBuf {
    testkit::fixtures::geoip_city()
}

/// A batch of `count` events with ids `(seed, i)`, cycling through a few
/// agents, addresses and referrers.
pub fn batch(node: &str, seed: u32, count: u32) -> Vec<u8> {
    batch_with_codes(node, seed, count, &["abc", "xyz"])
}

/// [`batch`], with the events' codes taken in turn from `codes`.
pub fn batch_with_codes(node: &str, seed: u32, count: u32, codes: &[&str]) -> Vec<u8> {
    let mut w = ClickBatchWriter::new(node, 64 * 1024);
    w.begin(id(seed, u32::MAX));
    let ips: [IpAddr; 2] = [
        LONDON_IP.parse().unwrap(),
        "2001:db8:1234:5678::1".parse().unwrap(),
    ];
    let agents = [CHROME_WINDOWS, SAFARI_IPHONE, SLACKBOT];
    let referrers = ["https://News.Example.com/story?id=1", "", "not a url"];
    for i in 0..count {
        let k = i as usize;
        w.push(&ClickEvent {
            event_id: id(seed, i),
            ts_ms: 1_763_700_000_000 + u64::from(seed) * 1000 + u64::from(i),
            status: if i % 10 == 9 { 404 } else { 301 },
            ip: ips[k % 2],
            code: codes[k % codes.len()].as_bytes(),
            user_agent: agents[k % 3].as_bytes(),
            referrer: referrers[k % 3].as_bytes(),
            accept_language: b"en-GB",
            host: b"sho.rt",
            domain: b"sho.rt",
            // The org follows the code, as a link's does; rules alternate.
            org_id: 100 + (k % codes.len()) as u64,
            rule: (k % 2) as u16,
        });
    }
    w.finish().to_vec()
}

/// A 16-byte id from two numbers.
pub fn id(seed: u32, i: u32) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&seed.to_be_bytes());
    out[4..8].copy_from_slice(&i.to_be_bytes());
    out[8..].copy_from_slice(b"testevnt");
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sidecar binary as a child process; SIGKILLed on drop.
pub struct Sidecar {
    process: testkit::ReadyChild,
    pub metrics_addr: SocketAddr,
}

impl Sidecar {
    /// Spawns `analytics` and waits for its readiness line on stdout.
    pub fn start(args: &[String], env: &[(&str, &str)]) -> Sidecar {
        let mut command = Command::new(env!("CARGO_BIN_EXE_analytics"));
        command.args(args).envs(env.iter().copied());
        let process = testkit::ReadyChild::spawn("analytics", command).expect("analytics starts");
        let metrics_addr = process.field("metrics").parse().unwrap();
        Sidecar {
            process,
            metrics_addr,
        }
    }

    /// Parsed `/metrics` (name with labels → value).
    pub async fn metrics(&self) -> HashMap<String, f64> {
        testkit::prometheus::scrape(&self.metrics_addr.to_string())
            .await
            .unwrap()
    }

    pub async fn metric(&self, name: &str) -> f64 {
        self.metrics().await.get(name).copied().unwrap_or(f64::NAN)
    }

    /// Waits until a metric has exactly `value` (counters trail the acks
    /// NATS has already seen by a moment), then reads it once more.
    pub async fn expect_metric(&self, name: &str, value: f64) {
        let reached = testkit::wait_for(
            Duration::from_secs(10),
            Duration::from_millis(20),
            || async { self.metric(name).await == value },
        )
        .await;
        assert!(
            reached.is_ok(),
            "{name} is {} not {value}",
            self.metric(name).await
        );
    }

    /// SIGKILL: no chance to ack or flush anything.
    pub fn kill(&mut self) {
        let _ = self.process.child.kill();
        let _ = self.process.child.wait();
    }
}
