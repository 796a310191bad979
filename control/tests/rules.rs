//! Redirect rules and A/B splits in control (docs/redirect-rules.md): the
//! `rules` and `split` fields through the API (create, get, list, patch,
//! bulk), their refusals (400s naming the place as
//! `snapshots::rules::RulesError::field` does), the records engines get
//! (outbox deltas and the snapshot), the dashboard's form and link page,
//! and the stats' `rule` breakdown and filter.

mod common;

use common::{TestApp, error_code, outbox};
use control::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use snapshots::delta::LinkChange;
use snapshots::rules::{Device, Os, QueryCondition};

fn field(body: &Value) -> &Value {
    &body["error"]["details"]["field"]
}

/// Every condition kind, and a status of its own on one rule.
fn every_kind() -> Value {
    json!([
        {"when": {"device": ["mobile", "tablet"], "os": ["ios"]}, "target": "https://apps.example/app", "status": 302},
        {"when": {"country": ["DE", "AT", "CH"]}, "target": "https://brand.example/de"},
        {"when": {"language": ["fr"]}, "target": "https://brand.example/fr"},
        {"when": {"query": {"name": "ref", "equals": "mail"}}, "target": "https://brand.example/mail"},
        {"when": {"query": {"name": "promo"}}, "target": "https://brand.example/promo"},
        {"when": {"from": "2026-12-24T00:00:00Z", "until": "2026-12-27T00:00:00Z"}, "target": "https://brand.example/xmas"}
    ])
}

fn split() -> Value {
    json!([
        {"target": "https://brand.example/a", "weight": 30},
        {"target": "https://brand.example/b", "weight": 70, "status": 307}
    ])
}

/// The newest upsert of `code` in the outbox: what the engines get.
async fn sent(app: &TestApp, code: &str) -> snapshots::Link {
    let changes = outbox(app).await;
    changes
        .iter()
        .rev()
        .find_map(|d| match &d.change {
            LinkChange::Upsert { link } if link.code == code => Some(link.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no upsert of {code}: {changes:?}"))
}

#[tokio::test]
async fn rules_and_split_round_trip_and_reach_the_engines() {
    let app = TestApp::start().await;
    let link = app
        .create(json!({
            "target": "https://brand.example/",
            "custom_alias": "brand",
            "rules": every_kind(),
            "split": split()
        }))
        .await;
    assert_eq!(link["rules"], every_kind(), "{link}");
    assert_eq!(link["split"], split());

    let (status, got) = app
        .call(Method::GET, "/v1/links/brand", &app.admin_key)
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["rules"], every_kind());
    assert_eq!(got["split"], split());
    let (_, page) = app.call(Method::GET, "/v1/links", &app.admin_key).await;
    let listed = page["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["code"] == "brand")
        .unwrap();
    assert_eq!(listed["rules"], every_kind());
    assert_eq!(listed["split"], split());

    // A link without either shows empty lists, and sends none.
    let plain = app
        .create(json!({"target": "https://brand.example/plain", "custom_alias": "plain", "rules": null, "split": []}))
        .await;
    assert_eq!(plain["rules"], json!([]));
    assert_eq!(plain["split"], json!([]));
    let record = sent(&app, "plain").await;
    assert!(record.rules.is_empty() && record.split.is_empty());

    // The delta carries the model: times as unix seconds, statuses as given
    // (absent: the link's, resolved by the snapshot).
    let record = sent(&app, "brand").await;
    record.validate().unwrap();
    assert_eq!(record.rules.len(), 6);
    assert_eq!(
        record.rules[0].when.device,
        [Device::Mobile, Device::Tablet]
    );
    assert_eq!(record.rules[0].when.os, [Os::Ios]);
    assert_eq!(record.rules[0].status.map(|s| s.code()), Some(302));
    assert_eq!(record.rules[1].when.country, ["DE", "AT", "CH"]);
    assert_eq!(record.rules[2].when.language, ["fr"]);
    assert_eq!(
        record.rules[3].when.query,
        Some(QueryCondition {
            name: "ref".into(),
            equals: Some("mail".into())
        })
    );
    assert_eq!(record.rules[4].when.query.as_ref().unwrap().equals, None);
    assert_eq!(record.rules[5].when.from, Some(1_798_070_400));
    assert_eq!(record.rules[5].when.until, Some(1_798_329_600));
    assert_eq!(record.split[1].weight, 70);
    assert_eq!(record.split[1].status.map(|s| s.code()), Some(307));

    // The snapshot holds them too, statuses resolved to the link's (301).
    let generation = app.running.state.snapshots.build().await.unwrap();
    let snapshot = snapshots::Snapshot::open(std::path::Path::new(&generation.path)).unwrap();
    assert!(snapshot.get("brand").unwrap().has_rules());
    let (rules, variants) = snapshot
        .rules_in(0, b"brand")
        .expect("the snapshot has brand's rules")
        .to_owned_rules()
        .unwrap();
    assert_eq!(rules.len(), 6);
    assert_eq!(rules[5].target, "https://brand.example/xmas");
    assert_eq!(rules[1].status.map(|s| s.code()), Some(301));
    assert_eq!(rules[0].status.map(|s| s.code()), Some(302));
    assert_eq!(variants[0].weight, 30);
    assert!(snapshot.rules_in(0, b"plain").is_none());

    // The link's UTM values go to every target engines get, its rules' and
    // variants' too; the API shows the targets as written.
    let tagged = app
        .create(json!({
            "target": "https://brand.example/t",
            "custom_alias": "tagged",
            "utm": {"source": "mail"},
            "rules": [{"when": {"os": ["android"]}, "target": "https://brand.example/app?x=1"}],
            "split": split()
        }))
        .await;
    assert_eq!(
        tagged["rules"][0]["target"],
        "https://brand.example/app?x=1"
    );
    let record = sent(&app, "tagged").await;
    assert_eq!(record.target, "https://brand.example/t?utm_source=mail");
    assert_eq!(
        record.rules[0].target,
        "https://brand.example/app?x=1&utm_source=mail"
    );
    assert!(
        record
            .split
            .iter()
            .all(|v| v.target.ends_with("?utm_source=mail")),
        "{:?}",
        record.split
    );
}

#[tokio::test]
async fn patch_replaces_keeps_and_clears() {
    let app = TestApp::start().await;
    app.create(json!({
        "target": "https://brand.example/",
        "custom_alias": "p",
        "rules": every_kind(),
        "split": split()
    }))
    .await;
    let patch = |body: Value| {
        let app = &app;
        async move {
            app.send_json(Method::PATCH, "/v1/links/p", &app.admin_key, &body)
                .await
        }
    };
    // Another field only: both stay.
    let (status, link) = patch(json!({"title": "t"})).await;
    assert_eq!(status, 200, "{link}");
    assert_eq!(link["rules"], every_kind());
    assert_eq!(link["split"], split());

    // A list replaces the whole list.
    let one = json!([{"when": {"country": ["FR"]}, "target": "https://brand.example/fr"}]);
    let (status, link) = patch(json!({"rules": one})).await;
    assert_eq!(status, 200, "{link}");
    assert_eq!(link["rules"], one);
    assert_eq!(link["split"], split());
    assert_eq!(sent(&app, "p").await.rules.len(), 1);

    // `[]` and `null` clear.
    let (status, link) = patch(json!({"split": []})).await;
    assert_eq!(status, 200, "{link}");
    assert_eq!(link["split"], json!([]));
    assert_eq!(link["rules"], one);
    let (status, link) = patch(json!({"rules": null})).await;
    assert_eq!(status, 200, "{link}");
    assert_eq!(link["rules"], json!([]));
    let record = sent(&app, "p").await;
    assert!(
        record.rules.is_empty() && record.split.is_empty(),
        "{record:?}"
    );
    let stored: (Option<Value>, Option<Value>) =
        sqlx::query_as("SELECT rules, split FROM links WHERE code = 'p'")
            .fetch_one(&app.pg.pool().await.unwrap())
            .await
            .unwrap();
    assert_eq!(stored, (None, None), "none is stored as NULL");

    // The same rules again change nothing (no new version).
    let (_, before) = patch(json!({"rules": one})).await;
    let (_, after) = patch(json!({"rules": one})).await;
    assert_eq!(before["version"], after["version"]);

    // A bad patch changes nothing.
    let (status, body) =
        patch(json!({"split": [{"target": "https://a.example/", "weight": 100}]})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "split");
    let (_, link) = app.call(Method::GET, "/v1/links/p", &app.admin_key).await;
    assert_eq!(link["split"], json!([]));
}

#[tokio::test]
async fn refusals_are_400s_naming_the_place() {
    let app = TestApp::start().await;
    let ok = json!({"when": {"os": ["android"]}, "target": "https://a.example/"});
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"rules": [ok, {"when": {"country": ["DE", "XX1"]}, "target": "https://a.example/"}]}),
            "rules[1].when.country",
            "\"XX1\"",
        ),
        (
            json!({"rules": [{"when": {}, "target": "https://a.example/"}]}),
            "rules[0].when",
            "no condition",
        ),
        (
            json!({"split": [{"target": "https://a.example/", "weight": 50}, {"target": "https://b.example/", "weight": 40}]}),
            "split",
            "weights sum to 90, not 100",
        ),
        (
            json!({"split": [{"target": "https://a.example/", "weight": 0}, {"target": "https://b.example/", "weight": 100}]}),
            "split[0].weight",
            "0 is not from 1 to 100",
        ),
        (
            json!({"split": [{"target": "https://a.example/", "weight": 1000}, {"target": "https://b.example/", "weight": 100}]}),
            "split[0].weight",
            "1000",
        ),
        (
            json!({"rules": [{"when": {"os": ["ios"]}, "target": "ftp://files.example/"}]}),
            "rules[0].target",
            "ftp",
        ),
        (
            json!({"rules": [{"when": {"os": ["ios"]}, "target": "http://10.0.0.1/"}]}),
            "rules[0].target",
            "private",
        ),
        (
            json!({"rules": [{"when": {"planet": ["mars"]}, "target": "https://a.example/"}]}),
            "rules[0].when",
            "unknown condition \"planet\"",
        ),
        (
            json!({"rules": [{"when": {"device": ["watch"]}, "target": "https://a.example/"}]}),
            "rules[0].when.device",
            "\"watch\"",
        ),
        (
            json!({"rules": [{"when": {"os": ["beos"]}, "target": "https://a.example/"}]}),
            "rules[0].when.os",
            "\"beos\"",
        ),
        (
            json!({"rules": [{"when": {"language": ["EN"]}, "target": "https://a.example/"}]}),
            "rules[0].when.language",
            "\"EN\"",
        ),
        (
            json!({"rules": [{"when": {"from": "2026-12-27T00:00:00Z", "until": "2026-12-24T00:00:00Z"}, "target": "https://a.example/"}]}),
            "rules[0].when.until",
            "not after",
        ),
        (
            json!({"rules": [{"when": {"from": "2026-12-24T00:00:00.250Z"}, "target": "https://a.example/"}]}),
            "rules[0].when.from",
            "whole seconds",
        ),
        (
            json!({"rules": [{"when": {"query": {"name": "a&b"}}, "target": "https://a.example/"}]}),
            "rules[0].when.query.name",
            "0x26",
        ),
        (
            json!({"rules": [{"when": {"os": ["ios"]}, "target": "https://a.example/", "status": 200}]}),
            "rules[0].status",
            "200",
        ),
        (
            json!({"rules": vec![ok.clone(); 17]}),
            "rules",
            "the limit is 16",
        ),
        (json!({"rules": {"when": {}}}), "rules", "list"),
        (
            json!({"split": [{"target": "https://a.example/", "weight": 100}]}),
            "split",
            "single variant",
        ),
    ];
    for (extra, name, words) in cases {
        let mut body = json!({"target": "https://example.com/"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = app
            .send_json(Method::POST, "/v1/links", &app.admin_key, &body)
            .await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(error_code(&answer), "bad_request", "{answer}");
        assert_eq!(field(&answer), name, "{body} -> {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{name}: ")), "{message}");
        assert!(message.contains(words), "{message} lacks {words}");
    }
    let (_, page) = app.call(Method::GET, "/v1/links", &app.admin_key).await;
    assert_eq!(page["links"], json!([]), "nothing was created");

    // A blocklisted host in a rule is refused as a link target's is.
    sqlx::query("INSERT INTO blocked_hosts (host, reason) VALUES ('evil.example', 'test')")
        .execute(&app.pg.pool().await.unwrap())
        .await
        .unwrap();
    let body = json!({"target": "https://example.com/", "split": [
        {"target": "https://a.example/", "weight": 50},
        {"target": "https://www.evil.example/", "weight": 50}]});
    let (status, answer) = app
        .send_json(Method::POST, "/v1/links", &app.admin_key, &body)
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (422, "blocked_host"),
        "{answer}"
    );
}

#[tokio::test]
async fn bulk_reports_the_bad_items_field() {
    let app = TestApp::start().await;
    app.create(json!({"target": "https://example.com/", "custom_alias": "u1"}))
        .await;
    let body = json!({
        "create": [
            {"target": "https://example.com/1", "custom_alias": "b1", "rules": every_kind()},
            {"target": "https://example.com/2", "custom_alias": "b2",
             "rules": [{"when": {"os": ["ios"]}, "target": "https://a.example/"},
                       {"when": {"country": ["XX1"]}, "target": "https://a.example/"}]}
        ],
        "update": [
            {"code": "u1", "set": {"split": split()}},
            {"code": "u1", "set": {"split": [{"target": "https://a.example/", "weight": 45}, {"target": "https://b.example/", "weight": 45}]}}
        ]
    });
    let (status, answer) = app
        .send_json(Method::POST, "/v1/links/bulk", &app.admin_key, &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["succeeded"], 2, "{answer}");
    assert_eq!(answer["create"][0]["status"], 201);
    assert_eq!(answer["create"][0]["link"]["rules"], every_kind());
    assert_eq!(answer["create"][1]["status"], 400);
    assert_eq!(
        answer["create"][1]["error"]["details"]["field"],
        "rules[1].when.country"
    );
    assert_eq!(answer["update"][0]["link"]["split"], split());
    assert_eq!(answer["update"][1]["status"], 400);
    assert_eq!(answer["update"][1]["error"]["details"]["field"], "split");
    assert_eq!(sent(&app, "b1").await.rules.len(), 6);
    assert_eq!(sent(&app, "u1").await.split.len(), 2);
}

#[tokio::test]
async fn the_link_form_edits_rules_and_split_as_json() {
    let app = TestApp::start().await;
    app.user("ed@acme.example", Some(("acme", Role::Editor)))
        .await;
    let org = app.org_id("acme").await;
    let ed = app.login("ed@acme.example", common::PASSWORD).await;
    let form = app.page(&ed, &format!("/o/{org}/new-link")).await.html;
    assert!(form.contains("name=\"rules\""), "{form}");
    assert!(form.contains("name=\"split\""), "{form}");

    // A bad rule: the form again, the error (naming the place) beside it.
    let bad = r#"[{"when": {"country": ["XX1"]}, "target": "https://example.com/x"}]"#;
    let r = app
        .submit(
            &ed,
            &format!("/o/{org}/links"),
            &[
                ("target", "https://example.com/f"),
                ("custom_alias", "f"),
                ("status", "302"),
                ("rules", bad),
            ],
        )
        .await;
    assert!((400..500).contains(&r.status), "{}", r.status);
    assert!(r.html.contains("id=\"rules-error\""), "{}", r.html);
    assert!(r.html.contains("rules[0].when.country"), "{}", r.html);
    // Not JSON at all.
    let r = app
        .submit(
            &ed,
            &format!("/o/{org}/links"),
            &[
                ("target", "https://example.com/f"),
                ("custom_alias", "f"),
                ("status", "302"),
                ("split", "[{"),
            ],
        )
        .await;
    assert!((400..500).contains(&r.status), "{}", r.status);
    assert!(r.html.contains("id=\"split-error\""), "{}", r.html);

    let rules = r#"[{"when": {"country": ["DE"]}, "target": "https://example.com/de"}]"#;
    let split = r#"[{"target": "https://example.com/a", "weight": 50}, {"target": "https://example.com/b", "weight": 50}]"#;
    let r = app
        .submit(
            &ed,
            &format!("/o/{org}/links"),
            &[
                ("target", "https://example.com/f"),
                ("custom_alias", "f"),
                ("status", "302"),
                ("rules", rules),
                ("split", split),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.html);
    let (_, link) = app.call(Method::GET, "/v1/links/f", &app.admin_key).await;
    assert_eq!(link["rules"][0]["when"]["country"], json!(["DE"]));
    assert_eq!(link["split"][1]["target"], "https://example.com/b");

    // The link page shows them; the edit form is filled with them.
    let page = app.page(&ed, &format!("/o/{org}/links/f")).await.html;
    assert!(page.contains("id=\"rules\""), "{page}");
    assert!(page.contains("country DE"), "{page}");
    assert!(page.contains("https://example.com/de"), "{page}");
    assert!(page.contains("50 % → "), "{page}");
    let edit = app.page(&ed, &format!("/o/{org}/links/f/edit")).await.html;
    assert!(edit.contains("&quot;country&quot;"), "{edit}");
    assert!(edit.contains("https://example.com/a"), "{edit}");
    let etag = common::form_etag(&edit);
    // Emptying the rules clears them; the split stays as the form had it.
    let r = app
        .submit(
            &ed,
            &format!("/o/{org}/links/f"),
            &[
                ("target", "https://example.com/f"),
                ("status", "302"),
                ("etag", &etag),
                ("rules", ""),
                ("split", split),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.html);
    let (_, link) = app.call(Method::GET, "/v1/links/f", &app.admin_key).await;
    assert_eq!(link["rules"], json!([]));
    assert_eq!(link["split"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn import_and_export_carry_rules_and_split() {
    use control::import::formats::Format;
    use control::import::{ImportOptions, run};

    let app = TestApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("links.csv");
    let mut w = csv::Writer::from_path(&file).unwrap();
    w.write_record(["target", "code", "rules", "split"])
        .unwrap();
    w.write_record([
        "https://example.com/a",
        "ia",
        &every_kind().to_string(),
        &split().to_string(),
    ])
    .unwrap();
    w.write_record([
        "https://example.com/b",
        "ib",
        r#"[{"when": {"country": ["XX1"]}, "target": "https://a.example/"}]"#,
        "",
    ])
    .unwrap();
    w.write_record(["https://example.com/c", "ic", "", "[{"])
        .unwrap();
    w.write_record(["https://example.com/d", "id", "", ""])
        .unwrap();
    w.flush().unwrap();
    drop(w);
    let mut options = ImportOptions::new(Format::Csv, file, "acme");
    options.short_base = "https://sho.rt".into();
    let report = run(&app.running.state.db, &options).await.unwrap();
    assert_eq!(report.imported, 2, "{report:?}");
    assert_eq!(report.count("invalid"), 2, "{report:?}");
    assert!(
        report.problems[0].message.contains("rules[0].when.country"),
        "{report:?}"
    );
    assert!(report.problems[1].message.contains("split"), "{report:?}");
    let (_, a) = app.call(Method::GET, "/v1/links/ia", &app.admin_key).await;
    assert_eq!(a["rules"], every_kind());
    assert_eq!(a["split"], split());
    assert_eq!(sent(&app, "ia").await.rules.len(), 6);
    let (_, d) = app.call(Method::GET, "/v1/links/id", &app.admin_key).await;
    assert_eq!(d["rules"], json!([]));

    let out = app
        .export("acme", control::import::export::ExportFormat::Csv)
        .await;
    let mut csv = csv::Reader::from_reader(out.as_bytes());
    let header = csv.headers().unwrap().clone();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    let a = rows.iter().find(|r| &r[0] == "ia").unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&a[at("rules")]).unwrap(),
        every_kind()
    );
    assert_eq!(
        serde_json::from_str::<Value>(&a[at("split")]).unwrap(),
        split()
    );
    let d = rows.iter().find(|r| &r[0] == "id").unwrap();
    assert_eq!((&d[at("rules")], &d[at("split")]), ("", ""));
}

/// 2026-01-01T10:00:00Z.
const T10: u64 = 1_767_261_600;

#[tokio::test]
async fn stats_break_down_and_filter_by_rule() {
    let ch = common::clickhouse_with_schema("ctlrules").await;
    let (url, db) = (ch.url().to_owned(), ch.name().to_owned());
    let app = TestApp::start_with(move |c| {
        c.clickhouse = Some(url);
        c.clickhouse_database = db;
    })
    .await;
    app.create(json!({"target": "https://a.example/", "custom_alias": "abc", "rules": every_kind(), "split": split()}))
        .await;
    let org: i64 = sqlx::query_scalar("SELECT org_id FROM links WHERE code = 'abc'")
        .fetch_one(&app.pg.pool().await.unwrap())
        .await
        .unwrap();
    // Two visits by the link's target, three by rule 2 (country), one by
    // the split's second variant.
    let rows: Vec<String> = [(1, 0), (2, 0), (3, 2), (4, 2), (5, 2), (6, 101)]
        .iter()
        .map(|(event, rule)| {
            format!(
                "('{event:016}', toDateTime({T10}), 'abc', '', 302, 'DE', 'mobile', 0, {event}, {org}, {rule})"
            )
        })
        .collect();
    ch.query(&format!(
        "INSERT INTO clicks (event_id, ts, code, domain, status, country, device, is_bot, visitor_hash, org_id, rule) VALUES {}",
        rows.join(", ")
    ))
    .await
    .unwrap();
    let range = "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z";
    let get = |q: &str| {
        let url = format!("/v1/links/abc/stats?{range}&{q}");
        let app = &app;
        async move { app.call(Method::GET, &url, &app.admin_key).await }
    };
    let (status, b) = get("dimensions=rule").await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(
        b["dimensions"]["rule"],
        json!([
            {"value": "2", "clicks": 3, "unique_visitors": 3},
            {"value": "0", "clicks": 2, "unique_visitors": 2},
            {"value": "101", "clicks": 1, "unique_visitors": 1},
        ])
    );
    let (status, b) = get("rule=2,101").await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["totals"]["clicks"], 4);
    let (_, b) = get("rule=0&dimensions=rule,country").await;
    assert_eq!(b["totals"]["clicks"], 2);
    assert_eq!(b["dimensions"]["rule"][0]["value"], "0");
    let (_, b) = get("bucket=hour&cross=rule").await;
    assert_eq!(b["cross"].as_array().unwrap().len(), 3, "{b}");
    let (status, b) = app
        .call(
            Method::GET,
            &format!("/v1/stats/summary?{range}&rule=101"),
            &app.admin_key,
        )
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["links"][0]["clicks"], 1);
    for q in ["rule=x", "rule=", "rule=-1", "rule=70000"] {
        let (status, b) = get(q).await;
        assert_eq!((status, error_code(&b)), (400, "bad_request"), "{q}: {b}");
        assert_eq!(field(&b), "rule", "{b}");
    }
}
