//! Enrichment cost per event: cached agents (the steady state) and uncached
//! ones (woothee parse), with the GeoIP test database.
//!
//! `cargo bench -p analytics --bench enrich`

use std::hint::black_box;
use std::net::IpAddr;

use analytics::enrich::{Enricher, agent, geo::GeoIp};
use criterion::{Criterion, criterion_group, criterion_main};
use snapshots::click::ClickEvent;

const CHROME: &[u8] = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

fn geoip() -> GeoIp {
    GeoIp::open(&testkit::fixtures::geoip_city()).unwrap()
}

fn event(ip: IpAddr) -> ClickEvent<'static> {
    ClickEvent {
        event_id: [1; 16],
        ts_ms: 1_763_700_000_000,
        status: 301,
        ip,
        code: b"abc123",
        user_agent: CHROME,
        referrer: b"https://news.example.com/story?id=1",
        accept_language: b"en-GB,en;q=0.9",
        host: b"sho.rt",
        domain: b"sho.rt",
    }
}

fn benches(c: &mut Criterion) {
    let london: IpAddr = "81.2.69.142".parse().unwrap();
    let mut enricher = Enricher::new(Some(geoip()), 1000);
    let ev = event(london);
    c.bench_function("enrich/event, cached agent, geoip hit", |b| {
        b.iter(|| black_box(enricher.enrich("node-1", [2; 16], black_box(&ev))))
    });
    let parser = woothee::parser::Parser::new();
    c.bench_function("enrich/woothee parse (cache miss)", |b| {
        b.iter(|| black_box(agent::parse(&parser, black_box(CHROME))))
    });
    let db = geoip();
    c.bench_function("enrich/geoip lookup", |b| {
        b.iter(|| black_box(db.lookup(black_box(london))))
    });
}

criterion_group!(enrich, benches);
criterion_main!(enrich);
