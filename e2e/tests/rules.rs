//! Redirect rules through the real binaries: a link made with rules and a
//! split through control's API reaches the engine (change stream), which
//! serves each visitor the target of the first rule that holds (the country
//! from its GeoIP database), else a split variant; every click reaches
//! ClickHouse carrying the rule or variant that served it.

use e2e::stack::{Stack, StackOptions};
use serde_json::{Value, json};
use std::time::Duration;

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148";
const DESKTOP: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_made_through_the_api_route_visits_and_their_clicks_say_which() {
    let geoip = testkit::fixtures::geoip("flat-city-test.mmdb");
    let mut options = StackOptions::new("e2e_rules");
    options.clicks = true;
    // The test names its visitors' addresses in X-Forwarded-For.
    options.engine_args = vec![
        "--trusted-proxy".into(),
        "127.0.0.1".into(),
        "--geoip".into(),
        geoip.to_str().unwrap().into(),
    ];
    let stack = Stack::start(options).await;
    let key = stack
        .create_key(&["--org", "acme", "--scopes", "admin"])
        .await;
    let (status, link) = stack
        .call(
            &key,
            reqwest::Method::POST,
            "/v1/links",
            Some(json!({
                "target": "https://brand.example/",
                "custom_alias": "launch",
                "rules": [
                    {"when": {"device": ["mobile", "tablet"], "os": ["ios"]},
                     "target": "https://apps.example/ios"},
                    {"when": {"country": ["DE", "AT"]}, "target": "https://brand.example/de",
                     "status": 302}
                ],
                "split": [
                    {"target": "https://brand.example/a", "weight": 50},
                    {"target": "https://brand.example/b", "weight": 50}
                ]
            })),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    assert_eq!(link["rules"][1]["when"]["country"], json!(["DE", "AT"]));

    let engine = stack.engine().listen();
    let visit = |agent: &'static str, from: &'static str| {
        let url = format!("http://{engine}/launch");
        let http = stack.http.clone();
        async move {
            let r = http
                .get(url)
                .header("user-agent", agent)
                .header("x-forwarded-for", from)
                .send()
                .await
                .unwrap();
            let location = r
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), location.unwrap_or_default())
        }
    };
    // Served once the change reaches the engine.
    testkit::wait_for(
        Duration::from_secs(15),
        Duration::from_millis(20),
        || async { visit(IPHONE, "203.0.113.5").await.1 == "https://apps.example/ios" },
    )
    .await
    .expect("the engine serves the link's rules");
    // 192.0.2.77 is Germany in the test database.
    assert_eq!(
        visit(DESKTOP, "192.0.2.77").await,
        (302, "https://brand.example/de".to_owned())
    );
    let (status, variant) = visit(DESKTOP, "198.51.100.1").await;
    assert_eq!(status, 301);
    assert!(
        variant == "https://brand.example/a" || variant == "https://brand.example/b",
        "{variant}"
    );
    // Sticky: the same visitor, the same variant.
    assert_eq!(visit(DESKTOP, "198.51.100.1").await.1, variant);
    let variant_rule = if variant.ends_with("/a") { 100 } else { 101 };

    // Four redirects: rule 1 (twice, counting the wait's last visit at
    // least once), rule 2, the variant twice; the clicks say which.
    let ch = stack.clickhouse.as_ref().unwrap();
    let sql = "SELECT rule, count() FROM clicks WHERE code = 'launch' GROUP BY rule ORDER BY rule FORMAT JSONCompact";
    let rows = testkit::wait_for_ok(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let text = ch.query(sql).await.map_err(|e| e.to_string())?;
            let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            let rows: Vec<(u64, u64)> = v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (as_u64(&r[0]), as_u64(&r[1])))
                .collect();
            let variant_clicks = rows.iter().find(|(rule, _)| *rule == variant_rule);
            if rows.len() == 3 && variant_clicks.is_some_and(|(_, n)| *n == 2) {
                Ok(rows)
            } else {
                Err(format!("not yet: {rows:?}"))
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(rows[0].0, 1);
    assert!(rows[0].1 >= 1, "{rows:?}");
    assert_eq!(rows[1], (2, 1));
    assert_eq!(rows[2], (variant_rule, 2));
}

/// ClickHouse's JSON gives UInt64 as a string and smaller ints as numbers.
fn as_u64(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap()
}
