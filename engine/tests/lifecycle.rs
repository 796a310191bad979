//! Lifecycle rules on the running engine, from a version-3 snapshot (the
//! suite runs once per I/O backend): before `valid_since` a link answers as
//! a missing code (the domain's not-found redirect or 404, never cached),
//! then redirects, its permanent redirect cached no longer than its expiry;
//! after `expires_at` it redirects to its `expired_url` (302, never cached)
//! or answers 410; links without these answer as before.

mod common;

use common::{Engine, eventually, parse_responses, raw, snapshot_dir};
use snapshots::{Link, RedirectStatus};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Status, Location and Cache-Control of `GET /code`.
fn get(engine: &Engine, code: &str) -> (u16, Option<String>, Option<String>) {
    let bytes = raw(
        engine.listen,
        format!("GET /{code} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let r = parse_responses(&bytes).remove(0);
    (
        r.status,
        r.header("location").map(str::to_owned),
        r.header("cache-control").map(str::to_owned),
    )
}

#[test]
fn each_phase_answers_as_documented() {
    let t = now();
    let links = [
        // Valid in 6 s (the engine starts well before), expiring in an hour.
        Link {
            valid_since: Some(t + 6),
            expires_at: Some(t + 3600),
            ..Link::new("soon", "https://example.com/soon")
        },
        // Valid since a minute ago, expiring in an hour.
        Link {
            valid_since: Some(t - 60),
            expires_at: Some(t + 3600),
            ..Link::new("live", "https://example.com/live")
        },
        // Expired, with an expired URL; and without one.
        Link {
            expires_at: Some(t - 10),
            expired_url: Some("https://example.com/over".into()),
            ..Link::new("over", "https://example.com/promo")
        },
        Link {
            expires_at: Some(t - 10),
            ..Link::new("gone", "https://example.com/gone")
        },
        // Disabled, with extras: 410 once valid.
        Link {
            disabled: true,
            expired_url: Some("https://example.com/over".into()),
            ..Link::new("off", "https://example.com/off")
        },
        Link {
            status: RedirectStatus::Found,
            ..Link::new("plain", "https://example.com/plain")
        },
    ];
    let (_dir, path) = snapshot_dir(1, &links);
    let engine = Engine::start(&[
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "1",
        "--no-clicks",
        "--permanent-max-age",
        "86400",
    ]);

    let (status, location, cache) = get(&engine, "soon");
    if now() < t + 6 {
        assert_eq!(
            (status, location, cache.as_deref()),
            (404, None, Some("no-store")),
            "before valid_since: a missing code, not cached"
        );
    }
    let (status, location, cache) = get(&engine, "live");
    assert_eq!(status, 301);
    assert_eq!(location.as_deref(), Some("https://example.com/live"));
    let max_age: i64 = cache
        .as_deref()
        .and_then(|c| c.strip_prefix("public, max-age="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{cache:?}"));
    assert!(
        (3600 - 10..=3600).contains(&max_age),
        "cached until the expiry, not the configured day: {max_age}"
    );
    assert_eq!(
        get(&engine, "over"),
        (
            302,
            Some("https://example.com/over".into()),
            Some("private, no-store".into())
        )
    );
    assert_eq!(get(&engine, "gone").0, 410);
    assert_eq!(get(&engine, "off").0, 410);
    assert_eq!(
        get(&engine, "plain"),
        (
            302,
            Some("https://example.com/plain".into()),
            Some("private, no-store".into())
        )
    );
    // Once valid_since passes, the scheduled link redirects.
    eventually(Duration::from_secs(10), "soon becomes valid", || {
        get(&engine, "soon").0 == 301
    });
    assert_eq!(
        get(&engine, "soon").1.as_deref(),
        Some("https://example.com/soon")
    );
}
