//! Stream records written by format version 1, committed to the repository:
//! a click batch and two link deltas (upsert, delete). They outlive upgrades
//! in JetStream and in an engine's click spool, so later readers must keep
//! decoding them to the same values (or refuse them with
//! `UnsupportedVersion` once version 1 support is dropped on purpose).
//!
//! The version-1 writers are gone (version 2 is written now), so these
//! fixtures are never regenerated; `fixture_stream_v2.rs` has version 2's.

use std::net::IpAddr;
use std::path::PathBuf;

use snapshots::click::{ClickBatch, ClickEvent};
use snapshots::delta::{LinkChange, LinkDelta};
use snapshots::{Link, RedirectStatus};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

const NODE: &str = "node-7";
const BATCH_ID: [u8; 16] = *b"fixture-batch-01";
const LONG_CODE: &[u8; 64] = b"A123456789_123456789-123456789_123456789-123456789_123456789-xyz";
const NOT_UTF8: &[u8] = &[0xff, 0xfe, b'x'];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The events of the committed batch: both address families (and an
/// IPv4-mapped IPv6 one), empty and non-UTF-8 fields, several statuses.
fn click_events() -> Vec<ClickEvent<'static>> {
    vec![
        ClickEvent {
            event_id: *b"event-0000000001",
            ts_ms: 1_763_700_000_123,
            status: 301,
            ip: ip("81.2.69.142"),
            code: b"abc",
            user_agent: b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            referrer: b"https://news.example.com/story?id=1",
            accept_language: b"en-GB,en;q=0.9",
            host: b"sho.rt",
            domain: b"",
            // Before version 3: no org, no rule.
            org_id: 0,
            rule: 0,
        },
        ClickEvent {
            event_id: *b"event-0000000002",
            ts_ms: 1_763_700_001_000,
            status: 404,
            ip: ip("2001:db8:1234:5678::1"),
            code: b"Missing_1",
            user_agent: b"",
            referrer: b"",
            accept_language: b"",
            host: b"Sho.RT:8080",
            domain: b"",
            // Before version 3: no org, no rule.
            org_id: 0,
            rule: 0,
        },
        ClickEvent {
            event_id: *b"event-0000000003",
            ts_ms: 1_763_700_002_999,
            status: 308,
            ip: ip("::ffff:10.1.2.3"),
            code: LONG_CODE,
            user_agent: NOT_UTF8,
            referrer: b"android-app://com.slack/",
            accept_language: b"de",
            host: b"a.example",
            domain: b"",
            // Before version 3: no org, no rule.
            org_id: 0,
            rule: 0,
        },
    ]
}

#[test]
fn reads_the_committed_v1_click_batch() {
    let bytes = read("click-batch-v1.bin");
    assert_eq!(&bytes[..6], b"SHCK\x01\x00", "magic and version 1");
    let batch = ClickBatch::parse(&bytes).expect("the v1 click batch must keep decoding");
    assert_eq!(batch.version(), 1);
    assert_eq!(batch.node_id(), NODE.as_bytes());
    assert_eq!(batch.batch_id(), BATCH_ID);
    assert_eq!(batch.len(), 3);
    assert_eq!(batch.events().collect::<Vec<_>>(), click_events());
}

#[test]
fn reads_the_committed_v1_link_deltas() {
    let upsert = LinkDelta {
        v: 1,
        ..LinkDelta::upsert(
            41,
            Link {
                status: RedirectStatus::Found,
                expires_at: Some(1_900_000_000),
                forward_query: true,
                ..Link::new("promo-2026", "https://example.com/landing?utm=x")
            },
        )
    };
    let bytes = read("delta-upsert-v1.json");
    let decoded = LinkDelta::decode(&bytes).expect("the v1 upsert must keep decoding");
    assert_eq!(decoded, upsert);
    assert_eq!((decoded.v, decoded.seq), (1, 41));
    let LinkChange::Upsert { link } = &decoded.change else {
        panic!("not an upsert: {decoded:?}")
    };
    assert_eq!(link.seq, 41);
    assert_eq!(link.domain, snapshots::DEFAULT_DOMAIN);
    assert!(!link.disabled);

    let delete = LinkDelta {
        v: 1,
        ..LinkDelta::delete(42, "old_Code")
    };
    let bytes = read("delta-delete-v1.json");
    let decoded = LinkDelta::decode(&bytes).expect("the v1 delete must keep decoding");
    assert_eq!(decoded, delete);
    assert_eq!(decoded.change.code(), Some("old_Code"));
    assert_eq!(decoded.change.domain(), Some(snapshots::DEFAULT_DOMAIN));
}
