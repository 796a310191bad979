//! Deltas written by version 3, committed to the repository: a link upsert
//! with every lifecycle field (`valid_since`, `expires_at`, `expired_url`).
//! Later readers must keep decoding it to the same value.
//!
//! Never regenerated: version 4 (with `org_id`) replaced its writer.

use snapshots::delta::LinkDelta;
use snapshots::{Link, RedirectStatus};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn reads_the_committed_v3_delta() {
    let mut delta = LinkDelta::upsert(
        61,
        Link {
            domain: 7,
            status: RedirectStatus::Found,
            forward_query: true,
            valid_since: Some(1_764_000_000),
            expires_at: Some(1_765_000_000),
            expired_url: Some("https://brand.example/ended".into()),
            ..Link::new("launch-2026", "https://brand.example/launch")
        },
    );
    let name = "delta-upsert-v3.json";
    delta.v = 3;
    let bytes = std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    let decoded = LinkDelta::decode(&bytes)
        .unwrap_or_else(|e| panic!("the v3 delta {name} must keep decoding: {e}"));
    assert_eq!(decoded, delta);
    assert_eq!(decoded.v, 3);
}
