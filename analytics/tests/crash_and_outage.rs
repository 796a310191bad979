//! The sidecar killed mid-run, and ClickHouse unreachable for a while: every
//! event is stored exactly once in the end, and an outage parks nothing.
//!
//! ClickHouse and NATS are shared with other tests, so they are never
//! stopped: the sidecar reaches them through a TCP proxy owned by the test,
//! and the proxy is what goes down.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::proxy::Proxy;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_then_restart_counts_exactly_n() {
    let env = Env::new().await;
    env.create_stream().await;
    let (batches, per_batch) = (200u32, 500u32);
    for seed in 0..batches {
        env.publish(
            "node-a",
            &format!("m{seed}"),
            batch("node-a", seed, per_batch),
        )
        .await;
    }
    let n = u64::from(batches * per_batch);

    // A short ack_wait: the batches the killed sidecar held come back in
    // seconds instead of the default 30.
    let args = [
        env.sidecar_args(env.ch.url()),
        vec!["--ack-wait-secs".into(), "3".into()],
    ]
    .concat();
    let mut first = Sidecar::start(&args, &[]);
    testkit::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(2),
        || async { env.rows().await > 0 },
    )
    .await
    .expect("first rows");
    first.kill();
    let at_kill = env.rows().await;
    eprintln!("killed with {at_kill} of {n} rows stored");
    assert!(
        at_kill < n,
        "the sidecar finished before it was killed; raise the event count"
    );

    let second = Sidecar::start(&args, &[]);
    env.settle_exactly(&second, n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_unreachable_then_back_loses_and_duplicates_nothing() {
    let env = Env::new().await;
    let upstream: SocketAddr = env
        .ch
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("TEST_CLICKHOUSE_URL as http://ip:port");
    let proxy = Proxy::start(upstream).await;
    // Parking after a single refusal: if an outage counted as one, the
    // batches would be parked (and acked) at the first failed try.
    let args = [
        env.sidecar_args(&format!("http://{}", proxy.addr)),
        vec!["--park-after-attempts".into(), "1".into()],
    ]
    .concat();
    let sidecar = Sidecar::start(&args, &[]);

    env.publish("node-a", "before", batch("node-a", 1, 100))
        .await;
    env.settle_exactly(&sidecar, 100).await;

    proxy.stop().await;
    env.publish("node-a", "during-1", batch("node-a", 2, 100))
        .await;
    env.publish("node-a", "during-2", batch("node-a", 3, 100))
        .await;
    testkit::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(20),
        || async { sidecar.metric("analytics_batches_retried_total").await >= 1.0 },
    )
    .await
    .expect("the sidecar noticed ClickHouse was gone");
    // Nothing is acked while ClickHouse is away.
    sidecar
        .expect_metric("analytics_batches_acked_total", 1.0)
        .await;
    assert_eq!(env.rows().await, 100);

    proxy.restart().await;
    env.settle_exactly(&sidecar, 300).await;
    sidecar
        .expect_metric("analytics_batches_acked_total", 3.0)
        .await;
    // The outage parked nothing.
    assert_eq!(sidecar.metric("analytics_batches_parked_total").await, 0.0);
    assert_eq!(sidecar.metric("analytics_batches_refused_total").await, 0.0);
    assert_eq!(env.number("SELECT count() FROM parked_batches").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_unreachable_then_back_every_batch_arrives_once() {
    let env = Env::new().await;
    let upstream: SocketAddr = env
        .nats
        .url()
        .trim_start_matches("nats://")
        .parse()
        .expect("TEST_NATS_URL as nats://ip:port");
    let proxy = Proxy::start(upstream).await;
    let mut args = env.sidecar_args(env.ch.url());
    let nats_at = args.iter().position(|a| a == "--nats").unwrap() + 1;
    args[nats_at] = format!("nats://{}", proxy.addr);
    let sidecar = Sidecar::start(&args, &[]);

    env.publish("node-a", "before", batch("node-a", 1, 100))
        .await;
    env.settle_exactly(&sidecar, 100).await;

    // The sidecar loses NATS; engines keep publishing (straight to NATS).
    proxy.stop().await;
    for seed in 2..6 {
        env.publish(
            "node-a",
            &format!("during-{seed}"),
            batch("node-a", seed, 100),
        )
        .await;
    }
    // All four wait on the stream while the sidecar is cut off.
    testkit::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async {
            env.consumer_info()
                .await
                .is_some_and(|i| i.num_pending == 4)
        },
    )
    .await
    .expect("four batches pending");
    assert_eq!(env.rows().await, 100);

    proxy.restart().await;
    env.settle_exactly(&sidecar, 500).await;
}
