//! A link's `clicks` and `last_click_at` from a real ClickHouse's rollup
//! (a fresh database per test, `org_series_per_minute_hll` in the sidecar's shape),
//! cached; `null` when ClickHouse is down, never an error.

mod common;

use common::TestApp;
use reqwest::Method;
use serde_json::json;

/// 2026-01-01T10:00:00Z.
const T10: u64 = 1_767_261_600;

/// A ClickHouse database with the sidecar's own tables and rollup views
/// (`analytics::schema`).
async fn rollup() -> testkit::ClickHouseDatabase {
    common::clickhouse_with_schema("ctl").await
}

/// `n` clicks of `code` on `domain` at `ts`, of organization `org`, stored
/// raw (the views roll them up).
#[allow(clippy::too_many_arguments)]
async fn clicks(
    ch: &testkit::ClickHouseDatabase,
    org: i64,
    code: &str,
    domain: &str,
    ts: u64,
    status: u16,
    bot: u8,
    n: u64,
) {
    ch.query(&format!(
        "INSERT INTO clicks (event_id, ts, ts_ms, code, domain, status, is_bot, visitor_hash, org_id)
         SELECT toFixedString(concat('e', toString(number)), 16), toDateTime({ts}), {ts} * 1000,
                '{code}', '{domain}', {status}, {bot}, number, {org}
           FROM (SELECT number FROM system.numbers LIMIT {n})"
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn links_carry_their_rollup_totals_cached() {
    let ch = rollup().await;
    let (url, db) = (ch.url().to_owned(), ch.name().to_owned());
    let app = TestApp::start_with(move |c| {
        c.clickhouse = Some(url);
        c.clickhouse_database = db;
    })
    .await;
    app.create(json!({"target": "https://example.com/", "custom_alias": "abc"}))
        .await;
    app.create(json!({"target": "https://example.com/", "custom_alias": "none"}))
        .await;
    let org: i64 = sqlx::query_scalar("SELECT org_id FROM links WHERE code = 'abc'")
        .fetch_one(&app.running.state.db)
        .await
        .unwrap();
    clicks(&ch, org, "abc", "", T10 + 5, 301, 0, 2).await;
    // Clicks stored before click records carried the org count too.
    clicks(&ch, 0, "abc", "", T10 + 5, 301, 0, 1).await;
    clicks(&ch, org, "abc", "", T10 + 125, 302, 0, 1).await;
    // Not counted: bots, answers that are not redirects, the same code on
    // another domain, and another organization's clicks on the same code.
    clicks(&ch, org, "abc", "", T10 + 600, 301, 1, 7).await;
    clicks(&ch, org, "abc", "", T10 + 600, 410, 0, 2).await;
    clicks(&ch, org, "abc", "go.brand.example", T10 + 900, 301, 0, 5).await;
    clicks(&ch, org + 1000, "abc", "", T10 + 900, 301, 0, 6).await;

    let last = "2026-01-01T10:02:00Z";
    let (status, link) = app.call(Method::GET, "/v1/links/abc", &app.admin_key).await;
    assert_eq!(status, 200, "{link}");
    assert_eq!(
        (link["clicks"].clone(), link["last_click_at"].clone()),
        (json!(4), json!(last))
    );
    let (status, page) = app.call(Method::GET, "/v1/links", &app.admin_key).await;
    assert_eq!(status, 200, "{page}");
    let by_code = |code: &str| {
        page["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["code"] == code)
            .unwrap()
            .clone()
    };
    assert_eq!(by_code("abc")["clicks"], 4);
    assert_eq!(by_code("none")["clicks"], 0);
    assert!(by_code("none")["last_click_at"].is_null());

    // Cached: a click rolled up now shows only once the entry is older than
    // `click_totals_ttl_secs` (60 s here), so the answer is unchanged.
    clicks(&ch, org, "abc", "", T10 + 3600, 301, 0, 1).await;
    let (_, link) = app.call(Method::GET, "/v1/links/abc", &app.admin_key).await;
    assert_eq!(link["clicks"], 4, "served from the cache");
}

#[tokio::test]
async fn without_clickhouse_links_answer_with_null_totals() {
    // Nothing listens there: ClickHouse is down.
    let closed = testkit::free_port();
    let app = TestApp::start_with(move |c| {
        c.clickhouse = Some(format!("http://127.0.0.1:{closed}"));
    })
    .await;
    app.create(json!({"target": "https://example.com/", "custom_alias": "abc"}))
        .await;
    let (status, link) = app.call(Method::GET, "/v1/links/abc", &app.admin_key).await;
    assert_eq!(status, 200, "{link}");
    assert!(
        link["clicks"].is_null() && link["last_click_at"].is_null(),
        "{link}"
    );
    let (status, page) = app.call(Method::GET, "/v1/links", &app.admin_key).await;
    assert_eq!(status, 200, "{page}");
    assert!(page["links"][0]["clicks"].is_null(), "{page}");
}
