mod common;

use snapshots::{BuildError, Link, LinkError, Snapshot, SnapshotBuilder};

#[test]
fn every_link_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("links.snap");
    let links = common::sample_links();
    let summary = common::build(&path, &links, 42);
    assert_eq!(summary.header.link_count, links.len() as u64);

    let snapshot = Snapshot::open(&path).unwrap();
    assert_eq!(snapshot.len(), links.len());
    assert_eq!(snapshot.sequence(), 42);
    assert_eq!(snapshot.header().built_at_ms, 1_700_000_000_000);
    assert_eq!(snapshot.file_len(), summary.file_len);
    for link in &links {
        let view = snapshot
            .get(&link.code)
            .unwrap_or_else(|| panic!("{} missing", link.code));
        assert_eq!(&view.to_link(&link.code), link);
        assert_eq!(
            snapshot.get_bytes(link.code.as_bytes()).unwrap().target(),
            link.target
        );
    }
    assert_eq!(snapshot.iter().count(), links.len());
    assert_eq!(snapshot.get("ABC").map(|l| l.target()), None);
    assert_eq!(
        snapshot.get("abc").unwrap().target(),
        "https://lower.example/"
    );
    assert!(snapshot.get("missing").is_none());
    assert!(snapshot.get_bytes(b"../etc").is_none());
    assert!(snapshot.get_bytes(b"").is_none());
    let exp = snapshot.get("exp-307").unwrap();
    assert!(!exp.is_expired(1_899_999_999));
    assert!(exp.is_expired(1_900_000_000));
    snapshot.prefault();
}

#[test]
fn empty_snapshot_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.snap");
    common::build(&path, &[], 7);
    let snapshot = Snapshot::open(&path).unwrap();
    assert!(snapshot.is_empty());
    assert_eq!(snapshot.sequence(), 7);
    assert!(snapshot.get("a").is_none());
}

#[test]
fn from_bytes_matches_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("links.snap");
    common::build(&path, &common::sample_links(), 1);
    let bytes = std::fs::read(&path).unwrap();
    let snapshot = Snapshot::from_bytes(&bytes).unwrap();
    assert_eq!(snapshot.get("a").unwrap().target(), "https://example.com/");
}

#[test]
fn duplicates_are_refused_naming_both_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dup.snap");
    let mut builder = SnapshotBuilder::new(0);
    builder.push(Link::new("x", "https://1.example/")).unwrap();
    builder.push(Link::new("y", "https://2.example/")).unwrap();
    builder.push(Link::new("x", "https://3.example/")).unwrap();
    match builder.write_to(&path) {
        Err(BuildError::DuplicateCode {
            code,
            first,
            second,
        }) => {
            assert_eq!((code.as_str(), first, second), ("x", 0, 2));
        }
        other => panic!("expected a duplicate error, got {other:?}"),
    }
    assert!(!path.exists(), "nothing is left behind on failure");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary file left"
    );
}

#[test]
fn invalid_links_are_refused_with_their_index() {
    let mut builder = SnapshotBuilder::new(0);
    builder
        .push(Link::new("ok", "https://ok.example/"))
        .unwrap();
    let err = builder
        .push(Link::new("bad", "javascript:alert(1)"))
        .unwrap_err();
    assert!(matches!(
        err,
        BuildError::InvalidLink {
            index: 1,
            reason: LinkError::TargetScheme,
            ..
        }
    ));
}

#[test]
fn rebuilding_replaces_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("links.snap");
    common::build(&path, &common::sample_links(), 1);
    let old = Snapshot::open(&path).unwrap();
    common::build(&path, &[Link::new("new", "https://new.example/")], 2);
    // The old mapping still serves the old file; a new open sees the new one.
    assert_eq!(old.get("a").unwrap().target(), "https://example.com/");
    let new = Snapshot::open(&path).unwrap();
    assert_eq!(new.sequence(), 2);
    assert!(new.get("a").is_none());
}

#[test]
fn a_hundred_thousand_links() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.snap");
    let mut builder = SnapshotBuilder::with_capacity(9, 100_000);
    for i in 0..100_000u32 {
        builder
            .push(Link::new(
                format!("c{i:x}"),
                format!("https://t.example/{i}"),
            ))
            .unwrap();
    }
    builder.write_to(&path).unwrap();
    let snapshot = Snapshot::open(&path).unwrap();
    assert_eq!(snapshot.len(), 100_000);
    for i in (0..100_000u32).step_by(997) {
        assert_eq!(
            snapshot.get(&format!("c{i:x}")).unwrap().target(),
            format!("https://t.example/{i}")
        );
    }
    assert!(snapshot.get("c-none").is_none());
}
