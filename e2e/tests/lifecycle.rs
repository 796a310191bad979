//! A link's lifecycle through the whole path (control's API, PostgreSQL,
//! the signed change stream, the engine): `valid_since` (a missing code
//! before it, never cached), `expires_at` with an `expired_url` (a 302 there
//! instead of 410, never cached), a permanent redirect cached no longer than
//! the expiry, and the purge of an expired link and a deleted one from
//! PostgreSQL and the engine, their codes never given out again.

use serde_json::{Value, json};
use std::time::Duration;

/// How long the engine may take to show a change or a passing time.
const WITHIN: Duration = Duration::from_secs(15);
/// Purge settings of this stack: links expired or deleted 3 s ago go, the
/// task looks every second.
const PURGE_AFTER: &str = "3";

struct Answer {
    status: u16,
    location: Option<String>,
    cache_control: Option<String>,
}

async fn answer(stack: &e2e::stack::Stack, code: &str) -> Answer {
    let r = stack
        .http
        .get(format!("http://{}/{code}", stack.engine().listen()))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    Answer {
        status: r.status().as_u16(),
        location: header("location"),
        cache_control: header("cache-control"),
    }
}

/// Waits until the engine answers `code` with `status`; that answer.
async fn until(stack: &e2e::stack::Stack, code: &str, status: u16) -> Answer {
    testkit::wait_for_some(WITHIN, Duration::from_millis(20), || async {
        let a = answer(stack, code).await;
        (a.status == status).then_some(a)
    })
    .await
    .unwrap_or_else(|e| panic!("{code} never answered {status}: {e}"))
}

/// Now plus `secs`, as RFC 3339 UTC in whole seconds.
fn rfc3339_in(secs: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a UTC time formats as RFC 3339")
}

async fn create(stack: &e2e::stack::Stack, key: &str, body: Value) -> Value {
    let (status, link) = stack
        .call(key, reqwest::Method::POST, "/v1/links", Some(body))
        .await;
    assert_eq!(status, 201, "{link}");
    link
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_lifecycle_rule_takes_effect_on_the_engine_and_purge_removes_links_everywhere() {
    let mut options = e2e::stack::StackOptions::new("e2e_lifecycle");
    options.default_domain = None;
    options.control_args = [
        "--purge-after-secs",
        PURGE_AFTER,
        "--purge-interval-secs",
        "1",
    ]
    .map(str::to_owned)
    .to_vec();
    let stack = e2e::stack::Stack::start(options).await;
    let key = stack
        .create_key(&["--org", "acme", "--scopes", "admin"])
        .await;

    // Valid from in 3 s: a missing code until then (no-store), then the
    // redirect. A plain link made after it shows the engine has the change.
    create(
        &stack,
        &key,
        json!({"target": "https://example.com/launch", "custom_alias": "launch",
               "valid_since": rfc3339_in(3)}),
    )
    .await;
    create(
        &stack,
        &key,
        json!({"target": "https://example.com/m", "custom_alias": "marker1"}),
    )
    .await;
    until(&stack, "marker1", 301).await;
    let before = answer(&stack, "launch").await;
    assert_eq!(before.status, 404, "not valid yet: as a missing code");
    assert_eq!(before.cache_control.as_deref(), Some("no-store"));
    let live = until(&stack, "launch", 301).await;
    assert_eq!(live.location.as_deref(), Some("https://example.com/launch"));

    // Expiring in 4 s with an expired URL: a 301 cached at most until the
    // expiry, then a 302 to the expired URL that nothing caches.
    let promo = create(
        &stack,
        &key,
        json!({"target": "https://example.com/promo", "custom_alias": "promo",
               "expires_at": rfc3339_in(4), "expired_url": "https://example.com/ended"}),
    )
    .await;
    assert_eq!(promo["expired_url"], "https://example.com/ended");
    let live = until(&stack, "promo", 301).await;
    let max_age: i64 = live
        .cache_control
        .as_deref()
        .and_then(|c| c.strip_prefix("public, max-age="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "a permanent redirect's Cache-Control: {:?}",
                live.cache_control
            )
        });
    assert!(max_age <= 4, "cached past the expiry: max-age={max_age}");
    let ended = until(&stack, "promo", 302).await;
    assert_eq!(ended.location.as_deref(), Some("https://example.com/ended"));
    assert_eq!(ended.cache_control.as_deref(), Some("private, no-store"));

    // Expiring without an expired URL: 410, then purged (the engine gets a
    // delete: 404), the row gone, the code never given out again.
    create(
        &stack,
        &key,
        json!({"target": "https://example.com/brief", "custom_alias": "brief",
               "expires_at": rfc3339_in(2)}),
    )
    .await;
    until(&stack, "brief", 301).await;
    until(&stack, "brief", 410).await;
    until(&stack, "brief", 404).await;
    // A deleted link goes from PostgreSQL too.
    create(
        &stack,
        &key,
        json!({"target": "https://example.com/old", "custom_alias": "old"}),
    )
    .await;
    until(&stack, "old", 301).await;
    let (status, _) = stack
        .call(&key, reqwest::Method::DELETE, "/v1/links/old", None)
        .await;
    assert_eq!(status, 204);
    until(&stack, "old", 404).await;
    let pool = stack.pg.pool().await.unwrap();
    testkit::wait_for(WITHIN, Duration::from_millis(50), || async {
        let rows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM links WHERE code IN ('brief', 'old')")
                .fetch_one(&pool)
                .await
                .unwrap();
        rows == 0
    })
    .await
    .expect("the expired and the deleted link are purged from PostgreSQL");
    let retired: Vec<String> = sqlx::query_scalar("SELECT code FROM retired_codes ORDER BY code")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(retired, ["brief", "old"]);
    for code in ["brief", "old"] {
        let (status, body) = stack
            .call(
                &key,
                reqwest::Method::POST,
                "/v1/links",
                Some(json!({"target": "https://example.com/again", "custom_alias": code})),
            )
            .await;
        assert_eq!(status, 409, "a purged code is not given out again: {body}");
    }
    // The link with an expired URL still answers: it is not purged.
    let ended = answer(&stack, "promo").await;
    assert_eq!(ended.status, 302);
    let (status, _) = stack
        .call(&key, reqwest::Method::GET, "/v1/links/promo", None)
        .await;
    assert_eq!(status, 200);
}
