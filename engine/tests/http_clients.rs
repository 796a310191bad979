//! Real clients (curl, reqwest) against a running engine: every status,
//! HEAD, query forwarding, keep-alive reuse.

mod common;

use common::{Engine, link, snapshot_dir};
use snapshots::{Link, RedirectStatus};
use std::process::Command;

fn links() -> Vec<Link> {
    vec![
        link(
            "p301",
            "https://example.com/301",
            RedirectStatus::MovedPermanently,
        ),
        link("p302", "https://example.com/302", RedirectStatus::Found),
        link(
            "p307",
            "https://example.com/307",
            RedirectStatus::TemporaryRedirect,
        ),
        link(
            "p308",
            "https://example.com/308",
            RedirectStatus::PermanentRedirect,
        ),
        Link {
            forward_query: true,
            ..Link::new("fwd", "https://example.com/land?src=short#top")
        },
        Link {
            forward_query: true,
            ..Link::new("fwd2", "https://example.com/plain")
        },
        Link::new("noq", "https://example.com/noq"),
        Link {
            disabled: true,
            ..Link::new("off", "https://example.com/off")
        },
        Link {
            expires_at: Some(1_000_000),
            ..Link::new("old", "https://example.com/old")
        },
    ]
}

/// (status, Location, Cache-Control) as curl sees them.
fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url} %header{cache-control}",
        ])
        .args(args)
        .output()
        .expect("curl is installed");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn curl_sees_every_status() {
    let (_dir, path) = snapshot_dir(1, &links());
    let engine = Engine::start(&[
        "--snapshot",
        path.to_str().unwrap(),
        "--permanent-max-age",
        "120",
        "--cores",
        "2",
    ]);
    let url = |p: &str| engine.url(p);
    assert_eq!(
        curl(&[&url("/p301")]),
        "301 https://example.com/301 public, max-age=120"
    );
    assert_eq!(
        curl(&[&url("/p302")]),
        "302 https://example.com/302 private, no-store"
    );
    assert_eq!(
        curl(&[&url("/p307")]),
        "307 https://example.com/307 private, no-store"
    );
    assert_eq!(
        curl(&[&url("/p308")]),
        "308 https://example.com/308 public, max-age=120"
    );
    assert_eq!(curl(&[&url("/missing")]), "404  no-store");
    assert_eq!(curl(&[&url("/off")]), "410  no-store");
    assert_eq!(curl(&[&url("/old")]), "410  no-store");
    assert_eq!(curl(&[&url("/")]), "404  no-store");
    assert_eq!(curl(&[&url("/bad%20code")]), "404  no-store");
    // The path is percent-decoded before the lookup.
    assert_eq!(
        curl(&[&url("/p%33%30%31")]),
        "301 https://example.com/301 public, max-age=120"
    );
    assert_eq!(curl(&[&url("/p%3")]), "400  no-store");
    assert_eq!(curl(&["-X", "DELETE", &url("/p301")]), "405  no-store");
    // HEAD: same status and headers, no body.
    let head = Command::new("curl")
        .args(["-sI", &url("/p302")])
        .output()
        .unwrap();
    let text = String::from_utf8(head.stdout).unwrap();
    assert!(text.starts_with("HTTP/1.1 302 Found\r\n"), "{text}");
    assert!(
        text.contains("Location: https://example.com/302\r\n"),
        "{text}"
    );
    assert!(text.contains("Date: "), "{text}");
    let head404 = Command::new("curl")
        .args(["-sI", &url("/missing")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8(head404.stdout)
            .unwrap()
            .starts_with("HTTP/1.1 404")
    );
}

/// A browser may reuse a cached 301 for its max-age: it must not outlive the
/// link, and the default keeps an edited or disabled link from redirecting
/// from caches for long.
#[test]
fn cache_control_never_outlives_the_link() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (_dir, path) = snapshot_dir(
        1,
        &[
            Link {
                expires_at: Some(now + 120),
                ..link(
                    "soon",
                    "https://example.com/soon",
                    RedirectStatus::MovedPermanently,
                )
            },
            Link {
                expires_at: Some(now + 100_000),
                ..link(
                    "later",
                    "https://example.com/later",
                    RedirectStatus::PermanentRedirect,
                )
            },
            link(
                "ever",
                "https://example.com/ever",
                RedirectStatus::MovedPermanently,
            ),
        ],
    );
    let max_age = |answer: String| -> u64 {
        answer
            .rsplit("max-age=")
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no max-age in {answer:?}"))
    };
    let engine = Engine::start(&["--snapshot", path.to_str().unwrap(), "--cores", "1"]);
    assert_eq!(
        curl(&[&engine.url("/ever")]),
        "301 https://example.com/ever public, max-age=60"
    );
    assert_eq!(max_age(curl(&[&engine.url("/later")])), 60);
    assert!(max_age(curl(&[&engine.url("/soon")])) <= 60);
    drop(engine);
    let engine = Engine::start(&[
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "1",
        "--permanent-max-age",
        "3600",
    ]);
    let soon = max_age(curl(&[&engine.url("/soon")]));
    assert!((60..=120).contains(&soon), "{soon}");
    assert_eq!(max_age(curl(&[&engine.url("/later")])), 3600);
    assert_eq!(max_age(curl(&[&engine.url("/ever")])), 3600);
}

#[test]
fn query_forwarding() {
    let (_dir, path) = snapshot_dir(1, &links());
    let engine = Engine::start(&["--snapshot", path.to_str().unwrap(), "--cores", "1"]);
    assert_eq!(
        engine.get("/fwd?utm=x&b=2"),
        (
            301,
            Some("https://example.com/land?src=short&utm=x&b=2#top".into())
        )
    );
    assert_eq!(
        engine.get("/fwd2?utm=x"),
        (301, Some("https://example.com/plain?utm=x".into()))
    );
    assert_eq!(
        engine.get("/fwd2"),
        (301, Some("https://example.com/plain".into()))
    );
    assert_eq!(
        engine.get("/noq?utm=x"),
        (301, Some("https://example.com/noq".into()))
    );
    assert_eq!(
        curl(&[&engine.url("/fwd2?a=%C3%A9")]).split(' ').nth(1),
        Some("https://example.com/plain?a=%C3%A9")
    );
}

#[test]
fn gone_status_and_root_are_configurable() {
    let (_dir, path) = snapshot_dir(1, &links());
    let engine = Engine::start(&[
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "1",
        "--gone-status",
        "404",
        "--root-redirect",
        "https://home.example/",
    ]);
    assert_eq!(engine.get("/off").0, 404);
    assert_eq!(engine.get("/"), (302, Some("https://home.example/".into())));
}

#[tokio::test]
async fn reqwest_statuses_and_keep_alive_reuse() {
    let (_dir, path) = snapshot_dir(1, &links());
    let engine = Engine::start(&["--snapshot", path.to_str().unwrap(), "--cores", "2"]);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, status, location) in [
        ("/p301", 301, Some("https://example.com/301")),
        ("/p302", 302, Some("https://example.com/302")),
        ("/p307", 307, Some("https://example.com/307")),
        ("/p308", 308, Some("https://example.com/308")),
        ("/missing", 404, None),
        ("/off", 410, None),
    ] {
        for _ in 0..5 {
            let response = client.get(engine.url(path)).send().await.unwrap();
            assert_eq!(response.status().as_u16(), status, "{path}");
            assert_eq!(
                response
                    .headers()
                    .get("location")
                    .map(|v| v.to_str().unwrap()),
                location,
                "{path}"
            );
            assert!(response.headers().contains_key("date"));
        }
    }
    let head = client.head(engine.url("/p308")).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 308);
    let post = client
        .post(engine.url("/p301"))
        .body("x=1")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    // 32 requests, one pooled connection: the engine accepted exactly one.
    assert_eq!(
        engine.metric_sum("engine_connections_accepted_total", ""),
        1.0
    );
    assert_eq!(
        engine.metric_sum("engine_responses_total", "status=\"301\""),
        5.0
    );
}

#[test]
fn curl_reuses_the_connection() {
    let (_dir, path) = snapshot_dir(1, &links());
    let engine = Engine::start(&["--snapshot", path.to_str().unwrap(), "--cores", "1"]);
    let output = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-w",
            "%{num_connects}\n",
        ])
        .args([
            engine.url("/p301"),
            engine.url("/p302"),
            engine.url("/missing"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text, "1\n0\n0\n", "curl opened a second connection");
    assert_eq!(
        engine.metric_sum("engine_connections_accepted_total", ""),
        1.0
    );
}

#[test]
fn config_file_with_flags_overriding_it() {
    let (dir, path) = snapshot_dir(1, &links());
    let config = dir.path().join("engine.toml");
    std::fs::write(
        &config,
        "gone_status = 404\nroot_redirect = \"https://home.example/\"\ncores = 1\n",
    )
    .unwrap();
    let engine = Engine::start(&[
        "--config",
        config.to_str().unwrap(),
        "--snapshot",
        path.to_str().unwrap(),
        "--gone-status",
        "410",
    ]);
    assert_eq!(engine.cores, 1, "from the file");
    assert_eq!(
        engine.get("/"),
        (302, Some("https://home.example/".into())),
        "from the file"
    );
    assert_eq!(engine.get("/off").0, 410, "the flag wins over the file");

    std::fs::write(&config, "gone_stauts = 404\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_engine"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("gone_stauts"), "{stderr}");
}
