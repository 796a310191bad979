//! The relay across a NATS outage: a private nats-server (so the shared one
//! is never disturbed) is stopped while links keep being written, then
//! started again on the same port and store; every change arrives, in order.

mod common;

use common::TestApp;
use serde_json::json;
use snapshots::delta::LinkDelta;
use std::time::Duration;

async fn published(url: &str) -> Vec<LinkDelta> {
    let Ok(client) = async_nats::connect(url).await else {
        return Vec::new();
    };
    let js = async_nats::jetstream::new(client);
    let Ok(mut stream) = js.get_stream("LINKS").await else {
        return Vec::new();
    };
    let Ok(info) = stream.info().await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for seq in 1..=info.state.last_sequence {
        match stream.get_raw_message(seq).await {
            Ok(m) => out.push(LinkDelta::decode(&m.payload).unwrap()),
            Err(_) => return Vec::new(),
        }
    }
    out
}

async fn create_links(app: &TestApp, from: usize, to: usize) {
    for i in from..to {
        app.create(json!({ "target": format!("https://outage.example/{i}") }))
            .await;
    }
}

#[tokio::test]
async fn relay_survives_a_nats_outage_without_loss_or_reordering() {
    let mut nats = testkit::PrivateNats::start().unwrap();
    let url = nats.url();
    let relay_url = url.clone();
    let app = TestApp::start_with(move |c| c.nats = Some(relay_url)).await;

    create_links(&app, 0, 20).await;
    testkit::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async { published(&url).await.len() == 20 },
    )
    .await
    .unwrap();

    nats.stop();
    // The API keeps accepting writes; the outbox holds them.
    create_links(&app, 20, 50).await;
    nats.restart().unwrap();

    let deltas = testkit::wait_for_some(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            let d = published(&url).await;
            (d.len() >= 50).then_some(d)
        },
    )
    .await
    .unwrap();
    let seqs: Vec<u64> = deltas.iter().map(|d| d.seq).collect();
    assert_eq!(seqs, (1..=50).collect::<Vec<u64>>());
    let targets: Vec<String> = deltas
        .iter()
        .map(|d| match &d.change {
            snapshots::delta::LinkChange::Upsert { link } => link.target.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let expected: Vec<String> = (0..50)
        .map(|i| format!("https://outage.example/{i}"))
        .collect();
    assert_eq!(targets, expected);
    drop(nats);
}
