//! Health, readiness, metrics, OpenAPI, QR codes, rate limits, unknown routes.

mod common;

use common::{TestApp, error_code, status_json};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn health_ready_metrics() {
    let app = TestApp::start().await;
    let (s, b) = status_json(
        app.http
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("ok")));
    let (s, b) = status_json(
        app.http
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, b["ready"].as_bool()), (200, Some(true)));
    app.create(json!({ "target": "https://a.com" })).await;
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("control_links_written_total 1"), "{text}");
    assert!(
        text.contains(
            r#"control_http_requests_total{method="POST",route="/v1/links",status="201"} 1"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn openapi_routes_exist() {
    let app = TestApp::start().await;
    let (s, doc) = status_json(
        app.http
            .get(format!("{}/openapi.json", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    // Schemas come from the Rust types, and every reference resolves.
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["LinkJson"]["properties"]["short_url"].is_object(),
        "{schemas}"
    );
    assert!(
        schemas["CreateLink"]["properties"]["custom_alias"].is_object(),
        "{schemas}"
    );
    let text = doc.to_string();
    for part in text.split("\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(schemas[name].is_object(), "dangling $ref {name}");
    }
    // Every documented operation is routed: with a valid key and a made-up
    // path parameter, nothing answers "route not found" or 405.
    let mut n = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path
                .replace("{code}", "nosuchcode")
                .replace("{id}", "0")
                .replace("{delivery}", "0")
                .replace("{host}", "no.such");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let key = if path.starts_with("/v1/admin/") {
                &app.operator_key
            } else {
                &app.admin_key
            };
            let r = app
                .req(m, &concrete, key)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path}");
            assert!(!body.contains("route not found"), "{method} {path}: {body}");
            n += 1;
        }
    }
    assert_eq!(n, control::openapi::ROUTES.len());
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_error_shape() {
    let app = TestApp::start().await;
    let (s, b) = app.call(Method::GET, "/v1/nope", &app.admin_key).await;
    assert_eq!((s, error_code(&b)), (404, "not_found"));
    let (s, b) = app.call(Method::PUT, "/v1/links", &app.admin_key).await;
    assert_eq!((s, error_code(&b)), (405, "method_not_allowed"));
}

#[tokio::test]
async fn qr_codes_in_svg_and_png() {
    let app = TestApp::start().await;
    let link = app.create(json!({ "target": "https://a.com" })).await;
    let code = link["code"].as_str().unwrap();
    let r = app
        .req(Method::GET, &format!("/v1/links/{code}/qr"), &app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(r.text().await.unwrap().contains("<svg"));
    let r = app
        .req(
            Method::GET,
            &format!("/v1/links/{code}/qr?format=png&size=300"),
            &app.admin_key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    let png = r.bytes().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(u32::from_be_bytes(png[16..20].try_into().unwrap()) >= 300);
    for q in ["format=gif", "size=10", "size=big"] {
        let (s, b) = app
            .call(
                Method::GET,
                &format!("/v1/links/{code}/qr?{q}"),
                &app.admin_key,
            )
            .await;
        assert_eq!((s, error_code(&b)), (400, "bad_request"), "{q}");
    }
}

#[tokio::test]
async fn rate_limits_per_key_and_per_ip() {
    let app = TestApp::start_with(|c| {
        c.rate_per_key = 0.001;
        c.burst_per_key = 3;
        c.rate_per_ip = 0.001;
        c.burst_per_ip = 6;
    })
    .await;
    // Per key: 3 in a burst, then 429 with Retry-After.
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..4 {
        let r = app
            .req(Method::GET, "/v1/links", &app.admin_key)
            .send()
            .await
            .unwrap();
        assert!(r.headers().contains_key("x-ratelimit-limit"));
        assert!(r.headers().contains_key("x-ratelimit-remaining"));
        assert!(r.headers().contains_key("x-ratelimit-reset"));
        statuses.push(r.status().as_u16());
        last = Some(r);
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert_eq!(statuses[3], 429);
    let r = last.unwrap();
    assert_eq!(r.headers()["x-ratelimit-limit"], "3");
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let (_, b) = status_json(r).await;
    assert_eq!(error_code(&b), "rate_limited");
    // Another key still has its own bucket, until the IP's bucket (6) runs dry.
    let other = app.key("acme", &["links:read"]).await;
    let r = app
        .req(Method::GET, "/v1/links", &other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut refused = false;
    for _ in 0..4 {
        let r = app
            .http
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            refused = true;
            assert_eq!(r.headers()["x-ratelimit-limit"], "6");
        }
    }
    assert!(
        refused,
        "the per-IP bucket refuses unauthenticated floods too"
    );
}
