//! A snapshot written by format version 1, committed to the repository. Later
//! versions of the reader must keep reading it (or refuse it with
//! `UnsupportedVersion` once version 1 support is dropped on purpose).
//!
//! Regenerate only when the version-1 writer changes in a compatible way:
//! `REGENERATE_FIXTURES=1 cargo test -p snapshots --test fixture_v1`.
mod common;

use snapshots::{RedirectStatus, Snapshot};
use std::path::PathBuf;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1.snap")
}

#[test]
fn reads_the_committed_v1_fixture() {
    if std::env::var_os("REGENERATE_FIXTURES").is_some() {
        common::build(&fixture(), &common::sample_links(), 1234);
    }
    let snapshot = Snapshot::open(&fixture()).expect("the v1 fixture must keep opening");
    assert_eq!(snapshot.header().version, 1);
    assert_eq!(snapshot.sequence(), 1234);
    assert_eq!(snapshot.header().built_at_ms, 1_700_000_000_000);
    assert_eq!(snapshot.len(), common::sample_links().len());
    for link in common::sample_links() {
        assert_eq!(snapshot.get(&link.code).unwrap().to_link(&link.code), link);
    }
    let fwd = snapshot.get("Fwd_1").unwrap();
    assert_eq!(fwd.status(), RedirectStatus::Found);
    assert!(fwd.forward_query());
    assert_eq!(fwd.seq(), 5);
}
