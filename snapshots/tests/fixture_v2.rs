//! A snapshot written by format version 2, committed to the repository: the
//! sample links spread over the default domain and two others (one verified
//! with every setting, one pending), and a well-known answer. Later readers
//! must keep reading it.
//!
//! Never regenerated: its writer is gone (version 3 is written now).
mod common;

use snapshots::{Domain, HttpMode, Link, Snapshot, WellKnown};
use std::path::PathBuf;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2.snap")
}

fn domains() -> Vec<Domain> {
    vec![
        Domain::default_domain("sho.rt"),
        Domain {
            id: 7,
            verified: true,
            root_redirect: Some("https://brand.example/".into()),
            not_found_redirect: Some("https://brand.example/missing".into()),
            http_mode: HttpMode::RedirectHttps,
            hsts_max_age: Some(63_072_000),
            ..Domain::default_domain("go.brand.example")
        },
        Domain {
            id: 9,
            verified: false,
            ..Domain::default_domain("xn--bcher-kva.example")
        },
    ]
}

fn well_known() -> WellKnown {
    WellKnown {
        host: "xn--bcher-kva.example".into(),
        path: "/.well-known/links-domain-verification/fixture-token".into(),
        body: "fixture-token".into(),
    }
}

/// Every sample link on the default domain; "a" and "abc" also on 7 and 9.
fn links() -> Vec<Link> {
    let mut links = common::sample_links();
    for domain in [7, 9] {
        for code in ["a", "abc"] {
            links.push(Link {
                domain,
                ..Link::new(code, format!("https://d{domain}.example/{code}"))
            });
        }
    }
    links
}

#[test]
fn reads_the_committed_v2_fixture() {
    let snapshot = Snapshot::open(&fixture()).expect("the v2 fixture must keep opening");
    assert_eq!(snapshot.header().version, 2);
    assert_eq!(snapshot.sequence(), 4321);
    assert_eq!(snapshot.len(), links().len());
    for link in links() {
        let view = snapshot
            .get_in(link.domain, link.code.as_bytes())
            .unwrap_or_else(|| panic!("{link:?} missing"));
        assert_eq!(view.to_link(&link.code), link);
        assert!(!view.has_extra());
        assert!(
            snapshot
                .extra_in(link.domain, link.code.as_bytes())
                .is_none()
        );
    }
    let mut read = snapshot.domains();
    read.sort_by_key(|d| d.id);
    assert_eq!(read, domains());
    assert_eq!(snapshot.well_known(), vec![well_known()]);
}
