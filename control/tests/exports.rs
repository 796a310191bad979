//! Exports as jobs against a real PostgreSQL and ClickHouse: a fresh
//! ClickHouse database per test with the sidecar's own tables
//! (`analytics::schema`), clicks inserted by the test, the job run by the
//! service's own worker, the file downloaded over HTTP.

mod common;

use common::{TestApp, error_code};
use control::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// 2026-01-01T10:00:00Z.
const T10: u64 = 1_767_261_600;
const DAY: &str = r#""from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z""#;

/// code, event id, unix ms, status, country, device, is_bot, is_preview, visitor.
type Click<'a> = (&'a str, u64, u64, u16, &'a str, &'a str, u8, u8, u64);

async fn clickhouse() -> testkit::ClickHouseDatabase {
    common::clickhouse_with_schema("exp").await
}

/// The org of every link in `app`'s database, by code (what the engine
/// puts in each click).
async fn orgs(app: &TestApp) -> HashMap<String, u64> {
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT code, org_id FROM links")
        .fetch_all(&app.running.state.db)
        .await
        .unwrap();
    rows.into_iter().map(|(c, o)| (c, o as u64)).collect()
}

async fn insert(ch: &testkit::ClickHouseDatabase, rows: &[Click<'_>], orgs: &HashMap<String, u64>) {
    let values: Vec<String> = rows
        .iter()
        .map(|(code, event, ms, status, country, device, bot, preview, visitor)| {
            let org = orgs.get(*code).copied().unwrap_or(0);
            format!(
                "('{event:016}', toDateTime({}), {ms}, '{code}', '', {status}, '{country}', 'City', '{device}', 'Firefox', 'Linux', 'news.example', 'en', {bot}, {preview}, {visitor}, {org}, 0)",
                ms / 1000
            )
        })
        .collect();
    ch.query(&format!(
        "INSERT INTO clicks (event_id, ts, ts_ms, code, domain, status, country, city, device, browser, os, referrer_host, language, is_bot, is_preview, visitor_hash, org_id, rule) VALUES {}",
        values.join(", ")
    ))
    .await
    .unwrap();
}

async fn app_with(
    ch: &testkit::ClickHouseDatabase,
    tweak: impl FnOnce(&mut control::config::Config) + Send + 'static,
) -> (TestApp, tempfile::TempDir) {
    let (url, db) = (ch.url().to_owned(), ch.name().to_owned());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let app = TestApp::start_with(move |c| {
        c.clickhouse = Some(url);
        c.clickhouse_database = db;
        c.export_dir = path;
        tweak(c);
    })
    .await;
    (app, dir)
}

/// Starts an export as `key`; the status and body.
async fn start(app: &TestApp, key: &str, body: &str) -> (u16, Value) {
    let body: Value = serde_json::from_str(body).unwrap();
    app.send_json(Method::POST, "/v1/exports", key, &body).await
}

/// Waits (at most a minute) until job `id` is done or failed.
async fn finished(app: &TestApp, key: &str, id: i64) -> Value {
    for _ in 0..600 {
        let (s, b) = app.call(Method::GET, &format!("/v1/jobs/{id}"), key).await;
        assert_eq!(s, 200, "{b}");
        if matches!(b["state"].as_str(), Some("done" | "failed")) {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} did not finish within a minute");
}

/// Starts an export, waits for it, and answers the job and its file.
async fn export(app: &TestApp, body: &str) -> (Value, String) {
    let (s, b) = start(app, &app.admin_key, body).await;
    assert_eq!(s, 202, "{b}");
    let job = finished(app, &app.admin_key, b["id"].as_i64().unwrap()).await;
    assert_eq!(job["state"], "done", "{job}");
    let r = app
        .req(
            Method::GET,
            job["download_url"].as_str().unwrap(),
            &app.admin_key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert_eq!(job["bytes"].as_u64().unwrap(), text.len() as u64, "{job}");
    (job, text)
}

fn clicks() -> Vec<Click<'static>> {
    let ms = T10 * 1000;
    vec![
        ("abc", 1, ms + 1_250, 301, "GB", "desktop", 0, 0, 1),
        ("abc", 2, ms + 50_000, 302, "US", "mobile", 0, 0, 2),
        ("abc", 3, ms + 70_000, 301, "US", "bot", 1, 0, 3),
        ("abc", 4, ms + 80_000, 301, "US", "other", 1, 1, 4),
        ("abc", 5, ms + 90_000, 404, "US", "mobile", 0, 0, 5),
        ("two", 6, ms + 3_600_000, 301, "GB", "mobile", 0, 0, 1),
        ("theirs", 7, ms + 100, 301, "GB", "desktop", 0, 0, 9),
        // The day after: outside the range.
        ("abc", 8, ms + 86_400_000, 301, "GB", "desktop", 0, 0, 1),
    ]
}

async fn seeded(
    tweak: impl FnOnce(&mut control::config::Config) + Send + 'static,
) -> (TestApp, tempfile::TempDir, testkit::ClickHouseDatabase) {
    let ch = clickhouse().await;
    let (app, dir) = app_with(&ch, tweak).await;
    for code in ["abc", "two"] {
        app.create(json!({ "target": "https://a.com", "custom_alias": code }))
            .await;
    }
    let other = app.key("globex", &["admin"]).await;
    let (s, _) = app
        .send_json(
            Method::POST,
            "/v1/links",
            &other,
            &json!({ "target": "https://a.com", "custom_alias": "theirs" }),
        )
        .await;
    assert_eq!(s, 201);
    insert(&ch, &clicks(), &orgs(&app).await).await;
    (app, dir, ch)
}

#[tokio::test]
async fn a_csv_export_has_exactly_the_organizations_rows() {
    let (app, _dir, _ch) = seeded(|_| {}).await;
    let (job, text) = export(&app, &format!(r#"{{"kind": "clicks", {DAY}}}"#)).await;
    assert_eq!(job["rows"], 3, "{job}");
    assert_eq!(job["request"]["traffic"], json!(["human"]));
    assert_eq!(job["request"]["format"], "csv");
    assert!(job["expires_at"].is_string());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "time,event_id,code,domain,status,country,city,device,browser,os,referrer,language,traffic,rule",
            "2026-01-01T10:00:01.250Z,30303030303030303030303030303031,abc,,301,GB,City,desktop,Firefox,Linux,news.example,en,human,0",
            "2026-01-01T10:00:50.000Z,30303030303030303030303030303032,abc,,302,US,City,mobile,Firefox,Linux,news.example,en,human,0",
            "2026-01-01T11:00:00.000Z,30303030303030303030303030303036,two,,301,GB,City,mobile,Firefox,Linux,news.example,en,human,0",
        ]
    );

    // Filters: one link, a country, every kind of traffic; NDJSON.
    let (job, text) = export(
        &app,
        &format!(
            r#"{{"kind": "clicks", {DAY}, "code": "abc", "country": ["us"],
                "traffic": ["human", "bot", "preview"], "format": "ndjson"}}"#
        ),
    )
    .await;
    assert_eq!(job["rows"], 3, "{job}");
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let traffic: Vec<&str> = rows
        .iter()
        .map(|r| r["traffic"].as_str().unwrap())
        .collect();
    assert_eq!(traffic, ["human", "bot", "preview"]);
    assert!(
        rows.iter()
            .all(|r| r["country"] == "US" && r["code"] == "abc")
    );
    assert_eq!(rows[0]["status"], 302, "numbers stay numbers");

    // A rollup: per hour, link and device, people only.
    let (job, text) = export(
        &app,
        &format!(r#"{{"kind": "rollup", {DAY}, "bucket": "hour", "dimensions": ["device"]}}"#),
    )
    .await;
    assert_eq!(job["rows"], 3, "{job}");
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "time,code,domain,device,clicks,unique_visitors",
            "2026-01-01T10:00:00Z,abc,,desktop,1,1",
            "2026-01-01T10:00:00Z,abc,,mobile,1,1",
            "2026-01-01T11:00:00Z,two,,mobile,1,1",
        ]
    );
    // Starting an export is in the audit log.
    let (s, b) = app
        .call(
            Method::GET,
            "/v1/audit?action=export.create",
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["entries"].as_array().map(Vec::len), Some(3), "{b}");
}

/// A Parquet export holds the same rows as the CSV one, typed: text as
/// UTF-8, numbers as unsigned 64-bit integers; the download says what it is.
#[tokio::test]
async fn a_parquet_export_has_the_same_rows_typed() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor as _;
    let (app, dir, _ch) = seeded(|_| {}).await;
    let (s, b) = start(
        &app,
        &app.admin_key,
        &format!(r#"{{"kind": "clicks", {DAY}, "format": "parquet"}}"#),
    )
    .await;
    assert_eq!(s, 202, "{b}");
    let job = finished(&app, &app.admin_key, b["id"].as_i64().unwrap()).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["rows"], 3, "{job}");
    let r = app
        .req(
            Method::GET,
            job["download_url"].as_str().unwrap(),
            &app.admin_key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.apache.parquet"
    );
    let bytes = r.bytes().await.unwrap();
    assert_eq!(job["bytes"].as_u64().unwrap(), bytes.len() as u64, "{job}");
    let path = dir.path().join("downloaded.parquet");
    std::fs::write(&path, &bytes).unwrap();
    let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let names: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "time", "event_id", "code", "domain", "status", "country", "city", "device", "browser",
            "os", "referrer", "language", "traffic", "rule"
        ]
    );
    let rows: Vec<(String, String, u64, String)> = reader
        .get_row_iter(None)
        .unwrap()
        .map(|row| {
            let row = row.unwrap();
            (
                row.get_string(0).unwrap().clone(),
                row.get_string(2).unwrap().clone(),
                row.get_ulong(4).unwrap(),
                row.get_string(5).unwrap().clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "2026-01-01T10:00:01.250Z".into(),
                "abc".into(),
                301,
                "GB".into()
            ),
            (
                "2026-01-01T10:00:50.000Z".into(),
                "abc".into(),
                302,
                "US".into()
            ),
            (
                "2026-01-01T11:00:00.000Z".into(),
                "two".into(),
                301,
                "GB".into()
            ),
        ]
    );
}

#[tokio::test]
async fn jobs_are_the_organizations_and_follow_the_stats_roles() {
    let (app, _dir, _ch) = seeded(|_| {}).await;
    let (s, b) = start(
        &app,
        &app.admin_key,
        &format!(r#"{{"kind": "clicks", {DAY}}}"#),
    )
    .await;
    assert_eq!(s, 202, "{b}");
    let id = b["id"].as_i64().unwrap();
    let job = finished(&app, &app.admin_key, id).await;
    assert_eq!(job["state"], "done");

    // The organization's jobs, newest first; another's see none of them.
    let (s, b) = app.call(Method::GET, "/v1/jobs", &app.admin_key).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["jobs"][0]["id"], id);
    let (s, b) = app
        .call(Method::GET, "/v1/jobs?limit=0", &app.admin_key)
        .await;
    assert_eq!((s, error_code(&b)), (400, "bad_request"));

    // Another organization: a 404, as for a job that does not exist.
    let other = app.key("globex", &["admin"]).await;
    let (_, b) = app.call(Method::GET, "/v1/jobs", &other).await;
    assert_eq!(b["jobs"], json!([]));
    for path in [format!("/v1/jobs/{id}"), format!("/v1/jobs/{id}/download")] {
        let (s, b) = app.call(Method::GET, &path, &other).await;
        assert_eq!((s, error_code(&b)), (404, "not_found"), "{path}");
        let (s, _) = app
            .call(
                Method::GET,
                &path.replace(&id.to_string(), "999999"),
                &app.admin_key,
            )
            .await;
        assert_eq!(s, 404);
    }
    // Nor can it export another organization's link.
    let (s, b) = start(
        &app,
        &other,
        &format!(r#"{{"kind": "clicks", {DAY}, "code": "abc"}}"#),
    )
    .await;
    assert_eq!((s, error_code(&b)), (422, "invalid_export"), "{b}");
    assert_eq!(b["error"]["details"]["field"], "code");

    // A viewer reads stats, so it may export and download; a key without
    // stats:read may not.
    app.user("viewer@example.com", Some(("acme", Role::Viewer)))
        .await;
    let viewer = app.login("viewer@example.com", common::PASSWORD).await;
    let (s, b) = app
        .user_call(Method::GET, &format!("/v1/jobs/{id}"), &viewer, None)
        .await;
    assert_eq!(s, 200, "{b}");
    let r = app
        .as_user(Method::GET, &format!("/v1/jobs/{id}/download"), &viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let body: Value = serde_json::from_str(&format!(r#"{{"kind": "rollup", {DAY}}}"#)).unwrap();
    let (s, b) = app
        .user_call(Method::POST, "/v1/exports", &viewer, Some(&body))
        .await;
    assert_eq!(s, 202, "{b}");
    let links_only = app.key("acme", &["links:read", "links:write"]).await;
    let (s, b) = start(
        &app,
        &links_only,
        &format!(r#"{{"kind": "clicks", {DAY}}}"#),
    )
    .await;
    assert_eq!((s, error_code(&b)), (403, "forbidden"));
    let (s, _) = app
        .call(Method::GET, &format!("/v1/jobs/{id}"), &links_only)
        .await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn refusals_limits_and_not_ready() {
    // No worker here: jobs stay queued.
    let (app, _dir, _ch) = seeded(|c| {
        c.export_workers = 0;
        c.export_max_range_days = 31;
    })
    .await;
    for (body, field) in [
        (
            r#""from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z""#,
            "from",
        ),
        (
            r#""from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z""#,
            "to",
        ),
        (&format!(r#"{DAY}, "country": []"#), "country"),
        (&format!(r#"{DAY}, "device": ["phone"]"#), "device"),
        (&format!(r#"{DAY}, "bucket": "day""#), "bucket"),
        (&format!(r#"{DAY}, "code": "nope""#), "code"),
    ] {
        let (s, b) = start(
            &app,
            &app.admin_key,
            &format!(r#"{{"kind": "clicks", {body}}}"#),
        )
        .await;
        assert_eq!((s, error_code(&b)), (422, "invalid_export"), "{body}: {b}");
        assert_eq!(b["error"]["details"]["field"], field, "{body}");
    }
    // A body the schema forbids is a 400, like every body.
    for body in [
        format!(r#"{{"kind": "everything", {DAY}}}"#),
        format!(r#"{{"kind": "clicks", {DAY}, "format": "xlsx"}}"#),
        r#"{"kind": "clicks"}"#.to_owned(),
        format!(r#"{{"kind": "clicks", {DAY}, "colour": "red"}}"#),
    ] {
        let (s, b) = start(&app, &app.admin_key, &body).await;
        assert_eq!((s, error_code(&b)), (400, "invalid_json"), "{body}: {b}");
    }
    // Two queued, the third refused with Retry-After.
    let body = format!(r#"{{"kind": "clicks", {DAY}}}"#);
    let (s, first) = start(&app, &app.admin_key, &body).await;
    assert_eq!(s, 202);
    assert_eq!(first["state"], "queued");
    assert_eq!(first["download_url"], Value::Null);
    let (s, _) = start(&app, &app.admin_key, &body).await;
    assert_eq!(s, 202);
    let r = app
        .req(Method::POST, "/v1/exports", &app.admin_key)
        .json(&serde_json::from_str::<Value>(&body).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let b: Value = r.json().await.unwrap();
    assert_eq!(error_code(&b), "too_many_exports");
    // Another organization has its own limit.
    let other = app.key("globex", &["stats:read"]).await;
    let (s, _) = start(&app, &other, &body).await;
    assert_eq!(s, 202);
    // Not done yet: 409 with the state.
    let id = first["id"].as_i64().unwrap();
    let (s, b) = app
        .call(
            Method::GET,
            &format!("/v1/jobs/{id}/download"),
            &app.admin_key,
        )
        .await;
    assert_eq!((s, error_code(&b)), (409, "export_not_ready"), "{b}");
    assert_eq!(b["error"]["details"]["state"], "queued");
}

#[tokio::test]
async fn a_job_interrupted_is_run_again_or_failed_and_files_expire() {
    let (app, dir, _ch) = seeded(|_| {}).await;
    let state = &app.running.state;
    let db = &state.db;
    // A job that was running on an instance that died: silent for a minute.
    let (s, b) = start(
        &app,
        &app.admin_key,
        &format!(r#"{{"kind": "clicks", {DAY}}}"#),
    )
    .await;
    assert_eq!(s, 202);
    let id = b["id"].as_i64().unwrap();
    let first = finished(&app, &app.admin_key, id).await;
    assert_eq!(first["attempts"], 1);
    sqlx::query(
        "UPDATE export_jobs SET state = 'running', instance = 'gone', heartbeat_at = now() - interval '1 minute'
          WHERE id = $1",
    )
    .bind(id)
    .execute(db)
    .await
    .unwrap();
    control::exports::worker::housekeeping(state, dir.path()).await;
    state.export_wake.notify_waiters();
    let again = finished(&app, &app.admin_key, id).await;
    assert_eq!(
        (again["state"].as_str(), again["attempts"].as_i64()),
        (Some("done"), Some(2)),
        "{again}"
    );
    assert_eq!(again["rows"], 3);

    // Interrupted on its third start: failed, saying so.
    sqlx::query(
        "UPDATE export_jobs SET state = 'running', attempts = 3, heartbeat_at = now() - interval '1 minute'
          WHERE id = $1",
    )
    .bind(id)
    .execute(db)
    .await
    .unwrap();
    control::exports::worker::housekeeping(state, dir.path()).await;
    let (_, failed) = app
        .call(Method::GET, &format!("/v1/jobs/{id}"), &app.admin_key)
        .await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("interrupted 3 times"),
        "{failed}"
    );
    let (s, b) = app
        .call(
            Method::GET,
            &format!("/v1/jobs/{id}/download"),
            &app.admin_key,
        )
        .await;
    assert_eq!((s, error_code(&b)), (409, "export_failed"));
    // Its file went with the sweep.
    assert!(!dir.path().join(format!("{id}.csv")).exists());

    // A done job past its expiry: expired, file deleted, download 410.
    let (_, b) = start(
        &app,
        &app.admin_key,
        &format!(r#"{{"kind": "clicks", {DAY}}}"#),
    )
    .await;
    let id = b["id"].as_i64().unwrap();
    finished(&app, &app.admin_key, id).await;
    assert!(dir.path().join(format!("{id}.csv")).exists());
    sqlx::query("UPDATE export_jobs SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(db)
        .await
        .unwrap();
    control::exports::worker::housekeeping(state, dir.path()).await;
    assert!(!dir.path().join(format!("{id}.csv")).exists());
    let (_, job) = app
        .call(Method::GET, &format!("/v1/jobs/{id}"), &app.admin_key)
        .await;
    assert_eq!(job["state"], "expired");
    let (s, b) = app
        .call(
            Method::GET,
            &format!("/v1/jobs/{id}/download"),
            &app.admin_key,
        )
        .await;
    assert_eq!((s, error_code(&b)), (410, "export_expired"));
}

/// A million clicks exported whole: every row once, the byte count the
/// worker recorded is the file's. (Memory for 10M rows is measured by
/// `examples/export_memory.rs`, README "Exports".)
#[tokio::test]
async fn a_million_rows_export() {
    let ch = clickhouse().await;
    let (app, _dir) = app_with(&ch, |_| {}).await;
    app.create(json!({ "target": "https://a.com", "custom_alias": "big" }))
        .await;
    let org = orgs(&app).await["big"];
    ch.query(&format!(
        "INSERT INTO clicks (event_id, ts, ts_ms, code, status, country, device, org_id)
         SELECT toFixedString(reinterpretAsString(number), 16), toDateTime({T10} + intDiv(number, 100)),
                ({T10} + intDiv(number, 100)) * 1000 + number % 100, 'big', 301, 'GB', 'desktop', {org}
           FROM system.numbers LIMIT 1000000"
    ))
    .await
    .unwrap();
    let (s, b) = start(
        &app,
        &app.admin_key,
        r#"{"kind": "clicks", "from": "2026-01-01T00:00:00Z", "to": "2026-01-31T00:00:00Z"}"#,
    )
    .await;
    assert_eq!(s, 202, "{b}");
    let job = finished(&app, &app.admin_key, b["id"].as_i64().unwrap()).await;
    assert_eq!(
        (job["state"].as_str(), job["rows"].as_u64()),
        (Some("done"), Some(1_000_000)),
        "{job}"
    );
    // Read as it comes: lines counted, times in order, nothing kept.
    let mut r = app
        .req(
            Method::GET,
            job["download_url"].as_str().unwrap(),
            &app.admin_key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (mut lines, mut bytes, mut line, mut last) = (0u64, 0u64, Vec::new(), String::new());
    while let Some(chunk) = r.chunk().await.unwrap() {
        bytes += chunk.len() as u64;
        for &b in chunk.iter() {
            if b != b'\n' {
                line.push(b);
                continue;
            }
            lines += 1;
            if lines > 1 {
                let time = String::from_utf8(line[..24].to_vec()).unwrap();
                assert!(time >= last, "{time} after {last}");
                last = time;
            }
            line.clear();
        }
    }
    assert_eq!(lines, 1_000_001, "the header and every click");
    assert_eq!(job["bytes"].as_u64(), Some(bytes));
}
