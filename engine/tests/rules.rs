//! Redirect rules on the running engine, from a version-5 snapshot (the
//! suite runs once per I/O backend): each condition kind picks its rule's
//! target, the first rule that holds wins, a split's proportions follow its
//! weights over 10,000 visitors and stay put for each, answers of links with
//! rules are never cached, and links without rules answer as before.

mod common;

use common::{Engine, parse_responses, raw, read_responses, snapshot_dir};
use snapshots::rules::{Conditions, Device, Os, QueryCondition, Rule, Variant};
use snapshots::{Link, RedirectStatus};
use std::io::Write;
use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148";
const DESKTOP: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rule(when: Conditions, target: &str) -> Rule {
    Rule {
        when,
        target: target.into(),
        status: None,
    }
}

fn links() -> Vec<Link> {
    let t = now();
    let rules = vec![
        rule(
            Conditions {
                device: vec![Device::Mobile, Device::Tablet],
                os: vec![Os::Ios],
                ..Conditions::default()
            },
            "https://t.example/ios",
        ),
        rule(
            Conditions {
                query: Some(QueryCondition {
                    name: "ref".into(),
                    equals: Some("mail".into()),
                }),
                ..Conditions::default()
            },
            "https://t.example/mail",
        ),
        rule(
            Conditions {
                country: vec!["DE".into(), "AT".into()],
                ..Conditions::default()
            },
            "https://t.example/de",
        ),
        rule(
            Conditions {
                language: vec!["fr".into()],
                ..Conditions::default()
            },
            "https://t.example/fr",
        ),
        // Over an hour ago: never matches.
        rule(
            Conditions {
                from: Some(t - 7200),
                until: Some(t - 3600),
                ..Conditions::default()
            },
            "https://t.example/past",
        ),
        // Since an hour ago, for a day.
        Rule {
            status: Some(RedirectStatus::TemporaryRedirect),
            ..rule(
                Conditions {
                    from: Some(t - 3600),
                    until: Some(t + 86_400),
                    query: Some(QueryCondition {
                        name: "sale".into(),
                        equals: None,
                    }),
                    ..Conditions::default()
                },
                "https://t.example/sale",
            )
        },
    ];
    vec![
        Link {
            rules,
            ..Link::new("r", "https://t.example/default")
        },
        Link {
            split: vec![
                Variant {
                    target: "https://t.example/a".into(),
                    weight: 30,
                    status: None,
                },
                Variant {
                    target: "https://t.example/b".into(),
                    weight: 70,
                    status: Some(RedirectStatus::Found),
                },
            ],
            ..Link::new("ab", "https://t.example/never")
        },
        Link::new("plain", "https://t.example/plain"),
    ]
}

/// Status, Location and Cache-Control of `GET /path` with extra headers.
fn get(engine: &Engine, path: &str, headers: &str) -> (u16, String, String) {
    let bytes = raw(
        engine.listen,
        format!("GET /{path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
    );
    let r = parse_responses(&bytes).remove(0);
    (
        r.status,
        r.header("location").unwrap_or_default().to_owned(),
        r.header("cache-control").unwrap_or_default().to_owned(),
    )
}

fn start() -> (tempfile::TempDir, Engine) {
    let (dir, path) = snapshot_dir(1, &links());
    let geoip = testkit::fixtures::geoip("flat-city-test.mmdb");
    let engine = Engine::start(&[
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "1",
        "--no-clicks",
        "--permanent-max-age",
        "86400",
        "--geoip",
        geoip.to_str().unwrap(),
        // The test names its visitors' addresses.
        "--trusted-proxy",
        "127.0.0.1",
    ]);
    (dir, engine)
}

#[test]
fn each_condition_kind_picks_its_rules_target() {
    let (_dir, engine) = start();
    let ua = |agent: &str| format!("User-Agent: {agent}\r\n");
    let from = |ip: &str| format!("X-Forwarded-For: {ip}\r\n");
    let cases = [
        ("r", ua(IPHONE), "https://t.example/ios"),
        ("r?x=1&ref=mail", ua(DESKTOP), "https://t.example/mail"),
        // The first rule that holds wins: an iPhone with ?ref=mail.
        ("r?ref=mail", ua(IPHONE), "https://t.example/ios"),
        // 192.0.2.77 is Germany in the test database, 198.51.100.1 France.
        ("r", from("192.0.2.77"), "https://t.example/de"),
        ("r", from("198.51.100.1"), "https://t.example/default"),
        (
            "r",
            "Accept-Language: en;q=0.5, fr-CH;q=0.9\r\n".into(),
            "https://t.example/fr",
        ),
        (
            "r",
            "Accept-Language: en, fr;q=0.9\r\n".into(),
            "https://t.example/default",
        ),
        ("r?sale", String::new(), "https://t.example/sale"),
        ("r", ua(DESKTOP), "https://t.example/default"),
    ];
    for (path, headers, expected) in cases {
        let (status, location, cache) = get(&engine, path, &headers);
        assert!(
            matches!(status, 301 | 307),
            "{path} {headers:?}: {status} {location}"
        );
        assert_eq!(location, expected, "{path} {headers:?}");
        // The answer depends on who asks: nothing may cache it.
        assert!(cache.contains("no-store"), "{path} {headers:?}: {cache}");
    }
    // A rule's own status.
    assert_eq!(get(&engine, "r?sale", "").0, 307);
    // A link without rules is cached as before.
    let (status, location, cache) = get(&engine, "plain", "");
    assert_eq!(
        (status, location.as_str()),
        (301, "https://t.example/plain")
    );
    assert!(cache.contains("max-age=86400"), "{cache}");
    assert_eq!(
        engine.metric_sum("engine_rules_without_geoip_total", ""),
        0.0
    );
}

#[test]
fn a_split_follows_its_weights_and_keeps_each_visitor() {
    let (_dir, engine) = start();
    let mut stream = TcpStream::connect(engine.listen).unwrap();
    let visitors = 10_000u32;
    let mut seen = Vec::with_capacity(visitors as usize);
    // Pipelined in rounds of 200 on one keep-alive connection.
    for round in 0..visitors / 200 {
        let mut requests = Vec::new();
        for i in round * 200..(round + 1) * 200 {
            // A /24 of its own for each visitor: click records (and so the
            // split's key) keep 24 bits of an IPv4 address.
            let ip = format!("10.{}.{}.9", i >> 8, i & 255);
            write!(
                requests,
                "GET /ab HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: {ip}\r\nUser-Agent: {DESKTOP}\r\n\r\n"
            )
            .unwrap();
        }
        stream.write_all(&requests).unwrap();
        for response in read_responses(&mut stream, 200) {
            seen.push((
                response.status,
                response.header("location").unwrap().to_owned(),
            ));
        }
    }
    let b = seen
        .iter()
        .filter(|(_, l)| l == "https://t.example/b")
        .count();
    let a = seen
        .iter()
        .filter(|(_, l)| l == "https://t.example/a")
        .count();
    assert_eq!(a + b, visitors as usize, "only the variants serve");
    // Within 2 % of the weights (30/70) over 10,000 visitors.
    let share = a as f64 / f64::from(visitors);
    assert!((0.28..=0.32).contains(&share), "a served {share}");
    // Each variant with its own status.
    assert!(
        seen.iter()
            .all(|(s, l)| (*s == 302) == l.ends_with("/b") && matches!(s, 301 | 302))
    );
    // The same visitor gets the same variant again.
    for i in [0u32, 1, 257, 9_999] {
        let ip = format!("10.{}.{}.200", i >> 8, i & 255);
        let again = get(
            &engine,
            "ab",
            &format!("X-Forwarded-For: {ip}\r\nUser-Agent: {DESKTOP}\r\n"),
        );
        assert_eq!(again.1, seen[i as usize].1, "visitor {i}");
    }
}

#[test]
fn without_a_geoip_database_country_rules_do_not_match_and_are_counted() {
    let (_dir, path) = snapshot_dir(1, &links());
    let engine = Engine::start(&[
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "1",
        "--no-clicks",
        "--trusted-proxy",
        "127.0.0.1",
    ]);
    let (_, location, _) = get(&engine, "r", "X-Forwarded-For: 192.0.2.77\r\n");
    assert_eq!(location, "https://t.example/default");
    assert_eq!(
        engine.metric_sum("engine_rules_without_geoip_total", ""),
        1.0
    );
}

#[test]
fn a_file_that_is_not_a_geoip_database_stops_the_start_with_its_reason() {
    let (dir, path) = snapshot_dir(1, &links());
    let bad = dir.path().join("bad.mmdb");
    std::fs::write(&bad, b"nothing like a database").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args(["--snapshot", path.to_str().unwrap(), "--no-clicks"])
        .args(["--state-dir", dir.path().to_str().unwrap()])
        .args(["--geoip", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a MaxMind database"), "{stderr}");
}
