//! The operator principal: global routes for the operator only, tenants
//! kept to their own organization, operator acts audited, snapshot builds
//! coalesced, no server paths in listings.

mod common;

use common::{TestApp, error_code, status_json};
use reqwest::Method;
use serde_json::{Value, json};

/// Every global route, with a body where it takes one.
fn global_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (
            Method::POST,
            "/v1/admin/blocklist",
            Some(json!({ "host": "com", "reason": "everything" })),
        ),
        (Method::GET, "/v1/admin/blocklist", None),
        (Method::DELETE, "/v1/admin/blocklist/victim.example", None),
        (Method::POST, "/v1/admin/links/theirs/disable", None),
        (Method::POST, "/v1/admin/links/theirs/enable", None),
        (Method::GET, "/v1/admin/domains", None),
        (Method::GET, "/v1/admin/orgs", None),
        (Method::POST, "/v1/admin/snapshots", None),
        (Method::GET, "/v1/admin/snapshots", None),
    ]
}

#[tokio::test]
async fn every_global_route_is_403_for_a_tenant_admin_and_works_for_the_operator() {
    let app = TestApp::start().await;
    // Another tenant's link, and a blocklist entry the operator made.
    let globex = app.key("globex", &["admin"]).await;
    let (s, _) = app
        .send_json(
            Method::POST,
            "/v1/links",
            &globex,
            &json!({ "target": "https://globex.example/", "custom_alias": "theirs" }),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .send_json(
            Method::POST,
            "/v1/admin/blocklist",
            &app.operator_key,
            &json!({ "host": "victim.example", "reason": "phishing" }),
        )
        .await;
    assert_eq!(s, 201);

    // Every route documented under /v1/admin is in the list below.
    let documented: Vec<(String, String)> = control::openapi::ROUTES
        .iter()
        .filter(|r| r.path.starts_with("/v1/admin/"))
        .map(|r| (r.method.to_uppercase(), r.path.to_owned()))
        .collect();
    assert_eq!(documented.len(), global_routes().len(), "{documented:?}");

    for (method, path, body) in global_routes() {
        let mut r = app.req(method.clone(), path, &app.admin_key);
        if let Some(b) = &body {
            r = r.json(b);
        }
        let (s, b) = status_json(r.send().await.unwrap()).await;
        assert_eq!((s, error_code(&b)), (403, "forbidden"), "{method} {path}");
        assert_eq!(b["error"]["details"]["required_principal"], "operator");
    }
    // Nothing happened: the entry is there, nothing else was blocked, the
    // link is live, no snapshot was built.
    let (_, b) = app
        .call(Method::GET, "/v1/admin/blocklist", &app.operator_key)
        .await;
    assert_eq!(b["hosts"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["hosts"][0]["host"], "victim.example");
    let (_, b) = app.call(Method::GET, "/v1/links/theirs", &globex).await;
    assert_eq!(b["disabled"], false);

    for (method, path, body) in global_routes() {
        let mut r = app.req(method.clone(), path, &app.operator_key);
        if let Some(b) = &body {
            r = r.json(b);
        }
        let (s, b) = status_json(r.send().await.unwrap()).await;
        assert!(matches!(s, 200 | 201 | 204), "{method} {path}: {s} {b}");
    }
    let (_, b) = app
        .call(Method::GET, "/v1/admin/orgs", &app.operator_key)
        .await;
    let names: Vec<&str> = b["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme", "globex"]);
    assert_eq!(b["orgs"][1]["live_links"], 1);
}

#[tokio::test]
async fn the_operator_has_no_organization() {
    let app = TestApp::start().await;
    for (method, path) in [
        (Method::GET, "/v1/links"),
        (Method::GET, "/v1/keys"),
        (Method::GET, "/v1/stats/summary"),
    ] {
        let (s, b) = app.call(method, path, &app.operator_key).await;
        assert_eq!((s, error_code(&b)), (403, "forbidden"), "{path}");
        assert_eq!(b["error"]["details"]["required_principal"], "organization");
    }
    let (s, _) = app
        .send_json(
            Method::POST,
            "/v1/links",
            &app.operator_key,
            &json!({ "target": "https://a.example/" }),
        )
        .await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn the_operator_disables_and_enables_any_link_and_is_audited() {
    let app = TestApp::start().await;
    let globex = app.key("globex", &["admin"]).await;
    let (_, link) = app
        .send_json(
            Method::POST,
            "/v1/links",
            &globex,
            &json!({ "target": "https://phish.example/", "custom_alias": "phish" }),
        )
        .await;
    assert_eq!(link["version"], 1);
    let (s, b) = app
        .call(
            Method::POST,
            "/v1/admin/links/phish/disable",
            &app.operator_key,
        )
        .await;
    assert_eq!((s, &b["disabled"]), (200, &json!(true)), "{b}");
    // Again: already disabled, nothing written.
    let (_, b) = app
        .call(
            Method::POST,
            "/v1/admin/links/phish/disable",
            &app.operator_key,
        )
        .await;
    assert_eq!(b["version"], 2);
    let (_, b) = app.call(Method::GET, "/v1/links/phish", &globex).await;
    assert_eq!(b["disabled"], true, "the tenant sees it disabled");
    let (s, b) = app
        .call(
            Method::POST,
            "/v1/admin/links/phish/enable",
            &app.operator_key,
        )
        .await;
    assert_eq!((s, &b["disabled"]), (200, &json!(false)), "{b}");
    let (s, b) = app
        .call(
            Method::POST,
            "/v1/admin/links/nosuch/disable",
            &app.operator_key,
        )
        .await;
    assert_eq!((s, error_code(&b)), (404, "not_found"));
    let (s, b) = app
        .call(
            Method::POST,
            "/v1/admin/links/a%00b/disable",
            &app.operator_key,
        )
        .await;
    assert_eq!((s, error_code(&b)), (400, "bad_request"));

    let rows: Vec<(String, bool, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT a.action, a.operator, a.api_key_id, o.name FROM audit_log a
           LEFT JOIN organizations o ON o.id = a.org_id
          WHERE a.subject = 'phish' ORDER BY a.id",
    )
    .fetch_all(&app.running.state.db)
    .await
    .unwrap();
    let operator_id: i64 =
        sqlx::query_scalar("SELECT id FROM api_keys WHERE operator AND prefix = $1")
            .bind(&app.operator_key[..11])
            .fetch_one(&app.running.state.db)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                "link.create".to_string(),
                false,
                rows[0].2,
                Some("globex".to_string())
            ),
            (
                "link.disable".into(),
                true,
                Some(operator_id),
                Some("globex".into())
            ),
            (
                "link.enable".into(),
                true,
                Some(operator_id),
                Some("globex".into())
            ),
        ]
    );
    // Both changes reached the outbox, in order.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM link_outbox WHERE code = 'phish'")
        .fetch_one(&app.running.state.db)
        .await
        .unwrap();
    assert_eq!(n, 3);
}

#[tokio::test]
async fn snapshot_listings_show_file_names_not_server_paths() {
    let app = TestApp::start().await;
    app.create(json!({ "target": "https://a.example/" })).await;
    let (s, b) = app
        .call(Method::POST, "/v1/admin/snapshots", &app.operator_key)
        .await;
    assert_eq!(s, 201, "{b}");
    let (_, list) = app
        .call(Method::GET, "/v1/admin/snapshots", &app.operator_key)
        .await;
    let dir = app.snapshot_dir.path().to_str().unwrap().to_owned();
    for body in [&b, &list] {
        let text = body.to_string();
        assert!(!text.contains(&dir), "server path in {text}");
        assert!(!text.contains("\"path\""), "{text}");
    }
    let g = &list["generations"][0];
    assert!(app.snapshot_path(g).is_file(), "{g}");
}

#[tokio::test]
async fn snapshot_builds_are_coalesced() {
    let app = TestApp::start().await;
    app.create(json!({ "target": "https://a.example/" })).await;
    // Ten at once: one build, perhaps a second for a request that arrived
    // before the first one had read the links; the rest share them.
    let requests: Vec<_> = (0..10)
        .map(|_| {
            app.req(Method::POST, "/v1/admin/snapshots", &app.operator_key)
                .send()
        })
        .collect();
    let mut built = 0;
    for r in futures::future::join_all(requests).await {
        let (s, b) = status_json(r.unwrap()).await;
        match s {
            201 => built += 1,
            200 => assert_eq!(b["built"], false, "{b}"),
            other => panic!("{other} {b}"),
        }
        assert_eq!(b["generation"]["seq"], 1);
    }
    assert!((1..=2).contains(&built), "{built} builds for 10 requests");
    // Nothing changed since: no build at all.
    for _ in 0..5 {
        let (s, b) = app
            .call(Method::POST, "/v1/admin/snapshots", &app.operator_key)
            .await;
        assert_eq!((s, &b["built"]), (200, &json!(false)), "{b}");
    }
    let generations: i64 = sqlx::query_scalar("SELECT count(*) FROM snapshot_generations")
        .fetch_one(&app.running.state.db)
        .await
        .unwrap();
    assert_eq!(generations, built);
    // A change: the next request builds again.
    app.create(json!({ "target": "https://b.example/" })).await;
    let (s, b) = app
        .call(Method::POST, "/v1/admin/snapshots", &app.operator_key)
        .await;
    assert_eq!((s, &b["generation"]["seq"]), (201, &json!(2)), "{b}");
}

/// `control keys create --operator` and `control keys revoke`, the binary.
#[tokio::test]
async fn operator_keys_from_the_command_line() {
    let app = TestApp::start().await;
    let bin = env!("CARGO_BIN_EXE_control");
    let out = tokio::process::Command::new(bin)
        .args([
            "keys",
            "create",
            "--operator",
            "--name",
            "ops",
            "--database-url",
        ])
        .arg(app.pg.url())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("sk_") && key.len() == 44, "{key}");
    let (s, b) = app.call(Method::GET, "/v1/admin/orgs", &key).await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = app.call(Method::GET, "/v1/links", &key).await;
    assert_eq!(s, 403);
    let out = tokio::process::Command::new(bin)
        .args(["keys", "revoke", "--prefix", &key[..11], "--database-url"])
        .arg(app.pg.url())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, _) = app.call(Method::GET, "/v1/admin/orgs", &key).await;
    assert_eq!(s, 401);
    let audited: Vec<(String, bool)> =
        sqlx::query_as("SELECT action, operator FROM audit_log WHERE subject = $1 ORDER BY id")
            .bind(&key[..11])
            .fetch_all(&app.running.state.db)
            .await
            .unwrap();
    assert_eq!(
        audited,
        vec![
            ("key.create".to_string(), true),
            ("key.revoke".into(), true)
        ]
    );
}
