//! The public enriched-click stream: every stored click comes out as JSON
//! on `<enriched_subject>.<org>`, after its insert, with its event id.

mod common;

use analytics::publish::EnrichedClick;
use common::*;
use futures::StreamExt as _;
use std::collections::HashMap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_clicks_are_published_as_json_on_their_organisations_subject() {
    let env = Env::new().await;
    let prefix = env.nats.subject("enriched.clicks");
    let mut sub = env
        .nats
        .client()
        .subscribe(format!("{prefix}.>"))
        .await
        .unwrap();
    env.nats.client().flush().await.unwrap();
    let mut args = env.sidecar_args(env.ch.url());
    args.extend(["--enriched-subject".to_string(), prefix.clone()]);
    let sidecar = Sidecar::start(&args, &[]);
    let (batches, per_batch) = (4u32, 50u32);
    for seed in 0..batches {
        env.publish(
            "node-a",
            &hex(&id(seed, u32::MAX)),
            batch("node-a", seed, per_batch),
        )
        .await;
    }
    let n = u64::from(batches * per_batch);
    env.settle_exactly(&sidecar, n).await;

    // Every stored click, once here (nothing was redelivered), each on its
    // organisation's subject.
    let mut seen: HashMap<String, EnrichedClick> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while (seen.len() as u64) < n {
        let msg = tokio::time::timeout_at(deadline, sub.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} clicks published", seen.len()))
            .expect("the subscription stays open");
        let click: EnrichedClick = serde_json::from_slice(&msg.payload).unwrap();
        assert_eq!(msg.subject.as_str(), format!("{prefix}.{}", click.org_id));
        assert!(
            seen.insert(click.event_id.clone(), click).is_none(),
            "a click twice"
        );
    }
    // The enrichment of a known event (index 0: London, Chrome on Windows,
    // a referrer), as ClickHouse has it.
    let click = &seen[&hex(&id(3, 0))];
    assert_eq!(
        (
            click.code.as_str(),
            click.country.as_str(),
            click.city.as_str(),
            click.browser.as_str(),
            click.device.as_str(),
            click.referrer_host.as_str(),
            click.is_bot,
            click.node.as_str(),
        ),
        (
            "abc",
            "GB",
            "London",
            "Chrome",
            "desktop",
            "news.example.com",
            false,
            "node-a"
        )
    );
    let stored = env
        .number(&format!(
            "SELECT ts_ms FROM clicks WHERE event_id = unhex('{}')",
            hex(&id(3, 0))
        ))
        .await;
    assert_eq!(click.ts_ms, stored);
    // Index 2 is a link preview (and so a bot).
    let preview = &seen[&hex(&id(3, 2))];
    assert!(preview.is_bot && preview.is_preview, "{preview:?}");
    sidecar
        .expect_metric("analytics_enriched_published_total", n as f64)
        .await;
    assert_eq!(
        sidecar.metric("analytics_enriched_dropped_total").await,
        0.0
    );
}
