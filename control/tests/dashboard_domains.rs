//! The dashboard's domains pages over plain HTTP: claiming (and the
//! errors of a bad or taken name), what to publish per verification mode,
//! verifying against a real DNS server (pebble-challtestsrv) and its
//! failure's reason, settings, ordering a certificate, deleting behind a
//! confirmation, and the API's role rules on every write (a viewer's forged
//! writes are refused). The browser flow is in `dashboard_browser.rs`.

mod common;

use common::{Page, TestApp};
use control::auth::Role;
use control::config::DomainVerification;
use reqwest::Method;
use serde_json::{Value, json};

const NAME: &str = "go.brand.example";
const RECORD: &str = "_links-verification.go.brand.example";

/// The domain as the API shows it to acme's admin key.
async fn api_domain(app: &TestApp, name: &str) -> (u16, Value) {
    app.call(Method::GET, &format!("/v1/domains/{name}"), &app.admin_key)
        .await
}

fn assert_has(page: &Page, needle: &str) {
    assert!(page.html.contains(needle), "no {needle:?} in {}", page.html);
}

fn assert_lacks(page: &Page, needle: &str) {
    assert!(!page.html.contains(needle), "{needle:?} in {}", page.html);
}

#[tokio::test]
async fn claim_publish_verify_configure_and_delete_through_the_pages() {
    let dns = testkit::Pebble::start(testkit::free_port()).unwrap();
    let server = dns.dns_addr();
    let app = TestApp::start_with(move |c| {
        c.domain_verification = DomainVerification::DnsTxt;
        c.dns_server = Some(server);
        c.default_domain = Some("sho.rt".into());
    })
    .await;
    app.user("ed@acme.example", Some(("acme", Role::Editor)))
        .await;
    let ed = app.login("ed@acme.example", common::PASSWORD).await;
    let org = app.org_id("acme").await;
    let list = format!("/o/{org}/domains");
    let page = format!("{list}/{NAME}");

    // The section is in the navigation; nothing claimed yet.
    let p = app.page(&ed, &format!("/o/{org}")).await;
    assert_has(&p, &format!("href=\"{list}\""));
    let p = app.page(&ed, &list).await;
    assert_eq!(p.status, 200);
    assert_has(&p, "id=\"no-domains\"");
    assert_has(&p, "id=\"claim-form\"");

    // A name that is not a host name, the deployment's own, a taken one:
    // the form again, the error beside the field, what was typed kept.
    for (typed, status, says) in [
        ("https://go.brand.example/", 400, "no scheme, port, path"),
        ("10.0.0.1", 400, "IP address"),
        ("x.sho.rt", 409, "cannot be claimed"),
    ] {
        let p = app.submit(&ed, &list, &[("name", typed)]).await;
        assert_eq!(p.status, status, "{typed}: {}", p.html);
        assert_has(&p, "id=\"name-error\"");
        assert_has(&p, says);
        assert_has(&p, &format!("value=\"{typed}\""));
    }
    // Claimed (as typed: normalised), to its page, which says what to publish.
    let p = app
        .submit(&ed, &list, &[("name", "Go.Brand.Example.")])
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    assert_eq!(p.location.unwrap(), format!("{page}?done=claimed"));
    let p = app
        .submit(&ed, &list, &[("name", "go.brand.example")])
        .await;
    assert_eq!(p.status, 409, "claimed twice: {}", p.html);
    assert_has(&p, "already claimed");
    let (_, domain) = api_domain(&app, NAME).await;
    let token = domain["verification"]["token"].as_str().unwrap().to_owned();
    let p = app.page(&ed, &format!("{page}?done=claimed")).await;
    assert_eq!(p.status, 200);
    assert_has(&p, "Claimed. Publish the proof below");
    assert_has(&p, &format!("<code id=\"txt-name\">{RECORD}</code>"));
    assert_has(&p, &format!("<code id=\"txt-value\">{token}</code>"));
    assert_lacks(&p, "id=\"verify-url\"");
    assert_has(&p, "pending");
    let p = app.page(&ed, &list).await;
    assert_has(&p, &format!("data-domain=\"{NAME}\""));
    assert_has(&p, "after verification");

    // Verify before the record exists, then with another value: the
    // reason the API gives, on the page; still pending.
    let verify = format!("{page}/verify");
    let p = app.submit(&ed, &verify, &[]).await;
    assert_eq!(p.status, 422, "{}", p.html);
    assert_has(&p, "id=\"verify-error\"");
    assert_has(&p, &format!("no TXT record at {RECORD}"));
    dns.set_txt(RECORD, "not-the-token").unwrap();
    let p = app.submit(&ed, &verify, &[]).await;
    assert_eq!(p.status, 422, "{}", p.html);
    assert_has(&p, "do not hold the token");
    assert_eq!(api_domain(&app, NAME).await.1["status"], "pending");
    dns.set_txt(RECORD, &token).unwrap();
    let p = app.submit(&ed, &verify, &[]).await;
    assert_eq!(p.status, 303, "{}", p.html);
    assert_eq!(p.location.unwrap(), format!("{page}?done=verified"));
    assert_eq!(api_domain(&app, NAME).await.1["status"], "verified");
    let p = app.page(&ed, &page).await;
    assert_lacks(&p, "id=\"publish\"");
    assert_has(&p, "verified");
    // No ACME CA configured: the page says so, with no order button.
    assert_has(&p, "does not order certificates");
    assert_lacks(&p, "id=\"order-certificate\"");

    // Settings: a bad value is shown beside its field with everything
    // typed kept; good ones reach the API's representation.
    let typed = [
        ("root_redirect", "https://brand.example/"),
        ("not_found_redirect", "https://brand.example/404"),
        ("http_mode", "redirect-https"),
        ("hsts_max_age", "forever"),
    ];
    let p = app.submit(&ed, &page, &typed).await;
    assert_eq!(p.status, 400, "{}", p.html);
    assert_has(&p, "id=\"hsts_max_age-error\"");
    assert_has(&p, "value=\"https://brand.example/404\"");
    assert_has(&p, "value=\"forever\"");
    let mut bad_url = typed;
    bad_url[0].1 = "javascript:alert(1)";
    bad_url[3].1 = "31536000";
    let p = app.submit(&ed, &page, &bad_url).await;
    assert_eq!(p.status, 400, "{}", p.html);
    assert_has(&p, "id=\"root_redirect-error\"");
    let mut good = bad_url;
    good[0].1 = "https://brand.example/";
    let p = app.submit(&ed, &page, &good).await;
    assert_eq!(p.status, 303, "{}", p.html);
    assert_eq!(p.location.unwrap(), format!("{page}?done=saved"));
    let (_, d) = api_domain(&app, NAME).await;
    assert_eq!(d["root_redirect"], "https://brand.example/");
    assert_eq!(d["not_found_redirect"], "https://brand.example/404");
    assert_eq!(d["http_mode"], "redirect-https");
    assert_eq!(d["hsts_max_age"], 31536000);
    // Emptied fields clear.
    let clear = [
        ("root_redirect", ""),
        ("not_found_redirect", ""),
        ("http_mode", "serve"),
        ("hsts_max_age", ""),
    ];
    assert_eq!(app.submit(&ed, &page, &clear).await.status, 303);
    let (_, d) = api_domain(&app, NAME).await;
    assert!(
        d["root_redirect"].is_null() && d["hsts_max_age"].is_null(),
        "{d}"
    );

    // Delete: a confirmation page first, which counts the live links; the
    // links go only when the box is ticked.
    app.create(json!({ "target": "https://brand.example/a", "custom_alias": "a", "domain": NAME }))
        .await;
    let confirm = format!("{page}/delete");
    let p = app.page(&ed, &confirm).await;
    assert_eq!(p.status, 200);
    assert_has(&p, "<b id=\"link-count\">1</b>");
    assert_has(&p, "id=\"cascade\"");
    let p = app.submit(&ed, &confirm, &[]).await;
    assert_eq!(p.status, 409, "{}", p.html);
    assert_has(&p, "id=\"delete-error\"");
    assert_has(&p, "tick the box");
    assert_eq!(api_domain(&app, NAME).await.0, 200, "still there");
    let p = app.submit(&ed, &confirm, &[("cascade", "on")]).await;
    assert_eq!(p.status, 303, "{}", p.html);
    let to = p.location.unwrap();
    assert_eq!(to, format!("{list}?deleted={NAME}"));
    assert_eq!(api_domain(&app, NAME).await.0, 404);
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/v1/links/a?domain={NAME}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 404, "its link went with it");
    let p = app.page(&ed, &to).await;
    assert_has(&p, &format!("Deleted {NAME}."));
    assert_lacks(&p, &format!("data-domain=\"{NAME}\""));
    // Audited as the user, like their API writes.
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE subject = $1 AND user_id IS NOT NULL ORDER BY id",
    )
    .bind(NAME)
    .fetch_all(&app.running.state.db)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "domain.create",
            "domain.verify",
            "domain.update",
            "domain.update",
            "domain.delete"
        ]
    );
    // A name already verified by another organization cannot be claimed.
    let beta = app.key("beta", &["admin"]).await;
    let (s, _) = app
        .send_json(
            Method::POST,
            "/v1/domains",
            &beta,
            &json!({ "name": "taken.example" }),
        )
        .await;
    assert_eq!(s, 201);
    sqlx::query("UPDATE domains SET verified_at = now() WHERE name = 'taken.example'")
        .execute(&app.running.state.db)
        .await
        .unwrap();
    let p = app.submit(&ed, &list, &[("name", "taken.example")]).await;
    assert_eq!(p.status, 409, "{}", p.html);
    assert_has(&p, "id=\"name-error\"");
    assert_has(&p, "another organization has verified it");
}

#[tokio::test]
async fn with_http_verification_the_page_shows_the_url_the_engines_answer() {
    // Nothing listens where the name resolves: the fetch fails, and says so.
    let nowhere = testkit::free_addr();
    let app = TestApp::start_with(move |c| {
        c.domain_verification = DomainVerification::Http;
        c.verify_resolve = vec![format!("{NAME}={nowhere}").parse().unwrap()];
    })
    .await;
    app.user("ed@acme.example", Some(("acme", Role::Editor)))
        .await;
    let ed = app.login("ed@acme.example", common::PASSWORD).await;
    let org = app.org_id("acme").await;
    let page = format!("/o/{org}/domains/{NAME}");
    let p = app
        .submit(&ed, &format!("/o/{org}/domains"), &[("name", NAME)])
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let (_, domain) = api_domain(&app, NAME).await;
    let url = domain["verification"]["url"].as_str().unwrap();
    let p = app.page(&ed, &page).await;
    assert_has(&p, &format!("<code id=\"verify-url\">{url}</code>"));
    assert_lacks(&p, "id=\"txt-name\"");
    let p = app.submit(&ed, &format!("{page}/verify"), &[]).await;
    assert_eq!(p.status, 422, "{}", p.html);
    assert_has(&p, "id=\"verify-error\"");
    assert_has(&p, &format!("fetching {url} failed"));
}

#[tokio::test]
async fn each_role_gets_the_controls_the_api_allows_and_a_viewers_forged_writes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.path().join("acme.key");
        std::fs::write(&path, "ab".repeat(32)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    // ACME on, with a CA that is never reached: the order is recorded and
    // the renewal task's attempt fails in the background. Both proofs asked.
    let app = TestApp::start_with(move |c| {
        c.domain_verification = DomainVerification::Both;
        c.acme_directory = Some("https://127.0.0.1:9/dir".into());
        c.acme_key_file = Some(key);
        c.acme_check_interval_secs = 3600;
    })
    .await;
    for (email, role) in [
        ("viewer@acme.example", Role::Viewer),
        ("ed@acme.example", Role::Editor),
        ("own@acme.example", Role::Owner),
    ] {
        app.user(email, Some(("acme", role))).await;
    }
    app.user("stranger@globex.example", Some(("globex", Role::Owner)))
        .await;
    let viewer = app.login("viewer@acme.example", common::PASSWORD).await;
    let ed = app.login("ed@acme.example", common::PASSWORD).await;
    let owner = app.login("own@acme.example", common::PASSWORD).await;
    let stranger = app.login("stranger@globex.example", common::PASSWORD).await;
    let org = app.org_id("acme").await;
    for name in [NAME, "pending.example"] {
        let (s, _) = app
            .send_json(
                Method::POST,
                "/v1/domains",
                &app.admin_key,
                &json!({ "name": name }),
            )
            .await;
        assert_eq!(s, 201);
    }
    sqlx::query("UPDATE domains SET verified_at = now() WHERE name = $1")
        .bind(NAME)
        .execute(&app.running.state.db)
        .await
        .unwrap();
    let list = format!("/o/{org}/domains");
    let page = format!("{list}/{NAME}");
    let pending = format!("{list}/pending.example");

    // The viewer sees the domains and what to publish, with no control.
    let p = app.page(&viewer, &list).await;
    assert_eq!(p.status, 200);
    assert_has(&p, &format!("data-domain=\"{NAME}\""));
    assert_lacks(&p, "claim-form");
    let p = app.page(&viewer, &page).await;
    assert_eq!(p.status, 200);
    assert_has(&p, "id=\"settings-view\"");
    for control in [
        "settings-form",
        "delete-domain",
        "order-certificate",
        "verify-form",
    ] {
        assert_lacks(&p, control);
    }
    let p = app.page(&viewer, &pending).await;
    assert_has(&p, "id=\"txt-value\"");
    assert_has(&p, "id=\"verify-url\"");
    assert_lacks(&p, "verify-form");
    assert_eq!(
        app.page(&viewer, &format!("{page}/delete")).await.status,
        403
    );
    // Another organization's member sees nothing of it.
    assert_eq!(app.page(&stranger, &page).await.status, 403);

    // The viewer's own session and token, on writes the pages do not offer.
    let outbox_before = common::outbox(&app).await.len();
    let forged: Vec<(String, Vec<(&str, &str)>)> = vec![
        (list.clone(), vec![("name", "forged.example")]),
        (
            page.clone(),
            vec![
                ("root_redirect", "https://evil.example/"),
                ("http_mode", "serve"),
            ],
        ),
        (format!("{pending}/verify"), vec![]),
        (format!("{page}/certificate"), vec![]),
        (format!("{page}/delete"), vec![("cascade", "on")]),
        (format!("{pending}/delete"), vec![]),
    ];
    for (path, fields) in &forged {
        let p = app.submit(&viewer, path, fields).await;
        assert_eq!(p.status, 403, "{path}: {}", p.html);
    }
    let (_, d) = api_domain(&app, NAME).await;
    assert!(d["root_redirect"].is_null(), "{d}");
    let (_, all) = app.call(Method::GET, "/v1/domains", &app.admin_key).await;
    assert_eq!(all["domains"].as_array().unwrap().len(), 2, "{all}");
    let certificates: i64 = sqlx::query_scalar("SELECT count(*) FROM certificates")
        .fetch_one(&app.running.state.db)
        .await
        .unwrap();
    assert_eq!(certificates, 0);
    assert_eq!(
        common::outbox(&app).await.len(),
        outbox_before,
        "nothing published"
    );

    // An editor changes domains but orders no certificate (an admin's).
    let p = app.page(&ed, &page).await;
    assert_has(&p, "id=\"settings-form\"");
    assert_has(&p, "id=\"delete-domain\"");
    assert_lacks(&p, "order-certificate");
    assert_has(&p, "An admin of the organization orders certificates");
    let p = app.submit(&ed, &format!("{page}/certificate"), &[]).await;
    assert_eq!(p.status, 403, "{}", p.html);

    // The owner orders one; the page shows its state from then on.
    let p = app.page(&owner, &page).await;
    assert_has(&p, "id=\"order-certificate\"");
    let p = app.page(&owner, &pending).await;
    assert_lacks(&p, "order-certificate");
    assert_has(&p, "once the domain is verified");
    let p = app
        .submit(&owner, &format!("{page}/certificate"), &[])
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    assert_eq!(p.location.unwrap(), format!("{page}?done=ordered"));
    let p = app.page(&owner, &format!("{page}?done=ordered")).await;
    assert_has(&p, "Certificate ordered");
    assert_has(&p, "id=\"certificate-state\"");
    let p = app.page(&owner, &list).await;
    assert_lacks(
        &p,
        "<td class=\"certificate\"><span class=\"muted\">none</span>",
    );
    let (s, cert) = app
        .call(
            Method::GET,
            &format!("/v1/domains/{NAME}/certificate"),
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 200, "{cert}");
    let by_user: Option<i64> =
        sqlx::query_scalar("SELECT user_id FROM audit_log WHERE action = 'certificate.request'")
            .fetch_one(&app.running.state.db)
            .await
            .unwrap();
    assert!(by_user.is_some());
    // A pending domain's order, forged past the page, is the API's 409.
    let p = app
        .submit(&owner, &format!("{pending}/certificate"), &[])
        .await;
    assert_eq!(p.status, 409, "{}", p.html);
    assert_has(&p, "id=\"order-error\"");
}
