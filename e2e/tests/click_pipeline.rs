//! Issue 5 end to end, every piece a real process: redirects on a running
//! engine become click batches in JetStream, the analytics sidecar stores
//! them enriched in ClickHouse. Exactly one row per request, with the fields
//! the request must produce, also when the sidecar is SIGKILLed mid-run and
//! when NATS is down for 10 s while redirects continue.
//!
//! What the engine's and the sidecar's own tests already show is not
//! repeated here (record fields in the stream: `engine/tests/clicks.rs`;
//! 100,000 events through a killed sidecar, parking of every kind of bad
//! batch byte for byte: `analytics/tests/`).

use e2e::Proc;
use e2e::clicks::{self, Names, ROW_SQL, planned};
use futures::StreamExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use testkit::PrivateNats;

/// The stored side of one run: ClickHouse and the sidecar's metrics.
struct Store {
    ch: testkit::ClickHouseDatabase,
}

impl Store {
    async fn new() -> Store {
        Store {
            ch: testkit::ClickHouseDatabase::create_with_prefix("e2e_clicks")
                .await
                .unwrap(),
        }
    }

    /// A number from ClickHouse; 0 while the sidecar has not made the table.
    async fn number(&self, sql: &str) -> u64 {
        self.ch
            .query(sql)
            .await
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    async fn rows(&self) -> u64 {
        self.number("SELECT count() FROM clicks").await
    }

    /// Waits for exactly `n` rows and a drained consumer, then checks that
    /// the count did not move and that every event id is there once.
    async fn settle_exactly(&self, sidecar: &Proc, n: u64, timeout: Duration) {
        let reached = testkit::wait_for(timeout, Duration::from_millis(50), || async {
            self.rows().await >= n
        })
        .await;
        assert!(
            reached.is_ok(),
            "expected {n} rows, have {}",
            self.rows().await
        );
        let metrics = sidecar.ready["metrics"].as_str().unwrap().to_owned();
        testkit::wait_for(
            Duration::from_secs(30),
            Duration::from_millis(50),
            || async {
                clicks::metrics(&metrics).await.is_ok_and(|m| {
                    m.get("analytics_consumer_pending") == Some(&0.0)
                        && m.get("analytics_consumer_ack_pending") == Some(&0.0)
                })
            },
        )
        .await
        .expect("consumer drained");
        assert_eq!(self.rows().await, n, "row count after the consumer drained");
        assert_eq!(
            self.number("SELECT uniqExact(event_id) FROM clicks").await,
            n
        );
    }

    /// Every row equals the row its request (by index) must have produced.
    async fn assert_rows_match_plan(&self, indices: impl Iterator<Item = usize>) {
        let expected: Vec<String> = indices.map(|i| planned(i).row).collect();
        let stored = self.ch.query(ROW_SQL).await.unwrap();
        let stored: Vec<&str> = stored.lines().collect();
        assert_eq!(stored.len(), expected.len());
        for (got, want) in stored.iter().zip(&expected) {
            assert_eq!(got, want);
        }
    }

    /// Every rollup equals the raw table per key (clicks, and unique visitors
    /// as the same `uniqHLL12` sketch over the raw rows gives them).
    /// ClickHouse writes an insert's materialized views after the raw table,
    /// so a reader may briefly see the rows before their rollups: allow a
    /// few seconds, then the last comparison must be equal.
    /// The series rollups too, per (domain, rule, status, flags).
    async fn assert_rollups_agree(&self) {
        let wide = "code, domain, status, country, city, device, browser, os, referrer_host, is_bot, is_preview";
        let series = "code, domain, rule, status, is_bot, is_preview";
        let minute = ("minute", "toStartOfMinute(ts, 'UTC')");
        let hour = ("hour", "toStartOfHour(ts, 'UTC')");
        let day = ("day", "toDate(ts, 'UTC')");
        let mut checks: Vec<(String, String, String)> = Vec::new();
        for (table, (bucket, expr), keys) in [
            ("org_clicks_per_minute_hll", minute, wide),
            ("org_clicks_per_hour_hll", hour, wide),
            ("org_clicks_per_day_hll", day, wide),
            ("org_series_per_minute_hll", minute, series),
            ("org_series_per_hour_hll", hour, series),
            ("org_series_per_day_hll", day, series),
        ] {
            checks.push((
                table.to_owned(),
                format!(
                    "SELECT {expr} AS b, {keys}, count(), uniqHLL12(visitor_hash) FROM clicks \
                     GROUP BY b, {keys} ORDER BY b, {keys}"
                ),
                format!(
                    "SELECT {bucket} AS b, {keys}, countMerge(clicks), uniqHLL12Merge(visitors) \
                     FROM {table} GROUP BY b, {keys} ORDER BY b, {keys}"
                ),
            ));
        }
        for (table, raw_sql, rolled_sql) in &checks {
            let compare = || async {
                let raw = self.ch.query(raw_sql).await.unwrap();
                let rolled = self.ch.query(rolled_sql).await.unwrap();
                (raw, rolled)
            };
            let _ = testkit::wait_for(
                Duration::from_secs(10),
                Duration::from_millis(50),
                || async {
                    let (raw, rolled) = compare().await;
                    raw == rolled
                },
            )
            .await;
            let (raw, rolled) = compare().await;
            assert!(!raw.is_empty());
            assert_eq!(raw, rolled, "{table} disagrees with clicks");
        }
    }
}

/// Sends requests `range` with `concurrency` in flight; every answer must be
/// the planned status (a redirect or a 410, never an error).
async fn send_all(listen: &str, range: std::ops::Range<usize>, concurrency: usize) {
    let http = clicks::client();
    let answers: Vec<(usize, anyhow::Result<u16>)> = futures::stream::iter(range)
        .map(|i| {
            let http = &http;
            async move { (i, clicks::send(http, listen, i).await) }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for (i, answer) in answers {
        assert_eq!(answer.unwrap(), planned(i).status, "request {i}");
    }
}

/// An engine on the test snapshot, with the snapshot and its click spool in
/// a directory of its own (removed when the returned guard drops).
async fn engine_on_the_test_snapshot(names: &Names) -> (tempfile::TempDir, Proc) {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = clicks::write_snapshot(dir.path()).unwrap();
    let engine = clicks::start_engine(names, &snapshot, &dir.path().join("state"))
        .await
        .unwrap();
    (dir, engine)
}

async fn engine_metric(engine: &Proc, name: &str) -> f64 {
    let admin = engine.ready["admin"].as_str().unwrap();
    clicks::metrics(admin)
        .await
        .ok()
        .and_then(|m| m.get(name).copied())
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_redirects_become_exactly_n_enriched_rows_and_the_rollups_agree() {
    const N: usize = 2_000;
    testkit::require_services().await.unwrap();
    let scope = testkit::JetStreamScope::connect().await.unwrap();
    let names = Names::new(&testkit::nats_url(), &scope);
    let store = Store::new().await;
    let sidecar = clicks::start_sidecar(&names, &store.ch).await.unwrap();
    let (_dir, engine) = engine_on_the_test_snapshot(&names).await;

    send_all(&engine.listen(), 0..N / 2, 8).await;
    // A batch of an unknown version between the engine's: parked and
    // counted, and the engine's later batches still flow.
    let mut writer = snapshots::click::ClickBatchWriter::new("e2e", 1024);
    writer.begin([7; 16]);
    let mut bad = writer.finish().to_vec();
    bad[4] = 99;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "e2e-bad-version");
    scope
        .jetstream()
        .publish_with_headers(format!("{}.e2e", names.clicks_prefix), headers, bad.into())
        .await
        .unwrap()
        .await
        .unwrap();
    send_all(&engine.listen(), N / 2..N, 8).await;

    store
        .settle_exactly(&sidecar, N as u64, Duration::from_secs(60))
        .await;
    store.assert_rows_match_plan(0..N).await;
    let redirects = (0..N).filter(|&i| planned(i).status < 400).count() as u64;
    assert_eq!(
        store
            .number("SELECT count() FROM clicks WHERE status IN (301, 302, 307, 308)")
            .await,
        redirects
    );
    assert_eq!(
        store
            .number("SELECT count() FROM clicks WHERE status = 410")
            .await,
        N as u64 - redirects
    );
    store.assert_rollups_agree().await;
    // The parked batch is its own insert, which may land after the rows of
    // batches behind it (seen under a full test run's load): wait for it.
    testkit::wait_for_ok(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            match store
                .number("SELECT count() FROM parked_batches WHERE msg_id = 'e2e-bad-version'")
                .await
            {
                1 => Ok(()),
                n => Err(format!("{n} parked")),
            }
        },
    )
    .await
    .unwrap();
    let metrics = sidecar.ready["metrics"].as_str().unwrap().to_owned();
    let m = clicks::metrics(&metrics).await.unwrap();
    assert_eq!(m["analytics_batches_parked_total"], 1.0);
    assert_eq!(m["analytics_rows_inserted_total"], N as f64);
    assert_eq!(
        engine_metric(&engine, "engine_clicks_captured_total").await,
        N as f64
    );
    assert_eq!(
        engine_metric(&engine, "engine_click_events_published_total").await,
        N as f64
    );
    assert_eq!(
        engine_metric(&engine, "engine_clicks_dropped_total").await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_sigkilled_mid_run_and_restarted_still_counts_exactly_n() {
    testkit::require_services().await.unwrap();
    let scope = testkit::JetStreamScope::connect().await.unwrap();
    let names = Names::new(&testkit::nats_url(), &scope);
    let store = Store::new().await;
    let first = clicks::start_sidecar(&names, &store.ch).await.unwrap();
    let (_dir, engine) = engine_on_the_test_snapshot(&names).await;
    // Redirects flow from before the kill until after the restart.
    let traffic = Traffic::start(engine.listen(), 4);
    let published = || engine_metric(&engine, "engine_click_events_published_total");

    // Killed once it has stored something, while redirects keep coming.
    testkit::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(10),
        || async { store.rows().await > 0 },
    )
    .await
    .expect("the first sidecar stores rows");
    first.kill().await.unwrap();
    let at_kill = store.rows().await;
    // Down while at least 1,000 more clicks are published.
    let published_at_kill = published().await;
    testkit::wait_for(
        Duration::from_secs(60),
        Duration::from_millis(20),
        || async { published().await >= published_at_kill + 1_000.0 },
    )
    .await
    .expect("clicks published while the sidecar is down");
    let second = clicks::start_sidecar(&names, &store.ch).await.unwrap();
    // And some more after the restart.
    let published_at_restart = published().await;
    testkit::wait_for(
        Duration::from_secs(60),
        Duration::from_millis(20),
        || async { published().await >= published_at_restart + 1_000.0 },
    )
    .await
    .expect("clicks published after the restart");
    let n = traffic.stop().await;
    eprintln!("sidecar killed with {at_kill} rows stored; {n} redirects in all");
    assert!(at_kill < n as u64);

    store
        .settle_exactly(&second, n as u64, Duration::from_secs(90))
        .await;
    store.assert_rows_match_plan(0..n).await;
    store.assert_rollups_agree().await;
    assert_eq!(published().await, n as f64);
}

/// Two sidecars share the durable consumer (the way a deployment runs more
/// than one): both store, one is SIGKILLed under load, and the other takes
/// over what it held (redelivered after the ack wait) and everything after:
/// still exactly one row per redirect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sidecars_share_the_consumer_and_one_killed_loses_and_repeats_nothing() {
    testkit::require_services().await.unwrap();
    let scope = testkit::JetStreamScope::connect().await.unwrap();
    let names = Names::new(&testkit::nats_url(), &scope);
    let store = Store::new().await;
    let doomed = clicks::start_sidecar(&names, &store.ch).await.unwrap();
    let survivor = clicks::start_sidecar(&names, &store.ch).await.unwrap();
    let (_dir, engine) = engine_on_the_test_snapshot(&names).await;
    let traffic = Traffic::start(engine.listen(), 4);
    let published = || engine_metric(&engine, "engine_click_events_published_total");
    let inserted = |sidecar: &Proc| {
        let metrics = sidecar.ready["metrics"].as_str().unwrap().to_owned();
        async move {
            clicks::metrics(&metrics)
                .await
                .ok()
                .and_then(|m| m.get("analytics_rows_inserted_total").copied())
                .unwrap_or(0.0)
        }
    };

    // Both take their share before one goes.
    testkit::wait_for(
        Duration::from_secs(60),
        Duration::from_millis(20),
        || async { inserted(&doomed).await > 0.0 && inserted(&survivor).await > 0.0 },
    )
    .await
    .expect("both sidecars store rows");
    doomed.kill().await.unwrap();
    let published_at_kill = published().await;
    testkit::wait_for(
        Duration::from_secs(60),
        Duration::from_millis(20),
        || async { published().await >= published_at_kill + 2_000.0 },
    )
    .await
    .expect("clicks published after the kill");
    let n = traffic.stop().await;
    eprintln!("one of two sidecars killed; {n} redirects in all");

    store
        .settle_exactly(&survivor, n as u64, Duration::from_secs(90))
        .await;
    store.assert_rows_match_plan(0..n).await;
    store.assert_rollups_agree().await;
    assert_eq!(published().await, n as f64);
}

/// Planned requests 0, 1, 2... sent by `concurrency` workers until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    next: Arc<AtomicUsize>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    fn start(listen: String, concurrency: usize) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let http = clicks::client();
        let workers = (0..concurrency)
            .map(|_| {
                let (stop, next, http, listen) =
                    (stop.clone(), next.clone(), http.clone(), listen.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let status = clicks::send(&http, &listen, i).await.unwrap();
                        assert_eq!(status, planned(i).status, "request {i}");
                    }
                })
            })
            .collect();
        Traffic {
            stop,
            next,
            workers,
        }
    }

    /// Stops the workers; returns how many requests were sent (all answered
    /// as planned: a worker panics otherwise, and this with it).
    async fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            worker.await.unwrap();
        }
        self.next.load(Ordering::Relaxed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_for_10_s_while_redirects_continue_loses_no_click_and_fails_no_redirect() {
    const OUTAGE: Duration = Duration::from_secs(10);
    testkit::require_services().await.unwrap();
    let mut nats = PrivateNats::start().unwrap();
    let names = Names::unique(&nats.url());
    let store = Store::new().await;
    let sidecar = clicks::start_sidecar(&names, &store.ch).await.unwrap();
    let (_dir, engine) = engine_on_the_test_snapshot(&names).await;
    let listen = engine.listen();

    send_all(&listen, 0..500, 4).await;
    store
        .settle_exactly(&sidecar, 500, Duration::from_secs(30))
        .await;

    // NATS gone; redirects go on for the whole outage, one every 2 ms at
    // most, and every one is answered as planned.
    nats.stop();
    let http = clicks::client();
    let (stopped, mut next) = (Instant::now(), 500);
    let mut pace = tokio::time::interval(Duration::from_millis(2));
    while stopped.elapsed() < OUTAGE {
        pace.tick().await;
        let status = clicks::send(&http, &listen, next).await.unwrap();
        assert_eq!(
            status,
            planned(next).status,
            "request {next} during the outage"
        );
        next += 1;
    }
    let sent_during = next - 500;
    eprintln!("{sent_during} redirects during the outage");
    assert!(engine_metric(&engine, "engine_click_events_spooled_total").await > 0.0);
    assert_eq!(store.rows().await, 500, "nothing can arrive without NATS");

    nats.restart().unwrap();
    send_all(&listen, next..next + 500, 4).await;
    let total = next + 500;
    store
        .settle_exactly(&sidecar, total as u64, Duration::from_secs(120))
        .await;
    store.assert_rows_match_plan(0..total).await;
    assert_eq!(
        engine_metric(&engine, "engine_click_events_spool_dropped_total").await,
        0.0
    );
    assert_eq!(
        engine_metric(&engine, "engine_clicks_dropped_total").await,
        0.0
    );
    assert_eq!(
        engine_metric(&engine, "engine_click_spool_batches").await,
        0.0
    );
}
