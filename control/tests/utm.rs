//! UTM parameters per link in control: the `utm` object through the API
//! (create, get, list, patch, bulk), clearing, its checks (400 naming
//! `utm.<field>`), the merged target each write sends the engines and the
//! snapshot holds while the API keeps `target` as written, the dashboard's
//! form, and `control import` / `control export` columns.

mod common;

use common::{TestApp, error_code, outbox};
use control::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use snapshots::delta::LinkChange;

/// The target the newest change for `code` gives the engines.
async fn sent_target(app: &TestApp, code: &str) -> String {
    let changes = outbox(app).await;
    changes
        .iter()
        .rev()
        .find_map(|d| match &d.change {
            LinkChange::Upsert { link } if link.code == code => Some(link.target.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no upsert of {code}: {changes:?}"))
}

fn field(body: &Value) -> &Value {
    &body["error"]["details"]["field"]
}

#[tokio::test]
async fn utm_round_trips_and_the_engines_get_the_merged_target() {
    let app = TestApp::start().await;
    let link = app
        .create(json!({
            "target": "https://example.com/p?utm_source=old&a=1#top",
            "custom_alias": "spring",
            "utm": {"source": "news letter", "medium": "email", "campaign": "spring/26",
                    "term": "", "content": null}
        }))
        .await;
    // The API keeps the target as written and the values apart.
    assert_eq!(
        link["target"],
        "https://example.com/p?utm_source=old&a=1#top"
    );
    assert_eq!(
        link["utm"],
        json!({"source": "news letter", "medium": "email", "campaign": "spring/26",
               "term": null, "content": null})
    );
    let merged = "https://example.com/p?a=1&utm_source=news%20letter&utm_medium=email&utm_campaign=spring%2F26#top";
    assert_eq!(sent_target(&app, "spring").await, merged);

    let (status, got) = app
        .call(Method::GET, "/v1/links/spring", &app.admin_key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["utm"], link["utm"]);
    assert_eq!(got["target"], link["target"]);
    let plain = app
        .create(json!({"target": "https://example.com/plain", "custom_alias": "plain"}))
        .await;
    assert!(plain["utm"].is_null(), "{plain}");
    assert_eq!(
        sent_target(&app, "plain").await,
        "https://example.com/plain",
        "no UTM: the target byte for byte"
    );
    let (_, page) = app.call(Method::GET, "/v1/links", &app.admin_key).await;
    let listed: Vec<&Value> = page["links"].as_array().unwrap().iter().collect();
    let spring = listed.iter().find(|l| l["code"] == "spring").unwrap();
    assert_eq!(spring["utm"], link["utm"]);
    assert!(listed.iter().find(|l| l["code"] == "plain").unwrap()["utm"].is_null());

    // The snapshot holds the merged target too.
    let generation = app.running.state.snapshots.build().await.unwrap();
    let snapshot = snapshots::Snapshot::open(std::path::Path::new(&generation.path)).unwrap();
    assert_eq!(snapshot.get("spring").unwrap().target(), merged);
    assert_eq!(
        snapshot.get("plain").unwrap().target(),
        "https://example.com/plain"
    );

    // Patch: "" clears one, null another, a value sets one, absent stays.
    let (status, patched) = app
        .send_json(
            Method::PATCH,
            "/v1/links/spring",
            &app.admin_key,
            &json!({"utm": {"source": "", "medium": null, "term": "shoes"}}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        patched["utm"],
        json!({"source": null, "medium": null, "campaign": "spring/26",
               "term": "shoes", "content": null})
    );
    assert_eq!(
        sent_target(&app, "spring").await,
        "https://example.com/p?utm_source=old&a=1&utm_campaign=spring%2F26&utm_term=shoes#top",
        "a parameter the link no longer sets is the target's again"
    );
    // A patch of the target alone keeps the values and merges them anew.
    let (status, patched) = app
        .send_json(
            Method::PATCH,
            "/v1/links/spring",
            &app.admin_key,
            &json!({"target": "https://example.com/q"}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        sent_target(&app, "spring").await,
        "https://example.com/q?utm_campaign=spring%2F26&utm_term=shoes"
    );
    // The same values again: nothing written, the same version.
    let version = patched["version"].clone();
    let (_, again) = app
        .send_json(
            Method::PATCH,
            "/v1/links/spring",
            &app.admin_key,
            &json!({"utm": {"campaign": "spring/26"}}),
        )
        .await;
    assert_eq!(again["version"], version);
    // "utm": null clears every value: the engines get the plain target.
    let (status, cleared) = app
        .send_json(
            Method::PATCH,
            "/v1/links/spring",
            &app.admin_key,
            &json!({"utm": null}),
        )
        .await;
    assert_eq!(status, 200, "{cleared}");
    assert!(cleared["utm"].is_null(), "{cleared}");
    assert_eq!(sent_target(&app, "spring").await, "https://example.com/q");

    // Bulk: creates and updates take the same object.
    let (status, answer) = app
        .send_json(
            Method::POST,
            "/v1/links/bulk",
            &app.admin_key,
            &json!({
                "create": [{"target": "https://example.com/b", "custom_alias": "b1",
                            "utm": {"content": "banner ü"}}],
                "update": [{"code": "plain", "set": {"utm": {"source": "bulk"}}}]
            }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["failed"], 0, "{answer}");
    assert_eq!(
        answer["create"][0]["link"]["utm"]["content"], "banner ü",
        "{answer}"
    );
    assert_eq!(answer["update"][0]["link"]["utm"]["source"], "bulk");
    assert_eq!(
        sent_target(&app, "b1").await,
        "https://example.com/b?utm_content=banner%20%C3%BC"
    );
    assert_eq!(
        sent_target(&app, "plain").await,
        "https://example.com/plain?utm_source=bulk"
    );
}

#[tokio::test]
async fn bad_utm_values_are_400s_naming_the_field() {
    let app = TestApp::start().await;
    let long = "x".repeat(201);
    for (utm, name) in [
        (json!({"source": long}), "utm.source"),
        (json!({"medium": "a\u{0}b"}), "utm.medium"),
        (json!({"campaign": "line\nbreak"}), "utm.campaign"),
        (json!({"term": "é".repeat(201)}), "utm.term"),
    ] {
        let body = json!({"target": "https://example.com/", "utm": utm});
        let (status, answer) = app
            .send_json(Method::POST, "/v1/links", &app.admin_key, &body)
            .await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(error_code(&answer), "bad_request", "{answer}");
        assert_eq!(field(&answer), name, "{answer}");
    }
    // 200 characters of any width are fine.
    app.create(json!({"target": "https://example.com/", "utm": {"term": "é".repeat(200)}}))
        .await;
    // Not a field of `utm`, or not an object: the body does not fit.
    for utm in [
        json!({"sauce": "x"}),
        json!("source=x"),
        json!({"source": 1}),
    ] {
        let (status, answer) = app
            .send_json(
                Method::POST,
                "/v1/links",
                &app.admin_key,
                &json!({"target": "https://example.com/", "utm": utm}),
            )
            .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(error_code(&answer), "invalid_json", "{answer}");
    }

    // Each value fits, but the target with them merged is past the 8 KiB
    // a snapshot takes: 400 naming the value that takes it over.
    let max = snapshots::link::MAX_TARGET_LEN;
    let target = format!("https://example.com/{}", "p".repeat(max - 20 - 150));
    let (status, answer) = app
        .send_json(
            Method::POST,
            "/v1/links",
            &app.admin_key,
            &json!({"target": target, "custom_alias": "big",
                    "utm": {"source": "s", "campaign": "ü".repeat(100)}}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(field(&answer), "utm.campaign", "{answer}");
    app.create(json!({"target": target, "custom_alias": "big", "utm": {"source": "s"}}))
        .await;
    // A patch whose result breaks it: a longer value, or a longer target.
    for patch in [
        json!({"utm": {"content": "ü".repeat(100)}}),
        json!({"target": format!("{target}{}", "q".repeat(140))}),
    ] {
        let (status, answer) = app
            .send_json(Method::PATCH, "/v1/links/big", &app.admin_key, &patch)
            .await;
        assert_eq!(status, 400, "{patch} -> {answer}");
        let name = field(&answer).as_str().unwrap();
        assert!(name.starts_with("utm."), "{answer}");
    }
    let (_, link) = app.call(Method::GET, "/v1/links/big", &app.admin_key).await;
    assert_eq!(link["utm"]["source"], "s", "nothing written");
    assert_eq!(link["target"], target.as_str());

    // Bulk: a value over 200 characters is the schema's, so the whole
    // request; a merge past the limit is the item's own 400.
    let (status, answer) = app
        .send_json(
            Method::POST,
            "/v1/links/bulk",
            &app.admin_key,
            &json!({"create": [{"target": "https://example.com/", "utm": {"source": "ok"}},
                               {"target": "https://example.com/", "utm": {"medium": long}}]}),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(field(&answer), "create[1].utm.medium", "{answer}");
    let (status, answer) = app
        .send_json(
            Method::POST,
            "/v1/links/bulk",
            &app.admin_key,
            &json!({"create": [{"target": "https://example.com/", "custom_alias": "fine"}],
                    "update": [{"code": "big", "set": {"utm": {"term": "ü".repeat(100)}}}]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["update"][0]["status"], 400, "{answer}");
    assert_eq!(
        answer["update"][0]["error"]["details"]["field"], "utm.term",
        "{answer}"
    );
    assert_eq!(answer["create"][0]["status"], 201, "{answer}");
}

#[tokio::test]
async fn the_link_form_sets_and_clears_utm_values() {
    let app = TestApp::start().await;
    app.user("ed@acme.example", Some(("acme", Role::Editor)))
        .await;
    let org = app.org_id("acme").await;
    let ed = app.login("ed@acme.example", common::PASSWORD).await;
    let form = app.page(&ed, &format!("/o/{org}/new-link")).await.html;
    for name in [
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
    ] {
        assert!(form.contains(&format!("name=\"{name}\"")), "{name}: {form}");
    }
    // A bad value: the form again, the error beside its field.
    let r = app
        .submit(
            &ed,
            &format!("/o/{org}/links"),
            &[
                ("target", "https://example.com/f"),
                ("custom_alias", "f"),
                ("status", "302"),
                ("utm_medium", &"m".repeat(201)),
            ],
        )
        .await;
    assert!((400..500).contains(&r.status), "{}", r.status);
    assert!(r.html.contains("id=\"utm_medium-error\""), "{}", r.html);
    let r = app
        .submit(
            &ed,
            &format!("/o/{org}/links"),
            &[
                ("target", "https://example.com/f"),
                ("custom_alias", "f"),
                ("status", "302"),
                ("utm_source", "flyer"),
                ("utm_campaign", "fair 2026"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.html);
    let (_, link) = app.call(Method::GET, "/v1/links/f", &app.admin_key).await;
    assert_eq!(link["utm"]["source"], "flyer");
    assert_eq!(link["utm"]["campaign"], "fair 2026");
    assert_eq!(link["target"], "https://example.com/f");
    let page = app.page(&ed, &format!("/o/{org}/links/f")).await.html;
    assert!(
        page.contains("https://example.com/f?utm_source=flyer&amp;utm_campaign=fair%202026"),
        "the page shows where it redirects: {page}"
    );
    // The edit form shows them; emptying one clears it.
    let edit = app.page(&ed, &format!("/o/{org}/links/f/edit")).await.html;
    assert!(edit.contains("value=\"flyer\""), "{edit}");
    let etag = common::form_etag(&edit);
    let r = app
        .submit(
            &ed,
            &format!("/o/{org}/links/f"),
            &[
                ("target", "https://example.com/f"),
                ("status", "302"),
                ("etag", &etag),
                ("utm_source", ""),
                ("utm_campaign", "fair 2026"),
                ("utm_content", "a4"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.html);
    let (_, link) = app.call(Method::GET, "/v1/links/f", &app.admin_key).await;
    assert_eq!(
        link["utm"],
        json!({"source": null, "medium": null, "campaign": "fair 2026",
               "term": null, "content": "a4"})
    );
}

#[tokio::test]
async fn import_and_export_carry_the_utm_columns() {
    use control::import::formats::Format;
    use control::import::{ImportOptions, run};

    let app = TestApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("links.csv");
    let long = "c".repeat(201);
    std::fs::write(
        &file,
        format!(
            "target,code,utm_source,UTM Medium,utm-campaign,utm_term,utm_content\n\
             https://example.com/a,ia,news,email,,,\n\
             https://example.com/b,ib,,,{long},,\n\
             https://example.com/c?utm_term=old,ic,,,,new term,\n"
        ),
    )
    .unwrap();
    let mut options = ImportOptions::new(Format::Csv, file, "acme");
    options.short_base = "https://sho.rt".into();
    let report = run(&app.running.state.db, &options).await.unwrap();
    assert_eq!(report.imported, 2, "{report:?}");
    assert_eq!(report.count("invalid"), 1, "{report:?}");
    assert_eq!(report.problems[0].line, 3, "{report:?}");
    assert!(
        report.problems[0].message.contains("utm.campaign"),
        "{report:?}"
    );
    let (_, a) = app.call(Method::GET, "/v1/links/ia", &app.admin_key).await;
    assert_eq!(a["utm"]["source"], "news");
    assert_eq!(a["utm"]["medium"], "email");
    assert!(a["utm"]["campaign"].is_null());
    assert_eq!(
        sent_target(&app, "ia").await,
        "https://example.com/a?utm_source=news&utm_medium=email"
    );
    assert_eq!(
        sent_target(&app, "ic").await,
        "https://example.com/c?utm_term=new%20term"
    );

    let csv = app
        .export("acme", control::import::export::ExportFormat::Csv)
        .await;
    assert!(
        csv.lines().next().unwrap().ends_with(
            ",utm_source,utm_medium,utm_campaign,utm_term,utm_content,rules,split,max_visits"
        ),
        "{csv}"
    );
    assert!(csv.contains(",news,email,,,,,,\n"), "{csv}");
    assert!(
        csv.contains("https://example.com/c?utm_term=old,"),
        "the target as written: {csv}"
    );
    assert!(csv.contains(",,,,new term,,,,\n"), "{csv}");

    let jsonl = app
        .export("acme", control::import::export::ExportFormat::Jsonl)
        .await;
    let first: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(first["utm"]["source"], "news", "{first}");
}
