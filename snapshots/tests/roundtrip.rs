mod common;

use snapshots::{
    BuildError, DEFAULT_DOMAIN, Domain, HttpMode, Link, LinkError, Snapshot, SnapshotBuilder,
    SnapshotError, WellKnown,
};

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
            ..
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

fn domain(id: u32, name: &str, verified: bool) -> Domain {
    Domain {
        id,
        verified,
        ..Domain::default_domain(name)
    }
}

/// The same code on three domains reads back three targets; each domain's
/// settings and the well-known answers read back as written.
#[test]
fn links_are_keyed_by_domain_and_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("domains.snap");
    let brand = Domain {
        root_redirect: Some("https://brand.example/".into()),
        not_found_redirect: Some("https://brand.example/404".into()),
        http_mode: HttpMode::RedirectHttps,
        hsts_max_age: Some(31_536_000),
        ..domain(7, "go.brand.example", true)
    };
    let pending = domain(9, "pending.example", false);
    let mut builder = SnapshotBuilder::new(3).built_at_ms(1);
    builder
        .push_domain(Domain::default_domain("sho.rt"))
        .unwrap();
    builder.push_domain(brand.clone()).unwrap();
    builder.push_domain(pending.clone()).unwrap();
    builder
        .push_well_known(WellKnown {
            host: "pending.example".into(),
            path: "/.well-known/links-domain-verification/tok".into(),
            body: "tok".into(),
        })
        .unwrap();
    for (id, target) in [(0, "https://a/0"), (7, "https://a/7"), (9, "https://a/9")] {
        builder
            .push(Link {
                domain: id,
                // Version 4: the owner's org rides in the link record.
                org_id: u64::from(id) * 1000 + 1,
                ..Link::new("same", target)
            })
            .unwrap();
    }
    builder.write_to(&path).unwrap();
    let snapshot = Snapshot::open(&path).unwrap();
    assert_eq!(snapshot.header().version, 7);
    assert_eq!(snapshot.len(), 3);
    assert_eq!(snapshot.get("same").unwrap().org_id(), 1);
    assert_eq!(snapshot.get_in(7, b"same").unwrap().org_id(), 7001);
    let wide = Link {
        org_id: u64::from(u32::MAX) + 1,
        ..Link::new("wide", "https://a/w")
    };
    assert!(SnapshotBuilder::new(1).push(wide).is_err());
    assert_eq!(snapshot.get("same").unwrap().target(), "https://a/0");
    assert_eq!(snapshot.get_in(7, b"same").unwrap().target(), "https://a/7");
    assert_eq!(snapshot.get_in(9, b"same").unwrap().target(), "https://a/9");
    assert_eq!(snapshot.get_in(9, b"same").unwrap().domain(), 9);
    assert!(snapshot.get_in(8, b"same").is_none());
    assert!(snapshot.get_in(7, b"Same").is_none());
    let mut domains = snapshot.domains();
    domains.sort_by_key(|d| d.id);
    assert_eq!(
        domains,
        vec![Domain::default_domain("sho.rt"), brand, pending]
    );
    assert_eq!(snapshot.well_known().len(), 1);
    let mut seen = snapshot
        .iter()
        .map(|(code, view)| view.to_link(code))
        .map(|l| (l.domain, l.target))
        .collect::<Vec<_>>();
    seen.sort();
    assert_eq!(seen[1], (7, "https://a/7".to_owned()));
}

#[test]
fn without_domains_links_are_the_unnamed_default_domains() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.snap");
    common::build(&path, &[Link::new("a", "https://a/")], 1);
    let snapshot = Snapshot::open(&path).unwrap();
    assert_eq!(snapshot.domains(), vec![Domain::default_domain("")]);
    assert_eq!(
        snapshot.get_in(DEFAULT_DOMAIN, b"a").unwrap().target(),
        "https://a/"
    );
}

#[test]
fn domain_rules_are_enforced_when_building() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.snap");

    let mut builder = SnapshotBuilder::new(1);
    builder
        .push(Link {
            domain: 5,
            ..Link::new("a", "https://a/")
        })
        .unwrap();
    assert!(matches!(
        builder.write_to(&path),
        Err(BuildError::UnknownDomain { domain: 5, .. })
    ));

    let mut builder = SnapshotBuilder::new(1);
    builder.push_domain(domain(1, "x.example", true)).unwrap();
    builder.push_domain(domain(2, "x.example", true)).unwrap();
    assert!(matches!(
        builder.write_to(&path),
        Err(BuildError::InvalidDomain { id: 2, .. })
    ));
    // Two claims of one name, one verified: allowed (only one is served).
    let mut builder = SnapshotBuilder::new(1);
    builder.push_domain(domain(1, "x.example", true)).unwrap();
    builder.push_domain(domain(2, "x.example", false)).unwrap();
    builder.write_to(&path).unwrap();

    let mut builder = SnapshotBuilder::new(1);
    assert!(matches!(
        builder.push_domain(domain(1, "Upper.Example", true)),
        Err(BuildError::InvalidDomain { .. })
    ));
    assert!(matches!(
        builder.push_domain(Domain {
            root_redirect: Some("javascript:x".into()),
            ..domain(1, "a.example", true)
        }),
        Err(BuildError::InvalidDomain { .. })
    ));
    assert!(matches!(
        builder.push_well_known(WellKnown {
            host: "a.example".into(),
            path: "/etc/passwd".into(),
            body: "x".into(),
        }),
        Err(BuildError::InvalidWellKnown { .. })
    ));
    assert!(!path.exists() || Snapshot::open(&path).is_ok());
    let _ = SnapshotError::TooShort { len: 0, min: 64 };
}

#[test]
fn lifecycle_extras_round_trip_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.snap");
    let mut links = common::sample_links();
    links.push(Link {
        valid_since: Some(10),
        expires_at: Some(20),
        expired_url: Some("https://example.com/over".into()),
        ..Link::new("window", "https://example.com/w")
    });
    common::build(&path, &links, 3);
    let snapshot = Snapshot::open(&path).unwrap();
    for link in &links {
        let view = snapshot.get(&link.code).unwrap();
        let extra = snapshot.extra_in(0, link.code.as_bytes());
        assert_eq!(&view.to_link_with(&link.code, extra), link);
    }
    let mut builder = SnapshotBuilder::new(1);
    let err = builder
        .push(Link {
            valid_since: Some(20),
            expires_at: Some(20),
            ..Link::new("bad", "https://example.com/")
        })
        .unwrap_err();
    assert!(err.to_string().contains("valid_since"), "{err}");
    let err = builder
        .push(Link {
            expired_url: Some("javascript:alert(1)".into()),
            ..Link::new("bad", "https://example.com/")
        })
        .unwrap_err();
    assert!(err.to_string().contains("expired_url"), "{err}");
}

#[test]
fn rules_and_splits_live_in_their_own_map() {
    use snapshots::RedirectStatus;
    use snapshots::rules::{Conditions, Device, QueryCondition, Rule, Variant};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.snap");
    let rules = vec![
        Rule {
            when: Conditions {
                device: vec![Device::Mobile],
                country: vec!["DE".into()],
                ..Conditions::default()
            },
            target: "https://m.example/".into(),
            status: Some(RedirectStatus::Found),
        },
        Rule {
            when: Conditions {
                query: Some(QueryCondition {
                    name: "ref".into(),
                    equals: Some("mail".into()),
                }),
                from: Some(1_800_000_000),
                ..Conditions::default()
            },
            target: "https://mail.example/".into(),
            status: None,
        },
    ];
    let split = vec![
        Variant {
            target: "https://a.example/".into(),
            weight: 25,
            status: None,
        },
        Variant {
            target: "https://b.example/".into(),
            weight: 75,
            status: None,
        },
    ];
    let ruled = Link {
        rules: rules.clone(),
        split: split.clone(),
        valid_since: Some(1_700_000_000),
        ..Link::new("ruled", "https://plain.example/")
    };
    let split_only = Link {
        split: split.clone(),
        ..Link::new("split", "https://plain.example/")
    };
    common::build(
        &path,
        &[
            ruled,
            split_only,
            Link::new("plain", "https://plain.example/"),
        ],
        1,
    );
    let snapshot = Snapshot::open(&path).unwrap();
    assert_eq!(snapshot.header().version, 7);
    let view = snapshot.get("ruled").unwrap();
    assert!(view.has_rules() && view.has_extra());
    let (back, back_split) = snapshot
        .rules_in(0, b"ruled")
        .unwrap()
        .to_owned_rules()
        .unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0], rules[0]);
    // A rule without its own status serves the link's.
    assert_eq!(back[1].status, Some(RedirectStatus::MovedPermanently));
    assert_eq!(back[1].when, rules[1].when);
    assert_eq!(
        back_split.iter().map(|v| v.weight).collect::<Vec<_>>(),
        [25, 75]
    );
    let split_view = snapshot.get("split").unwrap();
    assert!(split_view.has_rules() && !split_view.has_extra());
    assert_eq!(snapshot.rules_in(0, b"split").unwrap().rules.len(), 0);
    let plain = snapshot.get("plain").unwrap();
    assert!(!plain.has_rules());
    assert!(snapshot.rules_in(0, b"plain").is_none());
}

/// A password-protected link keeps its verifier (format 6's side table);
/// the others have none, and a verifier past the bounds engines accept is
/// refused at the builder.
#[test]
fn password_verifiers_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.snap");
    let phc = "$argon2id$v=19$m=4096,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$Ck1HvCoR4YW0GMpwA4MYS8aWKX9o8D1rtBpNOs7FVd8";
    let gated = Link {
        password_hash: Some(phc.into()),
        valid_since: Some(1_700_000_000),
        ..Link::new("gated", "https://secret.example/")
    };
    common::build(
        &path,
        &[gated.clone(), Link::new("plain", "https://plain.example/")],
        1,
    );
    let snapshot = Snapshot::open(&path).unwrap();
    let view = snapshot.get("gated").unwrap();
    assert!(view.has_password() && view.has_extra() && !view.has_rules());
    let verifier = snapshot.password_in(0, b"gated").unwrap();
    assert_eq!(verifier.m_cost.to_native(), 4096);
    assert_eq!(verifier.hash.len(), 32);
    assert_eq!(snapshot.link_in(0, "gated").unwrap(), gated);
    assert!(!snapshot.get("plain").unwrap().has_password());
    assert!(snapshot.password_in(0, b"plain").is_none());

    let mut builder = SnapshotBuilder::new(1);
    let too_costly = Link {
        password_hash: Some(phc.replace("m=4096", "m=65536")),
        ..Link::new("costly", "https://secret.example/")
    };
    let refused = builder.push(too_costly).unwrap_err().to_string();
    assert!(refused.contains("memory m=65536"), "{refused}");
}

/// A limited link keeps its `max_visits` (format 7's side table) and is
/// listed by `limits()`, which holds only the limited links; bad limits are
/// refused at the builder.
#[test]
fn visit_limits_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.snap");
    let limited = Link {
        domain: 0,
        max_visits: Some(1000),
        expired_url: Some("https://over.example/".into()),
        ..Link::new("limited", "https://limited.example/")
    };
    let one = Link {
        max_visits: Some(1),
        ..Link::new("once", "https://once.example/")
    };
    common::build(
        &path,
        &[
            limited.clone(),
            one.clone(),
            Link::new("plain", "https://plain.example/"),
        ],
        1,
    );
    let snapshot = Snapshot::open(&path).unwrap();
    assert_eq!(snapshot.header().version, 7);
    let view = snapshot.get("limited").unwrap();
    assert!(view.has_limit() && view.has_extra() && !view.has_password());
    assert_eq!(snapshot.limit_in(0, b"limited"), Some(1000));
    assert_eq!(snapshot.link_in(0, "limited").unwrap(), limited);
    assert_eq!(snapshot.link_in(0, "once").unwrap(), one);
    assert!(!snapshot.get("plain").unwrap().has_limit());
    assert_eq!(snapshot.limit_in(0, b"plain"), None);
    let mut limits: Vec<_> = snapshot
        .limits()
        .map(|(domain, code, max)| (domain, code.to_owned(), max))
        .collect();
    limits.sort();
    assert_eq!(
        limits,
        vec![(0, "limited".to_owned(), 1000), (0, "once".to_owned(), 1)]
    );

    let mut builder = SnapshotBuilder::new(1);
    for bad in [0, 1_000_000_001] {
        let refused = builder
            .push(Link {
                max_visits: Some(bad),
                ..Link::new("bad", "https://bad.example/")
            })
            .unwrap_err()
            .to_string();
        assert!(refused.contains("max_visits"), "{refused}");
    }
}
