//! The audit log as readers see it (who, what, when, from where), and CORS.

mod common;

use common::{PASSWORD, TestApp, error_code, status_json};
use control::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn the_audit_log_names_who_what_when_and_where() {
    let app = TestApp::start().await;
    app.user("admin@example.com", Some(("acme", Role::Admin)))
        .await;
    app.user("viewer@example.com", Some(("acme", Role::Viewer)))
        .await;
    let a = app.login("admin@example.com", PASSWORD).await;
    let v = app.login("viewer@example.com", PASSWORD).await;
    let started = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    // A session's act and a key's act.
    let (s, _) = app
        .user_call(
            Method::POST,
            "/v1/links",
            &a,
            Some(&json!({ "target": "https://example.com/", "custom_alias": "by-session" })),
        )
        .await;
    assert_eq!(s, 201);
    app.create(json!({ "target": "https://example.com/", "custom_alias": "by-key" }))
        .await;
    let prefix = &app.admin_key[..11];

    let (s, b) = app
        .user_call(Method::GET, "/v1/audit?action=link", &a, None)
        .await;
    assert_eq!(s, 200, "{b}");
    let entries = b["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{b}");
    let (by_key, by_session) = (&entries[0], &entries[1]);
    assert_eq!(by_session["action"], "link.create");
    assert_eq!(by_session["subject"], "by-session");
    assert_eq!(by_session["actor"]["kind"], "user");
    assert_eq!(by_session["actor"]["email"], "admin@example.com");
    assert_eq!(by_session["ip"], "127.0.0.1");
    assert_eq!(by_session["org"], "acme");
    assert_eq!(by_key["subject"], "by-key");
    assert_eq!(by_key["actor"]["kind"], "key");
    assert_eq!(by_key["actor"]["key_prefix"], prefix);
    assert_eq!(by_key["ip"], "127.0.0.1");
    let at = time::OffsetDateTime::parse(
        by_key["at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(at >= started && at <= time::OffsetDateTime::now_utc());

    // Filters and pages.
    let (_, b) = app
        .user_call(Method::GET, &format!("/v1/audit?actor={prefix}"), &a, None)
        .await;
    assert!(
        b["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"]["key_prefix"] == prefix)
    );
    let (_, b) = app
        .user_call(
            Method::GET,
            "/v1/audit?actor=ADMIN@example.com&action=link.create",
            &a,
            None,
        )
        .await;
    assert_eq!(b["entries"].as_array().unwrap().len(), 1, "{b}");
    let (_, p1) = app
        .user_call(Method::GET, "/v1/audit?limit=1&action=link", &a, None)
        .await;
    let cursor = p1["next_cursor"].as_str().expect("a second page");
    let (_, p2) = app
        .user_call(
            Method::GET,
            &format!("/v1/audit?limit=1&action=link&cursor={cursor}"),
            &a,
            None,
        )
        .await;
    assert_eq!(p2["entries"][0]["subject"], "by-session");
    assert_eq!(p2["next_cursor"], Value::Null);
    let (s, b) = app
        .user_call(Method::GET, "/v1/audit?from=2999-01-01T00:00:00Z", &a, None)
        .await;
    assert_eq!((s, b["entries"].as_array().unwrap().len()), (200, 0));
    let (s, b) = app
        .user_call(Method::GET, "/v1/audit?action=x%25", &a, None)
        .await;
    assert_eq!((s, error_code(&b)), (400, "bad_request"));

    // A viewer may not read it; an admin key may (its organization only).
    let (s, _) = app.user_call(Method::GET, "/v1/audit", &v, None).await;
    assert_eq!(s, 403);
    let (s, b) = app.call(Method::GET, "/v1/audit", &app.admin_key).await;
    assert_eq!(s, 200);
    assert!(
        b["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["org"] == "acme")
    );
    // The operator reads sign-ins too (service-wide), with the address.
    let (s, b) = app
        .call(
            Method::GET,
            "/v1/audit?action=session.login",
            &app.operator_key,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let logins = b["entries"].as_array().unwrap();
    assert_eq!(logins.len(), 2);
    assert!(
        logins
            .iter()
            .all(|e| e["ip"] == "127.0.0.1" && e["actor"]["kind"] == "user")
    );
}

#[tokio::test]
async fn cors_answers_listed_origins_only() {
    let app =
        TestApp::start_with(|c| c.cors_origins = vec!["https://dash.example.com".into()]).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(Method::OPTIONS, format!("{}/v1/links", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, x-csrf-token",
            )
            .send()
    };
    let r = preflight("https://dash.example.com").await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "https://dash.example.com");
    assert_eq!(h["access-control-allow-credentials"], "true");
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("x-csrf-token"), "{allowed}");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );

    let r = preflight("https://evil.example").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // A simple request from an unlisted origin is answered without leave
    // to read it.
    let r = app
        .req(Method::GET, "/v1/links", &app.admin_key)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = app
        .req(Method::GET, "/v1/links", &app.admin_key)
        .header("origin", "https://dash.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://dash.example.com"
    );
}

#[tokio::test]
async fn without_cors_origins_there_are_no_cors_headers() {
    let app = TestApp::start().await;
    let (s, b) = status_json(
        app.http
            .request(Method::OPTIONS, format!("{}/v1/links", app.base))
            .header("origin", "https://dash.example.com")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, error_code(&b)), (405, "method_not_allowed"));
}
