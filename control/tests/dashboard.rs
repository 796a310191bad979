//! The dashboard over plain HTTP (the browser flows are in
//! `dashboard_browser.rs`): security headers, asset caching, the CSRF field
//! of its forms, and that its writes pass the API's role checks.

mod common;

use common::TestApp;
use control::auth::Role;

use common::{form_body, no_redirects as http};

async fn org_id(app: &TestApp) -> i64 {
    app.org_id("acme").await
}

#[tokio::test]
async fn pages_have_a_strict_policy_and_assets_a_content_hash() {
    let app = TestApp::start().await;
    let r = http()
        .get(format!("{}/signin", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(part), "{csp} lacks {part}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );
    for name in ["dashboard.css", "htmx-2.0.4.min.js"] {
        let at = html
            .find(&format!("/{name}"))
            .unwrap_or_else(|| panic!("{name} linked"));
        let start = html[..at].rfind("/assets/").unwrap();
        let url = &html[start..at + name.len() + 1];
        let hash = url.split('/').nth(2).unwrap();
        assert_eq!(hash.len(), 16, "{url}");
        let r = http()
            .get(format!("{}{url}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{url}");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        let stale = url.replace(hash, "0000000000000000");
        let r = http()
            .get(format!("{}{stale}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "an old hash is not served");
    }
    // Not signed in: pages send one to sign in, and never answer a 5xx.
    let r = http()
        .get(format!("{}/o/1/links", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/signin");
}

#[tokio::test]
async fn a_form_write_needs_its_own_sessions_token_and_origin() {
    let app = TestApp::start().await;
    app.user("ed@acme.example", Some(("acme", Role::Editor)))
        .await;
    app.user("other@acme.example", Some(("acme", Role::Editor)))
        .await;
    let ed = app.login("ed@acme.example", common::PASSWORD).await;
    let other = app.login("other@acme.example", common::PASSWORD).await;
    let org = org_id(&app).await;
    let post = |csrf: &str, origin: Option<&str>| {
        let mut r = http()
            .post(format!("{}/o/{org}/links", app.base))
            .header("cookie", &ed.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[
                ("csrf", csrf),
                ("target", "https://example.com/x"),
                ("custom_alias", "formx"),
                ("status", "302"),
            ]));
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    let r = post(&other.csrf, None).await.unwrap();
    assert_eq!(r.status(), 403, "another session's token");
    assert!(r.text().await.unwrap().contains("csrf_failed"));
    let r = post("", None).await.unwrap();
    assert_eq!(r.status(), 403, "no token");
    let r = post(&ed.csrf, Some("https://evil.example")).await.unwrap();
    assert_eq!(r.status(), 403, "a foreign origin");
    let (s, _) = app
        .call(reqwest::Method::GET, "/v1/links/formx", &app.admin_key)
        .await;
    assert_eq!(s, 404, "nothing written so far");

    let r = post(&ed.csrf, Some("http://127.0.0.1:8000")).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/o/{org}/links/formx"));
    let (s, link) = app
        .call(reqwest::Method::GET, "/v1/links/formx", &app.admin_key)
        .await;
    assert_eq!(s, 200);
    assert_eq!(link["status"], 302);
    // Audited as the user, like an API write of theirs.
    let actor: Option<i64> = sqlx::query_scalar(
        "SELECT user_id FROM audit_log WHERE action = 'link.create' AND subject = 'formx'",
    )
    .fetch_one(&app.running.state.db)
    .await
    .unwrap();
    assert!(actor.is_some());
}

#[tokio::test]
async fn the_pages_refuse_what_the_role_may_not_do() {
    let app = TestApp::start().await;
    app.user("viewer@acme.example", Some(("acme", Role::Viewer)))
        .await;
    app.user("ed@acme.example", Some(("acme", Role::Editor)))
        .await;
    app.user("stranger@globex.example", Some(("globex", Role::Owner)))
        .await;
    app.create(serde_json::json!({ "target": "https://example.com/a", "custom_alias": "linka" }))
        .await;
    let org = org_id(&app).await;
    let viewer = app.login("viewer@acme.example", common::PASSWORD).await;
    let ed = app.login("ed@acme.example", common::PASSWORD).await;
    let stranger = app.login("stranger@globex.example", common::PASSWORD).await;
    let get = |s: &common::Session, path: String| {
        http()
            .get(format!("{}{path}", app.base))
            .header("cookie", &s.cookie)
            .send()
    };
    let status = |r: reqwest::Response| r.status().as_u16();

    assert_eq!(
        status(get(&viewer, format!("/o/{org}/links")).await.unwrap()),
        200
    );
    assert_eq!(
        status(get(&viewer, format!("/o/{org}/links/linka")).await.unwrap()),
        200
    );
    assert_eq!(
        status(get(&viewer, format!("/o/{org}/new-link")).await.unwrap()),
        403
    );
    assert_eq!(
        status(
            get(&viewer, format!("/o/{org}/links/linka/edit"))
                .await
                .unwrap()
        ),
        403
    );
    assert_eq!(
        status(
            get(&ed, format!("/o/{org}/links/linka/edit"))
                .await
                .unwrap()
        ),
        200
    );
    assert_eq!(
        status(get(&ed, format!("/o/{org}/keys")).await.unwrap()),
        403
    );
    assert_eq!(
        status(get(&ed, format!("/o/{org}/audit")).await.unwrap()),
        403
    );
    assert_eq!(
        status(get(&stranger, format!("/o/{org}/links")).await.unwrap()),
        403
    );
    assert_eq!(
        status(get(&ed, format!("/o/{org}/links/nosuch")).await.unwrap()),
        404
    );
    let r = get(&viewer, format!("/o/{org}/links/linka/qr.png?download=1"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("linka.png")
    );
    // Bad input is a 4xx page, never a 5xx.
    assert_eq!(
        status(get(&ed, format!("/o/{org}/links?cursor=zz")).await.unwrap()),
        200
    );
    assert_eq!(
        status(get(&ed, format!("/o/{org}/links/%FF")).await.unwrap()),
        400
    );
    assert_eq!(status(get(&ed, "/o/nope/links".into()).await.unwrap()), 403);

    let r = http()
        .post(format!("{}/o/{org}/links/linka", app.base))
        .header("cookie", &viewer.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("csrf", viewer.csrf.as_str()),
            ("target", "https://evil.example/"),
            ("status", "301"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (_, link) = app
        .call(reqwest::Method::GET, "/v1/links/linka", &app.admin_key)
        .await;
    assert_eq!(link["target"], "https://example.com/a");
}

#[tokio::test]
async fn invitations_and_password_resets_through_the_pages() {
    let app = TestApp::start().await;
    app.user("owner@acme.example", Some(("acme", Role::Owner)))
        .await;
    let owner = app.login("owner@acme.example", common::PASSWORD).await;
    let org = org_id(&app).await;
    let post = |path: &str, cookie: Option<&str>, pairs: &[(&str, &str)]| {
        let mut r = http()
            .post(format!("{}{path}", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(pairs));
        if let Some(c) = cookie {
            r = r.header("cookie", c.to_owned());
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, body) = post(
        &format!("/o/{org}/members/invite"),
        Some(&owner.cookie),
        &[
            ("csrf", &owner.csrf),
            ("email", "new@acme.example"),
            ("role", "editor"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains("Invited new@acme.example as editor"),
        "{body}"
    );
    let token = app.mailed_token("new@acme.example", 0).await;

    let page = http()
        .get(format!("{}/accept-invitation", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("data-token-from-fragment")
    );
    let (s, body) = post(
        "/accept-invitation",
        None,
        &[("token", "nope"), ("password", "")],
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("not valid"), "{body}");
    let (s, body) = post(
        "/accept-invitation",
        None,
        &[("token", &token), ("password", "short")],
    )
    .await;
    assert_eq!(s, 400, "a password too short: {body}");
    let (s, body) = post(
        "/accept-invitation",
        None,
        &[("token", &token), ("password", "a brand new password")],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("is now an editor of acme"), "{body}");
    app.login("new@acme.example", "a brand new password").await;
    let (s, body) = post(
        "/accept-invitation",
        None,
        &[("token", &token), ("password", "")],
    )
    .await;
    assert_eq!(s, 410, "once only: {body}");

    let (s, body) = post("/forgot-password", None, &[("email", "new@acme.example")]).await;
    assert_eq!(s, 200, "{body}");
    let (s2, body2) = post(
        "/forgot-password",
        None,
        &[("email", "nobody@acme.example")],
    )
    .await;
    assert_eq!(
        (s, body.len()),
        (s2, body2.len()),
        "the same answer for anyone"
    );
    let token = app.mailed_token("new@acme.example", 1).await;
    let (s, body) = post(
        "/reset-password",
        None,
        &[("token", &token), ("password", "another new password")],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("Password set"), "{body}");
    app.login("new@acme.example", "another new password").await;
    let (s, _) = post(
        "/reset-password",
        None,
        &[("token", &token), ("password", "yet another password")],
    )
    .await;
    assert_eq!(s, 410);
}

#[tokio::test]
async fn deleting_from_the_edit_page_is_an_editors_and_is_gone() {
    let app = TestApp::start().await;
    app.user("viewer@acme.example", Some(("acme", Role::Viewer)))
        .await;
    app.user("ed@acme.example", Some(("acme", Role::Editor)))
        .await;
    let link = app
        .create(serde_json::json!({ "target": "https://example.com/d", "custom_alias": "dela" }))
        .await;
    let org = org_id(&app).await;
    let viewer = app.login("viewer@acme.example", common::PASSWORD).await;
    let ed = app.login("ed@acme.example", common::PASSWORD).await;
    let delete = |s: &common::Session, etag: &str| {
        http()
            .post(format!("{}/o/{org}/links/dela/delete", app.base))
            .header("cookie", &s.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[("csrf", s.csrf.as_str()), ("etag", etag)]))
            .send()
    };
    let etag = format!("\"{}\"", "0.0");
    assert_eq!(delete(&viewer, "").await.unwrap().status(), 403);
    assert_eq!(
        delete(&ed, &etag).await.unwrap().status(),
        412,
        "an older version"
    );
    let (s, _) = app
        .call(reqwest::Method::GET, "/v1/links/dela", &app.admin_key)
        .await;
    assert_eq!(s, 200, "still there");
    let page = http()
        .get(format!("{}/o/{org}/links/dela/edit", app.base))
        .header("cookie", &ed.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The form carries the version it shows (maud escapes the ETag's quotes).
    let current = common::form_etag(&page);
    assert!(current.ends_with(".1\""), "{current}");
    let r = delete(&ed, &current).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/o/{org}/links"));
    let (s, _) = app
        .call(reqwest::Method::GET, "/v1/links/dela", &app.admin_key)
        .await;
    assert_eq!(s, 404);
    assert_eq!(link["version"], 1);
}

#[tokio::test]
async fn dashboard_pages_are_counted_by_their_route() {
    let app = TestApp::start().await;
    let r = http()
        .get(format!("{}/signin", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let metrics = testkit::prometheus::parse(
        &http()
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let n = testkit::prometheus::sum(
        &metrics,
        "control_http_requests_total",
        &["route=\"/signin\""],
    );
    assert_eq!(n, 1.0, "{metrics:?}");
}

#[tokio::test]
async fn links_on_the_organizations_own_domains_and_the_code_new() {
    const BRAND: &str = "go.acme.example";
    let app = TestApp::start().await;
    app.user("ed@acme.example", Some(("acme", Role::Editor)))
        .await;
    let org = org_id(&app).await;
    let ed = app.login("ed@acme.example", common::PASSWORD).await;
    // A pending domain takes links (served once verified).
    let (s, body) = app
        .send_json(
            reqwest::Method::POST,
            "/v1/domains",
            &app.admin_key,
            &serde_json::json!({ "name": BRAND }),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    app.create(
        serde_json::json!({ "target": "https://example.com/default", "custom_alias": "promo" }),
    )
    .await;
    app.create(
        serde_json::json!({ "target": "https://example.com/called-new", "custom_alias": "new" }),
    )
    .await;
    // The create form offers the organization's domains.
    let form = app.page(&ed, &format!("/o/{org}/new-link")).await;
    assert_eq!(form.status, 200);
    assert!(
        form.html.contains(&format!("<option value=\"{BRAND}\"")),
        "{form:?}"
    );
    // The same code on the brand's domain: its page is addressed by domain.
    let r = app
        .submit(
            &ed,
            &format!("/o/{org}/links"),
            &[
                ("target", "https://example.com/brand"),
                ("custom_alias", "promo"),
                ("status", "302"),
                ("domain", BRAND),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let page = format!("/o/{org}/links/promo?domain={BRAND}");
    assert_eq!(r.location.as_deref(), Some(page.as_str()));
    let brand = app.page(&ed, &page).await;
    assert_eq!(brand.status, 200);
    let brand = brand.html;
    assert!(brand.contains("https://example.com/brand"), "{brand}");
    assert!(
        brand.contains(&format!("/{BRAND}/promo")),
        "its short URL: {brand}"
    );
    assert!(brand.contains(&format!("qr.svg?domain={BRAND}")), "{brand}");
    let default = app.page(&ed, &format!("/o/{org}/links/promo")).await.html;
    assert!(default.contains("https://example.com/default"), "{default}");

    // The list's domain filter.
    let list = app
        .page(&ed, &format!("/o/{org}/links?domain={BRAND}"))
        .await;
    assert_eq!(list.status, 200);
    let list = list.html;
    assert_eq!(list.matches("data-code=").count(), 1, "{list}");
    assert!(list.contains(&format!("data-domain=\"{BRAND}\"")), "{list}");
    let all = app.page(&ed, &format!("/o/{org}/links")).await.html;
    assert_eq!(all.matches("data-code=\"promo\"").count(), 2, "{all}");

    // Editing the brand's link changes that one only.
    let edit = app
        .page(&ed, &format!("/o/{org}/links/promo/edit?domain={BRAND}"))
        .await
        .html;
    let etag = common::form_etag(&edit);
    let r = app
        .submit(
            &ed,
            &format!("/o/{org}/links/promo"),
            &[
                ("target", "https://example.com/brand-2"),
                ("status", "302"),
                ("etag", &etag),
                ("domain", BRAND),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let (_, after) = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/links/promo?domain={BRAND}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(after["target"], "https://example.com/brand-2");
    let (_, untouched) = app
        .call(reqwest::Method::GET, "/v1/links/promo", &app.admin_key)
        .await;
    assert_eq!(untouched["target"], "https://example.com/default");

    // A link whose code is `new` has its page like any other.
    let new = app.page(&ed, &format!("/o/{org}/links/new")).await;
    assert_eq!(new.status, 200);
    let new = new.html;
    assert!(new.contains("https://example.com/called-new"), "{new}");
}

#[tokio::test]
async fn a_key_made_on_the_keys_page_can_expire() {
    let app = TestApp::start().await;
    app.user("own@acme.example", Some(("acme", Role::Owner)))
        .await;
    let org = org_id(&app).await;
    let owner = app.login("own@acme.example", common::PASSWORD).await;
    let create = |expires_at: &str| {
        http()
            .post(format!("{}/o/{org}/keys", app.base))
            .header("cookie", &owner.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[
                ("csrf", owner.csrf.as_str()),
                ("name", "expiring"),
                ("scope_links_read", "on"),
                ("expires_at", expires_at),
            ]))
            .send()
    };
    // Not a date, or already past: the form again with the error beside the
    // field and what was typed kept; no key made.
    for (typed, says) in [
        ("next tuesday", "is not a date and time"),
        ("2001-01-01T00:00", "must be in the future"),
    ] {
        let r = create(typed).await.unwrap();
        assert!(r.status().is_client_error(), "{typed}: {}", r.status());
        let page = r.text().await.unwrap();
        assert!(page.contains("id=\"expires_at-error\""), "{page}");
        assert!(page.contains(says), "{typed}: {page}");
        assert!(page.contains(&format!("value=\"{typed}\"")), "kept: {page}");
    }
    let r = create("2099-06-01T12:30").await.unwrap();
    assert_eq!(r.status(), 201);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("2099-06-01 12:30"),
        "the expiry in the list: {page}"
    );
    let expires: Vec<Option<time::OffsetDateTime>> =
        sqlx::query_scalar("SELECT expires_at FROM api_keys WHERE name = 'expiring'")
            .fetch_all(&app.running.state.db)
            .await
            .unwrap();
    assert_eq!(
        expires,
        [Some(time::macros::datetime!(2099-06-01 12:30 UTC))]
    );
}

/// The link form has the lifecycle options the API has: a start time and
/// an expired URL, shown on the link's page, kept by an edit that does not
/// touch them, and an invalid one shown beside its field.
#[tokio::test]
async fn the_link_form_sets_valid_since_and_expired_url() {
    let app = TestApp::start().await;
    app.user("ed@acme.example", Some(("acme", Role::Editor)))
        .await;
    let org = org_id(&app).await;
    let ed = app.login("ed@acme.example", common::PASSWORD).await;
    let form = app.page(&ed, &format!("/o/{org}/new-link")).await;
    assert_eq!(form.status, 200);
    let form = form.html;
    for field in ["valid_since", "expired_url", "expires_at"] {
        assert!(
            form.contains(&format!("name=\"{field}\"")),
            "{field}: {form}"
        );
    }
    // An expired URL that is no URL: the form again, the error beside it.
    let r = app
        .submit(
            &ed,
            &format!("/o/{org}/links"),
            &[
                ("target", "https://example.com/sale"),
                ("custom_alias", "sale"),
                ("status", "302"),
                ("expired_url", "javascript:alert(1)"),
            ],
        )
        .await;
    assert!((400..500).contains(&r.status), "{}", r.status);
    assert!(r.html.contains("id=\"expired_url-error\""), "{}", r.html);
    let r = app
        .submit(
            &ed,
            &format!("/o/{org}/links"),
            &[
                ("target", "https://example.com/sale"),
                ("custom_alias", "sale"),
                ("status", "302"),
                ("valid_since", "2030-01-01T09:00"),
                ("expires_at", "2030-02-01T00:00"),
                ("expired_url", "https://example.com/sale-over"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let (_, link) = app
        .call(reqwest::Method::GET, "/v1/links/sale", &app.admin_key)
        .await;
    assert_eq!(link["valid_since"], "2030-01-01T09:00:00Z");
    assert_eq!(link["expired_url"], "https://example.com/sale-over");
    let page = app.page(&ed, &format!("/o/{org}/links/sale")).await.html;
    assert!(page.contains("https://example.com/sale-over"), "{page}");
    let list = app.page(&ed, &format!("/o/{org}/links")).await.html;
    assert!(list.contains("scheduled"), "a link not valid yet: {list}");
    // The edit form shows both; saving it as shown keeps them.
    let edit = app
        .page(&ed, &format!("/o/{org}/links/sale/edit"))
        .await
        .html;
    assert!(edit.contains("value=\"2030-01-01T09:00\""), "{edit}");
    let field = |name: &str| {
        let at = edit
            .find(&format!("name=\"{name}\" value=\""))
            .unwrap_or_else(|| panic!("{name}: {edit}"))
            + name.len()
            + 15;
        edit[at..]
            .split('"')
            .next()
            .unwrap()
            .replace("&quot;", "\"")
    };
    let kept: Vec<(&str, String)> = [
        "etag",
        "expires_was",
        "valid_since_was",
        "valid_since",
        "expires_at",
        "expired_url",
    ]
    .into_iter()
    .map(|name| (name, field(name)))
    .collect();
    let mut pairs = vec![("target", "https://example.com/sale-2"), ("status", "302")];
    pairs.extend(kept.iter().map(|(k, v)| (*k, v.as_str())));
    let r = app
        .submit(&ed, &format!("/o/{org}/links/sale"), &pairs)
        .await;
    assert_eq!(r.status, 303);
    let (_, link) = app
        .call(reqwest::Method::GET, "/v1/links/sale", &app.admin_key)
        .await;
    assert_eq!(link["target"], "https://example.com/sale-2");
    assert_eq!(link["valid_since"], "2030-01-01T09:00:00Z");
    assert_eq!(link["expired_url"], "https://example.com/sale-over");
}

/// The link form takes a visit limit like the API: a number that is not
/// one, or one out of range, is shown beside its field; a limit is shown on
/// the link's page and kept by an edit that shows it.
#[tokio::test]
async fn the_link_form_sets_max_visits() {
    let app = TestApp::start().await;
    app.user("ed@acme.example", Some(("acme", Role::Editor)))
        .await;
    let org = org_id(&app).await;
    let ed = app.login("ed@acme.example", common::PASSWORD).await;
    let form = app.page(&ed, &format!("/o/{org}/new-link")).await.html;
    assert!(form.contains("name=\"max_visits\""), "{form}");
    for bad in ["ten", "0", "1000000001"] {
        let r = app
            .submit(
                &ed,
                &format!("/o/{org}/links"),
                &[
                    ("target", "https://example.com/offer"),
                    ("custom_alias", "offer"),
                    ("status", "302"),
                    ("max_visits", bad),
                ],
            )
            .await;
        assert!((400..500).contains(&r.status), "{bad}: {}", r.status);
        assert!(
            r.html.contains("id=\"max_visits-error\""),
            "{bad}: {}",
            r.html
        );
    }
    let r = app
        .submit(
            &ed,
            &format!("/o/{org}/links"),
            &[
                ("target", "https://example.com/offer"),
                ("custom_alias", "offer"),
                ("status", "302"),
                ("max_visits", "7"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let (_, link) = app
        .call(reqwest::Method::GET, "/v1/links/offer", &app.admin_key)
        .await;
    assert_eq!(
        (&link["max_visits"], &link["visits_left"]),
        (&serde_json::json!(7), &serde_json::json!(7))
    );
    let page = app.page(&ed, &format!("/o/{org}/links/offer")).await.html;
    assert!(page.contains("id=\"max-visits\""), "{page}");
    let edit = app
        .page(&ed, &format!("/o/{org}/links/offer/edit"))
        .await
        .html;
    assert!(edit.contains("name=\"max_visits\" value=\"7\""), "{edit}");
}
