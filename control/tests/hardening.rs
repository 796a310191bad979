//! Inputs that used to reach PostgreSQL (or the metrics, or the limiter)
//! unchecked: each is now a 4xx naming what is at fault.

mod common;

use common::{TestApp, error_code, status_json};
use reqwest::Method;
use serde_json::{Value, json};

/// Asserts a 400 whose details name `field`.
fn assert_field(s: u16, b: &Value, field: &str, what: &str) {
    assert_eq!(s, 400, "{what}: {b}");
    assert_eq!(b["error"]["details"]["field"], field, "{what}: {b}");
}

#[tokio::test]
async fn nul_bytes_are_400_naming_the_field() {
    let app = TestApp::start().await;
    let link = app.create(json!({ "target": "https://a.example/" })).await;
    let code = link["code"].as_str().unwrap();

    for (path, field) in [
        ("/v1/links?q=%00", "q"),
        ("/v1/links?q=a%00b", "q"),
        ("/v1/links?tag=%00", "tag"),
        ("/v1/links/a%00b", "code"),
        ("/v1/links/a%00b/qr", "code"),
        ("/v1/links/a%00b/stats", "code"),
    ] {
        let (s, b) = app.call(Method::GET, path, &app.admin_key).await;
        assert_field(s, &b, field, path);
    }
    for method in [Method::DELETE, Method::PATCH] {
        let (s, b) = app
            .send_json(
                method.clone(),
                "/v1/links/a%00b",
                &app.admin_key,
                &json!({}),
            )
            .await;
        assert_field(s, &b, "code", method.as_str());
    }
    for (body, field) in [
        (
            json!({ "target": "https://a.example/", "title": "x\u{0}y" }),
            "title",
        ),
        (
            json!({ "target": "https://a.example/", "custom_alias": "a\u{0}" }),
            "custom_alias",
        ),
        (
            json!({ "target": "https://a.example/", "tags": ["\u{0}"] }),
            "tags",
        ),
    ] {
        let (s, b) = app
            .send_json(Method::POST, "/v1/links", &app.admin_key, &body)
            .await;
        assert_field(s, &b, field, &body.to_string());
    }
    let (s, b) = app
        .send_json(
            Method::POST,
            "/v1/links",
            &app.admin_key,
            &json!({ "target": "https://a.example/\u{0}" }),
        )
        .await;
    assert_eq!((s, error_code(&b)), (400, "invalid_url"));
    let (s, b) = app
        .send_json(
            Method::PATCH,
            &format!("/v1/links/{code}"),
            &app.admin_key,
            &json!({ "title": "\u{0}" }),
        )
        .await;
    assert_field(s, &b, "title", "patch title");
    let (s, b) = app
        .send_json(
            Method::POST,
            "/v1/keys",
            &app.admin_key,
            &json!({ "name": "ci\u{0}", "scopes": ["links:read"] }),
        )
        .await;
    assert_field(s, &b, "name", "key name");
    for (body, field) in [
        (
            json!({ "host": "evil.example", "reason": "\u{0}" }),
            "reason",
        ),
        (json!({ "host": "ev\u{0}il.example" }), "host"),
    ] {
        let (s, b) = app
            .send_json(
                Method::POST,
                "/v1/admin/blocklist",
                &app.operator_key,
                &body,
            )
            .await;
        assert_field(s, &b, field, &body.to_string());
    }
    let (s, b) = app
        .call(
            Method::DELETE,
            "/v1/admin/blocklist/a%00b",
            &app.operator_key,
        )
        .await;
    assert_field(s, &b, "host", "unblock");
}

#[tokio::test]
async fn no_odd_input_gives_a_5xx() {
    let app = TestApp::start().await;
    let long = "x".repeat(5000);
    let paths = [
        "/v1/links/%FF".to_string(),
        "/v1/links/%C3%28/qr".into(),
        format!("/v1/links/{long}"),
        format!("/v1/links/{long}/stats"),
        "/v1/links?limit=-1".into(),
        "/v1/links?limit=99999999999999999999".into(),
        "/v1/links?created_after=9999-12-31T23:59:59Z".into(),
        "/v1/links?created_before=0000-01-01T00:00:00Z".into(),
        format!("/v1/links?cursor={}", "6c".repeat(3000)),
        format!("/v1/links?q={long}"),
        format!("/v1/links?tag={long}"),
        "/v1/links?q=%FF".into(),
        "/v1/links/abc/qr?size=99999999999".into(),
        "/v1/links/abc/stats?to=2200-01-01T00:00:00Z".into(),
        "/v1/links/abc/stats?from=0001-01-01T00:00:00Z".into(),
        "/v1/stats/summary?limit=-5".into(),
        "/v1/keys/99999999999999999999".into(),
        "/v1/keys/-1".into(),
    ];
    for path in &paths {
        for method in [Method::GET, Method::DELETE] {
            let r = app
                .req(method.clone(), path, &app.admin_key)
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            assert!(s < 500, "{method} {path}: {s} {}", r.text().await.unwrap());
        }
    }
    let (s, b) = app
        .call(Method::GET, &format!("/v1/links/{long}"), &app.admin_key)
        .await;
    assert_field(s, &b, "code", "long code");
    let (s, b) = app
        .call(Method::GET, &format!("/v1/links?q={long}"), &app.admin_key)
        .await;
    assert_field(s, &b, "q", "long q");
    let (s, b) = app
        .call(
            Method::GET,
            "/v1/links/abc/stats?to=2200-01-01T00:00:00Z",
            &app.admin_key,
        )
        .await;
    assert_field(s, &b, "to", "stats to");
    for body in [
        json!({ "name": long, "scopes": ["links:read"] }),
        json!({ "scopes": [long] }),
    ] {
        let (s, _) = app
            .send_json(Method::POST, "/v1/keys", &app.admin_key, &body)
            .await;
        assert_eq!(s, 400);
    }
    let (s, b) = app
        .send_json(
            Method::POST,
            "/v1/admin/blocklist",
            &app.operator_key,
            &json!({ "host": "a".repeat(300) }),
        )
        .await;
    assert_field(s, &b, "host", "long host");
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let app = TestApp::start_with(|c| c.max_body_bytes = 4096).await;
    let big = json!({ "target": "https://a.example/", "title": "x".repeat(8000) });
    let (s, b) = app
        .send_json(Method::POST, "/v1/links", &app.admin_key, &big)
        .await;
    assert_eq!((s, error_code(&b)), (413, "payload_too_large"), "{b}");
    assert_eq!(b["error"]["details"]["limit"], 4096);
    // The default limit is 1 MiB: 5 MB is refused, not parsed.
    let app = TestApp::start().await;
    let huge = json!({ "target": "https://a.example/", "title": "x".repeat(5_000_000) });
    let (s, b) = app
        .send_json(Method::POST, "/v1/links", &app.admin_key, &huge)
        .await;
    assert_eq!((s, error_code(&b)), (413, "payload_too_large"), "{b}");
}

#[tokio::test]
async fn bodies_must_be_json_objects_with_the_json_content_type() {
    let app = TestApp::start().await;
    for body in [
        r#"["https://a.example/"]"#,
        r#""https://a.example/""#,
        "42",
        "null",
        "",
    ] {
        let (s, b) = status_json(
            app.req(Method::POST, "/v1/links", &app.admin_key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((s, error_code(&b)), (400, "invalid_json"), "{body}: {b}");
    }
    let (s, b) = status_json(
        app.req(Method::POST, "/v1/links", &app.admin_key)
            .header("content-type", "application/json")
            .body(r#"["https://a.example/"]"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON object"),
        "{s} {b}"
    );
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let (s, b) = status_json(
            app.req(Method::POST, "/v1/links", &app.admin_key)
                .header("content-type", ct)
                .body(r#"{"target":"https://a.example/"}"#)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((s, error_code(&b)), (415, "unsupported_media_type"), "{ct}");
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM links")
        .fetch_one(&app.running.state.db)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_401_carries_the_bearer_challenge() {
    let app = TestApp::start().await;
    let r = app
        .http
        .get(format!("{}/v1/links", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"Bearer realm="shortener""#
    );
    // A real key's prefix with another last character (never the same one:
    // a key ending in `x` would otherwise stay valid).
    let last = if app.admin_key.ends_with('x') {
        'y'
    } else {
        'x'
    };
    let altered = format!("{}{last}", &app.admin_key[..app.admin_key.len() - 1]);
    for key in ["sk_AAAAAAAA_nope", altered.as_str()] {
        let r = app.req(Method::GET, "/v1/links", key).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers()["www-authenticate"],
            r#"Bearer realm="shortener", error="invalid_token""#
        );
    }
}

#[tokio::test]
async fn a_key_cannot_be_created_already_expired() {
    let app = TestApp::start().await;
    let (s, b) = app
        .send_json(
            Method::POST,
            "/v1/keys",
            &app.admin_key,
            &json!({ "scopes": ["links:read"], "expires_at": "2001-01-01T00:00:00Z" }),
        )
        .await;
    assert_field(s, &b, "expires_at", "past expiry");
    let (s, _) = app
        .send_json(
            Method::POST,
            "/v1/keys",
            &app.admin_key,
            &json!({ "scopes": ["links:read"], "expires_at": "2999-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(s, 201);
}

#[tokio::test]
async fn a_deleted_link_has_no_stats_and_no_qr() {
    let app = TestApp::start().await;
    app.create(json!({ "target": "https://a.example/", "custom_alias": "gone" }))
        .await;
    let (s, _) = app
        .call(Method::DELETE, "/v1/links/gone", &app.admin_key)
        .await;
    assert_eq!(s, 204);
    for path in ["/v1/links/gone/stats", "/v1/links/gone/qr"] {
        let (s, b) = app.call(Method::GET, path, &app.admin_key).await;
        assert_eq!((s, error_code(&b)), (404, "not_found"), "{path}");
    }
}

#[tokio::test]
async fn an_idempotent_replay_after_delete_is_410() {
    let app = TestApp::start().await;
    let send = || {
        app.req(Method::POST, "/v1/links", &app.admin_key)
            .header("idempotency-key", "retry-1")
            .json(&json!({ "target": "https://a.example/" }))
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    let code = first["code"].as_str().unwrap();
    let (s, _) = app
        .call(Method::DELETE, &format!("/v1/links/{code}"), &app.admin_key)
        .await;
    assert_eq!(s, 204);
    let (s, b) = status_json(send().await.unwrap()).await;
    assert_eq!((s, error_code(&b)), (410, "link_deleted"), "{b}");
    assert_eq!(b["error"]["details"]["code"], code);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM links")
        .fetch_one(&app.running.state.db)
        .await
        .unwrap();
    assert_eq!(n, 1, "no second link");
}

#[tokio::test]
async fn a_patch_that_changes_nothing_writes_nothing() {
    let app = TestApp::start().await;
    let link = app
        .create(json!({ "target": "https://a.example/", "title": "t", "tags": ["a"] }))
        .await;
    let path = format!("/v1/links/{}", link["code"].as_str().unwrap());
    let db = &app.running.state.db;
    let counts = || async {
        let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM link_outbox")
            .fetch_one(db)
            .await
            .unwrap();
        let audit: i64 =
            sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action LIKE 'link.%'")
                .fetch_one(db)
                .await
                .unwrap();
        (outbox, audit)
    };
    let before = counts().await;
    let etag = app
        .req(Method::GET, &path, &app.admin_key)
        .send()
        .await
        .unwrap()
        .headers()["etag"]
        .clone();
    for body in [
        json!({}),
        json!({ "title": "t", "tags": ["a"], "target": "https://A.example/", "disabled": false }),
    ] {
        let r = app
            .req(Method::PATCH, &path, &app.admin_key)
            .header("if-match", etag.clone())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{body}");
        assert_eq!(r.headers()["etag"], etag, "{body}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["version"], 1, "{body}");
    }
    assert_eq!(counts().await, before, "no outbox row, no audit entry");
    // A real change still bumps the version.
    let (_, b) = app
        .send_json(
            Method::PATCH,
            &path,
            &app.admin_key,
            &json!({ "title": "u" }),
        )
        .await;
    assert_eq!(b["version"], 2);
}

#[tokio::test]
async fn readyz_does_not_tell_the_database_error() {
    let app = TestApp::start().await;
    let mut admin =
        <sqlx::PgConnection as sqlx::Connection>::connect(&testkit::admin_database_url())
            .await
            .unwrap();
    let name = app.pg.name().to_owned();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = '{name}' AND pid <> pg_backend_pid();"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let (s, b) = status_json(
        app.http
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["ready"], false);
    assert_eq!(b["reason"], "the database is not reachable");
    assert!(b.get("error").is_none(), "{b}");
    assert!(!b.to_string().contains(&name), "{b}");
}

#[tokio::test]
async fn metric_labels_stay_bounded() {
    let app = TestApp::start().await;
    for i in 0..20 {
        let method = Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        app.req(method, &format!("/v1/links/{i}"), &app.admin_key)
            .send()
            .await
            .unwrap();
        app.call(Method::GET, &format!("/nothing/here/{i}"), &app.admin_key)
            .await;
    }
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("BREW"), "{text}");
    assert!(!text.contains("nothing"), "{text}");
    assert!(
        text.contains(r#"method="other",route="/v1/links/{code}""#),
        "{text}"
    );
    assert!(
        text.contains(r#"method="GET",route="unmatched",status="404"} 20"#),
        "{text}"
    );
}

#[tokio::test]
async fn targets_with_user_info_are_refused() {
    let app = TestApp::start().await;
    for target in [
        "http://user:pass@a.example/",
        "https://www.bank.example@evil.example/login",
    ] {
        let (s, b) = app
            .send_json(
                Method::POST,
                "/v1/links",
                &app.admin_key,
                &json!({ "target": target }),
            )
            .await;
        assert_eq!((s, error_code(&b)), (400, "invalid_url"), "{target}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("user info"),
            "{b}"
        );
    }
}

const LOCAL_TARGETS: &[&str] = &[
    "http://localhost/",
    "http://LocalHost./x",
    "http://127.0.0.1:8080/",
    "http://127.9.9.9/",
    "http://[::1]/",
    "http://0.0.0.0/",
    "http://10.0.0.1/",
    "http://192.168.0.10/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
];

#[tokio::test]
async fn loop_and_local_targets_are_refused() {
    let app = TestApp::start().await;
    for target in [
        "https://SHO.RT/x",
        "https://sho.rt./x",
        "http://sho.rt:8080/x",
    ]
    .iter()
    .chain(LOCAL_TARGETS)
    {
        let (s, b) = app
            .send_json(
                Method::POST,
                "/v1/links",
                &app.admin_key,
                &json!({ "target": target }),
            )
            .await;
        assert_eq!((s, error_code(&b)), (400, "invalid_url"), "{target}: {b}");
    }
}

#[tokio::test]
async fn local_targets_when_allowed_but_never_our_own_host() {
    let app = TestApp::start_with(|c| {
        c.allow_private_targets = true;
        c.short_base = "http://127.0.0.1:8080".into();
    })
    .await;
    for target in &LOCAL_TARGETS[..2] {
        let (s, b) = app
            .send_json(
                Method::POST,
                "/v1/links",
                &app.admin_key,
                &json!({ "target": target }),
            )
            .await;
        assert_eq!(s, 201, "{target}: {b}");
    }
    for target in [
        "http://127.0.0.1:8080/x",
        "http://127.0.0.1/x",
        "http://[::ffff:127.0.0.1]/",
    ] {
        let (s, b) = app
            .send_json(
                Method::POST,
                "/v1/links",
                &app.admin_key,
                &json!({ "target": target }),
            )
            .await;
        assert_eq!((s, error_code(&b)), (400, "invalid_url"), "{target}: {b}");
    }
}

#[tokio::test]
async fn a_seen_prefix_cannot_exhaust_someone_elses_key() {
    let app = TestApp::start_with(|c| {
        c.rate_per_key = 0.001;
        c.burst_per_key = 3;
    })
    .await;
    // The prefix shows in listings; the secret does not.
    let forged = format!("{}_{}", &app.admin_key[..11], "A".repeat(32));
    for _ in 0..10 {
        let (s, _) = app.call(Method::GET, "/v1/links", &forged).await;
        assert_eq!(s, 401);
    }
    let (s, b) = app.call(Method::GET, "/v1/links", &app.admin_key).await;
    assert_eq!(s, 200, "the real key is not limited by forged ones: {b}");
}

#[tokio::test]
async fn the_scheme_in_capitals_is_limited_like_any_other() {
    let app = TestApp::start_with(|c| {
        c.rate_per_key = 0.001;
        c.burst_per_key = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for scheme in ["Bearer", "BEARER", "bearer", "BeArEr"] {
        let r = app
            .http
            .get(format!("{}/v1/links", app.base))
            .header("authorization", format!("{scheme} {}", app.admin_key))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
}
