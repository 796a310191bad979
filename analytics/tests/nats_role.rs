//! The sidecar as the deploy runs it: connected as the `analytics` NATS user
//! of `deploy/nats/auth.conf.template`, which may manage only the click
//! stream and read it only through its durable consumer. It creates the
//! stream, consumes batches an engine node's user publishes on its own
//! subject, and acks them; a batch there that names another node is not
//! stored (`analytics::attribution`).

mod common;

use common::*;
use testkit::{PrivateNats, Role, StreamNames};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_works_with_only_its_roles_permissions() {
    let env = Env::new().await;
    let names = StreamNames::default();
    let nats = PrivateNats::with_auth_nodes(&names, &["node-a", "node-b"]).unwrap();
    let password_file = nats.password_file(Role::Analytics);
    let args: Vec<String> = [
        "run",
        "--nats",
        &nats.url(),
        "--nats-user",
        "analytics",
        "--nats-password-file",
        password_file.to_str().unwrap(),
        "--clickhouse",
        env.ch.url(),
        "--database",
        env.ch.name(),
        "--metrics",
        "127.0.0.1:0",
        "--clicks-max-bytes",
        &TEST_MAX_BYTES.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let sidecar = Sidecar::start(&args, &[]);

    let engine = async_nats::jetstream::new(nats.connect_as(Role::Engine("node-a")).await.unwrap());
    // The stream appears once the sidecar has made it.
    testkit::wait_for(
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(20),
        || async { engine.get_stream(&names.clicks_stream).await.is_ok() },
    )
    .await
    .expect("the sidecar creates CLICKS as the analytics user");
    // Node a's batches on its subject, and among them one naming node b:
    // what node a's credential can still send, the server allowing it.
    for (seed, node) in [
        (0u32, "node-a"),
        (1, "node-b"),
        (2, "node-a"),
        (3, "node-a"),
    ] {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", hex(&id(seed, u32::MAX)).as_str());
        engine
            .publish_with_headers("clicks.node-a", headers, batch(node, seed, 10).into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    env.settle_exactly(&sidecar, 30).await;
    assert_eq!(
        env.ch
            .query("SELECT node, count() FROM clicks GROUP BY node")
            .await
            .unwrap(),
        "node-a\t30\n"
    );
    sidecar
        .expect_metric("analytics_batches_wrong_node_total", 1.0)
        .await;
    sidecar
        .expect_metric("analytics_batches_parked_total", 1.0)
        .await;
    // Acked with the others, so never redelivered.
    sidecar
        .expect_metric("analytics_batches_acked_total", 4.0)
        .await;
    assert_eq!(
        env.ch
            .query("SELECT subject, msg_id, error FROM parked_batches")
            .await
            .unwrap(),
        format!(
            "clicks.node-a\t{}\tthe batch names node \"node-b\" but arrived on \"clicks.node-a\", the subject of node \"node-a\"\n",
            hex(&id(1, u32::MAX))
        )
    );
}
