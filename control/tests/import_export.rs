//! `control import` and `control export` against a real PostgreSQL: every
//! format's fixture (tests/fixtures/import/, written from each product's
//! documentation), clashes and invalid rows by line, resuming without
//! duplicates, a file in the wrong format, and the command line round trip.

mod common;

use common::TestApp;
use control::import::formats::Format;
use control::import::{ImportOptions, ImportReport, run};
use reqwest::Method;
use serde_json::json;
use snapshots::delta::{LinkChange, LinkDelta};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn options(format: Format, file: PathBuf) -> ImportOptions {
    let mut o = ImportOptions::new(format, file, "acme");
    o.short_base = "https://sho.rt".into();
    o
}

/// (line, kind) of each problem.
fn problems(r: &ImportReport) -> Vec<(i64, &str)> {
    r.problems
        .iter()
        .map(|p| (p.line, p.kind.as_str()))
        .collect()
}

/// Codes of the live links, with their outbox upserts' codes.
async fn links_and_upserts(app: &TestApp) -> (Vec<String>, Vec<String>) {
    let db = &app.running.state.db;
    let mut codes: Vec<String> =
        sqlx::query_scalar("SELECT code FROM links WHERE deleted_at IS NULL ORDER BY code")
            .fetch_all(db)
            .await
            .unwrap();
    codes.sort();
    let deltas: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, delta FROM link_outbox ORDER BY seq")
            .fetch_all(db)
            .await
            .unwrap();
    let mut upserts = Vec::new();
    for (i, (seq, d)) in deltas.iter().enumerate() {
        assert_eq!(*seq, i as i64 + 1, "gapless");
        let d = LinkDelta::decode(d).unwrap();
        if let LinkChange::Upsert { link } = d.change {
            assert_eq!(link.seq, d.seq);
            upserts.push(link.code);
        }
    }
    upserts.sort();
    (codes, upserts)
}

#[tokio::test]
async fn every_format_imports_its_fixture_keeping_free_codes() {
    let app = TestApp::start().await;
    app.create(json!({ "target": "https://a.example/", "custom_alias": "taken" }))
        .await;
    let cases = [
        (Format::Bitly, "bitly.csv", ["bt-one", "bt-two"], (4, 5)),
        (Format::Yourls, "yourls.csv", ["yl-one", "yl-two"], (4, 5)),
        (Format::Shlink, "shlink.csv", ["sh-one", "sh-two"], (4, 5)),
        (Format::Kutt, "kutt.jsonl", ["kt-one", "kt-two"], (2, 3)),
    ];
    for (format, file, codes, (invalid_line, clash_line)) in cases {
        let r = run(&app.running.state.db, &options(format, fixture(file)))
            .await
            .unwrap();
        assert!(r.finished && r.stopped.is_none(), "{file}: {r:?}");
        assert_eq!(r.imported, 2, "{file}: {r:?}");
        assert_eq!(
            problems(&r),
            vec![(invalid_line, "invalid"), (clash_line, "clash")],
            "{file}: {r:?}"
        );
        assert!(r.problems[1].message.contains("\"taken\""), "{r:?}");
        for code in codes {
            let (s, l) = app
                .call(Method::GET, &format!("/v1/links/{code}"), &app.admin_key)
                .await;
            assert_eq!(s, 200, "{file} {code}");
            let want = "https://example.com/".to_owned() + &code[3..];
            assert!(l["target"].as_str().unwrap().starts_with(&want), "{l}");
        }
    }
    // Titles and tags come along.
    let (_, l) = app
        .call(Method::GET, "/v1/links/bt-one", &app.admin_key)
        .await;
    assert_eq!(
        (l["title"].clone(), l["tags"].clone()),
        (json!("Launch post"), json!(["launch", "blog"]))
    );
    let (_, l) = app
        .call(Method::GET, "/v1/links/sh-one", &app.admin_key)
        .await;
    assert_eq!(l["tags"], json!(["launch", "blog"]));
    let (_, l) = app
        .call(Method::GET, "/v1/links/kt-one", &app.admin_key)
        .await;
    assert_eq!(l["title"], "Launch post");
    // Our CSV: a row without a code gets a random one; a bad code is invalid.
    let r = run(
        &app.running.state.db,
        &options(Format::Csv, fixture("links.csv")),
    )
    .await
    .unwrap();
    assert_eq!(r.imported, 2, "{r:?}");
    assert_eq!(problems(&r), vec![(4, "invalid"), (5, "clash")], "{r:?}");
    assert!(r.problems[0].message.contains("code"), "{r:?}");
    // Every imported link went through the outbox, once.
    let (codes, upserts) = links_and_upserts(&app).await;
    assert_eq!(codes.len(), 1 + 5 * 2);
    assert_eq!(codes, upserts);
    // The report reads line by line.
    let mut text = Vec::new();
    r.write_to(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("line 5: clash: code \"taken\""), "{text}");
    assert!(
        text.contains("imported 2 links; 1 clashes, 1 invalid rows"),
        "{text}"
    );
}

#[tokio::test]
async fn an_interrupted_import_resumes_without_duplicates() {
    let app = TestApp::start().await;
    app.create(json!({ "target": "https://a.example/", "custom_alias": "c-7" }))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("links.csv");
    let mut text = String::from("target,code\n");
    for i in 0..20 {
        match i {
            3 => text.push_str("not a url,c-3\n"),
            _ => text.push_str(&format!("https://example.com/{i},c-{i}\n")),
        }
    }
    std::fs::write(&file, text).unwrap();
    let mut opts = options(Format::Csv, file.clone());
    opts.batch_size = 4;
    opts.max_batches = Some(2);
    let first = run(&app.running.state.db, &opts).await.unwrap();
    assert!(!first.finished);
    assert_eq!(
        first.imported, 6,
        "lines 2..9 less an invalid one and a clash: {first:?}"
    );
    assert_eq!(problems(&first), vec![(5, "invalid"), (9, "clash")]);

    opts.max_batches = None;
    let second = run(&app.running.state.db, &opts).await.unwrap();
    assert!(second.finished, "{second:?}");
    assert_eq!(second.resumed_after, 9);
    assert_eq!(second.imported, 18, "over both runs: {second:?}");
    assert_eq!(
        problems(&second),
        vec![(5, "invalid"), (9, "clash")],
        "both runs' problems"
    );
    let (codes, upserts) = links_and_upserts(&app).await;
    assert_eq!(codes.len(), 19, "no link made twice");
    assert_eq!(codes, upserts, "one outbox row each");

    // A third run of the finished file does nothing and says so.
    let third = run(&app.running.state.db, &opts).await.unwrap();
    assert!(third.already_done && third.imported == 18, "{third:?}");
    assert_eq!(links_and_upserts(&app).await.0.len(), 19);
}

#[tokio::test]
async fn a_file_in_the_wrong_format_stops_at_the_first_line_it_cannot_read() {
    let app = TestApp::start().await;
    // A CSV given as Kutt: line 1 is not JSON.
    let r = run(
        &app.running.state.db,
        &options(Format::Kutt, fixture("links.csv")),
    )
    .await
    .unwrap();
    assert_eq!(r.stopped.as_ref().map(|e| e.line), Some(1), "{r:?}");
    assert!(!r.finished && r.imported == 0);
    // Kutt's JSON given as CSV: no target column in the "header".
    let r = run(
        &app.running.state.db,
        &options(Format::Csv, fixture("kutt.jsonl")),
    )
    .await
    .unwrap();
    assert_eq!(r.stopped.as_ref().map(|e| e.line), Some(1), "{r:?}");
    // A Kutt file broken on line 3: lines 1 and 2 are imported and reported.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kutt.jsonl");
    std::fs::write(
        &file,
        "{\"target\":\"https://example.com/a\",\"address\":\"ka\"}\n\
         {\"target\":\"https://example.com/b\",\"address\":\"kb\"}\n\
         long_url,code\n\
         {\"target\":\"https://example.com/c\",\"address\":\"kc\"}\n",
    )
    .unwrap();
    let r = run(&app.running.state.db, &options(Format::Kutt, file))
        .await
        .unwrap();
    assert_eq!(r.stopped.as_ref().map(|e| e.line), Some(3), "{r:?}");
    assert_eq!(r.imported, 2);
    let mut text = Vec::new();
    r.write_to(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("stopped: line 3:"), "{text}");
    assert!(text.contains("imported 2 links"), "{text}");
}

#[tokio::test]
async fn the_command_line_imports_and_exports_round_trip() {
    let app = TestApp::start().await;
    let control = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_control"))
            .args(args)
            .args(["--database-url", app.pg.url()])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = control(&[
        "import",
        "--from",
        "shlink",
        fixture("shlink.csv").to_str().unwrap(),
        "--org",
        "acme",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(report.contains("line 4: invalid:"), "{report}");
    assert!(
        report.contains("imported 3 links; 0 clashes, 1 invalid rows"),
        "{report}"
    );

    let out = control(&["export", "--org", "acme"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv_text = String::from_utf8(out.stdout).unwrap();
    assert!(
        csv_text.starts_with("code,domain,target,title,tags,"),
        "{csv_text}"
    );
    assert!(
        csv_text.contains("sh-one,,https://example.com/one,Launch post,launch|blog,301"),
        "{csv_text}"
    );
    let out = control(&["export", "--org", "acme", "--format", "jsonl"]);
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["code"], "sh-one");

    // The CSV export imports into another organization as it was.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.csv");
    std::fs::write(&file, &csv_text).unwrap();
    sqlx::query("INSERT INTO organizations (name) VALUES ('initech')")
        .execute(&app.running.state.db)
        .await
        .unwrap();
    let out = control(&[
        "import",
        "--from",
        "csv",
        file.to_str().unwrap(),
        "--org",
        "initech",
    ]);
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(
        report.contains("imported 0 links; 3 clashes"),
        "the codes are taken on this domain: {report}"
    );
    // Unknown organization, unknown format: refused.
    let out = control(&[
        "import",
        "--from",
        "csv",
        file.to_str().unwrap(),
        "--org",
        "nobody",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nobody"));
    let out = control(&[
        "import",
        "--from",
        "tinyurl",
        file.to_str().unwrap(),
        "--org",
        "acme",
    ]);
    assert!(!out.status.success());
    // A file in the wrong format: non-zero, the line named.
    let out = control(&[
        "import",
        "--from",
        "kutt",
        file.to_str().unwrap(),
        "--org",
        "acme",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn an_import_beside_api_creates_of_its_codes_never_deadlocks_them() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("links.csv");
    let mut text = String::from("target,code\n");
    for i in 0..3000 {
        text.push_str(&format!("https://example.com/{i},race-{i}\n"));
    }
    std::fs::write(&file, text).unwrap();
    let mut opts = options(Format::Csv, file);
    opts.batch_size = 250;
    let db = app.running.state.db.clone();
    let import = tokio::spawn(async move { run(&db, &opts).await.unwrap() });
    // Meanwhile the API creates some of the same codes, from the end down.
    let mut api_made = 0;
    for i in (0..3000).rev().step_by(25) {
        let (s, b) = app
            .send_json(
                Method::POST,
                "/v1/links",
                &app.admin_key,
                &json!({ "target": "https://api.example/", "custom_alias": format!("race-{i}") }),
            )
            .await;
        assert!(s == 201 || s == 409, "{s} {b}");
        api_made += usize::from(s == 201);
    }
    let r = import.await.unwrap();
    assert!(r.finished, "{r:?}");
    assert_eq!(r.imported as usize + api_made, 3000, "{r:?}");
    assert_eq!(r.count("clash"), api_made, "every code the API made first");
    let (codes, upserts) = links_and_upserts(&app).await;
    assert_eq!(codes.len(), 3000, "each code once");
    assert_eq!(codes, upserts, "one outbox row each, gapless");
}

/// code, expires_at and valid_since (unix seconds), expired_url.
type StoredLifecycle = (String, Option<i64>, Option<i64>, Option<String>);

/// Lifecycle columns (our CSV's `expires_at`, `valid_since`, `expired_url`;
/// Kutt's `expire_in`) are read and checked like the API's fields: a link
/// already expired in its source, an unreadable time, a window that closes
/// before it opens and a bad `expired_url` are invalid rows; the others
/// carry their values into PostgreSQL and the change stream.
#[tokio::test]
async fn lifecycle_columns_are_imported_and_checked_like_the_apis() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("lifecycle.csv");
    std::fs::write(
        &csv,
        "target,code,expires_at,valid_since,expired_url\n\
         https://example.com/a,lc-a,2099-01-01T00:00:00Z,2098-01-01T00:00:00+01:00,https://example.com/after\n\
         https://example.com/b,lc-b,,,\n\
         https://example.com/c,lc-c,2001-01-01T00:00:00Z,,\n\
         https://example.com/d,lc-d,next tuesday,,\n\
         https://example.com/e,lc-e,2099-01-01T00:00:00Z,2099-06-01T00:00:00Z,\n\
         https://example.com/f,lc-f,2099-01-01T00:00:00Z,,javascript:alert(1)\n",
    )
    .unwrap();
    let r = run(&app.running.state.db, &options(Format::Csv, csv))
        .await
        .unwrap();
    assert_eq!(r.imported, 2, "{r:?}");
    assert_eq!(
        problems(&r),
        vec![
            (4, "invalid"),
            (5, "invalid"),
            (6, "invalid"),
            (7, "invalid")
        ],
        "{r:?}"
    );
    let messages: Vec<&str> = r.problems.iter().map(|p| p.message.as_str()).collect();
    assert!(messages[0].contains("expires_at"), "{messages:?}");
    assert!(messages[1].contains("RFC 3339"), "{messages:?}");
    assert!(messages[2].contains("valid_since"), "{messages:?}");
    assert!(messages[3].contains("expired_url"), "{messages:?}");

    let kutt = dir.path().join("kutt.jsonl");
    std::fs::write(
        &kutt,
        r#"{"address":"kt-exp","target":"https://example.com/k","expire_in":"2099-03-01T12:00:00.000Z"}"#,
    )
    .unwrap();
    let r = run(&app.running.state.db, &options(Format::Kutt, kutt))
        .await
        .unwrap();
    assert_eq!(r.imported, 1, "{r:?}");

    let db = &app.running.state.db;
    let stored: Vec<StoredLifecycle> = sqlx::query_as(
        "SELECT code, extract(epoch FROM expires_at)::bigint, extract(epoch FROM valid_since)::bigint, expired_url
           FROM links ORDER BY code",
    )
    .fetch_all(db)
    .await
    .unwrap();
    assert_eq!(
        stored,
        vec![
            ("kt-exp".into(), Some(4_076_049_600), None, None),
            (
                "lc-a".into(),
                Some(4_070_908_800),
                Some(4_039_369_200),
                Some("https://example.com/after".into())
            ),
            ("lc-b".into(), None, None, None),
        ]
    );
    // The engines get the same values.
    let deltas: Vec<Vec<u8>> = sqlx::query_scalar("SELECT delta FROM link_outbox ORDER BY seq")
        .fetch_all(db)
        .await
        .unwrap();
    let a = deltas
        .iter()
        .filter_map(|d| match LinkDelta::decode(d).unwrap().change {
            LinkChange::Upsert { link } if link.code == "lc-a" => Some(link),
            _ => None,
        })
        .next()
        .expect("lc-a's change");
    assert_eq!(a.expires_at, Some(4_070_908_800));
    assert_eq!(a.valid_since, Some(4_039_369_200));
    assert_eq!(a.expired_url.as_deref(), Some("https://example.com/after"));
}

/// `max_visits` in our CSV: imported and checked as the API checks it, on
/// the engines' change, and written back by `control export`.
#[tokio::test]
async fn max_visits_is_imported_checked_and_exported() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("limits.csv");
    std::fs::write(
        &csv,
        "target,code,max_visits\n\
         https://example.com/a,mv-a,100\n\
         https://example.com/b,mv-b,\n\
         https://example.com/c,mv-c,0\n\
         https://example.com/d,mv-d,ten\n\
         https://example.com/e,mv-e,2000000000\n",
    )
    .unwrap();
    let r = run(&app.running.state.db, &options(Format::Csv, csv))
        .await
        .unwrap();
    assert_eq!(r.imported, 2, "{r:?}");
    assert_eq!(
        problems(&r),
        vec![(4, "invalid"), (5, "invalid"), (6, "invalid")],
        "{r:?}"
    );
    assert!(
        r.problems.iter().all(|p| p.message.contains("max_visits")),
        "{r:?}"
    );
    let db = &app.running.state.db;
    let stored: Vec<(String, Option<i32>)> =
        sqlx::query_as("SELECT code, max_visits FROM links ORDER BY code")
            .fetch_all(db)
            .await
            .unwrap();
    assert_eq!(
        stored,
        vec![("mv-a".into(), Some(100)), ("mv-b".into(), None)]
    );
    let limited = sqlx::query_scalar::<_, Vec<u8>>("SELECT delta FROM link_outbox ORDER BY seq")
        .fetch_all(db)
        .await
        .unwrap()
        .iter()
        .find_map(|d| match LinkDelta::decode(d).unwrap().change {
            LinkChange::Upsert { link } if link.code == "mv-a" => Some(link),
            _ => None,
        })
        .expect("mv-a's change");
    assert_eq!(limited.max_visits, Some(100));

    let org: i64 = sqlx::query_scalar("SELECT org_id FROM links WHERE code = 'mv-a'")
        .fetch_one(db)
        .await
        .unwrap();
    let mut out = Vec::new();
    control::import::export::export(
        db,
        org,
        control::import::export::ExportFormat::Csv,
        "https://sho.rt",
        &mut out,
    )
    .await
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    assert!(
        lines.next().unwrap().ends_with(",split,max_visits"),
        "{text}"
    );
    assert!(lines.next().unwrap().ends_with(",100"), "{text}");
    assert!(lines.next().unwrap().ends_with(','), "{text}");
}
