//! Test-only helpers for the integration tests of `engine`, `control` and `analytics`.
//!
//! # The model
//!
//! Integration tests run against **real services on loopback**, the ones
//! `deploy/services.sh` brings up (or reuses): PostgreSQL on 127.0.0.1:5432, NATS with
//! JetStream on 127.0.0.1:4222 and ClickHouse on 127.0.0.1:8123. Nothing is mocked and
//! nothing is started by the tests themselves.
//!
//! Tests share those servers but never share state: each test asks for its **own
//! namespace** and gets it cleaned up when the guard goes out of scope.
//!
//! | service | guard | what is unique to the test | dropped on `Drop` |
//! |---|---|---|---|
//! | PostgreSQL | [`PgDatabase`] | a database (`CREATE DATABASE`) | `DROP DATABASE ... WITH (FORCE)` |
//! | ClickHouse | [`ClickHouseDatabase`] | a database | `DROP DATABASE IF EXISTS` |
//! | NATS JetStream | [`JetStreamScope`] | stream names and a subject prefix | every stream the scope named |
//!
//! Names come from [`unique_name`]: process-unique and random, lowercase `[a-z0-9_]`, so
//! they are valid unquoted identifiers in PostgreSQL and ClickHouse and valid NATS
//! stream names and subject tokens. Tests therefore run in parallel, in one process or
//! several (`cargo test`, `cargo nextest`), without stepping on each other.
//!
//! `Drop` cannot be async, so cleanup runs on a **fresh thread with its own small tokio
//! runtime and its own connection**, and the dropping thread waits for it (bounded by a
//! timeout). That works whether the guard is dropped inside a `#[tokio::test]` runtime
//! (current-thread or multi-thread) or outside any runtime, and it never panics: a
//! failed cleanup prints a warning to stderr. Each guard also has an explicit async
//! `cleanup()` for tests that want to see the error. Set `TESTKIT_KEEP=1` to keep
//! everything for a post-mortem (the names are printed).
//!
//! If a test process is killed, its databases and streams stay behind; they all carry the
//! prefix the test chose, so they are easy to find and drop by hand.
//!
//! # Where the services are
//!
//! | variable | default |
//! |---|---|
//! | `TEST_DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/postgres` (an admin URL: it must be allowed to create databases) |
//! | `TEST_NATS_URL` | `nats://127.0.0.1:4222` |
//! | `TEST_CLICKHOUSE_URL` | `http://127.0.0.1:8123` |
//!
//! Call [`require_services`] first in a test (or a test binary's setup) to fail with a
//! message that says to run `deploy/services.sh` rather than with a connection error.
//!
//! # The other helpers
//!
//! * [`wait_for`], [`wait_for_some`], [`wait_for_ok`]: "eventually" assertions that poll
//!   a condition until a deadline instead of sleeping a fixed time.
//! * [`free_port`], [`free_addr`]: a loopback port that was free a moment ago.
//! * [`ReadyChild`]: a service binary as a child process, waited for until it prints its
//!   readiness line, killed on drop, its stderr in a log kept when the test fails.
//! * [`prometheus`]: parsing and scraping `/metrics`.
//! * [`fixtures`]: data files several crates' tests share (MaxMind's GeoIP test databases, an
//!   older ClickHouse schema of the analytics sidecar).
//! * [`LinkKeys`]: a link-signing key pair in PEM files (control signs, engines verify).
//! * [`Pebble`]: a test ACME CA (Debian's pebble and its mock DNS) of the test's own, for
//!   certificate issuance with real HTTP-01 validation.
//! * [`Browser`]: a headless Chromium over WebDriver for browser tests (skipped loudly
//!   when Debian's `chromium`/`chromium-driver` are missing, failed under `CI`).
//! * [`PrivateNats`]: a nats-server of the test's own, to stop and restart (outages) or to
//!   run with the deploy's users and permissions ([`Role`], [`StreamNames`]; one engine
//!   user per node, [`Role::Engine`]).
//! * [`NatsCluster`]: three nats-servers forming a JetStream cluster of the test's own,
//!   ready when it has a meta leader; a node can be killed and restarted under load.
//! * [`ClickHouseReplicas`]: ZooKeeper and two ClickHouse servers as replicas of one
//!   shard, of the test's own (replicated tables; a replica can be killed and restarted).
//! * [`NetNs`]: a network namespace with a veth pair to this host, a "host" of its own
//!   address and ports for edge nodes (needs root).
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use std::time::Duration;
//!
//! testkit::require_services().await?;
//! let pg = testkit::PgDatabase::create().await?;
//! let pool = pg.pool().await?;
//! let ch = testkit::ClickHouseDatabase::create().await?;
//! ch.query("CREATE TABLE t (x UInt64) ENGINE = MergeTree ORDER BY x").await?;
//! let nats = testkit::JetStreamScope::connect().await?;
//! let stream = nats.stream_name("CLICKS"); // e.g. CLICKS_tk_1234_0_x8f3k2...
//! let subject = nats.subject("clicks");   // e.g. tk_1234_0_x8f3k2....clicks
//! // ... start the code under test with those names, then:
//! testkit::wait_for(Duration::from_secs(5), Duration::from_millis(20), || async {
//!     ch.query("SELECT count() FROM t").await.is_ok_and(|n| n.trim() == "1")
//! })
//! .await?;
//! # drop((pool, stream, subject));
//! # Ok(())
//! # }
//! ```

mod browser;
mod cleanup;
mod clickhouse;
mod clickhouse_replicas;
pub mod fixtures;
mod link_keys;
mod names;
mod nats;
mod nats_cluster;
mod nats_process;
mod net;
mod netns;
mod pebble;
mod pg;
mod private_nats;
pub mod prometheus;
mod ready_child;
mod services;
pub mod tls;
mod wait;

pub use browser::{Browser, BrowserOptions};
pub use clickhouse::{ClickHouseDatabase, clickhouse_url};
pub use clickhouse_replicas::ClickHouseReplicas;
pub use link_keys::LinkKeys;
pub use names::unique_name;
pub use nats::{JetStreamScope, nats_url};
pub use nats_cluster::{CLUSTER_SIZE, NatsCluster};
pub use net::{free_addr, free_port};
pub use netns::NetNs;
pub use pebble::Pebble;
pub use pg::{PgDatabase, admin_database_url};
pub use private_nats::{ENGINE_NODE, PrivateNats, Role, StreamNames};
pub use ready_child::ReadyChild;
pub use services::require_services;
pub use wait::{wait_for, wait_for_ok, wait_for_some};

/// Reads an environment variable, falling back to `default` when unset or empty.
fn env_or(var: &str, default: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
        _ => default.to_owned(),
    }
}

/// True when `TESTKIT_KEEP` asks to keep databases and streams after the test.
fn keep_resources() -> bool {
    matches!(
        std::env::var("TESTKIT_KEEP").as_deref(),
        Ok("1" | "true" | "yes")
    )
}
