//! A snapshot and a delta written by format version 6, committed to the
//! repository: version 5's kinds of links (plain, every flag, lifecycle
//! extras, rules and a split, two domains, org ids) plus a password gate,
//! which version 6 added. Later readers must keep reading both, without
//! visit limits (version 7 added them). Never regenerated: version 7
//! replaced their writer. They were written by this file's
//! `write_fixtures` run on the version-6 code.
mod common;

use snapshots::delta::LinkDelta;
use snapshots::rules::Variant;
use snapshots::{Domain, HttpMode, Link, RedirectStatus, Snapshot, SnapshotBuilder};
use std::path::PathBuf;

const PHC: &str = "$argon2id$v=19$m=4096,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$Ck1HvCoR4YW0GMpwA4MYS8aWKX9o8D1rtBpNOs7FVd8";

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

fn split() -> Vec<Variant> {
    ["https://brand.example/a", "https://brand.example/b"]
        .map(|target| Variant {
            target: target.into(),
            weight: 50,
            status: Some(RedirectStatus::MovedPermanently),
        })
        .to_vec()
}

fn links() -> Vec<Link> {
    let mut links = common::sample_links();
    for (i, link) in links.iter_mut().enumerate() {
        link.org_id = 1 + (i as u64 % 3);
    }
    links.push(Link {
        domain: 7,
        org_id: 9,
        valid_since: Some(1_700_000_000),
        expired_url: Some("https://brand.example/ended".into()),
        password_hash: Some(PHC.into()),
        ..Link::new("gated", "https://brand.example/secret")
    });
    links.push(Link {
        org_id: 2,
        split: split(),
        password_hash: Some(PHC.into()),
        ..Link::new("gated-split", "https://brand.example/")
    });
    links
}

fn delta() -> LinkDelta {
    let mut delta = LinkDelta::upsert(
        64,
        Link {
            domain: 7,
            org_id: 42,
            status: RedirectStatus::Found,
            password_hash: Some(PHC.into()),
            ..Link::new("gated-link", "https://brand.example/gated")
        },
    );
    delta.v = 6;
    delta
}

/// Writes the fixtures; run once on the version-6 code with
/// `WRITE_V6_FIXTURES=1`, never since.
#[test]
fn write_fixtures() {
    if std::env::var_os("WRITE_V6_FIXTURES").is_none() {
        return;
    }
    let mut builder = SnapshotBuilder::new(8765);
    for domain in domains() {
        builder.push_domain(domain).unwrap();
    }
    for link in links() {
        builder.push(link).unwrap();
    }
    builder.write_to(&fixture("v6.snap")).unwrap();
    std::fs::write(fixture("delta-upsert-v6.json"), delta().encode()).unwrap();
}

#[test]
fn reads_the_committed_v6_fixture() {
    let snapshot = Snapshot::open(&fixture("v6.snap")).expect("the v6 fixture must keep opening");
    assert_eq!(snapshot.header().version, 6);
    assert_eq!(snapshot.sequence(), 8765);
    assert_eq!(snapshot.len(), links().len());
    for link in links() {
        let view = snapshot
            .get_in(link.domain, link.code.as_bytes())
            .unwrap_or_else(|| panic!("{link:?} missing"));
        assert_eq!(view.has_password(), link.has_password(), "{link:?}");
        assert_eq!(view.org_id(), link.org_id, "{link:?}");
        let owned = snapshot.link_in(link.domain, &link.code).unwrap();
        assert_eq!(owned, link);
    }
    let mut read = snapshot.domains();
    read.sort_by_key(|d| d.id);
    assert_eq!(read, domains());
}

#[test]
fn reads_the_committed_v6_delta() {
    let bytes = std::fs::read(fixture("delta-upsert-v6.json")).unwrap();
    let decoded = LinkDelta::decode(&bytes).expect("the v6 delta must keep decoding");
    assert_eq!(decoded, delta());
    assert_eq!(decoded.v, 6);
}
