//! ClickHouse past one server: two replicas of one shard
//! (`ReplicatedMergeTree` through ZooKeeper, `testkit::ClickHouseReplicas`),
//! two sidecars sharing the durable consumer, each writing to its own
//! replica (the second replica's tables made once the first holds clicks,
//! as when a server joins). One sidecar is SIGKILLed, then its replica stopped and started
//! again, while clicks keep coming: both replicas end with exactly the
//! published clicks, once each, and rollups that agree with them, and the
//! stats queries read the same numbers from either replica. A second test
//! makes the failover case deterministic (a replica that lags), a third
//! runs one sidecar with an insert quorum of both replicas.
//!
//! The servers (ZooKeeper and both replicas) are the test's own, on ports
//! of their own; NATS is the shared one (the test's own stream and consumer).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use analytics::enrich::Enricher;
use analytics::metrics::Metrics;
use analytics::pipeline::Pipeline;
use analytics::store::Store;
use common::*;
use futures::StreamExt as _;
use testkit::ClickHouseReplicas;

const PER_BATCH: u32 = 150;
/// The publisher's pace: 150 events every 25 ms, 6,000 a second.
const EVERY: Duration = Duration::from_millis(25);

/// The test's replicas, database and JetStream names.
struct Cluster {
    replicas: ClickHouseReplicas,
    database: String,
    nats: testkit::JetStreamScope,
    stream: String,
    subjects: String,
    consumer: String,
}

impl Cluster {
    /// ZooKeeper, two replicas, and the stream (made the sidecar's way).
    async fn start() -> Cluster {
        testkit::require_services().await.expect("services up");
        let replicas = tokio::task::block_in_place(ClickHouseReplicas::start)
            .expect("ZooKeeper and two ClickHouse replicas start");
        let nats = testkit::JetStreamScope::connect_with_prefix("replicated")
            .await
            .unwrap();
        let cluster = Cluster {
            replicas,
            database: testkit::unique_name("replicated"),
            stream: nats.stream_name("CLICKS"),
            subjects: nats.subject("clicks.>"),
            consumer: format!("analytics_{}", nats.token()),
            nats,
        };
        let config = analytics::Config {
            nats: cluster.nats.url().to_owned(),
            stream: cluster.stream.clone(),
            subjects: cluster.subjects.clone(),
            consumer: cluster.consumer.clone(),
            clicks_max_bytes: TEST_MAX_BYTES,
            ..Default::default()
        };
        cluster
            .nats
            .create_stream(analytics::nats::stream_config(&config))
            .await
            .unwrap();
        cluster
    }

    /// A sidecar's command line: replicated tables on `replica`, the
    /// shared consumer, `extra` flags after.
    fn sidecar_args(&self, replica: usize, extra: &[&str]) -> Vec<String> {
        let mut args = common::sidecar_args(&common::SidecarTarget {
            nats: self.nats.url(),
            clickhouse: &self.replicas.url(replica),
            database: &self.database,
            stream: &self.stream,
            subjects: &self.subjects,
            consumer: &self.consumer,
        });
        // What a killed sidecar held comes back in seconds.
        args.extend(["--clickhouse-replicated", "--ack-wait-secs", "3"].map(String::from));
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    async fn number(&self, replica: usize, sql: &str) -> u64 {
        let text = self.query(replica, sql).await;
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{sql} gave {text:?}"))
    }

    /// `clicks` rows on `replica`; 0 before the table exists or while the
    /// replica is down.
    async fn rows(&self, replica: usize) -> u64 {
        self.replicas
            .query(replica, Some(&self.database), "SELECT count() FROM clicks")
            .await
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    async fn query(&self, replica: usize, sql: &str) -> String {
        self.replicas
            .query(replica, Some(&self.database), sql)
            .await
            .unwrap_or_else(|e| panic!("{sql} on replica {replica}: {e:#}"))
    }

    /// Both replicas hold exactly `n` clicks, each event once, and rollups
    /// that agree with them, once every part has reached both.
    async fn assert_exactly_n_on_both(&self, n: u64) {
        for replica in 0..2 {
            for table in [
                "clicks",
                "org_clicks_per_minute_hll",
                "org_clicks_per_hour_hll",
                "org_clicks_per_day_hll",
            ] {
                self.query(replica, &format!("SYSTEM SYNC REPLICA {table}"))
                    .await;
            }
            assert_eq!(self.rows(replica).await, n, "replica {replica}");
            assert_eq!(
                self.number(replica, "SELECT uniqExact(event_id) FROM clicks")
                    .await,
                n,
                "replica {replica}: duplicate event ids"
            );
            assert_rollups_agree(self, replica).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sidecars_on_two_replicas_one_killed_then_its_replica_stopped_count_exactly_n() {
    let mut cluster = Cluster::start().await;
    let nats = &cluster.nats;
    let mut doomed = Sidecar::start(&cluster.sidecar_args(0, &[]), &[]);

    // Engines publishing all along, until told to stop.
    let published = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (js, subject, published, stop) = (
            nats.jetstream().clone(),
            nats.subject("clicks.node-a"),
            published.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut seed = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", format!("m{seed}").as_str());
                js.publish_with_headers(
                    subject.clone(),
                    headers,
                    batch("node-a", seed, PER_BATCH).into(),
                )
                .await
                .unwrap()
                .await
                .unwrap();
                seed += 1;
                published.store(seed, Ordering::Relaxed);
                tokio::time::sleep(EVERY).await;
            }
        })
    };

    // The second sidecar and its replica's tables come when the first
    // has stored clicks: the new replica copies them from the first.
    testkit::wait_for(
        Duration::from_secs(60),
        Duration::from_millis(20),
        || async { doomed.metric("analytics_rows_inserted_total").await > 0.0 },
    )
    .await
    .expect("the first sidecar stores rows");
    let survivor = Sidecar::start(&cluster.sidecar_args(1, &[]), &[]);

    // Both take their share before anything goes.
    testkit::wait_for(
        Duration::from_secs(60),
        Duration::from_millis(20),
        || async {
            doomed.metric("analytics_rows_inserted_total").await > 0.0
                && survivor.metric("analytics_rows_inserted_total").await > 0.0
        },
    )
    .await
    .expect("both sidecars store rows");

    // One sidecar is SIGKILLed mid-stream: the other takes over what it
    // held (redelivered after the 3 s ack wait; its replica fetches what
    // the dead one's replica stored before looking up) and everything after.
    doomed.kill();
    let killed_at = published.load(Ordering::Relaxed);
    let redelivered = testkit::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(20),
        || async { survivor.metric("analytics_batches_redelivered_total").await > 0.0 },
    )
    .await;
    eprintln!(
        "sidecar 0 killed after batch {killed_at}; its batches redelivered to sidecar 1: {}",
        redelivered.is_ok()
    );

    // Then the dead sidecar's replica is stopped for a while and started
    // again: the survivor goes on on its own replica, and the stopped one
    // catches up when it is back. (Not the survivor's own replica: a
    // server stopped under an insert may keep its `clicks` rows and lose
    // their rollup rows, replicated or not; see the README.)
    let stopping = Instant::now();
    tokio::task::block_in_place(|| cluster.replicas.stop(0));
    let stopped_at = published.load(Ordering::Relaxed);
    eprintln!("replica 0 stopped in {:?}", stopping.elapsed());
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| cluster.replicas.restart(0)).expect("replica 0 starts again");
    eprintln!(
        "replica 0 stopped after batch {stopped_at}, back after batch {}",
        published.load(Ordering::Relaxed)
    );
    // Clicks keep coming for a few seconds after the kill.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();
    let batches = published.load(Ordering::Relaxed);
    eprintln!("{batches} batches published");
    let n = u64::from(batches * PER_BATCH);

    // Exactly n on both replicas once the consumer is drained.
    let started = Instant::now();
    for replica in 0..2 {
        let reached = testkit::wait_for(
            Duration::from_secs(90),
            Duration::from_millis(50),
            || async { cluster.rows(replica).await >= n },
        )
        .await;
        assert!(
            reached.is_ok(),
            "replica {replica}: expected {n} rows, have {}\n{}",
            cluster.rows(replica).await,
            cluster.replicas.log(replica)
        );
    }
    testkit::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            let m = survivor.metrics().await;
            m.get("analytics_consumer_pending") == Some(&0.0)
                && m.get("analytics_consumer_ack_pending") == Some(&0.0)
        },
    )
    .await
    .expect("consumer drained");
    eprintln!(
        "both replicas at {n} rows {:?} after the last publish; survivor: {} redelivered, {} duplicates skipped, {} retried",
        started.elapsed(),
        survivor.metric("analytics_batches_redelivered_total").await,
        survivor.metric("analytics_duplicates_skipped_total").await,
        survivor.metric("analytics_batches_retried_total").await,
    );
    cluster.assert_exactly_n_on_both(n).await;

    // The stats API's kind of query (a link's clicks and visitors per day
    // and per country, from the rollups) gives the same on both replicas.
    let stats = "SELECT day, code, country, countMerge(clicks), uniqHLL12Merge(visitors) \
                 FROM org_clicks_per_day_hll WHERE org_id = 100 AND code = 'abc' \
                 GROUP BY day, code, country ORDER BY day, code, country";
    let on_0 = cluster.query(0, stats).await;
    let on_1 = cluster.query(1, stats).await;
    assert!(!on_0.is_empty());
    assert_eq!(
        on_0, on_1,
        "the replicas answer the stats query differently"
    );
    let abc: u64 = on_0
        .lines()
        .map(|l| l.split('\t').nth(3).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        abc,
        cluster
            .number(0, "SELECT count() FROM clicks WHERE code = 'abc'")
            .await
    );
    drop(survivor);
}

/// The failover case made deterministic: replica 1 fetches nothing
/// (`SYSTEM STOP FETCHES`), a sidecar stores part of a batch through
/// replica 0 and dies before acking, and the batch is redelivered to a
/// sidecar on replica 1, which has not seen those rows. It waits (its sync
/// cannot finish) instead of inserting the batch whole; once replica 1
/// fetches again it inserts exactly the missing rows, and the batch was
/// not handed out again meanwhile (in-progress acks). Without the sync the
/// lookup on replica 1 would find nothing and both replicas would end with
/// the first rows twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_partly_stored_through_a_lagging_replica_is_completed_not_repeated() {
    let cluster = Cluster::start().await;
    let config = |replica: usize| analytics::Config {
        clickhouse: cluster.replicas.url(replica),
        database: cluster.database.clone(),
        clickhouse_replicated: true,
        nats: cluster.nats.url().to_owned(),
        stream: cluster.stream.clone(),
        subjects: cluster.subjects.clone(),
        consumer: cluster.consumer.clone(),
        clicks_max_bytes: TEST_MAX_BYTES,
        ack_wait_secs: 2,
        ..Default::default()
    };
    for replica in 0..2 {
        Store::new(&config(replica)).create_schema().await.unwrap();
    }
    cluster
        .replicas
        .query(1, None, "SYSTEM STOP FETCHES")
        .await
        .unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "a");
    cluster
        .nats
        .jetstream()
        .publish_with_headers(
            cluster.nats.subject("clicks.node-a"),
            headers,
            batch("node-a", 7, 300).into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    // A first sidecar (in-process) stores 120 of the 300 events through
    // replica 0 and "dies" before acking.
    let consumer = analytics::nats::consumer(cluster.nats.jetstream(), &config(0))
        .await
        .unwrap();
    let messages: Vec<_> = consumer
        .fetch()
        .max_messages(10)
        .messages()
        .await
        .unwrap()
        .map(|m| m.unwrap())
        .collect()
        .await;
    assert_eq!(messages.len(), 1);
    let mut pipeline = Pipeline::new(
        config(0),
        Store::new(&config(0)),
        Enricher::new(None, 100),
        Arc::new(Metrics::default()),
    );
    let mut group = pipeline.decode(messages);
    group.batches[0].rows.truncate(120);
    pipeline.store(&mut group).await;
    drop(group); // never acked
    assert_eq!(cluster.rows(0).await, 120);
    assert_eq!(cluster.rows(1).await, 0, "replica 1 lags");

    // The batch comes back to a sidecar on replica 1, which waits for its
    // replica to catch up rather than store what it cannot see.
    let sidecar = Sidecar::start(&cluster.sidecar_args(1, &[]), &[]);
    testkit::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async { sidecar.metric("analytics_batches_redelivered_total").await == 1.0 },
    )
    .await
    .expect("the batch is redelivered to the sidecar on replica 1");
    // Longer than the 3 s ack wait: the sidecar's in-progress acks keep
    // the batch from being handed out again meanwhile.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        cluster.rows(1).await,
        0,
        "nothing stored while replica 1 lags"
    );
    assert_eq!(sidecar.metric("analytics_batches_acked_total").await, 0.0);

    cluster
        .replicas
        .query(1, None, "SYSTEM START FETCHES")
        .await
        .unwrap();
    testkit::wait_for(
        Duration::from_secs(60),
        Duration::from_millis(50),
        || async { sidecar.metric("analytics_batches_acked_total").await == 1.0 },
    )
    .await
    .expect("the batch acked once replica 1 caught up");
    assert_eq!(
        sidecar.metric("analytics_duplicates_skipped_total").await,
        120.0
    );
    assert_eq!(sidecar.metric("analytics_rows_inserted_total").await, 180.0);
    cluster.assert_exactly_n_on_both(300).await;
}

/// With `--clickhouse-insert-quorum 2` (one sidecar writing) an insert
/// succeeds only once both replicas have it, so when the sidecar has acked
/// everything the other replica already holds every row without being
/// asked to catch up; the lookup reads with `select_sequential_consistency`
/// and a redelivered batch (the same one published again under another
/// message id) still counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sidecar_with_an_insert_quorum_acks_only_rows_both_replicas_hold() {
    let cluster = Cluster::start().await;
    // Every replica needs the tables, and only one sidecar runs: make
    // them on replica 1 the sidecar's way.
    analytics::store::Store::new(&analytics::Config {
        clickhouse: cluster.replicas.url(1),
        database: cluster.database.clone(),
        clickhouse_replicated: true,
        ..Default::default()
    })
    .create_schema()
    .await
    .expect("schema on replica 1");
    let sidecar = Sidecar::start(
        &cluster.sidecar_args(0, &["--clickhouse-insert-quorum", "2"]),
        &[],
    );
    let subject = cluster.nats.subject("clicks.node-a");
    let publish = |seed: u32, msg_id: String| {
        let (js, subject) = (cluster.nats.jetstream().clone(), subject.clone());
        async move {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", msg_id.as_str());
            js.publish_with_headers(subject, headers, batch("node-a", seed, PER_BATCH).into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    for seed in 0..40 {
        publish(seed, format!("m{seed}")).await;
    }
    // Seed 7 again under a new message id: an engine replaying its spool.
    publish(7, "m7-again".into()).await;
    let n = u64::from(40 * PER_BATCH);
    testkit::wait_for(
        Duration::from_secs(60),
        Duration::from_millis(20),
        || async { sidecar.metric("analytics_batches_acked_total").await == 41.0 },
    )
    .await
    .expect("every batch acked");
    // No SYNC REPLICA: the quorum made replica 1 hold each row before the ack.
    assert_eq!(cluster.rows(1).await, n, "replica 1 right after the acks");
    assert_eq!(
        sidecar.metric("analytics_duplicates_skipped_total").await,
        f64::from(PER_BATCH)
    );
    cluster.assert_exactly_n_on_both(n).await;
}

/// Every rollup equals the raw table per key (clicks and unique visitors),
/// on one replica.
async fn assert_rollups_agree(cluster: &Cluster, replica: usize) {
    let keys = "org_id, code, rule, domain, status, country, city, device, browser, os, \
                referrer_host, is_bot, is_preview, language";
    for (table, bucket, expr) in [
        (
            "org_clicks_per_minute_hll",
            "minute",
            "toStartOfMinute(ts, 'UTC')",
        ),
        (
            "org_clicks_per_hour_hll",
            "hour",
            "toStartOfHour(ts, 'UTC')",
        ),
        ("org_clicks_per_day_hll", "day", "toDate(ts, 'UTC')"),
    ] {
        let raw = cluster
            .query(
                replica,
                &format!(
                    "SELECT {expr} AS b, {keys}, count(), uniqHLL12(visitor_hash) FROM clicks \
                     GROUP BY b, {keys} ORDER BY b, {keys}"
                ),
            )
            .await;
        let rolled = cluster
            .query(
                replica,
                &format!(
                    "SELECT {bucket} AS b, {keys}, countMerge(clicks), uniqHLL12Merge(visitors) \
                     FROM {table} GROUP BY b, {keys} ORDER BY b, {keys}"
                ),
            )
            .await;
        assert!(!raw.is_empty());
        assert_eq!(
            raw, rolled,
            "replica {replica}: {table} disagrees with clicks"
        );
    }
}
