//! `POST /v1/links/bulk` against a real PostgreSQL (and JetStream for the
//! relay): per-item outcomes, idempotent replays, the size limit, roles,
//! the rate limit, and every change reaching the outbox and the stream.

mod common;

use common::{PASSWORD, TestApp, error_code, outbox, status_json};
use control::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use snapshots::delta::{LinkChange, LinkDelta};
use std::time::Duration;

async fn bulk(app: &TestApp, key: &str, body: &Value) -> (u16, Value) {
    app.send_json(Method::POST, "/v1/links/bulk", key, body)
        .await
}

#[tokio::test]
async fn each_item_has_its_own_outcome_and_every_change_reaches_the_outbox() {
    let app = TestApp::start().await;
    app.create(json!({ "target": "https://a.example/", "custom_alias": "taken" }))
        .await;
    app.create(json!({ "target": "https://a.example/", "custom_alias": "old" }))
        .await;
    let before = outbox(&app).await.len();
    let (s, b) = bulk(
        &app,
        &app.admin_key,
        &json!({
            "create": [
                { "target": "https://b.example/1", "custom_alias": "new-1", "tags": ["x"] },
                { "target": "https://b.example/2", "custom_alias": "taken" },
                { "target": "javascript:alert(1)" },
                { "target": "https://b.example/3" }
            ],
            "update": [
                { "code": "old", "set": { "title": "renamed" } },
                { "code": "missing", "set": { "title": "x" } },
                { "code": "new-1", "if_match": "\"1.99\"", "set": { "title": "x" } },
                { "code": "old", "set": { "title": "renamed" } }
            ],
            "delete": [ { "code": "taken" }, { "code": "nope" } ]
        }),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let statuses = |list: &str| -> Vec<u64> {
        b[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(statuses("create"), vec![201, 409, 400, 201], "{b}");
    assert_eq!(statuses("update"), vec![200, 404, 412, 200], "{b}");
    assert_eq!(statuses("delete"), vec![204, 404], "{b}");
    assert_eq!(
        (b["succeeded"].as_u64(), b["failed"].as_u64()),
        (Some(5), Some(5))
    );
    assert_eq!(b["create"][0]["link"]["code"], "new-1");
    assert_eq!(b["create"][1]["index"], 1);
    assert_eq!(b["create"][1]["error"]["code"], "alias_taken", "{b}");
    assert_eq!(b["create"][2]["error"]["code"], "invalid_url", "{b}");
    assert_eq!(b["update"][0]["link"]["title"], "renamed");
    assert_eq!(
        b["update"][2]["error"]["code"], "precondition_failed",
        "{b}"
    );
    // The second identical patch changed nothing: same version.
    assert_eq!(
        b["update"][3]["link"]["version"],
        b["update"][0]["link"]["version"]
    );

    // The outcomes are what is stored.
    let (s, l) = app
        .call(Method::GET, "/v1/links/new-1", &app.admin_key)
        .await;
    assert_eq!((s, l["tags"].clone()), (200, json!(["x"])));
    let (s, _) = app
        .call(Method::GET, "/v1/links/taken", &app.admin_key)
        .await;
    assert_eq!(s, 404, "deleted by the bulk");
    let (_, l) = app.call(Method::GET, "/v1/links/old", &app.admin_key).await;
    assert_eq!(l["title"], "renamed");

    // One outbox row per changed link (two creates, one update, one
    // delete), gapless after the earlier ones, each the link's final state.
    let deltas = outbox(&app).await;
    assert_eq!(deltas.len(), before + 4);
    let mut upserts = Vec::new();
    let mut deletes = Vec::new();
    for d in &deltas[before..] {
        match &d.change {
            LinkChange::Upsert { link } => {
                assert_eq!(link.seq, d.seq);
                upserts.push(link.code.clone())
            }
            LinkChange::Delete { code, .. } => deletes.push(code.clone()),
            other => panic!("{other:?}"),
        }
    }
    upserts.sort();
    let random = b["create"][3]["link"]["code"].as_str().unwrap().to_owned();
    let mut want = vec!["new-1".to_string(), "old".into(), random];
    want.sort();
    assert_eq!(upserts, want);
    assert_eq!(deletes, vec!["taken".to_string()]);

    // Audit entries, one per change, as for single writes.
    let actions: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, subject FROM audit_log WHERE details ? 'bulk' OR action = 'link.create'
          ORDER BY id",
    )
    .fetch_all(&app.running.state.db)
    .await
    .unwrap();
    assert!(
        actions.contains(&("link.update".into(), "old".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("link.delete".into(), "taken".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("link.create".into(), "new-1".into())),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_replay_answers_the_first_outcomes_and_writes_nothing() {
    let app = TestApp::start().await;
    let body = json!({ "create": [
        { "target": "https://b.example/1", "custom_alias": "idem-1" },
        { "target": "https://b.example/2" }
    ]});
    let send = |body: Value| {
        app.req(Method::POST, "/v1/links/bulk", &app.admin_key)
            .header("idempotency-key", "bulk-1")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let (s1, b1) = status_json(first).await;
    assert_eq!(s1, 200, "{b1}");
    let outbox_after_first = outbox(&app).await.len();
    let again = send(body.clone()).await.unwrap();
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    let (s2, b2) = status_json(again).await;
    assert_eq!(
        (s2, &b2),
        (200, &b1),
        "the same outcomes, random code included"
    );
    assert_eq!(
        outbox(&app).await.len(),
        outbox_after_first,
        "nothing written twice"
    );
    let (_, list) = app.call(Method::GET, "/v1/links", &app.admin_key).await;
    assert_eq!(list["links"].as_array().unwrap().len(), 2);
    // The key bound to another body: refused.
    let (s, b) = status_json(
        send(json!({ "create": [{ "target": "https://c.example/" }] }))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(error_code(&b), "idempotency_key_reused");
}

#[tokio::test]
async fn more_than_1000_items_or_none_is_a_400() {
    let app = TestApp::start().await;
    let item = json!({ "target": "https://b.example/" });
    let (s, b) = bulk(
        &app,
        &app.admin_key,
        &json!({ "create": vec![item.clone(); 600], "delete": vec![json!({"code": "x"}); 401] }),
    )
    .await;
    assert_eq!((s, error_code(&b)), (400, "bad_request"), "{b}");
    assert_eq!(b["error"]["details"]["limit"], 1000);
    assert_eq!(b["error"]["details"]["items"], 1001);
    assert!(
        b["error"]["message"].as_str().unwrap().contains("1000"),
        "{b}"
    );
    let (s, b) = bulk(&app, &app.admin_key, &json!({})).await;
    assert_eq!((s, error_code(&b)), (400, "bad_request"), "{b}");
    let (s, b) = bulk(&app, &app.admin_key, &json!({ "create": [], "upsert": [] })).await;
    assert_eq!((s, error_code(&b)), (400, "invalid_json"), "{b}");
    assert_eq!(outbox(&app).await.len(), 0, "nothing written");
    // A malformed item (what the schema forbids: no target, a status that
    // is not a redirect) makes the whole request a 400 naming it, found by
    // schemathesis: per-item outcomes are for what only the data decides.
    for (body, field) in [
        (
            json!({ "create": [item.clone(), { "title": "no target" }] }),
            "create[1].target",
        ),
        (
            json!({ "create": [{ "target": "https://b.example/", "status": 200 }] }),
            "create[0].status",
        ),
        (
            json!({ "update": [{ "code": "x", "set": { "status": 404 } }] }),
            "update[0].set.status",
        ),
    ] {
        let (s, b) = bulk(&app, &app.admin_key, &body).await;
        assert_eq!((s, error_code(&b)), (400, "bad_request"), "{b}");
        assert_eq!(b["error"]["details"]["field"], field, "{b}");
    }
    assert_eq!(outbox(&app).await.len(), 0, "nothing written");
    // Exactly 1000 pass.
    let (s, b) = bulk(&app, &app.admin_key, &json!({ "create": vec![item; 1000] })).await;
    assert_eq!((s, b["succeeded"].as_u64()), (200, Some(1000)));
    assert_eq!(outbox(&app).await.len(), 1000);
}

#[tokio::test]
async fn a_viewer_or_a_read_key_cannot_bulk() {
    let app = TestApp::start().await;
    app.user("viewer@example.com", Some(("acme", Role::Viewer)))
        .await;
    let viewer = app.login("viewer@example.com", PASSWORD).await;
    let body = json!({ "create": [{ "target": "https://b.example/" }] });
    let (s, b) = app
        .user_call(Method::POST, "/v1/links/bulk", &viewer, Some(&body))
        .await;
    assert_eq!((s, error_code(&b)), (403, "forbidden"), "{b}");
    let reader = app.key("acme", &["links:read"]).await;
    let (s, _) = bulk(&app, &reader, &body).await;
    assert_eq!(s, 403);
    assert_eq!(outbox(&app).await.len(), 0);
    // An editor may.
    app.user("editor@example.com", Some(("acme", Role::Editor)))
        .await;
    let editor = app.login("editor@example.com", PASSWORD).await;
    let (s, b) = app
        .user_call(Method::POST, "/v1/links/bulk", &editor, Some(&body))
        .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn a_bulk_spends_a_token_per_ten_items() {
    let app = TestApp::start_with(|c| {
        c.rate_per_key = 0.001;
        c.burst_per_key = 60;
    })
    .await;
    let items = |n: usize| json!({ "create": vec![json!({ "target": "https://b.example/" }); n] });
    // 1 + 50 tokens of 60.
    let (s, _) = bulk(&app, &app.admin_key, &items(500)).await;
    assert_eq!(s, 200);
    // 1 + 10 more do not fit in the 9 left.
    let r = app
        .req(Method::POST, "/v1/links/bulk", &app.admin_key)
        .json(&items(100))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("retry-after").is_some());
    let (s, b) = status_json(r).await;
    assert_eq!((s, error_code(&b)), (429, "rate_limited"));
    // A small one still fits.
    let (s, _) = bulk(&app, &app.admin_key, &items(10)).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn bulk_changes_reach_the_stream() {
    let nats = testkit::JetStreamScope::connect().await.unwrap();
    let stream = nats.stream_name("LINKS");
    let subject = nats.subject("links.changes");
    let app = TestApp::start_relaying(&stream, &subject, |_| {}).await;
    let creates: Vec<Value> = (0..300)
        .map(|i| json!({ "target": format!("https://b.example/{i}") }))
        .collect();
    let (s, b) = bulk(&app, &app.admin_key, &json!({ "create": creates })).await;
    assert_eq!((s, b["succeeded"].as_u64()), (200, Some(300)));
    let js = nats.jetstream();
    testkit::wait_for(
        Duration::from_secs(20),
        Duration::from_millis(20),
        || async {
            match js.get_stream(&stream).await {
                Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0) == 300,
                Err(_) => false,
            }
        },
    )
    .await
    .unwrap();
    let s = js.get_stream(&stream).await.unwrap();
    let mut published = Vec::new();
    for seq in 1..=300 {
        let msg = s.get_raw_message(seq).await.unwrap();
        published.push(LinkDelta::decode(&msg.payload).unwrap());
    }
    assert_eq!(published, outbox(&app).await, "every change, in order");
}
