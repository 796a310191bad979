//! Batches that decode but that ClickHouse refuses: the group is split, the
//! good batches are stored once, the refused one is parked with its
//! addresses cut, and the sidecar goes on.
//!
//! ClickHouse is made to refuse rows with the code `poison` by the test's own
//! `clicks` table ([`Env::poison_clicks`]): the real server, the real error.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use analytics::enrich::Enricher;
use analytics::group::Origin;
use analytics::metrics::Metrics;
use analytics::pipeline::Pipeline;
use analytics::store::Store;
use common::*;
use snapshots::click::ClickBatch;

fn origin(seq: u64, msg_id: &str) -> Origin {
    Origin {
        stream_seq: seq,
        subject: "clicks.node-a".into(),
        msg_id: msg_id.into(),
        node: Some("node-a".into()),
    }
}

/// The addresses of a parked batch read back from `hex(payload)`.
fn parked_addresses(hex_payload: &str) -> Vec<String> {
    let bytes: Vec<u8> = (0..hex_payload.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex_payload[i..i + 2], 16).unwrap())
        .collect();
    let batch = ClickBatch::parse(&bytes).expect("a parked refused batch is a click batch");
    batch.events().map(|e| e.ip.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_is_split_out_parked_with_cut_addresses_and_the_rest_counts_once() {
    let env = Env::new().await;
    env.poison_clicks().await;
    let config = analytics::Config {
        park_after_attempts: 3,
        ..env.config()
    };
    let metrics = Arc::new(Metrics::default());
    let mut pipeline = Pipeline::new(
        config.clone(),
        Store::new(&config),
        Enricher::new(None, 100),
        metrics.clone(),
    );
    let payload = |seed: u32| {
        let bytes = if seed == 3 {
            batch_with_codes("node-a", seed, 40, &["abc", POISON])
        } else {
            batch("node-a", seed, 40)
        };
        (
            bytes::Bytes::from(bytes),
            origin(u64::from(seed), &format!("m{seed}")),
        )
    };

    // An earlier try stored 15 events of batch 2 and was never acked.
    let mut earlier = pipeline.decode_payloads([payload(2)]);
    earlier.batches[0].rows.truncate(15);
    pipeline.store(&mut earlier).await;
    assert_eq!(env.rows().await, 15);

    // Five batches in one group, the third refused: it takes splitting the
    // group to store the other four.
    let mut group = pipeline.decode_payloads((1..=5).map(payload));
    tokio::time::timeout(Duration::from_secs(60), pipeline.store(&mut group))
        .await
        .expect("the group is stored or parked, not retried for ever");
    assert!(group.is_stored());

    assert_eq!(env.rows().await, 4 * 40, "the four good batches, once");
    assert_eq!(
        env.number("SELECT uniqExact(event_id) FROM clicks").await,
        160
    );
    assert_eq!(
        env.number(
            "SELECT count() FROM clicks WHERE substring(event_id, 1, 4) = '\\x00\\x00\\x00\\x03'"
        )
        .await,
        0,
        "no row of the refused batch (seed 3)"
    );
    assert_eq!(
        env.number("SELECT countMerge(clicks) FROM org_clicks_per_minute_hll")
            .await,
        160,
        "a rollup counted a duplicate or a refused row"
    );
    assert_eq!(metrics.rows_inserted.load(Relaxed), 160);
    assert_eq!(metrics.duplicates_skipped.load(Relaxed), 15);
    assert_eq!(metrics.batches_refused.load(Relaxed), 3);
    assert_eq!(metrics.batches_parked.load(Relaxed), 1);
    assert_eq!(metrics.batches_retried.load(Relaxed), 0);

    let parked = env
        .ch
        .query("SELECT stream_seq, subject, msg_id, error, hex(payload) FROM parked_batches")
        .await
        .unwrap();
    let fields: Vec<&str> = parked.trim_end().split('\t').collect();
    assert_eq!(fields.len(), 5, "one parked batch: {parked}");
    assert_eq!(&fields[..3], ["3", "clicks.node-a", "m3"]);
    assert!(
        fields[3].contains("refused this batch 3 times") && fields[3].contains("Code: 395"),
        "{}",
        fields[3]
    );
    let addresses = parked_addresses(fields[4]);
    assert_eq!(addresses.len(), 40);
    assert!(
        addresses
            .iter()
            .all(|a| a == "81.2.69.0" || a == "2001:db8:1234::"),
        "{addresses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_clickhouse_always_refuses_no_longer_stops_the_sidecar() {
    let env = Env::new().await;
    env.poison_clicks().await;
    env.create_stream().await;
    env.publish("node-a", "good-1", batch("node-a", 1, 40))
        .await;
    env.publish(
        "node-a",
        "refused",
        batch_with_codes("node-a", 2, 10, &[POISON]),
    )
    .await;
    env.publish("node-a", "good-2", batch("node-a", 3, 60))
        .await;
    let sidecar = env.start_sidecar();

    env.settle_exactly(&sidecar, 100).await;
    sidecar
        .expect_metric("analytics_batches_parked_total", 1.0)
        .await;
    sidecar
        .expect_metric("analytics_batches_acked_total", 3.0)
        .await;
    assert_eq!(sidecar.metric("analytics_batches_refused_total").await, 5.0);
    // And batches published after it still flow.
    env.publish("node-a", "good-3", batch("node-a", 4, 25))
        .await;
    env.settle_exactly(&sidecar, 125).await;

    let parked = env
        .ch
        .query("SELECT msg_id, error, hex(payload) FROM parked_batches")
        .await
        .unwrap();
    let fields: Vec<&str> = parked.trim_end().split('\t').collect();
    assert_eq!(fields.len(), 3, "one parked batch: {parked}");
    assert_eq!(fields[0], "refused");
    assert!(
        fields[1].contains("refused this batch 5 times"),
        "{}",
        fields[1]
    );
    let addresses = parked_addresses(fields[2]);
    assert_eq!(addresses.len(), 10);
    assert!(!addresses.iter().any(|a| a == LONDON_IP), "{addresses:?}");
}
