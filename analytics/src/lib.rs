//! The click-analytics sidecar: JetStream → enrichment → ClickHouse.
//!
//! Engines publish click batches (binary, [`snapshots::click`]) to the
//! JetStream stream `CLICKS`, one subject per node (`clicks.<node>`), with the
//! hex batch id as `Nats-Msg-Id`. This crate reads them through one durable
//! pull consumer, turns every event into an enriched row and inserts the rows
//! into ClickHouse, whose schema it owns ([`schema`]).
//!
//! # Delivery: at least once in, exactly once in the counts
//!
//! A message is acknowledged only after its rows are in ClickHouse, so a crash
//! anywhere (before the insert, during it, between insert and ack) leads to a
//! redelivery, never a loss. ClickHouse or NATS being down is the same case
//! stretched out: the group is retried with backoff (sending in-progress acks
//! so JetStream holds the messages for us), and the consumer is rebuilt when
//! its message stream fails. Nothing is acked that is not stored.
//!
//! Redeliveries must not change any count. ClickHouse 18.16 deduplicates
//! inserts only for replicated tables, and a `ReplacingMergeTree` would
//! deduplicate the raw table only eventually (at merge time, never across
//! partitions) while its materialized rollups would already have counted the
//! duplicate. So the sidecar deduplicates **before** inserting: for every
//! group it asks `clicks` which of the group's events it already holds and
//! inserts only the others (ids repeated within the group are dropped in
//! memory). Because only new rows reach `clicks`, the rollup views, fed by
//! the same insert, stay exact too.
//!
//! The lookup ([`store::Store::existing_ids`]) has two steps, both bounded by
//! the events' own codes and time range — the table's sort key `(code, ts)` —
//! so they read a few granules whatever the table's size:
//! 1. which of the group's **batch ids** already have rows (a few dozen ids,
//!    one small query: the common case ends here with "none");
//! 2. only for the rows of batches found in step 1: which **event ids** are
//!    stored. This makes the answer exact after a partial insert (an insert
//!    spanning two monthly partitions writes two parts, and a crash can land
//!    between them).
//!
//! Step 1 is sound because an engine writes each event into exactly one
//! batch, and a batch keeps its id wherever it is re-sent (FORMAT.md §3: the
//! batch id is unique per batch and is also the message id). It exists
//! because ClickHouse 18.16 parses long `IN` lists slowly (~16 µs per id):
//! asking about every event id capped the sidecar at ~25k events/s; asking
//! about batch ids first gives 120k–236k events/s on the shared 2-vCPU
//! machine (README).
//!
//! The lookup runs on every group, not only on redelivered messages, because
//! a batch re-published after JetStream's 2-minute duplicate window (an
//! engine replaying its spool under a new message id) arrives as a first
//! delivery, and because an insert may have succeeded on the server while
//! its response was lost.
//!
//! A lookup only sees committed rows, and an `INSERT` goes on running on
//! the server after its client is gone: a sidecar killed mid-insert, or a try
//! that timed out on our side. Its batches come back (redelivered to another
//! sidecar after `ack_wait`, or retried here) while it may still commit. So a
//! group that holds a redelivered batch, or is being retried, first waits for
//! the inserts into this database's `clicks` that the server is running at
//! that moment (every insert carries a `query_id` naming the database;
//! [`store::Store::settle_inserts`]). And every try (lookup and insert) sends
//! in-progress acks while it lasts, so a slow insert is not redelivered to a
//! second sidecar in the first place.
//!
//! What this does not cover: an engine that re-packs already-published
//! events into a batch with a new id; `count() != uniqExact(event_id)` on
//! `clicks` would show it.
//!
//! # Several ClickHouse servers
//!
//! With `clickhouse_replicated` the tables are replicated through
//! ZooKeeper ([`schema::engine`]) and one sidecar per server writes to its
//! own replica, all on one durable consumer. A batch redelivered from one
//! sidecar to another may have been stored through the other replica, so
//! before deduplicating a group that holds a redelivered batch (or one
//! being retried) the sidecar syncs its replica ([`store::Store::sync_replica`]);
//! the lookup then sees everything any replica had announced. The README
//! ("Several ClickHouse servers") says why replicas and not shards, and why
//! the insert quorum is off by default on 18.16.
//!
//! # Bad batches
//!
//! A batch that fails [`snapshots::click::ClickBatch::parse`] (wrong magic,
//! unknown version, cut short) can never succeed, so it is not retried: it is
//! logged, counted (`analytics_batches_parked_total`) and written byte for
//! byte with its error to the `parked_batches` table, and only then acked.
//! So is a batch that names another node than the subject it arrived on
//! (`clicks.a` carrying node b's clicks: [`attribution`]), with its
//! addresses cut and both names in its error, counted also in
//! `analytics_batches_wrong_node_total`.
//!
//! A batch that decodes but that ClickHouse refuses (an exception about the
//! rows, not about the server's state: [`refusal`]) would otherwise be
//! retried for ever and hold up everything behind it. So a refused group is
//! halved until each batch ClickHouse takes is stored and each batch it
//! refuses on its own is isolated; such a batch is tried again with backoff
//! and, once refused `park_after_attempts` times (default 5), parked with
//! ClickHouse's answer and acked ([`pipeline`]). ClickHouse being down or
//! overloaded never parks anything. Parked batches are deleted after
//! `parked_retention_days` (default 30), checked at start and daily; so are
//! the months of `clicks` past `raw_retention_days` (90) and of the rollups
//! past `rollup_retention_days` (730), whose partitions are dropped.
//!
//! # Privacy
//!
//! The client address is truncated to /24 (IPv4) or /48 (IPv6) before it is
//! stored; the full address is used only in memory for the GeoIP lookup and
//! is never logged. Unique visitors are counted from a 64-bit hash of the
//! truncated address and the user agent ([`enrich::privacy`]). A decodable
//! batch that is parked is re-encoded with its addresses cut the same way
//! ([`group::redacted`]). Two places still hold full addresses, both
//! bounded in time: the `CLICKS` stream (the engines publish them; the
//! sidecar creates the stream with a 72-hour max age, [`nats`]) and an
//! undecodable batch parked as received (kept `parked_retention_days`).
//!
//! # Layout
//!
//! * [`config`]: the TOML/flag configuration (servicekit's pattern), its
//!   defaults and validation.
//! * [`nats`]: the stream the sidecar owns (limits, refusing or adopting one
//!   with other settings), the durable consumer, the consumer-lag watcher.
//! * [`pipeline`]: the group loop: decode, enrich, deduplicate, insert,
//!   split on refusal, park, ack.
//! * [`group`]: a decoded group, its batches, parked rows with addresses cut.
//! * [`attribution`]: the node a subject names, which its batches must name.
//! * [`refusal`]: ClickHouse unavailable, or refusing the rows.
//! * [`enrich`]: address truncation, GeoIP, user agent (cached; isbot's list and
//!   uap-core's regexes, vendored in `analytics/data`), referrer, bots and link previews.
//! * [`store`]: ClickHouse client, the deduplication lookup, inserts.
//! * [`schema`]: the tables and views, created on start.
//! * [`rows`]: the row types sent to ClickHouse.
//! * [`encoded`]: rows of `clicks` as the RowBinary bytes the insert sends,
//!   written in place by enrichment, read in place by the lookups.
//! * [`hash`]: the seeded XXH3 hasher of the per-event maps.
//! * [`metrics`]: counters and the Prometheus `/metrics` endpoint.
//! * [`backoff`]: retry delays.

pub mod attribution;
pub mod backoff;
pub mod config;
pub mod encoded;
pub mod enrich;
pub mod group;
pub mod hash;
pub mod metrics;
pub mod nats;
pub mod pipeline;
pub mod publish;
pub mod refusal;
pub mod rows;
pub mod schema;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

pub use config::Config;
use servicekit::ServiceConfig as _;

use backoff::Backoff;
use enrich::{Enricher, geo::GeoIp};
use metrics::Metrics;
use pipeline::Pipeline;
use store::Store;

/// Runs the sidecar until the future is dropped, or until it finds the click
/// stream with settings it does not own (an error, see [`nats`]).
///
/// Order: metrics endpoint bound, schema created (retried until ClickHouse
/// answers), stream and consumer ensured (retried until NATS answers), then
/// `ready` is called with the metrics address and consuming starts.
pub async fn run(config: Config, ready: impl FnOnce(SocketAddr)) -> anyhow::Result<()> {
    config.validate()?;
    let geoip = if config.geoip.is_empty() {
        tracing::info!("no GeoIP database: country and city stay empty");
        None
    } else {
        let db = GeoIp::open_all(&config.geoip)
            .with_context(|| format!("opening GeoIP databases {:?}", config.geoip))?;
        tracing::info!(paths = ?config.geoip, kinds = ?db.database_types(), "GeoIP databases loaded");
        Some(db)
    };
    let metrics = Arc::new(Metrics::default());
    let metrics_addr = metrics::serve(config.metrics, metrics.clone())
        .await
        .with_context(|| format!("binding the metrics endpoint {}", config.metrics))?;

    let store = Store::new(&config);
    let mut backoff = Backoff::new();
    while let Err(error) = store.create_schema().await {
        tracing::warn!(%error, url = %config.clickhouse, "creating the ClickHouse schema failed; retrying");
        backoff.wait().await;
    }
    let purge = AbortOnDrop(tokio::spawn(purge_old(store.clone(), config.clone())));

    let client = nats::connect(&config)
        .await
        .with_context(|| format!("connecting to NATS at {}", config.nats))?;
    let publisher = config.enriched_subject.clone().map(|prefix| {
        publish::Publisher::spawn(
            client.clone(),
            prefix,
            config.enriched_queue,
            metrics.clone(),
        )
    });
    let js = async_nats::jetstream::new(client);
    backoff.reset();
    loop {
        match nats::consumer(&js, &config).await {
            Ok(_) => break,
            Err(error) if error.is_unavailable() => {
                tracing::warn!(%error, "setting up the click consumer failed; retrying");
                backoff.wait().await;
            }
            Err(error) => return Err(error.into()),
        }
    }
    let lag = AbortOnDrop(tokio::spawn(nats::watch_lag(
        js.clone(),
        config.clone(),
        metrics.clone(),
    )));

    tracing::info!(
        stream = %config.stream, consumer = %config.consumer, database = %config.database,
        metrics = %metrics_addr, "analytics sidecar ready"
    );
    ready(metrics_addr);
    let enricher = Enricher::new(geoip, config.ua_cache_size);
    let (publisher, publishing) = match publisher {
        Some((p, task)) => (Some(p), Some(AbortOnDrop(task))),
        None => (None, None),
    };
    let result = Pipeline::new(config, store, enricher, metrics)
        .with_publisher(publisher)
        .run(&js)
        .await;
    drop(publishing);
    drop((lag, purge));
    Ok(result?)
}

/// How often rows past their retention are looked for.
const PURGE_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Deletes parked batches past their retention and drops the months of
/// clicks and rollups past theirs, now and then daily; a failure
/// (ClickHouse away) is tried again at the next round.
async fn purge_old(store: Store, config: Config) {
    let days = config.parked_retention_days;
    let mut tick = tokio::time::interval(PURGE_EVERY);
    loop {
        tick.tick().await;
        let (raw, rollups) = (config.raw_retention_days, config.rollup_retention_days);
        match store.drop_old_partitions(raw, rollups).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                partitions = n,
                raw_days = raw,
                rollup_days = rollups,
                "dropped months of clicks and rollups past their retention"
            ),
            Err(error) => {
                tracing::warn!(%error, "dropping old months failed; next try in a day")
            }
        }
        match store.purge_parked(days).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                batches = n,
                days,
                "deleting parked batches past their retention"
            ),
            Err(error) => {
                tracing::warn!(%error, "purging old parked batches failed; next try in a day")
            }
        }
    }
}

/// Stops a background task when the sidecar stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
