//! API keys: authentication, scopes, tenant isolation, create/list/revoke.

mod common;

use common::{TestApp, error_code, status_json};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn missing_or_bad_keys_are_401() {
    let app = TestApp::start().await;
    let (s, b) = status_json(
        app.http
            .get(format!("{}/v1/links", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, error_code(&b)), (401, "unauthorized"));
    let (s, _) = app.call(Method::GET, "/v1/links", "sk_AAAAAAAA_nope").await;
    assert_eq!(s, 401);
    // X-API-Key works as well as Bearer.
    let r = app
        .http
        .get(format!("{}/v1/links", app.base))
        .header("x-api-key", &app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn scopes_are_enforced() {
    let app = TestApp::start().await;
    let link = app.create(json!({ "target": "https://a.com" })).await;
    let code = link["code"].as_str().unwrap();
    let reader = app.key("acme", &["links:read"]).await;
    let writer = app.key("acme", &["links:write"]).await;
    let stats = app.key("acme", &["stats:read"]).await;

    let ok = app
        .req(Method::GET, &format!("/v1/links/{code}"), &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let (s, b) = status_json(
        app.req(Method::POST, "/v1/links", &reader)
            .json(&json!({ "target": "https://b.com" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, error_code(&b)), (403, "forbidden"));
    assert_eq!(b["error"]["details"]["required_scope"], "links:write");
    let r = app
        .req(Method::POST, "/v1/links", &writer)
        .json(&json!({ "target": "https://b.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (s, _) = app.call(Method::GET, "/v1/links", &stats).await;
    assert_eq!(s, 403);
    for (method, path) in [
        (Method::GET, "/v1/keys"),
        (Method::GET, "/v1/admin/blocklist"),
        (Method::GET, "/v1/admin/snapshots"),
    ] {
        let (s, _) = app.call(method, path, &writer).await;
        assert_eq!(s, 403, "{path}");
    }
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/v1/admin/links/{code}/disable"),
            &writer,
        )
        .await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn an_organization_sees_only_its_own_links() {
    let app = TestApp::start().await;
    let link = app
        .create(json!({ "target": "https://a.com", "custom_alias": "acme-only" }))
        .await;
    assert_eq!(link["code"], "acme-only");
    let other = app
        .key(
            "globex",
            &["links:read", "links:write", "stats:read", "admin"],
        )
        .await;
    for (method, path) in [
        (Method::GET, "/v1/links/acme-only"),
        (Method::DELETE, "/v1/links/acme-only"),
        (Method::GET, "/v1/links/acme-only/qr"),
    ] {
        let (s, b) = app.call(method, path, &other).await;
        assert_eq!((s, error_code(&b)), (404, "not_found"), "{path}");
    }
    // Disabling another organization's link is the operator's business.
    let (s, b) = app
        .call(Method::POST, "/v1/admin/links/acme-only/disable", &other)
        .await;
    assert_eq!((s, error_code(&b)), (403, "forbidden"));
    let (s, b) = status_json(
        app.req(Method::PATCH, "/v1/links/acme-only", &other)
            .json(&json!({ "disabled": true }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, error_code(&b)), (404, "not_found"));
    let (_, b) = app.call(Method::GET, "/v1/links", &other).await;
    assert_eq!(b["links"], json!([]));
    let (_, b) = app.call(Method::GET, "/v1/keys", &other).await;
    assert_eq!(
        b["keys"].as_array().unwrap().len(),
        1,
        "only globex's own key"
    );
    // The alias is still taken for everyone: codes are global.
    let (s, _) = status_json(
        app.req(Method::POST, "/v1/links", &other)
            .json(&json!({ "target": "https://b.com", "custom_alias": "acme-only" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 409);
    // And acme's link is untouched.
    let (_, b) = app
        .call(Method::GET, "/v1/links/acme-only", &app.admin_key)
        .await;
    assert_eq!(b["disabled"], false);
}

#[tokio::test]
async fn keys_create_list_revoke() {
    let app = TestApp::start().await;
    let (s, b) = status_json(
        app.req(Method::POST, "/v1/keys", &app.admin_key)
            .json(&json!({ "name": "ci", "scopes": ["links:read"] }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let secret = b["secret"].as_str().unwrap().to_owned();
    let id = b["key"]["id"].as_i64().unwrap();
    assert!(secret.starts_with(b["key"]["prefix"].as_str().unwrap()));
    let r = app
        .req(Method::GET, "/v1/links", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (_, list) = app.call(Method::GET, "/v1/keys", &app.admin_key).await;
    let text = list.to_string();
    assert!(!text.contains(&secret), "listings never show a secret");
    assert_eq!(list["keys"].as_array().unwrap().len(), 2);

    for (body, code) in [
        (json!({ "scopes": ["root"] }), "bad_request"),
        (json!({ "scopes": [] }), "bad_request"),
        (json!({ "name": "x" }), "invalid_json"),
    ] {
        let (s, b) = status_json(
            app.req(Method::POST, "/v1/keys", &app.admin_key)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((s, error_code(&b)), (400, code), "{body}");
    }

    let r = app
        .req(Method::DELETE, &format!("/v1/keys/{id}"), &app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (s, _) = app.call(Method::GET, "/v1/links", &secret).await;
    assert_eq!(s, 401, "a revoked key is refused");
    let (s, b) = app
        .call(Method::DELETE, "/v1/keys/999999", &app.admin_key)
        .await;
    assert_eq!((s, error_code(&b)), (404, "not_found"));
    let (s, b) = app
        .call(Method::DELETE, "/v1/keys/abc", &app.admin_key)
        .await;
    assert_eq!((s, error_code(&b)), (400, "bad_request"));
}

#[tokio::test]
async fn expired_keys_are_refused() {
    let app = TestApp::start().await;
    let key = app.key("acme", &["links:read"]).await;
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE prefix = $1")
        .bind(&key[..11])
        .execute(&app.running.state.db)
        .await
        .unwrap();
    let (s, _) = app.call(Method::GET, "/v1/links", &key).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn last_use_is_recorded() {
    let app = TestApp::start().await;
    let key = app.key("acme", &["links:read"]).await;
    let last_used = || async {
        sqlx::query_scalar::<_, Option<time::OffsetDateTime>>(
            "SELECT last_used_at FROM api_keys WHERE prefix = $1",
        )
        .bind(&key[..11])
        .fetch_one(&app.running.state.db)
        .await
        .unwrap()
    };
    assert_eq!(last_used().await, None);
    let r = app
        .req(Method::GET, "/v1/links", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    testkit::wait_for(
        std::time::Duration::from_secs(5),
        std::time::Duration::from_millis(10),
        || async { last_used().await.is_some() },
    )
    .await
    .unwrap();
}
