//! A snapshot written by format version 3, committed to the repository: the
//! version-2 fixture's domains and links plus links with lifecycle extras
//! (`valid_since`, `expired_url`, both, and one disabled with both). Later
//! readers must keep reading it, every link with org 0 (version 4 put the
//! org where version 3 had zeroed padding). Never regenerated: its writer
//! is gone.
mod common;

use snapshots::{Domain, HttpMode, Link, Snapshot};
use std::path::PathBuf;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v3.snap")
}

fn domains() -> Vec<Domain> {
    vec![
        Domain::default_domain("sho.rt"),
        Domain {
            id: 7,
            verified: true,
            not_found_redirect: Some("https://brand.example/missing".into()),
            http_mode: HttpMode::RedirectHttps,
            ..Domain::default_domain("go.brand.example")
        },
    ]
}

/// The sample links, and four with extras (two on domain 7).
fn links() -> Vec<Link> {
    let mut links = common::sample_links();
    links.push(Link {
        valid_since: Some(1_900_000_000),
        ..Link::new("launch", "https://example.com/launch")
    });
    links.push(Link {
        expires_at: Some(1_800_000_000),
        expired_url: Some("https://example.com/over".into()),
        ..Link::new("promo", "https://example.com/promo")
    });
    links.push(Link {
        domain: 7,
        valid_since: Some(1_700_000_000),
        expires_at: Some(1_800_000_000),
        expired_url: Some("https://brand.example/ended".into()),
        ..Link::new("window", "https://brand.example/live")
    });
    links.push(Link {
        domain: 7,
        disabled: true,
        valid_since: Some(1_700_000_000),
        expired_url: Some("https://brand.example/ended".into()),
        ..Link::new("off", "https://brand.example/off")
    });
    links
}

#[test]
fn reads_the_committed_v3_fixture() {
    let snapshot = Snapshot::open(&fixture()).expect("the v3 fixture must keep opening");
    assert_eq!(snapshot.header().version, 3);
    assert_eq!(snapshot.sequence(), 5432);
    assert_eq!(snapshot.len(), links().len());
    let mut with_extras = 0;
    for link in links() {
        let view = snapshot
            .get_in(link.domain, link.code.as_bytes())
            .unwrap_or_else(|| panic!("{link:?} missing"));
        assert_eq!(view.has_extra(), link.has_extra(), "{link:?}");
        let extra = snapshot.extra_in(link.domain, link.code.as_bytes());
        assert_eq!(extra.is_some(), link.has_extra(), "{link:?}");
        with_extras += usize::from(extra.is_some());
        assert_eq!(view.org_id(), 0, "{link:?}");
        assert_eq!(view.to_link_with(&link.code, extra), link);
    }
    assert_eq!(with_extras, 4);
    let mut read = snapshot.domains();
    read.sort_by_key(|d| d.id);
    assert_eq!(read, domains());
}
