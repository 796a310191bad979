//! Stats from a real ClickHouse: a fresh database per test with the
//! sidecar's own tables (`clicks` and its rollups, made by
//! `analytics::schema`), rows inserted into `clicks` by the test and rolled
//! up by the sidecar's views.

mod common;

use common::{TestApp, error_code};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;

/// 2026-01-01T10:00:00Z.
const T10: u64 = 1_767_261_600;

/// code, event id, unix time, status, country, device, is_bot, visitor.
type Click<'a> = (&'a str, u64, u64, u16, &'a str, &'a str, u8, u64);

async fn clickhouse_with_clicks(rows: &[Click<'_>]) -> testkit::ClickHouseDatabase {
    let ch = common::clickhouse_with_schema("ctl").await;
    if !rows.is_empty() {
        insert_clicks(&ch, rows, &HashMap::new()).await;
    }
    ch
}

/// The org of every link in `app`'s database, by code: what the engine
/// puts in each click record.
async fn orgs(app: &TestApp) -> HashMap<String, u64> {
    let pool = app.pg.pool().await.unwrap();
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT code, org_id FROM links")
        .fetch_all(&pool)
        .await
        .unwrap();
    rows.into_iter().map(|(c, o)| (c, o as u64)).collect()
}

/// Inserts `rows` into `clicks`, each with its code's org from `orgs` (0
/// when absent, as clicks stored before click records carried the org).
/// A row's visitor is stored hashed, as the sidecar stores it (a 64-bit
/// hash): the visitor sketch's error bound holds for hashes, not for small
/// consecutive integers (`uniqHLL12` of 0..24 is 22).
async fn insert_clicks(
    ch: &testkit::ClickHouseDatabase,
    rows: &[Click<'_>],
    orgs: &HashMap<String, u64>,
) {
    let values: Vec<String> = rows
        .iter()
        .map(|(code, event, ts, status, country, device, bot, visitor)| {
            let city = if *country == "GB" { "London" } else { "Boston" };
            let org = orgs.get(*code).copied().unwrap_or(0);
            format!(
                "('{event:016}', toDateTime({ts}), {}, '{code}', '', {status}, '{country}', '{city}', '{device}', 'Firefox', 'Linux', 'news.example', {bot}, cityHash64({visitor}), {org})",
                ts * 1000
            )
        })
        .collect();
    ch.query(&format!(
        "INSERT INTO clicks (event_id, ts, ts_ms, code, domain, status, country, city, device, browser, os, referrer_host, is_bot, visitor_hash, org_id) VALUES {}",
        values.join(", ")
    ))
    .await
    .unwrap();
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
    let ch = clickhouse_with_clicks(&[]).await;
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
    // Clicks carry their link's org, as the engine writes them.
    let rows = [
        ("one", 1, T10, 301, "GB", "desktop", 0, 1),
        ("one", 2, T10, 301, "GB", "desktop", 0, 2),
        ("two", 3, T10, 301, "GB", "desktop", 0, 1),
        ("theirs", 4, T10, 301, "GB", "desktop", 0, 1),
        ("theirs", 5, T10, 301, "GB", "desktop", 0, 2),
        ("theirs", 6, T10, 301, "GB", "desktop", 0, 3),
    ];
    insert_clicks(&ch, &rows, &orgs(&app).await).await;
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

/// The stats routes read the rollups; for the same clicks they give the
/// numbers the raw rows give, for ranges each rollup answers a part of
/// (whole days, ragged ends read from hours and minutes, less than an hour),
/// every bucket, breakdowns, with and without bots, and the summary.
#[tokio::test]
async fn rollups_give_the_numbers_of_the_raw_rows() {
    /// 2026-01-01T00:00:00Z.
    const D0: u64 = 1_767_225_600;
    let clicks: Vec<Click<'_>> = (0..900u64)
        .map(|i| {
            (
                if i % 5 == 0 { "other" } else { "abc" },
                i + 1,
                D0 + (i * 7919 + i * i) % (3 * 86_400),
                [301, 302, 307, 308, 404][(i % 5) as usize],
                ["GB", "US", "FR"][(i % 3) as usize],
                ["desktop", "mobile", "tablet", "bot"][(i % 4) as usize],
                u8::from(i % 4 == 3),
                i % 41,
            )
        })
        .collect();
    let ch = clickhouse_with_clicks(&[]).await;
    let app = app_with(&ch).await;
    for code in ["abc", "other"] {
        app.create(json!({ "target": "https://a.com", "custom_alias": code }))
            .await;
    }
    insert_clicks(&ch, &clicks, &orgs(&app).await).await;
    let at = |secs: u64| {
        let t = time::OffsetDateTime::from_unix_timestamp(secs as i64).unwrap();
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    // (from, to, what the rollups read)
    let ranges = [
        (D0, D0 + 3 * 86_400, "whole days"),
        (
            D0 + 10 * 3600 + 7 * 60 + 30,
            D0 + 2 * 86_400 + 5 * 3600 + 1810,
            "days, hours, minutes",
        ),
        (
            D0 + 86_400 + 3 * 3600 + 300,
            D0 + 86_400 + 3 * 3600 + 3000,
            "minutes",
        ),
        (D0 + 3600 + 59, D0 + 5 * 3600, "hours and minutes"),
    ];
    for (from, to, what) in ranges {
        // The range the API counts: whole minutes, rounded outwards.
        let (lo, hi) = (from / 60 * 60, to.div_ceil(60) * 60);
        for include_bots in [false, true] {
            let counted = if include_bots {
                "status IN (301, 302, 307, 308)"
            } else {
                "status IN (301, 302, 307, 308) AND is_bot = 0"
            };
            let raw_where = format!(
                "code = 'abc' AND {counted} AND ts >= toDateTime({lo}) AND ts < toDateTime({hi})"
            );
            for (bucket, func) in [
                ("minute", "toStartOfMinute"),
                ("hour", "toStartOfHour"),
                ("day", "toStartOfDay"),
            ] {
                let url = format!(
                    "/v1/links/abc/stats?from={}&to={}&bucket={bucket}&include_bots={include_bots}&dimensions=country,city,device,referrer,os,traffic",
                    at(from),
                    at(to)
                );
                let (s, b) = app.call(Method::GET, &url, &app.admin_key).await;
                assert_eq!(s, 200, "{what} {bucket}: {b}");
                let context = format!("{what}, {bucket}, bots {include_bots}");
                assert_eq!(
                    (b["from"].clone(), b["to"].clone()),
                    (json!(at(lo)), json!(at(hi))),
                    "{context}"
                );
                let series = ch
                    .query(&format!(
                        "SELECT toString({func}(ts, 'UTC'), 'UTC') AS t, count(), uniqHLL12(visitor_hash)
                           FROM clicks WHERE {raw_where} GROUP BY t ORDER BY t"
                    ))
                    .await
                    .unwrap();
                assert_eq!(
                    tsv(&b["series"], &["t", "clicks", "unique_visitors"]),
                    series
                        .lines()
                        .map(|l| l.replacen(' ', "T", 1).replacen('\t', "Z\t", 1) + "\n")
                        .collect::<String>(),
                    "series, {context}"
                );
                let totals = ch
                    .query(&format!(
                        "SELECT count(), uniqHLL12(visitor_hash) FROM clicks WHERE {raw_where}"
                    ))
                    .await
                    .unwrap();
                assert_eq!(
                    tsv(&json!([b["totals"]]), &["clicks", "unique_visitors"]),
                    totals,
                    "totals, {context}"
                );
                assert!(b["totals"]["clicks"].as_u64().unwrap() > 0, "{context}");
                // Against the exact count of distinct visitors: the
                // documented bound, for the totals and every series point.
                let exact = ch
                    .query(&format!(
                        "SELECT uniqExact(visitor_hash) FROM clicks WHERE {raw_where}"
                    ))
                    .await
                    .unwrap();
                assert_visitors_within_bound(
                    b["totals"]["unique_visitors"].as_u64().unwrap(),
                    exact.trim().parse().unwrap(),
                    &format!("totals, {context}"),
                );
                let exact = ch
                    .query(&format!(
                        "SELECT uniqExact(visitor_hash) FROM clicks WHERE {raw_where}
                          GROUP BY {func}(ts, 'UTC') ORDER BY {func}(ts, 'UTC')"
                    ))
                    .await
                    .unwrap();
                let points = b["series"].as_array().unwrap();
                assert_eq!(points.len(), exact.lines().count(), "{context}");
                for (point, exact) in points.iter().zip(exact.lines()) {
                    assert_visitors_within_bound(
                        point["unique_visitors"].as_u64().unwrap(),
                        exact.parse().unwrap(),
                        &format!("series point {}, {context}", point["t"]),
                    );
                }
                for (name, column) in [
                    ("country", "country"),
                    ("city", "city"),
                    ("device", "device"),
                    ("referrer", "referrer_host"),
                    ("os", "os"),
                    (
                        "traffic",
                        "multiIf(is_preview = 1, 'preview', is_bot = 1, 'bot', 'human')",
                    ),
                ] {
                    let values = ch
                        .query(&format!(
                            "SELECT {column} AS value, count() AS clicks, uniqHLL12(visitor_hash) FROM clicks
                              WHERE {raw_where} GROUP BY value ORDER BY clicks DESC, value"
                        ))
                        .await
                        .unwrap();
                    assert_eq!(
                        tsv(
                            &b["dimensions"][name],
                            &["value", "clicks", "unique_visitors"]
                        ),
                        values,
                        "{name}, {context}"
                    );
                }
            }
            let url = format!(
                "/v1/stats/summary?from={}&to={}&include_bots={include_bots}",
                at(from),
                at(to)
            );
            let (s, b) = app.call(Method::GET, &url, &app.admin_key).await;
            assert_eq!(s, 200, "{b}");
            let top = ch
                .query(&format!(
                    "SELECT code, count() AS clicks, uniqHLL12(visitor_hash) FROM clicks
                      WHERE {counted} AND ts >= toDateTime({lo}) AND ts < toDateTime({hi})
                      GROUP BY code ORDER BY clicks DESC, code"
                ))
                .await
                .unwrap();
            assert_eq!(
                tsv(&b["links"], &["code", "clicks", "unique_visitors"]),
                top,
                "summary, {what}, bots {include_bots}"
            );
        }
    }
}

/// A visitor count from the API against the exact count: equal up to 16,
/// within the documented relative error above
/// (`analytics::schema::VISITORS_ERROR`, which control's OpenAPI text and
/// README state).
fn assert_visitors_within_bound(estimate: u64, exact: u64, context: &str) {
    if exact <= 16 {
        assert_eq!(estimate, exact, "visitors, exact up to 16: {context}");
    } else {
        let error = estimate.abs_diff(exact) as f64 * 100.0 / exact as f64;
        assert!(
            error <= analytics::schema::VISITORS_ERROR,
            "visitors {estimate} for {exact}: {error:.2} % off, more than the bound: {context}"
        );
    }
}

/// Control reads the tables and states the sidecar writes, and states
/// the bound the sidecar documents.
#[test]
fn control_reads_the_sidecars_rollups() {
    use control::stats::rollups::{DAY, HOUR, MINUTE, VISITORS_ERROR_PCT, VISITORS_MERGE};
    let tables: Vec<&str> = analytics::schema::ROLLUPS.iter().map(|r| r.table).collect();
    for r in [MINUTE, HOUR, DAY] {
        assert!(tables.contains(&r.table), "{}", r.table);
        assert!(tables.contains(&r.series), "{}", r.series);
    }
    assert_eq!(
        VISITORS_MERGE,
        format!("{}Merge", analytics::schema::VISITORS)
    );
    assert_eq!(VISITORS_ERROR_PCT, analytics::schema::VISITORS_ERROR);
}

/// The fields of each object of `rows`, tab-separated, a line each: what
/// ClickHouse's default format prints.
fn tsv(rows: &Value, fields: &[&str]) -> String {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let cells: Vec<String> = fields
                .iter()
                .map(|f| match &row[*f] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            cells.join("\t") + "\n"
        })
        .collect()
}

/// Filters (country, device, referrer, language) narrow every number;
/// `traffic` splits people, bots and previews; `cross` gives a row per
/// bucket and value of each named dimension; bad filters are 400s.
#[tokio::test]
async fn filters_cross_rows_and_the_traffic_split() {
    let ch = clickhouse_with_clicks(&[]).await;
    let app = app_with(&ch).await;
    app.create(json!({ "target": "https://a.com", "custom_alias": "abc" }))
        .await;
    let orgs = orgs(&app).await;
    let rows = [
        ("abc", 1, T10, 301, "GB", "desktop", 0, 1),
        ("abc", 2, T10 + 10, 301, "GB", "mobile", 0, 2),
        ("abc", 3, T10 + 3600, 301, "US", "mobile", 0, 3),
        ("abc", 4, T10 + 3600, 301, "US", "bot", 1, 4),
    ];
    insert_clicks(&ch, &rows, &orgs).await;
    // One preview fetch and one click in French, from the same referrer.
    ch.query(&format!(
        "INSERT INTO clicks (event_id, ts, code, domain, status, country, device, referrer_host, language, is_bot, is_preview, visitor_hash, org_id) VALUES
         ('0000000000000005', toDateTime(1767261600), 'abc', '', 302, 'FR', 'bot', 'chat.example', '', 1, 1, 5, {org}),
         ('0000000000000006', toDateTime(1767261600), 'abc', '', 302, 'FR', 'tablet', 'chat.example', 'fr', 0, 0, 6, {org})",
        org = orgs["abc"]
    ))
    .await
    .unwrap();
    let range = "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z";
    let get = |q: &str| {
        let url = format!("/v1/links/abc/stats?{range}&{q}");
        let app = &app;
        async move { app.call(Method::GET, &url, &app.admin_key).await }
    };

    let (s, b) = get("country=gb,fr&device=mobile,tablet").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["totals"], json!({ "clicks": 2, "unique_visitors": 2 }));
    let (_, b) = get("language=FR&dimensions=language").await;
    assert_eq!(b["totals"]["clicks"], 1);
    assert_eq!(
        b["dimensions"]["language"],
        json!([{ "value": "fr", "clicks": 1, "unique_visitors": 1 }])
    );
    let (_, b) = get("referrer=Chat.example&include_bots=true").await;
    assert_eq!(b["totals"]["clicks"], 2, "the preview counts with bots");

    let (_, b) = get("include_bots=true&dimensions=traffic").await;
    assert_eq!(
        b["dimensions"]["traffic"],
        json!([
            { "value": "human", "clicks": 4, "unique_visitors": 4 },
            { "value": "bot", "clicks": 1, "unique_visitors": 1 },
            { "value": "preview", "clicks": 1, "unique_visitors": 1 },
        ])
    );

    let (s, b) = get("bucket=hour&cross=country,device").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["cross"],
        json!([
            { "t": "2026-01-01T10:00:00Z", "values": { "country": "FR", "device": "tablet" }, "clicks": 1, "unique_visitors": 1 },
            { "t": "2026-01-01T10:00:00Z", "values": { "country": "GB", "device": "desktop" }, "clicks": 1, "unique_visitors": 1 },
            { "t": "2026-01-01T10:00:00Z", "values": { "country": "GB", "device": "mobile" }, "clicks": 1, "unique_visitors": 1 },
            { "t": "2026-01-01T11:00:00Z", "values": { "country": "US", "device": "mobile" }, "clicks": 1, "unique_visitors": 1 },
        ])
    );
    let (_, b) = get("").await;
    assert_eq!(b["cross"], json!([]), "no cross rows unless asked");

    for q in [
        "device=phone",
        "country=",
        "cross=",
        "cross=country,device,os,browser",
        "cross=colour",
        "dimensions=traffic,colour",
    ] {
        let (s, b) = get(q).await;
        assert_eq!((s, error_code(&b)), (400, "bad_request"), "{q}: {b}");
    }
    let (s, b) = app
        .call(
            Method::GET,
            &format!("/v1/stats/summary?{range}&country=US"),
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["links"][0]["clicks"], 1);
}

/// An organization with a million links' worth of clicks: the summary
/// reads the org's range of the rollups (no list of its codes goes
/// anywhere) and answers with the right top links; another org's clicks on
/// the same code are not counted.
#[tokio::test]
async fn summary_answers_for_an_org_with_a_million_links() {
    let ch = clickhouse_with_clicks(&[]).await;
    let app = app_with(&ch).await;
    for code in ["top1", "top2", "top3"] {
        app.create(json!({ "target": "https://a.com", "custom_alias": code }))
            .await;
    }
    let org = orgs(&app).await["top1"];
    // 3000, 2000 and 1000 clicks on the three links, one click each on
    // 994,000 other codes of the org, and 5000 of another org on `top1`.
    ch.query(&format!(
        "INSERT INTO clicks (event_id, ts, ts_ms, code, domain, status, country, device, is_bot, visitor_hash, org_id)
         SELECT toFixedString(concat('e', toString(number)), 16),
                toDateTime({T10} + number % 3600), ({T10} + number % 3600) * 1000,
                multiIf(number < 3000, 'top1', number < 5000, 'top2', number < 6000, 'top3',
                        number < 11000, 'top1', concat('c', toString(number))),
                '', 301, 'GB', 'desktop', 0, cityHash64(number),
                if(number >= 6000 AND number < 11000, {other}, {org})
           FROM numbers(1000000)",
        other = org + 1000
    ))
    .await
    .unwrap();
    let range = "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z";
    let (s, b) = app
        .call(
            Method::GET,
            &format!("/v1/stats/summary?{range}&limit=3"),
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let links = b["links"].as_array().unwrap();
    let top: Vec<(&str, u64)> = links
        .iter()
        .map(|l| (l["code"].as_str().unwrap(), l["clicks"].as_u64().unwrap()))
        .collect();
    assert_eq!(top, [("top1", 3000), ("top2", 2000), ("top3", 1000)]);
    // A visitor per click: the estimates within their bound of the clicks.
    for l in links {
        assert_visitors_within_bound(
            l["unique_visitors"].as_u64().unwrap(),
            l["clicks"].as_u64().unwrap(),
            &l.to_string(),
        );
    }
    let (s, b) = app
        .call(
            Method::GET,
            &format!("/v1/links/top2/stats?{range}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["totals"]["clicks"], 2000);
}

/// A ClickHouse database an older sidecar made (rollups with exact `uniq`
/// visitor states: `testkit/fixtures/clickhouse/schema-uniq-states.sql`)
/// with clicks in November 2025, whose raw rows were since dropped past
/// the raw retention, and in January 2026: once a newer sidecar has
/// upgraded it, the stats answer every day's clicks as before, November's
/// included; visitors come from the raw clicks, so November has none.
#[tokio::test]
async fn stats_keep_every_count_through_the_upgrade_to_fixed_size_visitor_states() {
    /// 2025-11-10T10:00:00Z, 2026-01-10T10:00:00Z.
    const NOV: u64 = 1_762_768_800;
    const JAN: u64 = 1_768_039_200;
    let ch = testkit::ClickHouseDatabase::create_with_prefix("ctlup")
        .await
        .unwrap();
    for sql in testkit::fixtures::clickhouse_statements("schema-uniq-states.sql", ch.name()) {
        ch.query(&sql).await.unwrap();
    }
    let app = app_with(&ch).await;
    app.create(json!({ "target": "https://a.com", "custom_alias": "abc" }))
        .await;
    let orgs = orgs(&app).await;
    // 30 clicks over four November days (20 visitors), 50 over five
    // January days (24 visitors); every seventh a bot, every tenth a 404.
    let clicks: Vec<Click<'_>> = (0..80u64)
        .map(|i| {
            let (start, n, visitors) = if i < 30 {
                (NOV, i, 20)
            } else {
                (JAN, i - 30, 24)
            };
            (
                "abc",
                i + 1,
                start + n * 8_000,
                if i % 10 == 0 { 404 } else { 301 },
                ["GB", "US", "FR"][(i % 3) as usize],
                "mobile",
                u8::from(i % 7 == 0),
                i % visitors,
            )
        })
        .collect();
    insert_clicks(&ch, &clicks, &orgs).await;
    ch.query("ALTER TABLE clicks DROP PARTITION 202511")
        .await
        .unwrap();
    let config = analytics::Config {
        clickhouse: ch.url().to_owned(),
        database: ch.name().to_owned(),
        ..Default::default()
    };
    analytics::store::Store::new(&config)
        .create_schema()
        .await
        .unwrap();

    let counted: Vec<&Click<'_>> = clicks.iter().filter(|c| c.3 != 404 && c.6 == 0).collect();
    let day = |ts: u64| {
        let t = time::OffsetDateTime::from_unix_timestamp((ts / 86_400 * 86_400) as i64).unwrap();
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let mut per_day: Vec<(String, u64)> = Vec::new();
    for c in &counted {
        match per_day.last_mut() {
            Some((d, n)) if *d == day(c.2) => *n += 1,
            _ => per_day.push((day(c.2), 1)),
        }
    }
    let (s, b) = app
        .call(
            Method::GET,
            "/v1/links/abc/stats?from=2025-11-01T00:00:00Z&to=2026-02-01T00:00:00Z&bucket=day&dimensions=country",
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let series: Vec<(String, u64)> = b["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["t"].as_str().unwrap().to_owned(),
                p["clicks"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(series, per_day, "every day's clicks, November's included");
    assert_eq!(per_day.len(), 9);
    assert_eq!(b["totals"]["clicks"], counted.len());
    for p in b["series"].as_array().unwrap() {
        let t = p["t"].as_str().unwrap();
        let exact: std::collections::HashSet<u64> = counted
            .iter()
            .filter(|c| c.2 >= JAN && day(c.2) == t)
            .map(|c| c.7)
            .collect();
        // November's raw clicks are gone: no visitors. January's: the
        // estimate of its raw clicks.
        assert_visitors_within_bound(
            p["unique_visitors"].as_u64().unwrap(),
            exact.len() as u64,
            t,
        );
    }
    let january: std::collections::HashSet<u64> =
        counted.iter().filter(|c| c.2 >= JAN).map(|c| c.7).collect();
    assert!(january.len() > 16, "the sketch's estimating range");
    assert_visitors_within_bound(
        b["totals"]["unique_visitors"].as_u64().unwrap(),
        january.len() as u64,
        "totals",
    );
    let mut by_country: HashMap<String, u64> = HashMap::new();
    for c in &counted {
        *by_country.entry(c.4.to_owned()).or_default() += 1;
    }
    for v in b["dimensions"]["country"].as_array().unwrap() {
        assert_eq!(
            v["clicks"].as_u64().unwrap(),
            by_country[v["value"].as_str().unwrap()],
            "{v}"
        );
    }
    assert_eq!(b["dimensions"]["country"].as_array().unwrap().len(), 3);
}

/// The text of the element with id `id` in `html` (its first text node).
fn element_text<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = start + rest[start..].find('<').unwrap();
    &rest[start..end]
}

/// `(data-value, data-clicks)` of each bar of the chart with id `id`.
fn bars(html: &str, id: &str) -> Vec<(String, u64)> {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let chart = &html[at..at + html[at..].find("</svg>").unwrap()];
    chart
        .split("<rect ")
        .skip(1)
        .map(|rect| {
            let attr = |name: &str| {
                let v = rect.split(&format!("{name}=\"")).nth(1).unwrap();
                v[..v.find('"').unwrap()].to_owned()
            };
            (attr("data-value"), attr("data-clicks").parse().unwrap())
        })
        .collect()
}

/// The dashboard's link page asks for less than the API (no visitors per
/// breakdown value, bot clicks as one total) over whole UTC days: its
/// numbers must still be the API's for the same range.
#[tokio::test]
async fn the_link_page_shows_the_apis_numbers_for_its_whole_days() {
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let day_end = now.div_ceil(86_400) * 86_400;
    let first = day_end - 30 * 86_400;
    let ch = common::clickhouse_with_schema("ctl").await;
    let app = app_with(&ch).await;
    app.create(json!({ "target": "https://a.com", "custom_alias": "abc" }))
        .await;
    insert_clicks(
        &ch,
        &[
            ("abc", 1, first - 60, 301, "GB", "desktop", 0, 1),
            ("abc", 2, first, 301, "GB", "desktop", 0, 1),
            ("abc", 3, first + 86_400 * 5, 302, "GB", "mobile", 0, 2),
            ("abc", 4, now - 86_400 * 2, 301, "US", "mobile", 0, 3),
            ("abc", 5, now - 5, 301, "US", "mobile", 0, 4),
            ("abc", 6, now - 5, 301, "US", "desktop", 0, 5),
            ("abc", 7, now - 4, 301, "US", "bot", 1, 6),
            ("abc", 8, now - 3, 404, "US", "mobile", 0, 7),
            ("abc", 9, now - 2, 404, "US", "bot", 1, 8),
            ("abc", 10, first - 1, 301, "US", "bot", 1, 9),
        ],
        &orgs(&app).await,
    )
    .await;
    let org = app.org_id("acme").await;
    app.user(
        "viewer@acme.example",
        Some(("acme", control::auth::Role::Viewer)),
    )
    .await;
    let viewer = app.login("viewer@acme.example", common::PASSWORD).await;
    let page = app
        .page(&viewer, &format!("/o/{org}/links/abc?bucket=day"))
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    let html = &page.html;

    let range = |t: u64| {
        time::OffsetDateTime::from_unix_timestamp(t as i64)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let (s, api) = app
        .call(
            Method::GET,
            &format!(
                "/v1/links/abc/stats?from={}&to={}&bucket=day&dimensions=country,device&include_bots=true",
                range(first),
                range(day_end)
            ),
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 200, "{api}");
    let (_, humans) = app
        .call(
            Method::GET,
            &format!(
                "/v1/links/abc/stats?from={}&to={}&bucket=day&dimensions=country,device",
                range(first),
                range(day_end)
            ),
            &app.admin_key,
        )
        .await;
    // Clicks before the first day and 404s are not counted, bots' neither.
    assert_eq!(humans["totals"]["clicks"], 5);
    assert_eq!(element_text(html, "total-clicks"), "5");
    assert_eq!(element_text(html, "total-visitors"), "5");
    let bots = api["totals"]["clicks"].as_u64().unwrap() - 5;
    assert_eq!(bots, 1);
    assert_eq!(element_text(html, "bot-clicks"), "1");
    let of_api = |name: &str| -> Vec<(String, u64)> {
        humans["dimensions"][name]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                let value = v["value"].as_str().unwrap().to_owned();
                (value, v["clicks"].as_u64().unwrap())
            })
            .collect()
    };
    assert_eq!(
        bars(html, "chart-country"),
        [("US".to_owned(), 3), ("GB".to_owned(), 2)]
    );
    assert_eq!(bars(html, "chart-country"), of_api("country"));
    assert_eq!(bars(html, "chart-device"), of_api("device"));
    // Every day with clicks is a bar of the series, today's included.
    let series: u64 = humans["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["clicks"].as_u64().unwrap())
        .sum();
    assert_eq!(series, 5);
    let charted = html
        .split("id=\"clicks-chart\"")
        .nth(1)
        .and_then(|chart| chart.split("</svg>").next())
        .unwrap()
        .split("data-clicks=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse::<u64>().unwrap())
        .sum::<u64>();
    assert_eq!(charted, 5);
}
