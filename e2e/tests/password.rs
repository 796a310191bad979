//! Password-protected links through the real binaries: a link made with a
//! password through control's API reaches the engine (change stream) as its
//! argon2id verifier; the engine shows its form, refuses a wrong password,
//! admits the right one with a pass, and the click lands in ClickHouse with
//! the link's own status. Removing the password opens the link again.

use e2e::stack::{Stack, StackOptions};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_made_through_the_api_guards_the_link_on_the_engine() {
    let mut options = StackOptions::new("e2e_password");
    options.clicks = true;
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
                "target": "https://brand.example/preview",
                "custom_alias": "preview",
                "status": 302,
                "password": "launch 2026"
            })),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    assert_eq!(link["password_protected"], json!(true));
    assert!(
        link.get("password").is_none() && link.get("password_hash").is_none(),
        "{link}"
    );

    let engine = stack.engine().listen();
    let url = format!("http://{engine}/preview");
    // The stack's client follows no redirects: the test reads each answer.
    let http = &stack.http;
    let post = |password: &str| {
        http.post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("password={}", password.replace(' ', "+")))
            .send()
    };
    // Served once the change reaches the engine: the form.
    testkit::wait_for(
        Duration::from_secs(15),
        Duration::from_millis(20),
        || async {
            let r = http.get(&url).send().await.unwrap();
            r.status() == 200
        },
    )
    .await
    .expect("the engine shows the password form");
    let wrong = post("launch 2025").await.unwrap();
    assert_eq!(wrong.status(), 403);
    let right = post("launch 2026").await.unwrap();
    assert_eq!(right.status(), 303);
    assert_eq!(
        right.headers()["location"].to_str().unwrap(),
        "https://brand.example/preview"
    );
    let pass = right.headers()["set-cookie"].to_str().unwrap().to_owned();
    let pass = pass.split(';').next().unwrap().to_owned();
    let back = http.get(&url).header("cookie", &pass).send().await.unwrap();
    assert_eq!(back.status(), 302);

    // Two clicks (the admission and the pass), with the link's status;
    // the form and the wrong password are none.
    let ch = stack.clickhouse.as_ref().unwrap();
    let sql = "SELECT status, count() FROM clicks WHERE code = 'preview' GROUP BY status FORMAT JSONCompact";
    let rows = testkit::wait_for_ok(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let text = ch.query(sql).await.map_err(|e| e.to_string())?;
            let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            let rows = v["data"].as_array().unwrap().clone();
            match rows.first() {
                Some(row) if as_u64(&row[1]) >= 2 => Ok(rows),
                _ => Err(format!("not yet: {rows:?}")),
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(as_u64(&rows[0][0]), 302);
    assert_eq!(as_u64(&rows[0][1]), 2);

    // Removing the password opens the link to everyone.
    let (status, link) = stack
        .call(
            &key,
            reqwest::Method::PATCH,
            "/v1/links/preview",
            Some(json!({ "password": null })),
        )
        .await;
    assert_eq!(status, 200, "{link}");
    assert_eq!(link["password_protected"], json!(false));
    testkit::wait_for(
        Duration::from_secs(15),
        Duration::from_millis(20),
        || async { http.get(&url).send().await.unwrap().status() == 302 },
    )
    .await
    .expect("the engine redirects without a password");
}

/// ClickHouse's JSON gives UInt64 as a string and smaller ints as numbers.
fn as_u64(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap()
}
