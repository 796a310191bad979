//! A snapshot and a delta written by format version 4, committed to the
//! repository: the version-3 fixture's kinds of links (plain, every flag,
//! lifecycle extras, two domains) with their owners' org ids, which version
//! 4 added. Later readers must keep reading both, without rules (version 5
//! added them). Never regenerated: version 5 replaced their writer. They
//! were written by this file's `write_fixtures` run on the version-4 code.
mod common;

use snapshots::delta::LinkDelta;
use snapshots::{Domain, HttpMode, Link, RedirectStatus, Snapshot, SnapshotBuilder};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn domains() -> Vec<Domain> {
    vec![
        Domain::default_domain("sho.rt"),
        Domain {
            id: 7,
            verified: true,
            http_mode: HttpMode::RedirectHttps,
            ..Domain::default_domain("go.brand.example")
        },
    ]
}

fn links() -> Vec<Link> {
    let mut links = common::sample_links();
    for (i, link) in links.iter_mut().enumerate() {
        link.org_id = 1 + (i as u64 % 3);
    }
    links.push(Link {
        domain: 7,
        org_id: u64::from(u32::MAX),
        valid_since: Some(1_700_000_000),
        expires_at: Some(1_800_000_000),
        expired_url: Some("https://brand.example/ended".into()),
        ..Link::new("window", "https://brand.example/live")
    });
    links
}

fn delta() -> LinkDelta {
    let mut delta = LinkDelta::upsert(
        62,
        Link {
            domain: 7,
            org_id: 42,
            status: RedirectStatus::TemporaryRedirect,
            valid_since: Some(1_764_000_000),
            ..Link::new("org-link", "https://brand.example/org")
        },
    );
    delta.v = 4;
    delta
}

/// Writes the fixtures; run once on the version-4 code with
/// `WRITE_V4_FIXTURES=1`, never since.
#[test]
fn write_fixtures() {
    if std::env::var_os("WRITE_V4_FIXTURES").is_none() {
        return;
    }
    let mut builder = SnapshotBuilder::new(6543);
    for domain in domains() {
        builder.push_domain(domain).unwrap();
    }
    for link in links() {
        builder.push(link).unwrap();
    }
    builder.write_to(&fixture("v4.snap")).unwrap();
    std::fs::write(fixture("delta-upsert-v4.json"), delta().encode()).unwrap();
}

#[test]
fn reads_the_committed_v4_fixture() {
    let snapshot = Snapshot::open(&fixture("v4.snap")).expect("the v4 fixture must keep opening");
    assert_eq!(snapshot.header().version, 4);
    assert_eq!(snapshot.sequence(), 6543);
    assert_eq!(snapshot.len(), links().len());
    for link in links() {
        let view = snapshot
            .get_in(link.domain, link.code.as_bytes())
            .unwrap_or_else(|| panic!("{link:?} missing"));
        let extra = snapshot.extra_in(link.domain, link.code.as_bytes());
        assert_eq!(extra.is_some(), link.has_extra(), "{link:?}");
        assert!(!view.has_rules(), "{link:?}");
        assert_eq!(view.org_id(), link.org_id, "{link:?}");
        assert_eq!(view.to_link_with(&link.code, extra), link);
    }
    let mut read = snapshot.domains();
    read.sort_by_key(|d| d.id);
    assert_eq!(read, domains());
}

#[test]
fn reads_the_committed_v4_delta() {
    let bytes = std::fs::read(fixture("delta-upsert-v4.json")).unwrap();
    let decoded = LinkDelta::decode(&bytes).expect("the v4 delta must keep decoding");
    assert_eq!(decoded, delta());
    assert_eq!(decoded.v, 4);
}
