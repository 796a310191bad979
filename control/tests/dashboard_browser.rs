//! Browser tests of the dashboard: headless Chromium (Debian's `chromium`
//! and `chromium-driver`, through `testkit::Browser`) against the real
//! `control` binary on its own PostgreSQL database. Skipped with a loud
//! message when the browser is not installed, unless `CI` is set.

use fantoccini::{Client, Locator};
use std::process::Command;
use std::time::Duration;
use testkit::{Browser, PgDatabase, ReadyChild};

const PASSWORD: &str = "correct horse battery staple";

/// The control binary serving one database, on a port known in advance
/// (the dashboard's forms are checked against `public_url`'s origin).
struct Stack {
    pg: PgDatabase,
    base: String,
    control: ReadyChild,
    _dir: tempfile::TempDir,
}

async fn stack() -> Stack {
    stack_with(&[]).await
}

/// [`stack`] with more `control serve` arguments.
async fn stack_with(args: &[String]) -> Stack {
    testkit::require_services().await.expect("services up");
    let pg = PgDatabase::create_with_prefix("dash")
        .await
        .expect("database");
    let dir = tempfile::tempdir().unwrap();
    let port = testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_control"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", pg.url(), "--public-url", &base])
        .args(["--short-base", "https://sho.rt"])
        .arg("--snapshot-dir")
        .arg(dir.path().join("snapshots"))
        .args(args);
    let control = ReadyChild::spawn("control", cmd).expect("control starts");
    Stack {
        pg,
        base,
        control,
        _dir: dir,
    }
}

impl Stack {
    /// Where control's log (its stderr) goes.
    fn control_log(&self) -> std::path::PathBuf {
        self.control.log.clone()
    }

    /// A user made with the real `control users create`, a member of
    /// `acme` with `role`.
    fn user(&self, email: &str, role: &str) {
        let file = self._dir.path().join(format!("{email}.pw"));
        std::fs::write(&file, PASSWORD).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_control"))
            .args([
                "users", "create", "--email", email, "--org", "acme", "--role", role,
            ])
            .arg("--password-file")
            .arg(&file)
            .args(["--database-url", self.pg.url()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// An admin key of `acme` from the real `control keys create`.
    fn admin_key(&self) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_control"))
            .args([
                "keys",
                "create",
                "--org",
                "acme",
                "--database-url",
                self.pg.url(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    async fn org_id(&self) -> i64 {
        let pool = self.pg.pool().await.unwrap();
        sqlx::query_scalar("SELECT id FROM organizations WHERE name = 'acme'")
            .fetch_one(&pool)
            .await
            .unwrap()
    }
}

/// An `application/x-www-form-urlencoded` body, as a browser's form sends.
fn form_body<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k.as_ref(), v.as_ref());
    }
    s.finish()
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn value(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

async fn fill(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Waits until the page is at `want` (a form's answer may land after the click returns).
async fn wait_path(c: &Client, want: &str) {
    testkit::wait_for_ok(
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let got = c
                .current_url()
                .await
                .map_err(|e| e.to_string())?
                .path()
                .to_owned();
            if got == want {
                Ok(())
            } else {
                Err(format!("at {got}, want {want}"))
            }
        },
    )
    .await
    .unwrap();
}

/// Waits until an element `css` exists and its text contains `needle`; its text.
async fn wait_text(c: &Client, css: &str, needle: &str) -> String {
    testkit::wait_for_ok(
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let e = c.find(Locator::Css(css)).await.map_err(|e| e.to_string())?;
            let t = e.text().await.map_err(|e| e.to_string())?;
            if t.contains(needle) {
                Ok(t)
            } else {
                Err(format!("{css}: {t:?} lacks {needle:?}"))
            }
        },
    )
    .await
    .unwrap()
}

async fn exists(c: &Client, css: &str) -> bool {
    !c.find_all(Locator::Css(css)).await.unwrap().is_empty()
}

/// Waits until the page's `css` elements' `data-code`s are `codes`.
async fn wait_for_codes(c: &Client, codes: &[&str]) {
    let want: Vec<String> = codes.iter().map(|s| s.to_string()).collect();
    testkit::wait_for_ok(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            let mut got = Vec::new();
            for row in c
                .find_all(Locator::Css("#links tr[data-code]"))
                .await
                .map_err(|e| e.to_string())?
            {
                got.push(
                    row.attr("data-code")
                        .await
                        .map_err(|e| e.to_string())?
                        .unwrap_or_default(),
                );
            }
            if got == want {
                Ok(())
            } else {
                Err(format!("rows {got:?}, want {want:?}"))
            }
        },
    )
    .await
    .unwrap();
}

async fn sign_in(c: &Client, base: &str, email: &str, password: &str) {
    c.goto(&format!("{base}/signin")).await.unwrap();
    fill(c, "#email", email).await;
    fill(c, "#password", password).await;
    click(c, "form button[type=submit]").await;
}

#[tokio::test]
async fn an_owner_signs_in_edits_links_revokes_a_key_and_signs_out() {
    let Some(browser) = Browser::start(1280, 900).await.unwrap() else {
        return;
    };
    let s = stack().await;
    s.user("owner@acme.example", "owner");
    let org = s.org_id().await;
    let c = &browser.client;
    let base = &s.base;

    // Not signed in: to the sign-in page. A wrong password says so and
    // keeps the address.
    c.goto(&format!("{base}/o/{org}/links")).await.unwrap();
    wait_path(c, "/signin").await;
    sign_in(c, base, "owner@acme.example", "wrong password").await;
    wait_text(c, "#signin-error", "wrong").await;
    assert_eq!(value(c, "#email").await, "owner@acme.example");
    wait_path(c, "/signin").await;

    sign_in(c, base, "owner@acme.example", PASSWORD).await;
    wait_path(c, &format!("/o/{org}")).await;
    assert!(text(c, "#who").await.contains("owner@acme.example"));

    // Create: an error lands beside its field, and nothing typed is lost.
    c.goto(&format!("{base}/o/{org}/new-link")).await.unwrap();
    fill(c, "#target", "not a url").await;
    fill(c, "#custom_alias", "docs1").await;
    fill(c, "#title", "Docs").await;
    fill(c, "#tags", "alpha, beta").await;
    click(c, "#save").await;
    wait_text(c, "#target-error", "target").await;
    assert_eq!(value(c, "#target").await, "not a url");
    assert_eq!(value(c, "#custom_alias").await, "docs1");
    assert_eq!(value(c, "#title").await, "Docs");
    assert_eq!(value(c, "#tags").await, "alpha, beta");
    fill(c, "#target", "https://example.com/docs").await;
    click(c, "#save").await;
    wait_path(c, &format!("/o/{org}/links/docs1")).await;
    assert_eq!(text(c, "#target").await, "https://example.com/docs");
    assert!(exists(c, "#qr").await);

    // Edit: the form holds the stored values; the change shows.
    click(c, "#edit-link").await;
    wait_path(c, &format!("/o/{org}/links/docs1/edit")).await;
    assert_eq!(value(c, "#title").await, "Docs");
    fill(c, "#title", "Docs v2").await;
    click(c, "#disabled").await;
    click(c, "#save").await;
    wait_path(c, &format!("/o/{org}/links/docs1")).await;
    wait_text(c, "#link-title", "Docs v2").await;
    assert!(text(c, "#state").await.contains("disabled"));

    // A second link, then the list, its search as one types, and a tag.
    c.goto(&format!("{base}/o/{org}/new-link")).await.unwrap();
    fill(c, "#target", "https://other.example.org/").await;
    fill(c, "#custom_alias", "other1").await;
    click(c, "#save").await;
    wait_path(c, &format!("/o/{org}/links/other1")).await;
    c.goto(&format!("{base}/o/{org}/links")).await.unwrap();
    wait_for_codes(c, &["other1", "docs1"]).await;
    c.find(Locator::Css("#q"))
        .await
        .unwrap()
        .send_keys("example.com/do")
        .await
        .unwrap();
    wait_for_codes(c, &["docs1"]).await;
    c.goto(&format!("{base}/o/{org}/links?tag=beta"))
        .await
        .unwrap();
    wait_for_codes(c, &["docs1"]).await;

    // A key: its secret shown once and working; revoked, it stops.
    c.goto(&format!("{base}/o/{org}/keys")).await.unwrap();
    fill(c, "#name", "ci").await;
    click(c, "#create-key").await;
    let secret = wait_text(c, "#secret", "sk_").await;
    assert!(secret.starts_with("sk_"), "{secret}");
    let http = reqwest::Client::new();
    let links = |key: String| {
        let http = http.clone();
        let url = format!("{base}/v1/links");
        async move {
            http.get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(links(secret.clone()).await, 200);
    c.goto(&format!("{base}/o/{org}/keys")).await.unwrap();
    assert!(
        !c.source().await.unwrap().contains(&secret),
        "the secret is shown once"
    );
    let prefix = &secret[..11];
    click(c, &format!("tr[data-prefix='{prefix}'] button")).await;
    wait_text(c, &format!("tr[data-prefix='{prefix}']"), "revoked").await;
    assert_eq!(links(secret).await, 401);

    // An invitation: sent from the members page; its link (in control's
    // log, as no SMTP is set) carries the token in the fragment, which the
    // page's script puts into the form.
    c.goto(&format!("{base}/o/{org}/members")).await.unwrap();
    fill(c, "#email", "new@acme.example").await;
    click(c, "#invite-form button").await;
    wait_text(c, "#notice", "Invited new@acme.example").await;

    // Sign out: the pages send one to sign in again.
    click(c, "#sign-out").await;
    wait_path(c, "/signin").await;
    c.goto(&format!("{base}/o/{org}/links")).await.unwrap();
    wait_path(c, "/signin").await;

    let link = testkit::wait_for_some(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            let log = std::fs::read_to_string(s.control_log()).ok()?;
            let at = log.find("/accept-invitation#token=")?;
            Some(log[at..at + "/accept-invitation#token=".len() + 43].to_owned())
        },
    )
    .await
    .unwrap();
    c.goto(&format!("{base}{link}")).await.unwrap();
    fill(c, "#password", "a brand new password").await;
    click(c, "#accept-form button").await;
    wait_text(c, "#done", "is now a viewer of acme").await;
    sign_in(c, base, "new@acme.example", "a brand new password").await;
    wait_path(c, &format!("/o/{org}")).await;
    browser.close().await;
}

#[tokio::test]
async fn a_viewer_sees_no_edit_controls_and_a_forged_write_is_refused() {
    let Some(browser) = Browser::start(1280, 900).await.unwrap() else {
        return;
    };
    let s = stack().await;
    s.user("viewer@acme.example", "viewer");
    let org = s.org_id().await;
    let key = s.admin_key();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = &s.base;
    let r = http
        .post(format!("{base}/v1/links"))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "target": "https://example.com/kept", "custom_alias": "kept1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let c = &browser.client;
    sign_in(c, base, "viewer@acme.example", PASSWORD).await;
    wait_path(c, &format!("/o/{org}")).await;
    c.goto(&format!("{base}/o/{org}/links")).await.unwrap();
    wait_for_codes(c, &["kept1"]).await;
    assert!(!exists(c, "#new-link").await);
    c.goto(&format!("{base}/o/{org}/links/kept1"))
        .await
        .unwrap();
    assert_eq!(text(c, "#target").await, "https://example.com/kept");
    assert!(!exists(c, "#edit-link").await);
    assert!(
        !c.source().await.unwrap().contains("API keys"),
        "no admin sections"
    );

    // The viewer's own session and CSRF token, used for writes the pages
    // do not offer: the server refuses them.
    let cookie = c.get_named_cookie("session").await.unwrap();
    let cookie = format!("session={}", cookie.value());
    let csrf = c
        .find(Locator::Css("form[action='/signout'] input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let http = http.clone();
        let cookie = cookie.clone();
        let url = format!("{base}{path}");
        async move {
            let r = http
                .post(url)
                .header("cookie", cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form_body(&form))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let create = vec![
        ("csrf", csrf.clone()),
        ("target", "https://evil.example/".to_string()),
        ("custom_alias", "forged".to_string()),
        ("status", "301".to_string()),
    ];
    let (status, body) = post(format!("/o/{org}/links"), create.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("links:write"), "{body}");
    let edit = vec![
        ("csrf", csrf.clone()),
        ("target", "https://evil.example/".to_string()),
        ("status", "301".to_string()),
    ];
    let (status, _) = post(format!("/o/{org}/links/kept1"), edit).await;
    assert_eq!(status, 403);
    let (status, _) = post(
        format!("/o/{org}/keys"),
        vec![("csrf", csrf.clone()), ("name", "x".into())],
    )
    .await;
    assert_eq!(status, 403);
    // And without the session's token, no write gets as far as the role check.
    let mut no_token = create;
    no_token[0].1 = "0".repeat(43);
    let (status, body) = post(format!("/o/{org}/links"), no_token).await;
    assert_eq!(status, 403);
    assert!(body.contains("csrf_failed"), "{body}");

    // Nothing changed.
    let link: serde_json::Value = http
        .get(format!("{base}/v1/links/kept1"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(link["target"], "https://example.com/kept");
    let r = http
        .get(format!("{base}/v1/links/forged"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    click(c, "#sign-out").await;
    wait_path(c, "/signin").await;
    browser.close().await;
}

#[tokio::test]
async fn an_editor_claims_verifies_configures_and_deletes_a_domain() {
    let Some(browser) = Browser::start(1280, 900).await.unwrap() else {
        return;
    };
    // pebble-challtestsrv as the DNS server control asks for the TXT record.
    let dns = testkit::Pebble::start(testkit::free_port()).unwrap();
    let s = stack_with(&["--dns-server".into(), dns.dns_addr().to_string()]).await;
    s.user("ed@acme.example", "editor");
    let org = s.org_id().await;
    let c = &browser.client;
    let base = &s.base;
    let name = "go.brand.example";
    let page = format!("/o/{org}/domains/{name}");

    sign_in(c, base, "ed@acme.example", PASSWORD).await;
    wait_path(c, &format!("/o/{org}")).await;
    click(c, &format!("header.top nav a[href='/o/{org}/domains']")).await;
    wait_path(c, &format!("/o/{org}/domains")).await;

    // A bad name: the error beside the field, the text kept; then a good one.
    fill(c, "#name", "https://go.brand.example/").await;
    click(c, "#claim").await;
    wait_text(c, "#name-error", "no scheme").await;
    assert_eq!(value(c, "#name").await, "https://go.brand.example/");
    fill(c, "#name", name).await;
    click(c, "#claim").await;
    wait_path(c, &page).await;
    let record = text(c, "#txt-name").await;
    assert_eq!(record, format!("_links-verification.{name}"));
    let token = text(c, "#txt-value").await;
    assert_eq!(token.len(), 32, "{token}");
    assert!(text(c, "#domain-state").await.contains("pending"));

    // Verify before the record is there: the reason; then published, verified.
    click(c, "#verify").await;
    wait_text(c, "#verify-error", "no TXT record").await;
    dns.set_txt(&record, &token).unwrap();
    click(c, "#verify").await;
    wait_text(c, "#notice", "Verified").await;
    assert!(text(c, "#domain-state").await.contains("verified"));
    assert!(!exists(c, "#publish").await);

    // Settings.
    fill(c, "#root_redirect", "https://brand.example/").await;
    fill(c, "#hsts_max_age", "31536000").await;
    click(c, "#save-settings").await;
    wait_text(c, "#notice", "Settings saved").await;
    assert_eq!(value(c, "#root_redirect").await, "https://brand.example/");
    assert_eq!(value(c, "#hsts_max_age").await, "31536000");

    // Delete, through its confirmation page.
    click(c, "#delete-domain").await;
    wait_path(c, &format!("{page}/delete")).await;
    click(c, "#confirm-delete").await;
    wait_text(c, "#notice", &format!("Deleted {name}")).await;
    assert!(!exists(c, &format!("tr[data-domain='{name}']")).await);
    browser.close().await;
}
