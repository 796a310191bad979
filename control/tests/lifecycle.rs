//! Link lifecycle in control: `valid_since` and `expired_url` through the
//! API (create, patch, bulk), their checks (400 naming the field), the
//! change each write sends the engines and the snapshot; and the purge of
//! expired and deleted links from PostgreSQL, the snapshot and the change
//! stream (a real JetStream), their codes retired.

mod common;

use common::{TestApp, error_code, outbox};
use reqwest::Method;
use serde_json::json;
use snapshots::delta::LinkChange;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn at(secs_from_now: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::seconds(secs_from_now))
        .replace_nanosecond(0)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

fn unix(text: &str) -> i64 {
    OffsetDateTime::parse(text, &Rfc3339)
        .unwrap()
        .unix_timestamp()
}

#[tokio::test]
async fn valid_since_and_expired_url_reach_the_json_the_change_and_the_snapshot() {
    let app = TestApp::start().await;
    let (since, until) = (at(3600), at(7200));
    let link = app
        .create(
            json!({"target": "https://example.com/a", "custom_alias": "launch",
                       "valid_since": since, "expires_at": until,
                       "expired_url": "https://example.com/over"}),
        )
        .await;
    assert_eq!(link["valid_since"], since);
    assert_eq!(link["expired_url"], "https://example.com/over");
    let plain = app
        .create(json!({"target": "https://example.com/b", "custom_alias": "plain"}))
        .await;
    assert!(plain["valid_since"].is_null() && plain["expired_url"].is_null());

    let changes = outbox(&app).await;
    let LinkChange::Upsert { link: sent } = &changes[0].change else {
        panic!("{changes:?}")
    };
    assert_eq!(sent.valid_since, Some(unix(&since)));
    assert_eq!(sent.expires_at, Some(unix(&until)));
    assert_eq!(
        sent.expired_url.as_deref(),
        Some("https://example.com/over")
    );
    assert_eq!(changes[0].v, snapshots::delta::DELTA_VERSION);
    // The change names the link's organization, for its click records.
    let org = sent.org_id;
    assert_ne!(org, 0);

    // Patch: null clears each; the change says so.
    let (status, patched) = app
        .send_json(
            Method::PATCH,
            "/v1/links/launch",
            &app.admin_key,
            &json!({"valid_since": null, "expired_url": null}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert!(patched["valid_since"].is_null() && patched["expired_url"].is_null());
    let changes = outbox(&app).await;
    let LinkChange::Upsert { link: sent } = &changes.last().unwrap().change else {
        panic!("{changes:?}")
    };
    assert_eq!(
        (sent.valid_since, sent.expired_url.as_deref()),
        (None, None)
    );

    // Set again by patch, then into a snapshot: the engine's record.
    let (status, _) = app
        .send_json(
            Method::PATCH,
            "/v1/links/launch",
            &app.admin_key,
            &json!({"valid_since": since, "expired_url": "https://example.com/later"}),
        )
        .await;
    assert_eq!(status, 200);
    let generation = app.running.state.snapshots.build().await.unwrap();
    let snapshot = snapshots::Snapshot::open(std::path::Path::new(&generation.path)).unwrap();
    assert_eq!(snapshot.header().version, snapshots::header::FORMAT_VERSION);
    let view = snapshot.get("launch").unwrap();
    assert_eq!(
        view.org_id(),
        org,
        "the snapshot's record names the org too"
    );
    assert!(view.has_extra());
    let extra = snapshot.extra_in(0, b"launch").unwrap();
    assert_eq!(extra.valid_since(), Some(unix(&since)));
    assert_eq!(extra.expired_url(), Some("https://example.com/later"));
    assert!(!snapshot.get("plain").unwrap().has_extra());

    // Export: both columns in CSV, both fields in JSON lines.
    let csv = app
        .export("acme", control::import::export::ExportFormat::Csv)
        .await;
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .contains(",valid_since,expired_url,"),
        "{csv}"
    );
    assert!(
        csv.contains(&format!(",{since},https://example.com/later")),
        "{csv}"
    );
}

#[tokio::test]
async fn bad_lifecycle_values_are_400s_naming_the_field() {
    let app = TestApp::start().await;
    let field = |body: &serde_json::Value| body["error"]["details"]["field"].clone();
    for (body, name) in [
        (
            json!({"target": "https://e.com/", "expired_url": "ftp://e.com/"}),
            "expired_url",
        ),
        (
            json!({"target": "https://e.com/", "expired_url": "not a url"}),
            "expired_url",
        ),
        (
            json!({"target": "https://e.com/", "valid_since": at(7200), "expires_at": at(3600)}),
            "valid_since",
        ),
        (
            json!({"target": "https://e.com/", "valid_since": at(3600), "expires_at": at(3600)}),
            "valid_since",
        ),
        // Past the year 9999 in UTC: the API could never show it back.
        (
            json!({"target": "https://e.com/", "expires_at": "9999-12-31T23:59:59-01:00"}),
            "expires_at",
        ),
        (
            json!({"target": "https://e.com/", "valid_since": "9999-12-31T23:30:00-01:00"}),
            "valid_since",
        ),
    ] {
        let (status, answer) = app
            .send_json(Method::POST, "/v1/links", &app.admin_key, &body)
            .await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(error_code(&answer), "bad_request", "{answer}");
        assert_eq!(field(&answer), name, "{answer}");
    }
    let (status, answer) = app
        .send_json(
            Method::POST,
            "/v1/links",
            &app.admin_key,
            &json!({"target": "https://e.com/", "valid_since": "tomorrow"}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");

    // A patch whose result breaks the window: against the stored expiry.
    app.create(json!({"target": "https://e.com/", "custom_alias": "w", "expires_at": at(3600)}))
        .await;
    let (status, answer) = app
        .send_json(
            Method::PATCH,
            "/v1/links/w",
            &app.admin_key,
            &json!({"valid_since": at(7200)}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(field(&answer), "valid_since");
    let (status, answer) = app
        .send_json(
            Method::PATCH,
            "/v1/links/w",
            &app.admin_key,
            &json!({"expires_at": "9999-12-31T23:59:59-00:30"}),
        )
        .await;
    assert_eq!(
        (status, field(&answer)),
        (400, json!("expires_at")),
        "{answer}"
    );
    // The link still reads.
    assert_eq!(
        app.call(Method::GET, "/v1/links/w", &app.admin_key).await.0,
        200
    );
    // Bulk: the item fails alone, with the same error.
    let (status, answer) = app
        .send_json(
            Method::POST,
            "/v1/links/bulk",
            &app.admin_key,
            &json!({"create": [
                {"target": "https://e.com/1", "custom_alias": "ok1", "expired_url": "https://e.com/gone"},
                {"target": "https://e.com/2", "expired_url": "javascript:alert(1)"}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let results = answer["create"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(
        results[0]["link"]["expired_url"], "https://e.com/gone",
        "{answer}"
    );
    assert_eq!(
        results[1]["error"]["details"]["field"], "expired_url",
        "{answer}"
    );
}

/// Deletes and purges; the stream is a real JetStream's, fed by the relay.
#[tokio::test]
async fn purge_removes_expired_and_deleted_links_everywhere_and_retires_their_codes() {
    let nats = testkit::JetStreamScope::connect().await.unwrap();
    let stream = nats.stream_name("LINKS");
    let subject = nats.subject("links.changes");
    let app = TestApp::start_relaying(&stream, &subject, |_| {}).await;
    let db = &app.running.state.db;
    for code in ["expired", "kept-url", "deleted", "live", "recent"] {
        let mut body = json!({"target": "https://example.com/", "custom_alias": code});
        if code == "kept-url" {
            body["expired_url"] = json!("https://example.com/over");
        }
        app.create(body).await;
    }
    let (status, _) = app
        .call(Method::DELETE, "/v1/links/deleted", &app.admin_key)
        .await;
    assert_eq!(status, 204);
    // Expiries and a deletion 31 days ago (an API write cannot set a past
    // expiry); "recent" expired only yesterday.
    for sql in [
        "UPDATE links SET expires_at = now() - interval '31 days' WHERE code IN ('expired', 'kept-url')",
        "UPDATE links SET deleted_at = now() - interval '31 days' WHERE code = 'deleted'",
        "UPDATE links SET expires_at = now() - interval '1 day' WHERE code = 'recent'",
    ] {
        sqlx::query(sql).execute(db).await.unwrap();
    }
    let before = outbox(&app).await.len();

    let purged = control::purge::purge(db, app.running.state.config.purge_after())
        .await
        .unwrap();
    assert_eq!(
        purged,
        control::purge::Purged {
            expired: 1,
            deleted: 1
        }
    );
    let left: Vec<String> = sqlx::query_scalar("SELECT code FROM links ORDER BY code")
        .fetch_all(db)
        .await
        .unwrap();
    assert_eq!(left, ["kept-url", "live", "recent"]);
    let retired: Vec<String> = sqlx::query_scalar("SELECT code FROM retired_codes ORDER BY code")
        .fetch_all(db)
        .await
        .unwrap();
    assert_eq!(retired, ["deleted", "expired"]);
    // One delete change for the expired link (the deleted one had its own).
    let changes = outbox(&app).await;
    assert_eq!(changes.len(), before + 1);
    assert!(
        matches!(&changes[before].change, LinkChange::Delete { code, .. } if code == "expired"),
        "{changes:?}"
    );
    // It reaches the stream engines follow, signed like every change.
    let js = nats.jetstream();
    testkit::wait_for(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(20),
        || async {
            let Ok(mut s) = js.get_stream(&stream).await else {
                return false;
            };
            let last = s.info().await.map(|i| i.state.last_sequence).unwrap_or(0);
            match s.get_raw_message(last).await {
                Ok(m) => snapshots::delta::LinkDelta::decode(&m.payload)
                    .is_ok_and(|d| d.seq == changes[before].seq),
                Err(_) => false,
            }
        },
    )
    .await
    .expect("the purge's delete is published");
    // The next snapshot has neither.
    let generation = app.running.state.snapshots.build().await.unwrap();
    let snapshot = snapshots::Snapshot::open(std::path::Path::new(&generation.path)).unwrap();
    assert!(snapshot.get("expired").is_none() && snapshot.get("deleted").is_none());
    assert!(snapshot.get("kept-url").is_some());
    // Codes are never given out again, not even after a purge.
    for code in ["expired", "deleted"] {
        let (status, body) = app
            .send_json(
                Method::POST,
                "/v1/links",
                &app.admin_key,
                &json!({"target": "https://example.com/new", "custom_alias": code}),
            )
            .await;
        assert_eq!(status, 409, "{body}");
    }
    // The purge is in the audit log.
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'link.purge'")
            .fetch_one(db)
            .await
            .unwrap();
    assert_eq!(audited, 2);
    // A second round finds nothing.
    let again = control::purge::purge(db, app.running.state.config.purge_after())
        .await
        .unwrap();
    assert_eq!(again, control::purge::Purged::default());
}
