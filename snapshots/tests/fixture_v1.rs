//! A snapshot written by format version 1, committed to the repository. Later
//! versions of the reader must keep reading it (or refuse it with
//! `UnsupportedVersion` once version 1 support is dropped on purpose).
//! Version 2 reads it as the unnamed default domain's links.
//!
//! The version-1 writer is gone (the builder writes version 2), so this
//! fixture is never regenerated.
mod common;

use snapshots::{RedirectStatus, Snapshot};
use std::path::PathBuf;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1.snap")
}

#[test]
fn reads_the_committed_v1_fixture() {
    let snapshot = Snapshot::open(&fixture()).expect("the v1 fixture must keep opening");
    assert_eq!(snapshot.header().version, 1);
    assert_eq!(snapshot.sequence(), 1234);
    assert_eq!(snapshot.header().built_at_ms, 1_700_000_000_000);
    assert_eq!(snapshot.len(), common::sample_links().len());
    for link in common::sample_links() {
        assert_eq!(snapshot.get(&link.code).unwrap().to_link(&link.code), link);
    }
    assert_eq!(
        snapshot.domains(),
        vec![snapshots::Domain::default_domain("")]
    );
    assert!(snapshot.well_known().is_empty());
    assert_eq!(snapshot.iter().count(), snapshot.len());
    assert!(snapshot.iter().all(|(_, view)| view.domain() == 0));
    assert!(
        snapshot.get_in(1, b"Fwd_1").is_none(),
        "v1 links are the default domain's only"
    );
    let fwd = snapshot.get("Fwd_1").unwrap();
    assert_eq!(fwd.status(), RedirectStatus::Found);
    assert!(fwd.forward_query());
    assert_eq!(fwd.seq(), 5);
}
