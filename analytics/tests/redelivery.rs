//! Redelivered and re-published batches do not change any count.

mod common;

use std::sync::Arc;
use std::time::Duration;

use analytics::enrich::Enricher;
use analytics::metrics::Metrics;
use analytics::pipeline::Pipeline;
use analytics::store::Store;
use common::*;
use futures::StreamExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_batch_under_other_message_ids_counts_once() {
    let env = Env::new().await;
    env.create_stream().await;
    let a = batch("node-a", 1, 200);
    let b = batch("node-a", 2, 50);
    // Published before the sidecar starts, so both copies of `a` are likely
    // in one group (deduplicated in memory) or in two (deduplicated by the
    // lookup); either way they count once.
    env.publish("node-a", "a-first", a.clone()).await;
    env.publish("node-a", "a-second", a.clone()).await;
    env.publish("node-a", "b", b).await;
    let sidecar = env.start_sidecar();
    env.settle_exactly(&sidecar, 250).await;

    // Long after the duplicate window, an engine replays `a` from its spool.
    env.publish("node-a", "a-third", a).await;
    let c = batch("node-b", 3, 10);
    env.publish("node-b", "c", c).await;
    env.settle_exactly(&sidecar, 260).await;

    sidecar
        .expect_metric("analytics_batches_acked_total", 5.0)
        .await;
    let m = sidecar.metrics().await;
    assert_eq!(m["analytics_duplicates_skipped_total"], 400.0);
    assert_eq!(m["analytics_rows_inserted_total"], 260.0);
    assert_eq!(
        env.number("SELECT countMerge(clicks) FROM org_clicks_per_minute_hll")
            .await,
        260,
        "rollup counted a duplicate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_redelivery_after_a_partial_insert_without_ack_counts_once() {
    let env = Env::new().await;
    env.create_stream().await;
    env.publish("node-a", "a", batch("node-a", 7, 300)).await;

    // A first sidecar (in-process) stores half the batch (as if an insert
    // spanning two partitions had failed half-way) and "dies" before acking.
    let (mut pipeline, mut group) = take_the_only_batch(&env).await;
    group.batches[0].rows.truncate(120);
    pipeline.store(&mut group).await;
    drop(group); // never acked
    assert_eq!(env.rows().await, 120);

    // The real sidecar gets the batch again once ack_wait (2 s) has passed.
    let sidecar = Sidecar::start(
        &[
            env.sidecar_args(env.ch.url()),
            vec!["--ack-wait-secs".into(), "2".into()],
        ]
        .concat(),
        &[],
    );
    testkit::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async { sidecar.metric("analytics_batches_acked_total").await == 1.0 },
    )
    .await
    .expect("redelivered batch acked");
    env.settle_exactly(&sidecar, 300).await;
    let m = sidecar.metrics().await;
    assert_eq!(m["analytics_batches_redelivered_total"], 1.0);
    assert_eq!(m["analytics_duplicates_skipped_total"], 120.0);
    assert_eq!(m["analytics_rows_inserted_total"], 180.0);
}

/// A sidecar killed mid-insert leaves its `INSERT` running on the server,
/// and it commits after the batch has been redelivered to the next sidecar.
/// That sidecar must not look the batch up before the insert has finished:
/// it would find none or part of the rows and insert them a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_batch_waits_for_the_killed_sidecars_insert_still_running() {
    let env = Env::new().await;
    env.create_stream().await;
    env.publish("node-a", "a", batch("node-a", 11, 300)).await;

    // The first sidecar (in-process) takes the batch and never acks it.
    let (_, group) = take_the_only_batch(&env).await;

    // Its insert, as the server goes on running it after the client died:
    // the rows (staged in a table without views) copied into `clicks` 100
    // at a time, each block 3 s after the last, under an insert's query id.
    env.ch.query("CREATE TABLE staged AS clicks").await.unwrap();
    let client = clickhouse::Client::default()
        .with_url(env.ch.url())
        .with_database(env.ch.name())
        .with_validation(false);
    let mut staging = client
        .insert::<analytics::rows::ClickRow>("staged")
        .await
        .unwrap();
    for row in group.batches[0].rows.iter() {
        staging.write(&row.to_row()).await.unwrap();
    }
    staging.end().await.unwrap();
    drop(group); // never acked
    let query_id = format!(
        "{}killed-sidecar",
        analytics::store::insert_id_prefix(env.ch.name())
    );
    let slow_insert = tokio::spawn({
        let query = client
            .query("INSERT INTO clicks SELECT * FROM staged WHERE sleep(3) = 0")
            .with_setting("max_block_size", "100")
            .with_setting("query_id", query_id.clone());
        async move { query.execute().await }
    });
    testkit::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(20),
        || async {
            env.number(&format!(
                "SELECT count() FROM system.processes WHERE query_id = '{query_id}'"
            ))
            .await
                == 1
        },
    )
    .await
    .expect("the slow insert running");

    // The next sidecar gets the batch after ack_wait (2 s), while the
    // insert still has blocks to write (9 s in all).
    let sidecar = Sidecar::start(
        &[
            env.sidecar_args(env.ch.url()),
            vec!["--ack-wait-secs".into(), "2".into()],
        ]
        .concat(),
        &[],
    );
    testkit::wait_for(
        Duration::from_secs(60),
        Duration::from_millis(50),
        || async { sidecar.metric("analytics_batches_acked_total").await == 1.0 },
    )
    .await
    .expect("redelivered batch acked");
    slow_insert.await.unwrap().expect("the slow insert commits");
    env.settle_exactly(&sidecar, 300).await;
    let m = sidecar.metrics().await;
    assert_eq!(m["analytics_batches_redelivered_total"], 1.0);
    assert_eq!(m["analytics_duplicates_skipped_total"], 300.0);
    assert_eq!(m["analytics_rows_inserted_total"], 0.0);
    assert_eq!(
        env.number("SELECT countMerge(clicks) FROM org_clicks_per_minute_hll")
            .await,
        300,
        "a rollup counted a duplicate"
    );
}

/// An in-process sidecar (ack wait 2 s, schema created) that has taken the
/// stream's one batch and decoded it, without acking: what a sidecar about
/// to die holds.
async fn take_the_only_batch(env: &Env) -> (Pipeline, analytics::group::Group) {
    let config = analytics::Config {
        ack_wait_secs: 2,
        ..env.config()
    };
    let store = Store::new(&config);
    store.create_schema().await.unwrap();
    let consumer = analytics::nats::consumer(env.nats.jetstream(), &config)
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
    let metrics = Arc::new(Metrics::default());
    let mut pipeline = Pipeline::new(config, store, Enricher::new(None, 100), metrics);
    let group = pipeline.decode(messages);
    (pipeline, group)
}
