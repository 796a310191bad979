//! Redirect rules on the engine's request path, side by side in one run:
//! the whole answer (parse, lookup, rules, response, click record) for a
//! link without rules, for one with five rules that all fail and a split
//! (every condition evaluated: the worst realistic case, including a GeoIP
//! lookup), for one whose first rule holds, and for one with `max_visits`
//! (a visit taken from the core's leased slice: a map lookup and a
//! decrement). Issue 16's budget: the rule-less link unchanged, five rules
//! at most +0.5 µs; a feature that acts on a visit costs little.
//!
//! `cargo bench -p bench --bench rules` (pin it for steadier numbers:
//! `taskset -c 1 cargo bench ...`).

use criterion::{Criterion, criterion_group, criterion_main};
use engine::config::Config;
use engine::core::Core;
use engine::core::session::answer;
use engine::http::request::{Parse, parse};
use engine::metrics::CoreMetrics;
use snapshots::rules::{Conditions, Device, Os, QueryCondition, Rule, Variant};
use snapshots::{Link, Snapshot, SnapshotBuilder};
use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;

/// A browser's head (Windows Chrome, English): it fails every rule below.
fn request(code: &str) -> Vec<u8> {
    format!(
        "GET /{code}?utm_source=mail HTTP/1.1\r\nHost: sho.rt\r\n\
User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-GB,en;q=0.9,fr;q=0.8\r\n\
X-Forwarded-For: 81.2.69.142\r\n\
Referer: https://mail.example.com/\r\n\r\n"
    )
    .into_bytes()
}

fn five_rules() -> Vec<Rule> {
    let rule = |when: Conditions, to: &str| Rule {
        when,
        target: format!("https://brand.example/{to}"),
        status: None,
    };
    vec![
        rule(
            Conditions {
                device: vec![Device::Mobile, Device::Tablet],
                os: vec![Os::Ios, Os::Android],
                ..Conditions::default()
            },
            "app",
        ),
        rule(
            Conditions {
                country: vec!["DE".into(), "AT".into(), "CH".into()],
                ..Conditions::default()
            },
            "de",
        ),
        rule(
            Conditions {
                language: vec!["fr".into(), "it".into()],
                ..Conditions::default()
            },
            "fr",
        ),
        rule(
            Conditions {
                query: Some(QueryCondition {
                    name: "ref".into(),
                    equals: Some("partner".into()),
                }),
                ..Conditions::default()
            },
            "partner",
        ),
        rule(
            Conditions {
                from: Some(1),
                until: Some(2),
                ..Conditions::default()
            },
            "past",
        ),
    ]
}

fn split() -> Vec<Variant> {
    ["a", "b"]
        .iter()
        .map(|to| Variant {
            target: format!("https://brand.example/{to}"),
            weight: 50,
            status: None,
        })
        .collect()
}

fn core(dir: &std::path::Path) -> Core {
    let path = dir.join("s.snap");
    let mut builder = SnapshotBuilder::new(1);
    for i in 0..10_000 {
        builder
            .push(Link::new(format!("n{i}"), format!("https://n.example/{i}")))
            .unwrap();
    }
    builder
        .push(Link::new("plain", "https://brand.example/"))
        .unwrap();
    builder
        .push(Link {
            rules: five_rules(),
            split: split(),
            ..Link::new("ruled", "https://brand.example/")
        })
        .unwrap();
    let mut first_holds = five_rules();
    first_holds[0].when.os.push(Os::Windows);
    first_holds[0].when.device.push(Device::Desktop);
    builder
        .push(Link {
            rules: first_holds,
            ..Link::new("first", "https://brand.example/")
        })
        .unwrap();
    builder
        .push(Link {
            max_visits: Some(1_000_000_000),
            ..Link::new("limited", "https://brand.example/")
        })
        .unwrap();
    builder.write_to(&path).unwrap();
    let snapshot = Arc::new(Snapshot::open(&path).unwrap());
    let config = Config {
        trusted_proxies: vec!["127.0.0.1".into()],
        geoip: Some(testkit_geoip()),
        ..Config::default()
    };
    let geoip = engine::geoip::GeoIp::open(config.geoip.as_deref().unwrap()).unwrap();
    Core {
        geoip: Some(Arc::new(geoip)),
        ..Core::new(
            0,
            &config,
            Arc::new(CoreMetrics::new()),
            Some(snapshot),
            None,
        )
    }
}

/// MaxMind's GeoIP2 City test database, from the repository's fixtures.
fn testkit_geoip() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testkit/fixtures/geoip/GeoIP2-City-Test.mmdb")
}

fn redirect_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path());
    let peer: IpAddr = "127.0.0.1".parse().unwrap();
    let mut out = Vec::with_capacity(64 * 1024);
    // The limited link's visits, as the control thread hands a core a slice
    // of a lease: more than any run takes.
    core.visits.borrow_mut().grant(
        engine::core::visits::link_key(0, b"limited"),
        1,
        u32::MAX,
        u64::MAX,
    );
    let mut g = c.benchmark_group("redirect_path");
    for code in ["plain", "ruled", "first", "limited"] {
        let raw = request(code);
        {
            // Each answers a redirect (the limited one from its slice).
            out.clear();
            let Parse::Complete(req) = parse(&raw, &core.limits) else {
                panic!("parse");
            };
            let (status, _) = answer(&core, &req, peer, 1_700_000_000_000, false, &mut out);
            assert_eq!(status, 301, "{code}");
        }
        g.bench_function(code, |b| {
            b.iter(|| {
                out.clear();
                let Parse::Complete(req) = parse(black_box(&raw), &core.limits) else {
                    panic!("parse");
                };
                black_box(answer(
                    &core,
                    &req,
                    peer,
                    1_700_000_000_000,
                    false,
                    &mut out,
                ))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, redirect_path);
criterion_main!(benches);
