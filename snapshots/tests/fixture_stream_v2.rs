//! Stream records written by format version 2, committed to the repository:
//! a click batch whose events carry their domain, and deltas of every kind
//! (a link upsert and delete on a named domain, a domain upsert and delete,
//! a well-known answer and its removal). Later readers must keep decoding
//! them to the same values.
//!
//! None is regenerated any more: the click writer is version 3 now (org
//! and rule, read as 0 from this batch) and the delta writer version 4.

use std::net::IpAddr;
use std::path::PathBuf;

use snapshots::click::{ClickBatch, ClickEvent};
use snapshots::delta::{LinkChange, LinkDelta};
use snapshots::{Domain, HttpMode, Link, RedirectStatus, WellKnown};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

const NODE: &str = "node-7";
const BATCH_ID: [u8; 16] = *b"fixture-batch-02";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn click_events() -> Vec<ClickEvent<'static>> {
    vec![
        ClickEvent {
            event_id: *b"event-0000000011",
            ts_ms: 1_763_700_000_123,
            status: 301,
            ip: ip("81.2.69.142"),
            code: b"abc",
            user_agent: b"curl/8.5.0",
            referrer: b"",
            accept_language: b"en",
            host: b"Go.Brand.Example:8080",
            domain: b"go.brand.example",
            // Before version 3: no org, no rule.
            org_id: 0,
            rule: 0,
        },
        ClickEvent {
            event_id: *b"event-0000000012",
            ts_ms: 1_763_700_001_000,
            status: 410,
            ip: ip("2001:db8::1"),
            code: b"abc",
            user_agent: b"",
            referrer: b"",
            accept_language: b"",
            host: b"127.0.0.1:8080",
            domain: b"",
            // Before version 3: no org, no rule.
            org_id: 0,
            rule: 0,
        },
    ]
}

#[test]
fn reads_the_committed_v2_click_batch() {
    let name = "click-batch-v2.bin";
    let bytes = std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    assert_eq!(&bytes[..6], b"SHCK\x02\x00", "magic and version 2");
    let batch = ClickBatch::parse(&bytes).expect("the v2 click batch must keep decoding");
    assert_eq!(batch.version(), 2);
    assert_eq!(batch.node_id(), NODE.as_bytes());
    assert_eq!(batch.batch_id(), BATCH_ID);
    assert_eq!(batch.events().collect::<Vec<_>>(), click_events());
}

fn deltas() -> Vec<(&'static str, LinkDelta)> {
    vec![
        (
            "delta-upsert-v2.json",
            LinkDelta::upsert(
                51,
                Link {
                    domain: 7,
                    status: RedirectStatus::TemporaryRedirect,
                    disabled: true,
                    ..Link::new("promo-2026", "https://brand.example/landing")
                },
            ),
        ),
        (
            "delta-delete-v2.json",
            LinkDelta::delete_in(52, 7, "old_Code"),
        ),
        (
            "delta-domain-upsert-v2.json",
            LinkDelta::change(
                53,
                LinkChange::DomainUpsert {
                    domain: Domain {
                        id: 7,
                        verified: true,
                        root_redirect: Some("https://brand.example/".into()),
                        not_found_redirect: Some("https://brand.example/missing".into()),
                        http_mode: HttpMode::RedirectHttps,
                        hsts_max_age: Some(63_072_000),
                        ..Domain::default_domain("go.brand.example")
                    },
                },
            ),
        ),
        (
            "delta-domain-delete-v2.json",
            LinkDelta::change(54, LinkChange::DomainDelete { id: 7 }),
        ),
        (
            "delta-well-known-upsert-v2.json",
            LinkDelta::change(
                55,
                LinkChange::WellKnownUpsert {
                    answer: WellKnown {
                        host: "go.brand.example".into(),
                        path: "/.well-known/links-domain-verification/tok-1".into(),
                        body: "tok-1".into(),
                    },
                },
            ),
        ),
        (
            "delta-well-known-delete-v2.json",
            LinkDelta::change(
                56,
                LinkChange::WellKnownDelete {
                    host: "go.brand.example".into(),
                    path: "/.well-known/links-domain-verification/tok-1".into(),
                },
            ),
        ),
    ]
}

#[test]
fn reads_the_committed_v2_deltas() {
    for (name, mut delta) in deltas() {
        // Written by the version-2 writer, which is gone (never regenerated).
        delta.v = 2;
        let bytes = std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
        let decoded = LinkDelta::decode(&bytes)
            .unwrap_or_else(|e| panic!("the v2 delta {name} must keep decoding: {e}"));
        assert_eq!(decoded, delta, "{name}");
        assert_eq!(decoded.v, 2, "{name}");
    }
}
