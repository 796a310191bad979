//! Stats from a real ClickHouse: a fresh database per test with the sidecar's
//! `clicks` columns, rows inserted by the test.

mod common;

use common::{TestApp, error_code};
use reqwest::Method;
use serde_json::json;

/// 2026-01-01T10:00:00Z.
const T10: u64 = 1_767_261_600;

/// code, event id, unix time, status, country, device, is_bot, visitor.
type Click<'a> = (&'a str, u64, u64, u16, &'a str, &'a str, u8, u64);

async fn clickhouse_with_clicks(rows: &[Click<'_>]) -> testkit::ClickHouseDatabase {
    let ch = testkit::ClickHouseDatabase::create_with_prefix("ctl")
        .await
        .unwrap();
    ch.query(
        "CREATE TABLE clicks (
            event_id FixedString(16), ts DateTime, ts_ms UInt64, code String, domain String,
            status UInt16,
            country String, city String, device String, browser String, os String,
            referrer_host String, is_bot UInt8, visitor_hash UInt64
         ) ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (code, ts)",
    )
    .await
    .unwrap();
    let values: Vec<String> = rows
        .iter()
        .map(|(code, event, ts, status, country, device, bot, visitor)| {
            format!(
                "('{event:016}', toDateTime({ts}), {}, '{code}', '', {status}, '{country}', 'City', '{device}', 'Firefox', 'Linux', 'news.example', {bot}, {visitor})",
                ts * 1000
            )
        })
        .collect();
    ch.query(&format!("INSERT INTO clicks VALUES {}", values.join(", ")))
        .await
        .unwrap();
    ch
}

async fn app_with(ch: &testkit::ClickHouseDatabase) -> TestApp {
    let (url, db) = (ch.url().to_owned(), ch.name().to_owned());
    TestApp::start_with(move |c| {
        c.clickhouse = Some(url);
        c.clickhouse_database = db;
    })
    .await
}

#[tokio::test]
async fn link_stats_series_dimensions_bots_and_csv() {
    let ch = clickhouse_with_clicks(&[
        ("abc", 1, T10 + 1, 301, "GB", "desktop", 0, 1),
        ("abc", 2, T10 + 50, 301, "GB", "desktop", 0, 1),
        ("abc", 3, T10 + 70, 302, "GB", "desktop", 0, 1),
        // The same event twice: counted once.
        ("abc", 3, T10 + 70, 302, "GB", "desktop", 0, 1),
        ("abc", 4, T10 + 3600, 307, "US", "mobile", 0, 2),
        ("abc", 5, T10 + 3700, 308, "US", "mobile", 0, 2),
        ("abc", 6, T10 + 3800, 301, "US", "bot", 1, 3),
        ("abc", 7, T10 + 3900, 404, "US", "mobile", 0, 4),
        ("abc", 8, T10 + 86_400 * 3, 301, "US", "mobile", 0, 5),
        ("zzz", 9, T10, 301, "US", "mobile", 0, 6),
    ])
    .await;
    let app = app_with(&ch).await;
    app.create(json!({ "target": "https://a.com", "custom_alias": "abc" }))
        .await;
    let range = "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z";

    let (s, b) = app
        .call(
            Method::GET,
            &format!("/v1/links/abc/stats?{range}&bucket=hour&dimensions=country,device"),
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["totals"], json!({ "clicks": 5, "unique_visitors": 2 }));
    assert_eq!(
        b["series"],
        json!([
            { "t": "2026-01-01T10:00:00Z", "clicks": 3, "unique_visitors": 1 },
            { "t": "2026-01-01T11:00:00Z", "clicks": 2, "unique_visitors": 1 },
        ])
    );
    assert_eq!(
        b["dimensions"]["country"],
        json!([
            { "value": "GB", "clicks": 3, "unique_visitors": 1 },
            { "value": "US", "clicks": 2, "unique_visitors": 1 },
        ])
    );
    assert_eq!(b["dimensions"]["device"][0]["value"], "desktop");

    let (_, b) = app
        .call(
            Method::GET,
            &format!("/v1/links/abc/stats?{range}&bucket=minute&include_bots=true"),
            &app.admin_key,
        )
        .await;
    assert_eq!(b["totals"]["clicks"], 6);
    assert_eq!(
        b["series"].as_array().unwrap().len(),
        5,
        "10:00, 10:01, 11:00, 11:01, 11:03"
    );

    let r = app
        .req(
            Method::GET,
            &format!("/v1/links/abc/stats?{range}&bucket=day&dimensions=referrer&format=csv"),
            &app.admin_key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "kind,key,clicks,unique_visitors",
            "total,,5,2",
            "day,2026-01-01T00:00:00Z,5,2",
            "referrer,news.example,5,2",
        ]
    );
}

#[tokio::test]
async fn summary_lists_only_the_organizations_links() {
    let ch = clickhouse_with_clicks(&[
        ("one", 1, T10, 301, "GB", "desktop", 0, 1),
        ("one", 2, T10, 301, "GB", "desktop", 0, 2),
        ("two", 3, T10, 301, "GB", "desktop", 0, 1),
        ("theirs", 4, T10, 301, "GB", "desktop", 0, 1),
        ("theirs", 5, T10, 301, "GB", "desktop", 0, 2),
        ("theirs", 6, T10, 301, "GB", "desktop", 0, 3),
    ])
    .await;
    let app = app_with(&ch).await;
    app.create(json!({ "target": "https://a.com", "custom_alias": "one" }))
        .await;
    app.create(json!({ "target": "https://a.com", "custom_alias": "two" }))
        .await;
    let other = app.key("globex", &["admin"]).await;
    app.req(Method::POST, "/v1/links", &other)
        .json(&json!({ "target": "https://a.com", "custom_alias": "theirs" }))
        .send()
        .await
        .unwrap();
    let range = "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z";
    let (s, b) = app
        .call(
            Method::GET,
            &format!("/v1/stats/summary?{range}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["links"],
        json!([
            { "code": "one", "clicks": 2, "unique_visitors": 2 },
            { "code": "two", "clicks": 1, "unique_visitors": 1 },
        ])
    );
    let text = app
        .req(
            Method::GET,
            &format!("/v1/stats/summary?{range}&format=csv&limit=1"),
            &app.admin_key,
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "code,clicks,unique_visitors\none,2,2\n");
    // The other org's link is not readable here.
    let (s, _) = app
        .call(Method::GET, "/v1/links/theirs/stats", &app.admin_key)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn stats_refusals() {
    let ch = clickhouse_with_clicks(&[("abc", 1, T10, 301, "GB", "desktop", 0, 1)]).await;
    let app = app_with(&ch).await;
    app.create(json!({ "target": "https://a.com", "custom_alias": "abc" }))
        .await;
    for q in [
        "bucket=week",
        "dimensions=colour",
        "format=xml",
        "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
        "from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&bucket=minute",
        "from=yesterday",
    ] {
        let (s, b) = app
            .call(
                Method::GET,
                &format!("/v1/links/abc/stats?{q}"),
                &app.admin_key,
            )
            .await;
        assert_eq!((s, error_code(&b)), (400, "bad_request"), "{q}: {b}");
    }
    // Every bucket works without a range (each has a default span).
    for bucket in ["minute", "hour", "day"] {
        let (s, b) = app
            .call(
                Method::GET,
                &format!("/v1/links/abc/stats?bucket={bucket}"),
                &app.admin_key,
            )
            .await;
        assert_eq!(s, 200, "{bucket}: {b}");
    }
    let (s, _) = app
        .call(Method::GET, "/v1/links/nope/stats", &app.admin_key)
        .await;
    assert_eq!(s, 404);
    let reader = app.key("acme", &["links:read"]).await;
    let (s, _) = app.call(Method::GET, "/v1/links/abc/stats", &reader).await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn stats_without_clickhouse_are_503() {
    let app = TestApp::start().await;
    app.create(json!({ "target": "https://a.com", "custom_alias": "abc" }))
        .await;
    let (s, b) = app
        .call(Method::GET, "/v1/links/abc/stats", &app.admin_key)
        .await;
    assert_eq!((s, error_code(&b)), (503, "unavailable"));
}
