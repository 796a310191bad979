//! The dashboard on the whole stack: a link made in the browser, followed
//! through the engine, its clicks carried by NATS and the analytics sidecar
//! into ClickHouse, and seen in the link's charts in the browser.
//!
//! With `DASHBOARD_SCREENSHOTS=<dir>` it also saves a screenshot of every
//! page there (`deploy/screenshots.sh` regenerates `docs/screenshots/`).

use e2e::clicks::{CHROME_WINDOWS, SAFARI_IPHONE, SLACKBOT};
use e2e::run;
use e2e::stack::{Stack, StackOptions};
use fantoccini::{Client, Locator};
use serde_json::json;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

async fn fill(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits until an element `css` is on the page.
async fn wait_for(c: &Client, css: &str) {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"));
}

/// Saves the page as `<name>.png` when screenshots were asked for.
async fn shot(c: &Client, name: &str) {
    let Some(dir) = std::env::var_os("DASHBOARD_SCREENSHOTS") else {
        return;
    };
    let png = c.screenshot().await.unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
}

#[tokio::test]
async fn a_click_through_the_engine_shows_in_the_links_chart() {
    let Some(browser) = testkit::Browser::start(1280, 1000).await.unwrap() else {
        return;
    };
    let listen = testkit::free_addr().to_string();
    let base = format!("http://{listen}");
    let mut options = StackOptions::new("e2e_dashboard");
    options.clicks = true;
    options.control_listen = listen.clone();
    options.control_args = vec!["--public-url".into(), base.clone()];
    // The test's requests say where they come from (X-Forwarded-For).
    options.engine_args = vec!["--trusted-proxy".into(), "127.0.0.0/8".into()];
    // A brand domain, verified through the engine, for the domains pages.
    options.resolve_to_engine = vec!["go.acme.example".into()];
    let stack = Stack::start(options).await;
    let (pg, engine) = (&stack.pg, stack.engine());
    let password_file = stack.control_dir.path().join("password");
    std::fs::write(&password_file, PASSWORD).unwrap();
    for (email, role) in [
        ("owner@acme.example", "owner"),
        ("editor@acme.example", "editor"),
        ("viewer@acme.example", "viewer"),
    ] {
        run(
            "control",
            &[
                "users",
                "create",
                "--email",
                email,
                "--org",
                "acme",
                "--role",
                role,
                "--password-file",
                password_file.to_str().unwrap(),
                "--database-url",
                pg.url(),
            ],
        )
        .await
        .unwrap();
    }
    let key = run(
        "control",
        &[
            "keys",
            "create",
            "--org",
            "acme",
            "--name",
            "seed",
            "--database-url",
            pg.url(),
        ],
    )
    .await
    .unwrap()
    .trim()
    .to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (code, target, tags) in [
        (
            "guide",
            "https://docs.example.com/getting-started",
            json!(["docs"]),
        ),
        (
            "pricing",
            "https://example.com/pricing?ref=short",
            json!(["marketing"]),
        ),
        ("uptime", "https://status.example.com/", json!([])),
    ] {
        let r = http
            .post(format!("{base}/v1/links"))
            .bearer_auth(&key)
            .json(&json!({ "target": target, "custom_alias": code, "tags": tags }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{code}: {}", r.text().await.unwrap());
    }

    let c = &browser.client;
    c.goto(&format!("{base}/signin")).await.unwrap();
    fill(c, "#email", "owner@acme.example").await;
    fill(c, "#password", "not it").await;
    click(c, "form button[type=submit]").await;
    wait_for(c, "#signin-error").await;
    shot(c, "signin").await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form button[type=submit]").await;
    // The answer to a form may land after the click returns.
    let org = testkit::wait_for_some(
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let path = c.current_url().await.ok()?.path().to_owned();
            path.strip_prefix("/o/").map(str::to_owned)
        },
    )
    .await
    .unwrap();

    // The link, made in the browser (first with a mistake, shown beside its field).
    c.goto(&format!("{base}/o/{org}/new-link")).await.unwrap();
    fill(c, "#target", "example.com/launch").await;
    fill(c, "#custom_alias", "launch").await;
    fill(c, "#title", "Launch announcement").await;
    fill(c, "#tags", "blog, launch").await;
    click(c, "#save").await;
    wait_for(c, "#target-error").await;
    shot(c, "link-form-error").await;
    fill(c, "#target", "https://example.com/blog/launch").await;
    click(c, "#save").await;
    wait_for(c, "#qr").await;
    assert_eq!(
        c.current_url().await.unwrap().path(),
        format!("/o/{org}/links/launch")
    );

    // Followed through the engine: three people and a bot.
    let follow = |ua: &'static str, from: &'static str| {
        http.get(format!("http://{}/launch", engine.listen()))
            .header("user-agent", ua)
            .header("referer", "https://news.example/story")
            .header("x-forwarded-for", from)
            .send()
    };
    testkit::wait_for(
        Duration::from_secs(15),
        Duration::from_millis(20),
        || async {
            follow(CHROME_WINDOWS, "175.16.199.10")
                .await
                .is_ok_and(|r| r.status() == 301)
        },
    )
    .await
    .unwrap();
    assert_eq!(
        follow(CHROME_WINDOWS, "175.16.199.10")
            .await
            .unwrap()
            .status(),
        301
    );
    assert_eq!(
        follow(SAFARI_IPHONE, "175.16.199.20")
            .await
            .unwrap()
            .status(),
        301
    );
    assert_eq!(
        follow(SLACKBOT, "175.16.199.30").await.unwrap().status(),
        301
    );

    // The link's page shows them once the sidecar has stored them: three
    // human clicks in the chart, the bot counted apart. The totals and the
    // chart read different rollups, which the sidecar fills one insert
    // after the other: both are waited for.
    let page = format!("{base}/o/{org}/links/launch?bucket=minute");
    testkit::wait_for_ok(
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async {
            c.goto(&page).await.map_err(|e| e.to_string())?;
            let total = text(c, "#total-clicks").await;
            let bots = text(c, "#bot-clicks").await;
            let mut charted = 0u64;
            for bar in c
                .find_all(Locator::Css("#clicks-chart rect.bar"))
                .await
                .map_err(|e| e.to_string())?
            {
                charted += bar
                    .attr("data-clicks")
                    .await
                    .map_err(|e| e.to_string())?
                    .and_then(|n| n.parse::<u64>().ok())
                    .ok_or("a bar without data-clicks")?;
            }
            if total == "3" && bots == "1" && charted == 3 {
                Ok(())
            } else {
                Err(format!("clicks {total}, bots {bots}, charted {charted}"))
            }
        },
    )
    .await
    .unwrap();
    let country = c
        .find(Locator::Css("#chart-country rect.bar"))
        .await
        .unwrap();
    assert_eq!(
        country.attr("data-value").await.unwrap().as_deref(),
        Some("CN")
    );
    assert_eq!(
        country.attr("data-clicks").await.unwrap().as_deref(),
        Some("3")
    );
    let referrer = c
        .find(Locator::Css("#chart-referrer rect.bar"))
        .await
        .unwrap();
    assert_eq!(
        referrer.attr("data-value").await.unwrap().as_deref(),
        Some("news.example")
    );
    // The whole page (breakdowns too) in the screenshot, per hour.
    c.set_window_size(1280, 1800).await.unwrap();
    c.goto(&format!("{base}/o/{org}/links/launch?bucket=hour"))
        .await
        .unwrap();
    assert_eq!(text(c, "#total-clicks").await, "3");
    shot(c, "link").await;
    c.set_window_size(1280, 1000).await.unwrap();

    // The other pages, for the screenshots (and that each renders).
    for (name, path) in [
        ("overview", format!("/o/{org}")),
        ("links", format!("/o/{org}/links")),
        ("link-edit", format!("/o/{org}/links/launch/edit")),
        ("members", format!("/o/{org}/members")),
    ] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        assert!(
            !c.source().await.unwrap().contains("form-error"),
            "{name} shows an error"
        );
        shot(c, name).await;
    }
    assert!(text(c, "#members").await.contains("viewer@acme.example"));
    c.goto(&format!("{base}/o/{org}/keys")).await.unwrap();
    fill(c, "#name", "deploy bot").await;
    click(c, "#create-key").await;
    wait_for(c, "#secret").await;
    assert!(text(c, "#secret").await.starts_with("sk_"));
    shot(c, "keys").await;

    // The domains pages: one verified through the engine, one pending.
    for name in ["go.acme.example", "links.acme.example"] {
        let r = http
            .post(format!("{base}/v1/domains"))
            .bearer_auth(&key)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{name}: {}", r.text().await.unwrap());
    }
    testkit::wait_for_ok(
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async {
            let r = http
                .post(format!("{base}/v1/domains/go.acme.example/verify"))
                .bearer_auth(&key)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            match r.status().as_u16() {
                200 => Ok(()),
                s => Err(format!("{s}: {}", r.text().await.unwrap_or_default())),
            }
        },
    )
    .await
    .unwrap();
    c.goto(&format!("{base}/o/{org}/domains")).await.unwrap();
    assert!(
        text(c, "tr[data-domain='go.acme.example']")
            .await
            .contains("verified")
    );
    shot(c, "domains").await;
    c.goto(&format!("{base}/o/{org}/domains/links.acme.example"))
        .await
        .unwrap();
    assert!(
        text(c, "#verify-url")
            .await
            .contains("/.well-known/links-domain-verification/")
    );
    shot(c, "domain").await;

    c.goto(&format!("{base}/o/{org}/audit")).await.unwrap();
    assert!(text(c, "#audit").await.contains("link.create"));
    shot(c, "audit").await;
    browser.close().await;
}
