//! The whole path of a click: a link made through control, followed on the
//! engine, the click published to JetStream, enriched and stored by the
//! analytics sidecar in ClickHouse, and counted by control's stats API; the
//! same code on a custom domain is counted apart, its clicks carrying the
//! domain.

use e2e::stack::{Stack, StackOptions};
use serde_json::{Value, json};
use std::time::Duration;

/// A custom domain of the organization, verified through the engine.
const DOMAIN: &str = "go.acme.example";

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

#[tokio::test]
async fn a_followed_link_shows_up_in_its_stats() {
    let mut options = StackOptions::new("e2e_click_stats");
    options.clicks = true;
    options.resolve_to_engine = vec![DOMAIN.into()];
    let stack = Stack::start(options).await;
    let key = stack
        .create_key(&["--org", "acme", "--scopes", "admin"])
        .await;
    let (http, engine, ch) = (
        &stack.http,
        stack.engine(),
        stack.clickhouse.as_ref().unwrap(),
    );
    let api = format!("http://{}", stack.control.listen());

    let r = http
        .post(format!("{api}/v1/links"))
        .bearer_auth(&key)
        .json(&json!({ "target": "https://example.com/clicked", "custom_alias": "clicked" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Served once the engine has its snapshot and the change.
    let follow = || {
        http.get(format!("http://{}/clicked", engine.listen()))
            .header("user-agent", BROWSER)
            .header("referer", "https://news.example/story")
            .send()
    };
    testkit::wait_for(
        Duration::from_secs(15),
        Duration::from_millis(10),
        || async { follow().await.is_ok_and(|r| r.status() == 301) },
    )
    .await
    .unwrap();
    for _ in 0..2 {
        assert_eq!(follow().await.unwrap().status(), 301);
    }
    // Three redirects; they reach ClickHouse through NATS and the sidecar.
    let stats_url = format!(
        "{api}/v1/links/clicked/stats?bucket=day&dimensions=referrer,browser&include_bots=true"
    );
    let body = testkit::wait_for_ok(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let v: Value = http
                .get(&stats_url)
                .bearer_auth(&key)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            if v["totals"]["clicks"] == 3 {
                Ok(v)
            } else {
                Err(format!("not yet: {v}"))
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(body["totals"]["unique_visitors"], 1, "{body}");
    assert_eq!(
        body["dimensions"]["referrer"][0]["value"], "news.example",
        "{body}"
    );
    // The summary agrees, and the CSV export carries the same total.
    let summary: Value = http
        .get(format!("{api}/v1/stats/summary?include_bots=true"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        summary["links"],
        json!([{ "code": "clicked", "clicks": 3, "unique_visitors": 1 }])
    );
    let csv = http
        .get(format!("{stats_url}&format=csv"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.contains("\ntotal,,3,1\n"), "{csv}");

    // The same code on a custom domain: served once verified, counted apart,
    // and stored with its domain.
    let r = http
        .post(format!("{api}/v1/domains"))
        .bearer_auth(&key)
        .json(&json!({ "name": DOMAIN }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .post(format!("{api}/v1/links"))
        .bearer_auth(&key)
        .json(&json!({ "target": "https://example.com/branded", "custom_alias": "clicked", "domain": DOMAIN }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    testkit::wait_for(
        Duration::from_secs(15),
        Duration::from_millis(50),
        || async {
            http.post(format!("{api}/v1/domains/{DOMAIN}/verify"))
                .bearer_auth(&key)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await
    .unwrap();
    let branded = || {
        http.get(format!("http://{}/clicked", engine.listen()))
            .header("host", "Go.Acme.Example:8080")
            .header("user-agent", BROWSER)
            .send()
    };
    testkit::wait_for(
        Duration::from_secs(15),
        Duration::from_millis(10),
        || async {
            branded().await.is_ok_and(|r| {
                r.status() == 301 && r.headers()["location"] == "https://example.com/branded"
            })
        },
    )
    .await
    .unwrap();
    let domain_stats = format!("{api}/v1/links/clicked/stats?domain={DOMAIN}&include_bots=true");
    let body = testkit::wait_for_ok(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let v: Value = http
                .get(&domain_stats)
                .bearer_auth(&key)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            if v["totals"]["clicks"] == 1 {
                Ok(v)
            } else {
                Err(format!("not yet: {v}"))
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(body["totals"]["unique_visitors"], 1, "{body}");
    let rows = ch
        .query("SELECT domain, count() FROM clicks GROUP BY domain ORDER BY domain")
        .await
        .unwrap();
    assert_eq!(rows.trim(), format!("{DOMAIN}\t1\nsho.rt\t3"), "{rows}");
    let default_stats: Value = http
        .get(&stats_url)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(default_stats["totals"]["clicks"], 3, "{default_stats}");
}
