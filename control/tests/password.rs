//! Password-protected links in control (docs/password-links.md): the
//! write-only `password` through the API (create, patch, bulk), its
//! refusals, the verifier engines get (outbox deltas and the snapshot: an
//! argon2id hash of that password, never the password), and the dashboard
//! form, which never shows a password back.

mod common;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use common::{TestApp, outbox};
use control::auth::Role;
use reqwest::Method;
use serde_json::json;
use snapshots::delta::LinkChange;

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

fn verifies(phc: &str, password: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), &PasswordHash::new(phc).unwrap())
        .is_ok()
}

#[tokio::test]
async fn a_password_is_kept_as_a_verifier_engines_accept() {
    let app = TestApp::start().await;
    let link = app
        .create(json!({
            "target": "https://brand.example/preview",
            "custom_alias": "preview",
            "password": "launch 2026"
        }))
        .await;
    assert_eq!(link["password_protected"], json!(true), "{link}");
    let text = link.to_string();
    assert!(
        !text.contains("launch 2026") && !text.contains("argon2"),
        "{text}"
    );

    // The delta carries an argon2id verifier of it, with parameters
    // engines accept; never the password.
    let record = sent(&app, "preview").await;
    let phc = record.password_hash.clone().expect("a verifier");
    assert!(phc.starts_with("$argon2id$v=19$m=4096,t=1,p=1$"), "{phc}");
    assert!(verifies(&phc, "launch 2026"));
    assert!(!verifies(&phc, "launch 2025"));
    snapshots::password::PasswordValue::from_phc(&phc).unwrap();
    // The snapshot too.
    let generation = app.running.state.snapshots.build().await.unwrap();
    let snapshot = snapshots::Snapshot::open(std::path::Path::new(&generation.path)).unwrap();
    assert!(snapshot.get("preview").unwrap().has_password());
    assert_eq!(
        snapshot.link_in(0, "preview").unwrap().password_hash,
        Some(phc.clone())
    );

    // GET and list show the flag only.
    let (status, got) = app
        .call(Method::GET, "/v1/links/preview", &app.admin_key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["password_protected"], json!(true));
    assert!(got.get("password").is_none() && got.get("password_hash").is_none());

    // A new password replaces the verifier; `null` removes it.
    let (status, patched) = app
        .send_json(
            Method::PATCH,
            "/v1/links/preview",
            &app.admin_key,
            &json!({"password": "second one"}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    let phc2 = sent(&app, "preview").await.password_hash.unwrap();
    assert_ne!(phc2, phc);
    assert!(verifies(&phc2, "second one"));
    // Another field's change keeps the password.
    app.send_json(
        Method::PATCH,
        "/v1/links/preview",
        &app.admin_key,
        &json!({"title": "Preview"}),
    )
    .await;
    assert_eq!(sent(&app, "preview").await.password_hash, Some(phc2));
    let (status, opened) = app
        .send_json(
            Method::PATCH,
            "/v1/links/preview",
            &app.admin_key,
            &json!({"password": null}),
        )
        .await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["password_protected"], json!(false));
    assert_eq!(sent(&app, "preview").await.password_hash, None);
}

#[tokio::test]
async fn bad_passwords_are_refused_naming_the_field() {
    let app = TestApp::start().await;
    for password in [
        json!("abc"),
        json!("x".repeat(257)),
        json!("tab\there"),
        json!(42),
    ] {
        let (status, body) = app
            .send_json(
                Method::POST,
                "/v1/links",
                &app.admin_key,
                &json!({"target": "https://example.com/", "password": password}),
            )
            .await;
        assert_eq!(status, 400, "{password}: {body}");
        if password.is_string() {
            assert_eq!(body["error"]["details"]["field"], "password", "{body}");
        }
    }
    // Bulk: per item.
    let (status, answer) = app
        .send_json(
            Method::POST,
            "/v1/links/bulk",
            &app.admin_key,
            &json!({"create": [
                {"target": "https://example.com/1", "custom_alias": "b1", "password": "good one"},
                {"target": "https://example.com/2", "custom_alias": "b2", "password": "no"}
            ]}),
        )
        .await;
    assert!(status == 200 || status == 207, "{status} {answer}");
    assert_eq!(
        answer["create"][0]["link"]["password_protected"],
        json!(true),
        "{answer}"
    );
    assert_eq!(answer["create"][1]["status"], 400, "{answer}");
    assert!(verifies(
        &sent(&app, "b1").await.password_hash.unwrap(),
        "good one"
    ));
}

#[tokio::test]
async fn the_link_form_sets_and_removes_a_password_without_showing_it() {
    let app = TestApp::start().await;
    app.user("ed@acme.example", Some(("acme", Role::Editor)))
        .await;
    let org = app.org_id("acme").await;
    let ed = app.login("ed@acme.example", common::PASSWORD).await;
    let form = app.page(&ed, &format!("/o/{org}/new-link")).await.html;
    assert!(form.contains(r#"type="password""#), "{form}");

    // Too short: the form again, the error beside the field, nothing echoed.
    let r = app
        .submit(
            &ed,
            &format!("/o/{org}/links"),
            &[
                ("target", "https://example.com/f"),
                ("custom_alias", "f"),
                ("status", "302"),
                ("password", "abc"),
            ],
        )
        .await;
    assert!((400..500).contains(&r.status), "{}", r.status);
    assert!(r.html.contains("id=\"password-error\""), "{}", r.html);
    assert!(!r.html.contains("value=\"abc\""), "{}", r.html);

    let r = app
        .submit(
            &ed,
            &format!("/o/{org}/links"),
            &[
                ("target", "https://example.com/f"),
                ("custom_alias", "f"),
                ("status", "302"),
                ("password", "form secret"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.html);
    assert!(verifies(
        &sent(&app, "f").await.password_hash.unwrap(),
        "form secret"
    ));

    let edit = app.page(&ed, &format!("/o/{org}/links/f/edit")).await.html;
    assert!(edit.contains("asks visitors for a password"), "{edit}");
    assert!(edit.contains("name=\"remove_password\""), "{edit}");
    assert!(
        !edit.contains("form secret") && !edit.contains("argon2"),
        "{edit}"
    );
    let etag = common::form_etag(&edit);
    // Saving the form with the field left empty keeps the password...
    let r = app
        .submit(
            &ed,
            &format!("/o/{org}/links/f"),
            &[
                ("target", "https://example.com/f2"),
                ("status", "302"),
                ("etag", &etag),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.html);
    let kept = sent(&app, "f").await;
    assert_eq!(kept.target, "https://example.com/f2");
    assert!(verifies(&kept.password_hash.unwrap(), "form secret"));
    // ...and the box removes it.
    let edit = app.page(&ed, &format!("/o/{org}/links/f/edit")).await.html;
    let etag = common::form_etag(&edit);
    let r = app
        .submit(
            &ed,
            &format!("/o/{org}/links/f"),
            &[
                ("target", "https://example.com/f2"),
                ("status", "302"),
                ("etag", &etag),
                ("remove_password", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.html);
    assert_eq!(sent(&app, "f").await.password_hash, None);
}
