//! A snapshot and a delta written by format version 5, committed to the
//! repository: version 4's kinds of links (plain, every flag, lifecycle
//! extras, two domains, org ids) plus redirect rules and an A/B split,
//! which version 5 added. Later readers must keep reading both, without
//! password gates (version 6 added them). Never regenerated: version 6
//! replaced their writer. They were written by this file's
//! `write_fixtures` run on the version-5 code.
mod common;

use snapshots::delta::LinkDelta;
use snapshots::rules::{Conditions, Device, QueryCondition, Rule, Variant};
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

fn rules() -> Vec<Rule> {
    vec![
        Rule {
            when: Conditions {
                device: vec![Device::Mobile],
                language: vec!["fr".into()],
                ..Conditions::default()
            },
            target: "https://brand.example/fr-mobile".into(),
            status: Some(RedirectStatus::Found),
        },
        Rule {
            when: Conditions {
                query: Some(QueryCondition {
                    name: "ref".into(),
                    equals: Some("mail".into()),
                }),
                ..Conditions::default()
            },
            target: "https://brand.example/mail".into(),
            // Explicit: a snapshot reads an absent status back as the link's.
            status: Some(RedirectStatus::MovedPermanently),
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
        expires_at: Some(1_800_000_000),
        expired_url: Some("https://brand.example/ended".into()),
        rules: rules(),
        split: split(),
        ..Link::new("ruled", "https://brand.example/live")
    });
    links.push(Link {
        org_id: 2,
        split: split(),
        ..Link::new("split-only", "https://brand.example/")
    });
    links
}

fn delta() -> LinkDelta {
    let mut delta = LinkDelta::upsert(
        63,
        Link {
            domain: 7,
            org_id: 42,
            status: RedirectStatus::TemporaryRedirect,
            rules: rules(),
            ..Link::new("rule-link", "https://brand.example/rules")
        },
    );
    delta.v = 5;
    delta
}

/// Writes the fixtures; run once on the version-5 code with
/// `WRITE_V5_FIXTURES=1`, never since.
#[test]
fn write_fixtures() {
    if std::env::var_os("WRITE_V5_FIXTURES").is_none() {
        return;
    }
    let mut builder = SnapshotBuilder::new(7654);
    for domain in domains() {
        builder.push_domain(domain).unwrap();
    }
    for link in links() {
        builder.push(link).unwrap();
    }
    builder.write_to(&fixture("v5.snap")).unwrap();
    std::fs::write(fixture("delta-upsert-v5.json"), delta().encode()).unwrap();
}

#[test]
fn reads_the_committed_v5_fixture() {
    let snapshot = Snapshot::open(&fixture("v5.snap")).expect("the v5 fixture must keep opening");
    assert_eq!(snapshot.header().version, 5);
    assert_eq!(snapshot.sequence(), 7654);
    assert_eq!(snapshot.len(), links().len());
    for link in links() {
        let view = snapshot
            .get_in(link.domain, link.code.as_bytes())
            .unwrap_or_else(|| panic!("{link:?} missing"));
        let extra = snapshot.extra_in(link.domain, link.code.as_bytes());
        assert_eq!(extra.is_some(), link.has_extra(), "{link:?}");
        assert_eq!(view.has_rules(), link.has_rules(), "{link:?}");
        assert_eq!(view.org_id(), link.org_id, "{link:?}");
        let mut owned = view.to_link_with(&link.code, extra);
        if let Some(rules) = snapshot.rules_in(link.domain, link.code.as_bytes()) {
            (owned.rules, owned.split) = rules.to_owned_rules().unwrap();
        }
        assert_eq!(owned, link);
    }
    let mut read = snapshot.domains();
    read.sort_by_key(|d| d.id);
    assert_eq!(read, domains());
}

#[test]
fn reads_the_committed_v5_delta() {
    let bytes = std::fs::read(fixture("delta-upsert-v5.json")).unwrap();
    let decoded = LinkDelta::decode(&bytes).expect("the v5 delta must keep decoding");
    assert_eq!(decoded, delta());
    assert_eq!(decoded.v, 5);
}
