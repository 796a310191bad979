//! Webhooks against a real receiver: an HTTP server on loopback started by
//! the test, answering what each test scripts. Signed deliveries verify
//! with the secret shown at creation; 500s are retried until a 2xx; a
//! receiver that always fails ends in the dead letters and opens the
//! endpoint's breaker, whose deliveries then wait; SSRF refusals; who may
//! manage endpoints. Tiny backoffs, no sleeps: every wait polls with a
//! deadline.

mod common;

use common::webhooks::{POLL, Receiver, WAIT, endpoint, key_file};
use common::{TestApp, error_code, status_json};
use control::auth::Role;
use control::config::Config;
use control::webhooks::sign;
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;

/// A service delivering to loopback with tiny backoffs.
async fn start(key: &std::path::Path, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let key = key.to_owned();
    TestApp::start_with(move |c| {
        c.webhook_key_file = Some(key);
        c.allow_private_webhooks = true;
        c.webhook_retry_base_ms = 5;
        c.webhook_retry_cap_ms = 20;
        c.webhook_max_attempts = 3;
        c.webhook_breaker_failures = 5;
        c.webhook_poll_ms = 20;
        c.webhook_timeout_ms = 5000;
        tweak(c);
    })
    .await
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// (state, attempts) of every delivery of endpoint `id`, oldest first.
async fn deliveries(app: &TestApp, id: i64) -> Vec<(String, i32)> {
    sqlx::query_as(
        "SELECT state, attempts FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.running.state.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn signed_deliveries_verify_and_500s_are_retried_until_success() {
    let (_dir, key) = key_file();
    let app = start(&key, |_| {}).await;
    let receiver = Receiver::start(&[500, 500], 200).await;
    let (hook, secret) = endpoint(
        &app,
        &receiver.url,
        &["link.created", "link.updated", "link.deleted"],
    )
    .await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(hook["breaker"], "closed");
    // The secret is shown once: never listed or read back.
    let (s, list) = app.call(Method::GET, "/v1/webhooks", &app.admin_key).await;
    assert_eq!(s, 200);
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(&secret));

    let link = app
        .create(json!({ "target": "https://example.com/a", "custom_alias": "hooked" }))
        .await;
    // 500, 500, then 200: three attempts of one event.
    let got = receiver.wait_for(3).await;
    let id = got[0].header(sign::EVENT_ID_HEADER).to_owned();
    assert!(id.starts_with("evt_"), "{id}");
    for (n, r) in got.iter().enumerate() {
        assert_eq!(r.header(sign::EVENT_ID_HEADER), id, "one event, retried");
        assert_eq!(r.header(sign::ATTEMPT_HEADER), (n + 1).to_string());
        assert_eq!(r.header(sign::EVENT_TYPE_HEADER), "link.created");
        assert_eq!(r.header("content-type"), "application/json");
        // The signature verifies with the secret, and only with it.
        let sig = r.header(sign::SIGNATURE_HEADER);
        let t = sign::verify(&secret, sig, &r.body, now(), 300).expect("a valid signature");
        assert!((now() - t).abs() < 300);
        assert_eq!(
            sign::verify(&sign::new_secret(), sig, &r.body, now(), 300),
            Err(sign::VerifyError::Mismatch)
        );
        let mut tampered = r.body.to_vec();
        tampered[0] = b' ';
        assert!(sign::verify(&secret, sig, &tampered, now(), 300).is_err());
        let body = r.json();
        assert_eq!(body["id"], id.as_str());
        assert_eq!(body["type"], "link.created");
        assert!(body["created_at"].is_string());
        assert_eq!(body["data"]["code"], "hooked");
        assert_eq!(body["data"]["short_url"], link["short_url"]);
        assert_eq!(body["data"]["target"], "https://example.com/a");
    }
    let hook_id = hook["id"].as_i64().unwrap();
    testkit::wait_for(WAIT, POLL, || async {
        deliveries(&app, hook_id).await == [("delivered".to_string(), 3)]
    })
    .await
    .expect("one delivery, delivered at the third attempt");

    // An update and a delete are events too, each with its own id.
    let (s, _) = app
        .send_json(
            Method::PATCH,
            "/v1/links/hooked",
            &app.admin_key,
            &json!({ "target": "https://example.com/b" }),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = app
        .call(Method::DELETE, "/v1/links/hooked", &app.admin_key)
        .await;
    assert_eq!(s, 204);
    let got = receiver.wait_for(5).await;
    let mut later: Vec<(String, String)> = got[3..]
        .iter()
        .map(|r| {
            (
                r.json()["type"].as_str().unwrap().to_owned(),
                r.json()["data"]["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    later.sort();
    assert_eq!(
        later,
        [
            (
                "link.deleted".to_string(),
                "https://example.com/b".to_string()
            ),
            (
                "link.updated".to_string(),
                "https://example.com/b".to_string()
            ),
        ]
    );
    assert_ne!(
        got[3].header(sign::EVENT_ID_HEADER),
        got[4].header(sign::EVENT_ID_HEADER)
    );

    // A bulk write is one event per link.
    let (s, b) = app
        .send_json(
            Method::POST,
            "/v1/links/bulk",
            &app.admin_key,
            &json!({ "create": [
                { "target": "https://example.com/1" },
                { "target": "https://example.com/2" }
            ] }),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let got = receiver.wait_for(7).await;
    assert!(got[5..].iter().all(|r| r.json()["type"] == "link.created"));

    // A rotated secret signs what follows; the old one no longer verifies.
    let (s, rotated) = app
        .call(
            Method::POST,
            &format!("/v1/webhooks/{hook_id}/rotate-secret"),
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    app.create(json!({ "target": "https://example.com/after-rotation" }))
        .await;
    let got = receiver.wait_for(8).await;
    let last = &got[7];
    let sig = last.header(sign::SIGNATURE_HEADER);
    sign::verify(new_secret, sig, &last.body, now(), 300).expect("signed with the new secret");
    assert!(sign::verify(&secret, sig, &last.body, now(), 300).is_err());

    // The metrics count this instance's attempts (recorded just after the
    // receiver answered).
    testkit::wait_for(WAIT, POLL, || async {
        let m = metrics(&app).await;
        m.contains("control_webhook_failures_total 2\n")
            && m.contains("control_webhook_deliveries_total 6\n")
    })
    .await
    .unwrap_or_else(|_| panic!("metrics"));
}

async fn metrics(app: &TestApp) -> String {
    app.http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_receiver_that_always_fails_ends_in_the_dead_letters_and_opens_the_breaker() {
    let (_dir, key) = key_file();
    let app = start(&key, |c| {
        c.webhook_max_attempts = 3;
        c.webhook_breaker_failures = 3;
        c.webhook_breaker_cooldown_ms = 3_600_000;
    })
    .await;
    let failing = Receiver::start(&[], 500).await;
    let (hook, _) = endpoint(&app, &failing.url, &["link.created"]).await;
    let id = hook["id"].as_i64().unwrap();
    app.create(json!({ "target": "https://example.com/x", "custom_alias": "doomed" }))
        .await;

    // Three attempts, then a dead letter.
    let path = format!("/v1/webhooks/{id}/dead-letters");
    let page = testkit::wait_for_some(WAIT, POLL, || async {
        let (s, b) = app.call(Method::GET, &path, &app.admin_key).await;
        assert_eq!(s, 200, "{b}");
        (!b["dead_letters"].as_array().unwrap().is_empty()).then_some(b)
    })
    .await
    .expect("a dead letter");
    let dead = &page["dead_letters"][0];
    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["last_status"], 500);
    assert_eq!(dead["type"], "link.created");
    assert_eq!(dead["data"]["code"], "doomed");
    assert!(page["next_cursor"].is_null());
    let got = failing.got();
    assert_eq!(got.len(), 3, "exactly max_attempts attempts");
    assert_eq!(dead["event_id"], got[0].header(sign::EVENT_ID_HEADER));

    // Three failures in a row opened the breaker.
    let (s, b) = app
        .call(Method::GET, &format!("/v1/webhooks/{id}"), &app.admin_key)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        (b["breaker"].as_str(), b["failures"].as_i64()),
        (Some("open"), Some(3))
    );

    // While it is open, its deliveries wait without spending attempts: a
    // healthy endpoint gets the next event, the open one is not tried.
    let healthy = Receiver::start(&[], 200).await;
    endpoint(&app, &healthy.url, &["link.created"]).await;
    app.create(json!({ "target": "https://example.com/y", "custom_alias": "waits" }))
        .await;
    let got = healthy.wait_for(1).await;
    assert_eq!(got[0].json()["data"]["code"], "waits");
    assert_eq!(failing.got().len(), 3, "the open endpoint was not tried");
    assert_eq!(
        deliveries(&app, id).await,
        [("dead".to_string(), 3), ("pending".to_string(), 0)]
    );

    // The cool-down over (made so here), one probe goes; it succeeds and
    // closes the breaker.
    failing.answer(200);
    sqlx::query("UPDATE webhook_endpoints SET open_until = now() WHERE id = $1")
        .bind(id)
        .execute(&app.running.state.db)
        .await
        .unwrap();
    let got = failing.wait_for(4).await;
    assert_eq!(got[3].json()["data"]["code"], "waits");
    testkit::wait_for(WAIT, POLL, || async {
        let (_, b) = app
            .call(Method::GET, &format!("/v1/webhooks/{id}"), &app.admin_key)
            .await;
        b["breaker"] == "closed" && b["failures"] == 0
    })
    .await
    .expect("the breaker closes");

    // A dead letter sent again on request: the same event id, delivered.
    let delivery = dead["id"].as_i64().unwrap();
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/dead-letters/{delivery}/redeliver"),
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["event_id"], dead["event_id"]);
    let got = failing.wait_for(5).await;
    assert_eq!(got[4].header(sign::EVENT_ID_HEADER), dead["event_id"]);
    testkit::wait_for(WAIT, POLL, || async {
        let (_, b) = app.call(Method::GET, &path, &app.admin_key).await;
        b["dead_letters"].as_array().is_some_and(|d| d.is_empty())
    })
    .await
    .expect("no dead letter left");
    // Not a dead letter any more: 404.
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/dead-letters/{delivery}/redeliver"),
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 404);

    // Paging checks its input.
    for bad in ["?limit=0", "?limit=501", "?cursor=zz"] {
        let (s, b) = app
            .call(Method::GET, &format!("{path}{bad}"), &app.admin_key)
            .await;
        assert_eq!((s, error_code(&b)), (400, "bad_request"), "{bad}: {b}");
    }
    let metrics = metrics(&app).await;
    assert!(
        metrics.contains("control_webhook_dead_letters_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("control_webhook_breaker_opened_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn dead_letters_page_newest_first() {
    let (_dir, key) = key_file();
    let app = start(&key, |c| {
        c.webhook_max_attempts = 1;
        c.webhook_breaker_failures = 100;
    })
    .await;
    let failing = Receiver::start(&[], 503).await;
    let (hook, _) = endpoint(&app, &failing.url, &["link.created"]).await;
    let id = hook["id"].as_i64().unwrap();
    for n in 0..3 {
        app.create(json!({ "target": format!("https://example.com/{n}") }))
            .await;
    }
    testkit::wait_for(WAIT, POLL, || async {
        deliveries(&app, id)
            .await
            .iter()
            .filter(|(s, _)| s == "dead")
            .count()
            == 3
    })
    .await
    .expect("three dead letters");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("?limit=2&cursor={c}"),
            None => "?limit=2".into(),
        };
        let (s, b) = app
            .call(
                Method::GET,
                &format!("/v1/webhooks/{id}/dead-letters{q}"),
                &app.admin_key,
            )
            .await;
        assert_eq!(s, 200, "{b}");
        for d in b["dead_letters"].as_array().unwrap() {
            assert_eq!(d["last_status"], 503);
            seen.push(d["id"].as_i64().unwrap());
        }
        match b["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );
}

#[tokio::test]
async fn urls_are_checked_against_ssrf_and_fields_are_named() {
    let (_dir, key) = key_file();
    // The default policy: https to public hosts only.
    let app = TestApp::start_with({
        let key = key.clone();
        move |c| c.webhook_key_file = Some(key)
    })
    .await;
    for url in [
        "http://hooks.example.com/in",
        "https://127.0.0.1:9000/hook",
        "https://[::1]/hook",
        "https://10.0.0.8/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/hook",
        "https://metadata/hook",
        "https://user:pw@hooks.example.com/",
        "ftp://hooks.example.com/",
        "not a url",
    ] {
        let (s, b) = app
            .send_json(
                Method::POST,
                "/v1/webhooks",
                &app.admin_key,
                &json!({ "url": url, "events": ["link.created"] }),
            )
            .await;
        assert_eq!(s, 400, "{url}: {b}");
        assert_eq!(b["error"]["details"]["field"], "url", "{url}: {b}");
    }
    for events in [json!([]), json!(["link.exploded"])] {
        let (s, b) = app
            .send_json(
                Method::POST,
                "/v1/webhooks",
                &app.admin_key,
                &json!({ "url": "https://hooks.example.com/in", "events": events }),
            )
            .await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(b["error"]["details"]["field"], "events");
    }
    let (s, b) = app
        .send_json(
            Method::POST,
            "/v1/webhooks",
            &app.admin_key,
            &json!({ "events": ["link.created"] }),
        )
        .await;
    assert_eq!((s, error_code(&b)), (400, "invalid_json"), "{b}");
    // A public https URL is taken, normalised.
    let (hook, _) = endpoint(
        &app,
        "https://Hooks.Example.com/in",
        &["link.deleted", "link.created"],
    )
    .await;
    assert_eq!(hook["url"], "https://hooks.example.com/in");
    assert_eq!(hook["events"], json!(["link.created", "link.deleted"]));
    let id = hook["id"].as_i64().unwrap();
    // A patch is checked the same way.
    let (s, b) = app
        .send_json(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &app.admin_key,
            &json!({ "url": "https://127.0.0.1/x" }),
        )
        .await;
    assert_eq!(
        (s, b["error"]["details"]["field"].as_str()),
        (400, Some("url")),
        "{b}"
    );
    let (s, b) = app
        .send_json(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &app.admin_key,
            &json!({ "active": false, "events": ["link.clicked"] }),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["active"].as_bool(), b["events"].clone()),
        (Some(false), json!(["link.clicked"]))
    );
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/webhooks/{id}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .call(Method::GET, &format!("/v1/webhooks/{id}"), &app.admin_key)
        .await;
    assert_eq!(s, 404);
    // Every act is in the audit log.
    let (_, audit) = app
        .call(Method::GET, "/v1/audit?action=webhook", &app.admin_key)
        .await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["webhook.delete", "webhook.update", "webhook.create"]
    );
}

#[tokio::test]
async fn only_those_who_manage_the_organization_manage_its_webhooks() {
    let (_dir, key) = key_file();
    let app = start(&key, |_| {}).await;
    let (hook, _) = endpoint(&app, "https://hooks.example.com/in", &["link.created"]).await;
    let id = hook["id"].as_i64().unwrap();
    let links_key = app
        .key("acme", &["links:read", "links:write", "stats:read"])
        .await;
    let other_admin = app.key("globex", &["admin"]).await;
    app.user("viewer@acme.example", Some(("acme", Role::Viewer)))
        .await;
    app.user("editor@acme.example", Some(("acme", Role::Editor)))
        .await;
    app.user("admin@acme.example", Some(("acme", Role::Admin)))
        .await;
    let viewer = app.login("viewer@acme.example", common::PASSWORD).await;
    let editor = app.login("editor@acme.example", common::PASSWORD).await;
    let admin = app.login("admin@acme.example", common::PASSWORD).await;
    let routes = [
        (Method::GET, "/v1/webhooks".to_string()),
        (Method::GET, format!("/v1/webhooks/{id}")),
        (Method::DELETE, format!("/v1/webhooks/{id}")),
        (Method::POST, format!("/v1/webhooks/{id}/rotate-secret")),
        (Method::GET, format!("/v1/webhooks/{id}/dead-letters")),
    ];
    for (method, path) in &routes {
        for key in [&links_key, &app.operator_key] {
            let (s, b) = app.call(method.clone(), path, key).await;
            assert_eq!(
                (s, error_code(&b)),
                (403, "forbidden"),
                "{method} {path}: {b}"
            );
        }
        for session in [&viewer, &editor] {
            let (s, b) = app.user_call(method.clone(), path, session, None).await;
            assert_eq!(
                (s, error_code(&b)),
                (403, "forbidden"),
                "{method} {path}: {b}"
            );
        }
    }
    let (s, b) = app
        .send_json(
            Method::POST,
            "/v1/webhooks",
            &links_key,
            &json!({ "url": "https://hooks.example.com/in", "events": ["link.created"] }),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    // Another organization's admin does not see it.
    let (s, _) = app
        .call(Method::GET, &format!("/v1/webhooks/{id}"), &other_admin)
        .await;
    assert_eq!(s, 404);
    let (_, b) = app.call(Method::GET, "/v1/webhooks", &other_admin).await;
    assert_eq!(b["webhooks"], json!([]));
    // The organization's admin, signed in, does.
    let (s, b) = app
        .user_call(Method::GET, &format!("/v1/webhooks/{id}"), &admin, None)
        .await;
    assert_eq!((s, b["id"].as_i64()), (200, Some(id)), "{b}");

    // Without webhook_key_file webhooks are off: 503, after the role check.
    let off = TestApp::start().await;
    let (s, b) = off.call(Method::GET, "/v1/webhooks", &off.admin_key).await;
    assert_eq!((s, error_code(&b)), (503, "unavailable"), "{b}");
    let (s, _) = status_json(
        off.req(
            Method::GET,
            "/v1/webhooks",
            &off.key("acme", &["links:read"]).await,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn two_instances_on_one_database_send_each_attempt_once() {
    let (_dir, key) = key_file();
    let app = start(&key, |_| {}).await;
    // A second control on the same database, delivering too.
    let second = control::server::start_with_mailer(
        Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: app.pg.url().to_owned(),
            short_base: "https://sho.rt".into(),
            snapshot_dir: app.snapshot_dir.path().join("second"),
            webhook_key_file: Some(key.clone()),
            allow_private_webhooks: true,
            webhook_poll_ms: 5,
            webhook_concurrency: 2,
            ..Config::default()
        },
        Arc::new(control::accounts::mailer::MemoryMailer::default()),
    )
    .await
    .expect("a second control starts");
    let receiver = Receiver::start(&[], 200).await;
    endpoint(&app, &receiver.url, &["link.created"]).await;
    let (s, b) = app
        .send_json(
            Method::POST,
            "/v1/links/bulk",
            &app.admin_key,
            &json!({ "create": (0..40)
                .map(|n| json!({ "target": format!("https://example.com/{n}") }))
                .collect::<Vec<_>>() }),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let got = receiver.wait_for(40).await;
    let ids: std::collections::HashSet<&str> = got
        .iter()
        .map(|r| r.header(sign::EVENT_ID_HEADER))
        .collect();
    assert_eq!(ids.len(), 40, "every event once");
    assert!(got.iter().all(|r| r.header(sign::ATTEMPT_HEADER) == "1"));
    // Between them the two instances made exactly 40 attempts.
    let sent = |m: String| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix("control_webhook_deliveries_total "))
            .map_or(0, |n| n.parse().unwrap())
    };
    let second_metrics = format!("http://{}/metrics", second.addr);
    testkit::wait_for(WAIT, POLL, || async {
        let a = sent(metrics(&app).await);
        let b = sent(
            reqwest::get(&second_metrics)
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
        a + b == 40
    })
    .await
    .expect("40 attempts in all");
    assert_eq!(receiver.got().len(), 40, "no attempt sent twice");
    // An attempt is counted when it is answered, and recorded in its own
    // transaction just after: wait for the last records.
    let states = || async {
        sqlx::query_as::<_, (String, i32)>(
            "SELECT state, attempts FROM webhook_deliveries ORDER BY id",
        )
        .fetch_all(&app.running.state.db)
        .await
        .unwrap()
    };
    let recorded = testkit::wait_for(WAIT, POLL, || async {
        states().await.iter().all(|(s, _)| s != "pending")
    })
    .await;
    let all = states().await;
    assert!(recorded.is_ok(), "{all:?}");
    assert_eq!(all.len(), 40);
    assert!(
        all.iter().all(|(s, a)| s == "delivered" && *a == 1),
        "{all:?}"
    );
}

#[tokio::test]
async fn deleting_a_domain_with_its_links_sends_link_deleted_for_each() {
    const BRAND: &str = "go.acme.example";
    let (_dir, key) = key_file();
    let app = start(&key, |_| {}).await;
    let receiver = Receiver::start(&[], 200).await;
    let (s, b) = app
        .send_json(
            Method::POST,
            "/v1/domains",
            &app.admin_key,
            &json!({ "name": BRAND }),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    for code in ["one", "two"] {
        app.create(
            json!({ "target": "https://example.com/x", "custom_alias": code, "domain": BRAND }),
        )
        .await;
    }
    // A link on the default domain stays.
    app.create(json!({ "target": "https://example.com/y", "custom_alias": "stays" }))
        .await;
    endpoint(&app, &receiver.url, &["link.deleted"]).await;
    let (s, b) = app
        .call(
            Method::DELETE,
            &format!("/v1/domains/{BRAND}?cascade=true"),
            &app.admin_key,
        )
        .await;
    assert!((200..300).contains(&s), "{s} {b}");
    let got = receiver.wait_for(2).await;
    let mut codes: Vec<String> = got
        .iter()
        .map(|r| {
            assert_eq!(r.header(sign::EVENT_TYPE_HEADER), "link.deleted");
            let data = &r.json()["data"];
            assert_eq!(data["domain"], BRAND);
            assert_eq!(data["version"], 2, "the delete's own version: {data}");
            data["code"].as_str().unwrap().to_owned()
        })
        .collect();
    codes.sort();
    assert_eq!(codes, ["one", "two"]);
    // One event per link, written with the delete: nothing for the link
    // that stays, and every delivery is there already (the same transaction).
    let events: Vec<(String, String)> =
        sqlx::query_as("SELECT type, data->>'code' FROM webhook_events ORDER BY id")
            .fetch_all(&app.running.state.db)
            .await
            .unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|(t, _)| t == "link.deleted"));
}
