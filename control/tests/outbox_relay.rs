//! The change stream: outbox order under concurrency, the relay to a real
//! JetStream stream (including being killed mid-stream), and consistent
//! snapshots built while writes flow.

mod common;

use async_nats::jetstream::message::PublishMessage;
use common::{TestApp, outbox};
use control::metrics::Metrics;
use control::relay::{self, RelayTarget};
use reqwest::Method;
use serde_json::json;
use snapshots::delta::{LinkChange, LinkDelta};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Makes `n` changes through the API from `workers` concurrent clients:
/// creates, then an update and (for every third) a delete.
async fn churn(app: &TestApp, workers: usize, n: usize) {
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let http = app.http.clone();
            let base = app.base.clone();
            let key = app.admin_key.clone();
            tokio::spawn(async move {
                for i in 0..n {
                    let r = http
                        .post(format!("{base}/v1/links"))
                        .bearer_auth(&key)
                        .json(&json!({ "target": format!("https://w{w}.example/{i}") }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201);
                    let code = r.json::<serde_json::Value>().await.unwrap()["code"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    let r = http
                        .patch(format!("{base}/v1/links/{code}"))
                        .bearer_auth(&key)
                        .json(&json!({ "title": "updated", "status": 302 }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    if i % 3 == 0 {
                        let r = http
                            .delete(format!("{base}/v1/links/{code}"))
                            .bearer_auth(&key)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), 204);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// Applies deltas in order to a map: what an engine would serve.
fn apply(deltas: &[LinkDelta]) -> BTreeMap<String, snapshots::Link> {
    let mut map = BTreeMap::new();
    for d in deltas {
        match &d.change {
            LinkChange::Upsert { link } => {
                map.insert(link.code.clone(), link.clone());
            }
            LinkChange::Delete { code, .. } => {
                map.remove(code);
            }
            // The default domain's name, written at start; no domain here.
            _ => {}
        }
    }
    map
}

#[tokio::test]
async fn outbox_sequences_are_gapless_and_match_links_under_concurrency() {
    let app = TestApp::start().await;
    churn(&app, 6, 10).await;
    let deltas = outbox(&app).await;
    let expected_changes = 6 * (10 * 2 + 4);
    assert_eq!(deltas.len(), expected_changes);
    for (i, d) in deltas.iter().enumerate() {
        assert_eq!(d.seq, i as u64 + 1, "gapless and ordered");
    }
    // Replaying the outbox gives exactly the live links of PostgreSQL.
    let replayed = apply(&deltas);
    let snapshot_links = live_links(&app).await;
    assert_eq!(replayed, snapshot_links);
}

async fn live_links(app: &TestApp) -> BTreeMap<String, snapshots::Link> {
    let rows: Vec<control::links::model::LinkRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM links WHERE deleted_at IS NULL",
        control::links::model::LINK_COLUMNS
    )))
    .fetch_all(&app.running.state.db)
    .await
    .unwrap();
    rows.iter()
        .map(|r| (r.code.clone(), r.to_snapshot_link()))
        .collect()
}

#[tokio::test]
async fn snapshot_built_during_writes_is_the_state_at_its_sequence() {
    let app = TestApp::start().await;
    let writer = {
        let app_base = app.base.clone();
        let key = app.admin_key.clone();
        let http = app.http.clone();
        tokio::spawn(async move {
            for i in 0..60 {
                let r = http
                    .post(format!("{app_base}/v1/links"))
                    .bearer_auth(&key)
                    .json(&json!({ "target": format!("https://s.example/{i}") }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
        })
    };
    let mut generations = Vec::new();
    while !writer.is_finished() {
        let (s, b) = app
            .call(Method::POST, "/v1/admin/snapshots", &app.operator_key)
            .await;
        assert!(s == 201 || s == 200 && b["built"] == false, "{s} {b}");
        generations.push(b["generation"].clone());
    }
    writer.await.unwrap();
    assert!(!generations.is_empty());
    let deltas = outbox(&app).await;
    let mut checked = 0;
    for g in &generations {
        let path = app.snapshot_path(g);
        let Ok(snap) = snapshots::Snapshot::open(&path) else {
            continue; // pruned: only the newest five are kept
        };
        let seq = g["seq"].as_u64().unwrap();
        assert_eq!(snap.sequence(), seq);
        let upto: Vec<LinkDelta> = deltas.iter().filter(|d| d.seq <= seq).cloned().collect();
        let expected = apply(&upto);
        let actual: BTreeMap<String, snapshots::Link> = snap
            .iter()
            .map(|(code, view)| (code.to_owned(), view.to_link(code)))
            .collect();
        assert_eq!(actual, expected, "snapshot at {seq}");
        checked += 1;
    }
    assert!(checked >= 1);
    let (_, list) = app
        .call(Method::GET, "/v1/admin/snapshots", &app.operator_key)
        .await;
    assert!(
        list["generations"].as_array().unwrap().len() <= 5,
        "old generations are pruned"
    );
}

/// Every message of a stream, in stream order, decoded.
async fn read_stream(js: &async_nats::jetstream::Context, name: &str) -> Vec<LinkDelta> {
    let mut stream = js.get_stream(name).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let msg = stream.get_raw_message(seq).await.unwrap();
        out.push(LinkDelta::decode(&msg.payload).unwrap());
    }
    out
}

async fn stream_len(js: &async_nats::jetstream::Context, name: &str) -> u64 {
    match js.get_stream(name).await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

#[tokio::test]
async fn relay_publishes_in_order_through_the_service() {
    let nats = testkit::JetStreamScope::connect().await.unwrap();
    let stream = nats.stream_name("LINKS");
    let subject = nats.subject("links.changes");
    let app = TestApp::start_relaying(&stream, &subject, |_| {}).await;
    churn(&app, 3, 5).await;
    let expected = outbox(&app).await;
    testkit::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async { stream_len(nats.jetstream(), &stream).await == expected.len() as u64 },
    )
    .await
    .unwrap();
    let published = read_stream(nats.jetstream(), &stream).await;
    assert_eq!(published, expected);
    // Every change is signed by control's key, over exactly its bytes.
    let mut verifier = snapshots::signing::DeltaVerifier::default();
    verifier.trust(app.link_keys.signer());
    let links = nats.jetstream().get_stream(&stream).await.unwrap();
    for seq in 1..=expected.len() as u64 {
        let msg = links.get_raw_message(seq).await.unwrap();
        let header = msg
            .headers
            .get(snapshots::signing::SIGNATURE_HEADER)
            .map(|v| v.as_str().to_owned());
        assert!(
            verifier.verify(&msg.payload, header.as_deref()).is_ok(),
            "stream message {seq} is not signed by control's key: {header:?}"
        );
    }
    let info = nats
        .jetstream()
        .get_stream(&stream)
        .await
        .unwrap()
        .cached_info()
        .clone();
    assert_eq!(info.config.subjects, vec![subject]);
    assert!(info.config.duplicate_window >= Duration::from_secs(120));
    // The relay records its watermark after JetStream acks, so it may trail
    // the stream by a moment; it must catch up exactly.
    let db = &app.running.state.db;
    let caught_up = testkit::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async {
            sqlx::query_scalar::<_, i64>("SELECT published_seq FROM relay_state")
                .fetch_one(db)
                .await
                .unwrap()
                == expected.len() as i64
        },
    )
    .await;
    assert!(
        caught_up.is_ok(),
        "relay watermark never reached {}",
        expected.len()
    );
}

#[tokio::test]
async fn relay_killed_mid_stream_and_restarted_loses_and_reorders_nothing() {
    let nats = testkit::JetStreamScope::connect().await.unwrap();
    let stream = nats.stream_name("LINKS");
    let subject = nats.subject("links.changes");
    // The service runs without a relay; the test runs (and kills) relays itself.
    let app = TestApp::start().await;
    let target = RelayTarget::new(testkit::nats_url(), stream.clone(), subject);
    let db = app.running.state.db.clone();
    let writer = {
        let (http, base, key) = (app.http.clone(), app.base.clone(), app.admin_key.clone());
        tokio::spawn(async move {
            for i in 0..300 {
                let r = http
                    .post(format!("{base}/v1/links"))
                    .bearer_auth(&key)
                    .json(&json!({ "target": format!("https://k.example/{i}") }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
        })
    };
    // Kill the relay repeatedly while changes flow: once it has published
    // something new, abort it at that arbitrary point and start another.
    let mut kills = 0;
    let mut last_len = 0;
    while !writer.is_finished() || kills < 3 {
        let task = tokio::spawn(relay::run(
            db.clone(),
            target.clone(),
            Arc::new(Metrics::default()),
        ));
        let before = last_len;
        testkit::wait_for(
            Duration::from_secs(10),
            Duration::from_millis(1),
            || async {
                stream_len(nats.jetstream(), &stream).await > before || writer.is_finished()
            },
        )
        .await
        .unwrap();
        task.abort();
        let _ = task.await;
        kills += 1;
        last_len = stream_len(nats.jetstream(), &stream).await;
        if kills == 2 {
            // Forget the watermark, as if the relay died between the acks and
            // saving it: the stream itself says what was published.
            sqlx::query("UPDATE relay_state SET published_seq = 0")
                .execute(&db)
                .await
                .unwrap();
        }
        if kills > 200 {
            break;
        }
    }
    writer.await.unwrap();
    let task = tokio::spawn(relay::run(
        db.clone(),
        target.clone(),
        Arc::new(Metrics::default()),
    ));
    let expected = outbox(&app).await;
    assert_eq!(expected.len(), 300);
    testkit::wait_for(
        Duration::from_secs(20),
        Duration::from_millis(20),
        || async { stream_len(nats.jetstream(), &stream).await >= 300 },
    )
    .await
    .unwrap();
    task.abort();
    let published = read_stream(nats.jetstream(), &stream).await;
    let seqs: Vec<u64> = published.iter().map(|d| d.seq).collect();
    assert_eq!(seqs, (1..=300).collect::<Vec<u64>>(), "after {kills} kills");
    assert_eq!(published, expected);
}

#[tokio::test]
async fn relay_refuses_a_stream_written_from_another_database() {
    let nats = testkit::JetStreamScope::connect().await.unwrap();
    let stream = nats.stream_name("LINKS");
    let subject = nats.subject("links.changes");
    // Another database's history: change 500 is already in the stream, as
    // that database's relay published it (message id = its sequence).
    relay::ensure_stream(
        nats.jetstream(),
        &stream,
        &subject,
        &relay::StreamSettings::default(),
    )
    .await
    .unwrap();
    let foreign = LinkDelta::upsert(500, snapshots::Link::new("old", "https://old.example/"));
    nats.jetstream()
        .send_publish(
            subject.clone(),
            PublishMessage::build()
                .payload(foreign.encode().into())
                .message_id("500"),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let app = TestApp::start().await;
    app.create(json!({ "target": "https://new.example/" }))
        .await;
    let metrics = Arc::new(Metrics::default());
    let target = RelayTarget::new(testkit::nats_url(), stream.clone(), subject);
    let task = tokio::spawn(relay::run(
        app.running.state.db.clone(),
        target,
        metrics.clone(),
    ));
    testkit::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(10),
        || async { metrics.relay_errors.get() >= 1 },
    )
    .await
    .unwrap();
    task.abort();
    assert_eq!(
        stream_len(nats.jetstream(), &stream).await,
        1,
        "nothing was published"
    );
}

#[tokio::test]
async fn scheduled_snapshots_follow_changes() {
    let app = TestApp::start_with(|c| c.snapshot_interval_secs = 1).await;
    let link = app
        .create(json!({ "target": "https://sched.example/" }))
        .await;
    let generation = testkit::wait_for_some(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            let (_, b) = app
                .call(Method::GET, "/v1/admin/snapshots", &app.operator_key)
                .await;
            b["generations"].as_array().and_then(|g| g.first().cloned())
        },
    )
    .await
    .unwrap();
    assert_eq!(generation["seq"], 1);
    let snap = snapshots::Snapshot::open(&app.snapshot_path(&generation)).unwrap();
    let code = link["code"].as_str().unwrap();
    assert_eq!(snap.get(code).unwrap().target(), "https://sched.example/");
}

/// The stream's messages split into the relay's (a delta whose sequence is
/// the message id) and the count of everything else.
async fn read_ours(js: &async_nats::jetstream::Context, name: &str) -> (Vec<LinkDelta>, usize) {
    let mut stream = js.get_stream(name).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let (mut ours, mut foreign) = (Vec::new(), 0);
    for seq in 1..=last {
        let msg = stream.get_raw_message(seq).await.unwrap();
        let id = msg
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_owned());
        match LinkDelta::decode(&msg.payload) {
            Ok(d) if id == Some(d.seq.to_string()) => ours.push(d),
            _ => foreign += 1,
        }
    }
    (ours, foreign)
}

#[tokio::test]
async fn relay_survives_foreign_messages_on_its_subject() {
    let nats = testkit::JetStreamScope::connect().await.unwrap();
    let stream = nats.stream_name("LINKS");
    let subject = nats.subject("links.changes");
    let app = TestApp::start_relaying(&stream, &subject, |_| {}).await;
    churn(&app, 2, 3).await;
    let first = outbox(&app).await.len();
    testkit::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(10),
        || async { stream_len(nats.jetstream(), &stream).await == first as u64 },
    )
    .await
    .unwrap();
    // A stray plain-NATS publish while the relay is idle: the next publish
    // expects the stream's last sequence to be its own last message.
    let client = nats.client().clone();
    client
        .publish(subject.clone(), "hello from someone else".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    // More strays while changes flow, some shaped like ours but not ours.
    let strays = {
        let (client, subject) = (client.clone(), subject.clone());
        tokio::spawn(async move {
            for i in 0..40u64 {
                let payload = if i % 2 == 0 {
                    LinkDelta::delete(10_000 + i, "stray").encode()
                } else {
                    b"{not a delta".to_vec()
                };
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", format!("stray-{i}").as_str());
                client
                    .publish_with_headers(subject.clone(), headers, payload.into())
                    .await
                    .unwrap();
                client.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };
    churn(&app, 3, 5).await;
    strays.await.unwrap();
    let expected = outbox(&app).await;
    // Wait for every change (or give up and look at what is there).
    let _ = testkit::wait_for(
        Duration::from_secs(20),
        Duration::from_millis(20),
        || async { read_ours(nats.jetstream(), &stream).await.0.len() >= expected.len() },
    )
    .await;
    let (ours, foreign) = read_ours(nats.jetstream(), &stream).await;
    assert_eq!(foreign, 41, "every stray is in the stream");
    assert_eq!(
        ours.iter().map(|d| d.seq).collect::<Vec<_>>(),
        (1..=expected.len() as u64).collect::<Vec<_>>(),
        "every change once, in order, no gap"
    );
    assert_eq!(ours, expected);
    assert!(app.running.state.metrics.relay_resyncs.get() >= 1);
}

#[tokio::test]
async fn the_relay_creates_the_links_stream_with_explicit_limits() {
    let nats = testkit::JetStreamScope::connect().await.unwrap();
    let stream = nats.stream_name("LINKS");
    let subject = nats.subject("links.changes");
    let app = TestApp::start_relaying(&stream, &subject, |c| {
        c.links_stream_max_age_secs = 3 * 24 * 3600;
        c.links_stream_max_bytes = 64 << 20;
    })
    .await;
    app.create(json!({ "target": "https://a.example/" })).await;
    testkit::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(10),
        || async { stream_len(nats.jetstream(), &stream).await == 1 },
    )
    .await
    .unwrap();
    let mut s = nats.jetstream().get_stream(&stream).await.unwrap();
    let config = s.info().await.unwrap().config.clone();
    assert_eq!(config.max_age, Duration::from_secs(3 * 24 * 3600));
    assert_eq!(config.max_bytes, 64 << 20);
    assert_eq!(
        config.storage,
        async_nats::jetstream::stream::StorageType::File
    );
    assert_eq!(
        config.discard,
        async_nats::jetstream::stream::DiscardPolicy::Old
    );
    assert_eq!(config.duplicate_window, Duration::from_secs(120));
    assert_eq!(config.subjects, vec![subject]);
}

/// A stream made by someone else with no limits (what a bare
/// `get_or_create_stream` makes).
async fn bare_stream(nats: &testkit::JetStreamScope, stream: &str, subject: &str) {
    nats.create_stream(async_nats::jetstream::stream::Config {
        name: stream.to_owned(),
        subjects: vec![subject.to_owned()],
        ..Default::default()
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_links_stream_with_other_settings_is_refused_loudly() {
    let nats = testkit::JetStreamScope::connect().await.unwrap();
    let stream = nats.stream_name("LINKS");
    let subject = nats.subject("links.changes");
    bare_stream(&nats, &stream, &subject).await;
    let app = TestApp::start_relaying(&stream, &subject, |_| {}).await;
    app.create(json!({ "target": "https://a.example/" })).await;
    let readyz = format!("{}/readyz", app.base);
    let body = testkit::wait_for_some(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async {
            let r = app.http.get(&readyz).send().await.unwrap();
            (r.status() == 503).then_some(())?;
            r.json::<serde_json::Value>().await.ok()
        },
    )
    .await
    .unwrap();
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains(&stream)
            && reason.contains("max_age")
            && reason.contains("links_stream_adopt"),
        "{reason}"
    );
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("control_links_stream_mismatch 1"),
        "{metrics}"
    );
    assert_eq!(
        stream_len(nats.jetstream(), &stream).await,
        0,
        "nothing published"
    );
    let mut s = nats.jetstream().get_stream(&stream).await.unwrap();
    assert_eq!(
        s.info().await.unwrap().config.max_age,
        Duration::ZERO,
        "left as it was"
    );
}

#[tokio::test]
async fn a_links_stream_with_other_settings_is_adopted_when_told() {
    let nats = testkit::JetStreamScope::connect().await.unwrap();
    let stream = nats.stream_name("LINKS");
    let subject = nats.subject("links.changes");
    bare_stream(&nats, &stream, &subject).await;
    let app = TestApp::start_relaying(&stream, &subject, |c| {
        c.links_stream_adopt = true;
    })
    .await;
    app.create(json!({ "target": "https://a.example/" })).await;
    testkit::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(10),
        || async { stream_len(nats.jetstream(), &stream).await == 1 },
    )
    .await
    .unwrap();
    let mut s = nats.jetstream().get_stream(&stream).await.unwrap();
    let config = s.info().await.unwrap().config.clone();
    assert_eq!(config.max_age, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(config.max_bytes, 1 << 30);
    let r = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_links_stream_that_cannot_be_adopted_stays_refused() {
    let nats = testkit::JetStreamScope::connect().await.unwrap();
    let stream = nats.stream_name("LINKS");
    let subject = nats.subject("links.changes");
    // Memory storage cannot be changed to file storage in place.
    nats.create_stream(async_nats::jetstream::stream::Config {
        name: stream.clone(),
        subjects: vec![subject.clone()],
        storage: async_nats::jetstream::stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .unwrap();
    let app = TestApp::start_relaying(&stream, &subject, |c| {
        c.links_stream_adopt = true;
    })
    .await;
    app.create(json!({ "target": "https://a.example/" })).await;
    let readyz = format!("{}/readyz", app.base);
    let body = testkit::wait_for_some(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async {
            let r = app.http.get(&readyz).send().await.unwrap();
            (r.status() == 503).then_some(())?;
            r.json::<serde_json::Value>().await.ok()
        },
    )
    .await;
    let body = body.unwrap();
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains("adopting it failed") && reason.contains("storage"),
        "{reason}"
    );
    assert_eq!(
        stream_len(nats.jetstream(), &stream).await,
        0,
        "nothing published"
    );
}
