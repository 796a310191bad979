//! The links API against a real PostgreSQL: create, read, update, delete, list.

mod common;

use common::{TestApp, error_code, status_json};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn create_returns_code_and_short_url() {
    let app = TestApp::start().await;
    let r = app
        .req(Method::POST, "/v1/links", &app.admin_key)
        .json(&json!({ "long_url": "https://Example.COM/päth?q=1", "tags": ["a", "b"], "title": "T", "status": 302, "forward_query": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers().get("etag").is_some());
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let body: serde_json::Value = r.json().await.unwrap();
    let code = body["code"].as_str().unwrap();
    assert_eq!(code.len(), 7);
    assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(location, format!("/v1/links/{code}"));
    assert_eq!(body["short_url"], format!("https://sho.rt/{code}"));
    assert_eq!(body["target"], "https://example.com/p%C3%A4th?q=1");
    assert_eq!(body["status"], 302);
    assert_eq!(body["forward_query"], true);
    assert_eq!(body["tags"], json!(["a", "b"]));
    assert_eq!(body["title"], "T");
    assert_eq!(body["disabled"], false);
}

#[tokio::test]
async fn create_refusals() {
    let app = TestApp::start().await;
    let cases = [
        (
            json!({ "target": "javascript:alert(1)" }),
            400,
            "invalid_url",
        ),
        (json!({ "target": "data:text/html,x" }), 400, "invalid_url"),
        (
            json!({ "target": "file:///etc/passwd" }),
            400,
            "invalid_url",
        ),
        (json!({ "target": "not a url" }), 400, "invalid_url"),
        (
            json!({ "target": "https://sho.rt/loop" }),
            400,
            "invalid_url",
        ),
        (
            json!({ "target": format!("https://a.com/{}", "x".repeat(9000)) }),
            400,
            "invalid_url",
        ),
        (json!({}), 400, "bad_request"),
        (
            json!({ "target": "https://a.com", "status": 200 }),
            400,
            "bad_request",
        ),
        (
            json!({ "target": "https://a.com", "custom_alias": "v1" }),
            400,
            "bad_request",
        ),
        (
            json!({ "target": "https://a.com", "custom_alias": "a/b" }),
            400,
            "bad_request",
        ),
        (
            json!({ "target": "https://a.com", "expires_at": "2001-01-01T00:00:00Z" }),
            400,
            "bad_request",
        ),
        (
            json!({ "target": "https://a.com", "expires_at": "tomorrow" }),
            400,
            "invalid_json",
        ),
        (
            json!({ "target": "https://a.com", "colour": "red" }),
            400,
            "invalid_json",
        ),
    ];
    for (body, status, code) in cases {
        let (s, b) = status_json(
            app.req(Method::POST, "/v1/links", &app.admin_key)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((s, error_code(&b)), (status, code), "{body} -> {b}");
    }
    // Unknown field: the message names it.
    let (_, b) = status_json(
        app.req(Method::POST, "/v1/links", &app.admin_key)
            .json(&json!({ "target": "https://a.com", "colour": "red" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        b["error"]["message"].as_str().unwrap().contains("colour"),
        "{b}"
    );
    // Not JSON at all, and no content type.
    let (s, b) = status_json(
        app.req(Method::POST, "/v1/links", &app.admin_key)
            .header("content-type", "application/json")
            .body("{nope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, error_code(&b)), (400, "invalid_json"));
    let (s, b) = status_json(
        app.req(Method::POST, "/v1/links", &app.admin_key)
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, error_code(&b)), (415, "unsupported_media_type"));
}

#[tokio::test]
async fn custom_alias_conflict_is_409_even_after_delete() {
    let app = TestApp::start().await;
    let body = app
        .create(json!({ "target": "https://a.com", "custom_alias": "promo-2026" }))
        .await;
    assert_eq!(body["code"], "promo-2026");
    let (s, b) = status_json(
        app.req(Method::POST, "/v1/links", &app.admin_key)
            .json(&json!({ "target": "https://b.com", "custom_alias": "promo-2026" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, error_code(&b)), (409, "alias_taken"));
    let r = app
        .req(Method::DELETE, "/v1/links/promo-2026", &app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (s, _) = status_json(
        app.req(Method::POST, "/v1/links", &app.admin_key)
            .json(&json!({ "target": "https://b.com", "custom_alias": "promo-2026" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 409, "codes are never reused");
}

#[tokio::test]
async fn get_etag_patch_if_match_and_delete() {
    let app = TestApp::start().await;
    let created = app
        .create(json!({ "target": "https://a.com/x", "title": "old" }))
        .await;
    let code = created["code"].as_str().unwrap();
    let path = format!("/v1/links/{code}");

    let r = app
        .req(Method::GET, &path, &app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let r = app
        .req(Method::GET, &path, &app.admin_key)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    let r = app
        .req(Method::PATCH, &path, &app.admin_key)
        .header("if-match", &etag)
        .json(
            &json!({ "target": "https://b.com/y", "title": null, "disabled": true, "status": 307 }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let new_etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["target"], "https://b.com/y");
    assert_eq!(body["title"], serde_json::Value::Null);
    assert_eq!(body["disabled"], true);
    assert_eq!(body["status"], 307);
    assert_eq!(body["version"], 2);

    // The old ETag no longer matches.
    let (s, b) = status_json(
        app.req(Method::PATCH, &path, &app.admin_key)
            .header("if-match", &etag)
            .json(&json!({ "title": "lost update" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, error_code(&b)), (412, "precondition_failed"));
    assert_eq!(b["error"]["details"]["current_etag"], new_etag);

    let (s, b) = status_json(
        app.req(Method::PATCH, &path, &app.admin_key)
            .json(&json!({ "target": "ftp://x" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, error_code(&b)), (400, "invalid_url"));

    let r = app
        .req(Method::DELETE, &path, &app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for method in [Method::GET, Method::DELETE] {
        let (s, b) = app.call(method, &path, &app.admin_key).await;
        assert_eq!((s, error_code(&b)), (404, "not_found"));
    }
    let (s, b) = status_json(
        app.req(Method::PATCH, &path, &app.admin_key)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, error_code(&b)), (404, "not_found"));
}

#[tokio::test]
async fn idempotent_replay_and_reuse_with_other_body() {
    let app = TestApp::start().await;
    let send = |body: serde_json::Value, key: &'static str| {
        app.req(Method::POST, "/v1/links", &app.admin_key)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = send(json!({ "target": "https://a.com" }), "k-1")
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let first: serde_json::Value = first.json().await.unwrap();
    let again = send(json!({ "target": "https://a.com" }), "k-1")
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again, first, "the first response is replayed");
    let (s, b) = status_json(
        send(json!({ "target": "https://other.com" }), "k-1")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, error_code(&b)), (422, "idempotency_key_reused"));
    // A key outside the documented `^[!-~]+$` (found by schemathesis): 400,
    // nothing created.
    let (s, b) = status_json(
        send(json!({ "target": "https://spaced.com" }), "k 3")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(b.to_string().contains("Idempotency-Key"), "{b}");

    // Concurrent requests with one key create one link.
    let futs: Vec<_> = (0..8)
        .map(|_| send(json!({ "target": "https://c.com" }), "k-2"))
        .collect();
    let mut codes = std::collections::HashSet::new();
    for r in futures::future::join_all(futs).await {
        let r = r.unwrap();
        assert_eq!(r.status(), 201);
        let b: serde_json::Value = r.json().await.unwrap();
        codes.insert(b["code"].as_str().unwrap().to_owned());
    }
    assert_eq!(codes.len(), 1, "{codes:?}");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM links WHERE target = 'https://c.com/'")
        .fetch_one(&app.running.state.db)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn list_pages_with_cursor_across_inserts_and_filters() {
    let app = TestApp::start().await;
    let mut created = Vec::new();
    for i in 0..25 {
        let tags = if i % 5 == 0 {
            json!(["five"])
        } else {
            json!([])
        };
        let b = app
            .create(json!({ "target": format!("https://site{i}.com/"), "title": format!("link number {i}"), "tags": tags }))
            .await;
        created.push(b["code"].as_str().unwrap().to_owned());
    }
    // Page through 10 at a time, inserting new links between pages.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/v1/links?limit=10".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (s, b) = app.call(Method::GET, &path, &app.admin_key).await;
        assert_eq!(s, 200, "{b}");
        for l in b["links"].as_array().unwrap() {
            seen.push(l["code"].as_str().unwrap().to_owned());
        }
        pages += 1;
        app.create(json!({ "target": format!("https://late{pages}.com/") }))
            .await;
        match b["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut expected = created.clone();
    expected.reverse();
    assert_eq!(
        seen, expected,
        "every original link once, newest first, none repeated"
    );

    let (_, b) = app
        .call(Method::GET, "/v1/links?tag=five&limit=1000", &app.admin_key)
        .await;
    assert_eq!(b["links"].as_array().unwrap().len(), 5);
    let (_, b) = app
        .call(Method::GET, "/v1/links?q=number%2012", &app.admin_key)
        .await;
    assert_eq!(b["links"].as_array().unwrap().len(), 1);
    assert_eq!(b["links"][0]["code"], created[12]);
    let (_, b) = app
        .call(Method::GET, "/v1/links?q=site1", &app.admin_key)
        .await;
    assert_eq!(
        b["links"].as_array().unwrap().len(),
        11,
        "site1 and site10..site19"
    );
    app.req(
        Method::PATCH,
        &format!("/v1/links/{}", created[3]),
        &app.admin_key,
    )
    .json(&json!({ "disabled": true }))
    .send()
    .await
    .unwrap();
    let (_, b) = app
        .call(Method::GET, "/v1/links?disabled=true", &app.admin_key)
        .await;
    assert_eq!(b["links"].as_array().unwrap().len(), 1);
    let (_, b) = app
        .call(
            Method::GET,
            "/v1/links?created_after=2999-01-01T00:00:00Z",
            &app.admin_key,
        )
        .await;
    assert_eq!(b["links"].as_array().unwrap().len(), 0);

    for bad in [
        "/v1/links?limit=1001",
        "/v1/links?limit=0",
        "/v1/links?cursor=zzz",
        "/v1/links?limit=x",
        "/v1/links?disabled=maybe",
    ] {
        let (s, b) = app.call(Method::GET, bad, &app.admin_key).await;
        assert_eq!((s, error_code(&b)), (400, "bad_request"), "{bad}: {b}");
    }
}

#[tokio::test]
async fn blocklisted_hosts_and_subdomains_are_refused() {
    let app = TestApp::start().await;
    let r = app
        .req(Method::POST, "/v1/admin/blocklist", &app.operator_key)
        .json(&json!({ "host": "Evil.example", "reason": "phishing" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for target in ["https://evil.example/x", "http://a.b.EVIL.example:8080/"] {
        let (s, b) = status_json(
            app.req(Method::POST, "/v1/links", &app.admin_key)
                .json(&json!({ "target": target }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((s, error_code(&b)), (422, "blocked_host"), "{target}");
        assert_eq!(b["error"]["details"]["rule"], "evil.example");
    }
    app.create(json!({ "target": "https://notevil.example/" }))
        .await;
    let (_, b) = app
        .call(Method::GET, "/v1/admin/blocklist", &app.operator_key)
        .await;
    assert_eq!(b["hosts"][0]["host"], "evil.example");
    let r = app
        .req(
            Method::DELETE,
            "/v1/admin/blocklist/evil.example",
            &app.operator_key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    app.create(json!({ "target": "https://evil.example/x" }))
        .await;
    let r = app
        .req(
            Method::DELETE,
            "/v1/admin/blocklist/evil.example",
            &app.operator_key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn every_write_is_audited_and_has_an_outbox_row() {
    let app = TestApp::start().await;
    let b = app.create(json!({ "target": "https://a.com" })).await;
    let code = b["code"].as_str().unwrap();
    app.req(Method::PATCH, &format!("/v1/links/{code}"), &app.admin_key)
        .json(&json!({ "title": "t" }))
        .send()
        .await
        .unwrap();
    app.req(Method::DELETE, &format!("/v1/links/{code}"), &app.admin_key)
        .send()
        .await
        .unwrap();
    let db = &app.running.state.db;
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE subject = $1 ORDER BY id")
            .bind(code)
            .fetch_all(db)
            .await
            .unwrap();
    assert_eq!(actions, ["link.create", "link.update", "link.delete"]);
    let rows: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, delta FROM link_outbox ORDER BY seq")
            .fetch_all(db)
            .await
            .unwrap();
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);
    let last = snapshots::delta::LinkDelta::decode(&rows[2].1).unwrap();
    assert_eq!(last, snapshots::delta::LinkDelta::delete(3, code));
    let mid = snapshots::delta::LinkDelta::decode(&rows[1].1).unwrap();
    assert!(
        matches!(mid.change, snapshots::delta::LinkChange::Upsert { ref link } if link.seq == 2 && link.target == "https://a.com/")
    );
}

#[tokio::test]
async fn expiry_and_patch_policy() {
    let app = TestApp::start_with(|c| c.code_length = 10).await;
    let b = app
        .create(json!({ "target": "https://a.com", "expires_at": "2999-01-01T00:00:00Z" }))
        .await;
    assert_eq!(
        b["code"].as_str().unwrap().len(),
        10,
        "configured code length"
    );
    assert_eq!(b["expires_at"], "2999-01-01T00:00:00Z");
    let path = format!("/v1/links/{}", b["code"].as_str().unwrap());
    // The blocklist and the loop rule apply to updates too.
    app.req(Method::POST, "/v1/admin/blocklist", &app.operator_key)
        .json(&json!({ "host": "bad.example" }))
        .send()
        .await
        .unwrap();
    for (target, status, code) in [
        ("https://x.bad.example/", 422, "blocked_host"),
        ("https://sho.rt/x", 400, "invalid_url"),
    ] {
        let (s, e) = status_json(
            app.req(Method::PATCH, &path, &app.admin_key)
                .json(&json!({ "target": target }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((s, error_code(&e)), (status, code), "{target}");
    }
    // null clears the expiry.
    let (s, b) = status_json(
        app.req(Method::PATCH, &path, &app.admin_key)
            .json(&json!({ "expires_at": null }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["expires_at"], serde_json::Value::Null);
    assert_eq!(b["version"], 2, "refused updates changed nothing");
}

#[tokio::test]
async fn admin_disable_takes_effect_and_is_streamed() {
    let app = TestApp::start().await;
    let b = app.create(json!({ "target": "https://a.com" })).await;
    let code = b["code"].as_str().unwrap();
    let (s, d) = app
        .call(
            Method::POST,
            &format!("/v1/admin/links/{code}/disable"),
            &app.operator_key,
        )
        .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["disabled"], true);
    let delta: Vec<u8> =
        sqlx::query_scalar("SELECT delta FROM link_outbox ORDER BY seq DESC LIMIT 1")
            .fetch_one(&app.running.state.db)
            .await
            .unwrap();
    match snapshots::delta::LinkDelta::decode(&delta).unwrap().change {
        snapshots::delta::LinkChange::Upsert { link } => assert!(link.disabled),
        other => panic!("{other:?}"),
    }
    let (s, _) = app
        .call(
            Method::POST,
            "/v1/admin/links/nosuch/disable",
            &app.operator_key,
        )
        .await;
    assert_eq!(s, 404);
}
