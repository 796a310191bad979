//! Undecodable batches are parked with their bytes and error, counted, acked;
//! good batches around them still arrive. Parked batches are kept only for
//! their retention.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unknown_version_batches_are_parked_and_good_ones_flow() {
    let env = Env::new().await;
    let sidecar = env.start_sidecar();
    let good = batch("node-a", 1, 40);
    let mut unknown_version = batch("node-a", 2, 5);
    unknown_version[4] = 9;
    let truncated = good[..good.len() - 3].to_vec();
    let garbage = b"definitely not a click batch".to_vec();

    env.publish("node-a", "good-1", good).await;
    env.publish("node-a", "v9", unknown_version.clone()).await;
    env.publish("node-a", "cut", truncated).await;
    env.publish("node-b", "junk", garbage.clone()).await;
    env.publish("node-a", "good-2", batch("node-a", 3, 60))
        .await;

    env.settle_exactly(&sidecar, 100).await;
    testkit::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async { sidecar.metric("analytics_batches_parked_total").await == 3.0 },
    )
    .await
    .expect("three batches parked");
    sidecar
        .expect_metric("analytics_batches_acked_total", 5.0)
        .await;

    let parked = env
        .ch
        .query(
            "SELECT msg_id, subject, error, hex(payload) FROM parked_batches ORDER BY stream_seq",
        )
        .await
        .unwrap();
    let lines: Vec<Vec<&str>> = parked.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 3, "{parked}");
    assert_eq!(lines[0][0], "v9");
    assert!(
        lines[0][2].contains("version 9 is not supported"),
        "{}",
        lines[0][2]
    );
    assert_eq!(lines[0][3], hex(&unknown_version).to_uppercase());
    assert_eq!(lines[1][0], "cut");
    assert!(
        lines[1][2].contains("malformed") || lines[1][2].contains("cut short"),
        "{}",
        lines[1][2]
    );
    assert_eq!(lines[2][0], "junk");
    assert_eq!(lines[2][1], env.subject("node-b"));
    assert!(lines[2][2].contains("not a click batch"), "{}", lines[2][2]);
    assert_eq!(lines[2][3], hex(&garbage).to_uppercase());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_batches_past_their_retention_are_deleted() {
    let env = Env::new().await;
    let store = analytics::store::Store::new(&env.config());
    store.create_schema().await.unwrap();
    env.ch
        .query(
            "INSERT INTO parked_batches (parked_at, msg_id, payload) VALUES \
             (now() - 31 * 86400, 'old', 'x'), (now() - 29 * 86400, 'recent', 'y'), (now(), 'new', 'z')",
        )
        .await
        .unwrap();
    assert_eq!(store.purge_parked(30).await.unwrap(), 1);
    // The delete is a mutation, applied in the background.
    testkit::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async { env.number("SELECT count() FROM parked_batches").await == 2 },
    )
    .await
    .expect("the old parked batch deleted");
    assert_eq!(
        env.ch
            .query("SELECT msg_id FROM parked_batches ORDER BY parked_at")
            .await
            .unwrap(),
        "recent\nnew\n"
    );
    assert_eq!(store.purge_parked(30).await.unwrap(), 0);
}
