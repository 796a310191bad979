//! Enrichment cost per event: a realistic agent mix through the cache (the
//! steady state), a cached agent alone, the cold parse (bot rules + uap-core,
//! what a cache miss costs) and the GeoIP lookup.
//!
//! `cargo bench -p analytics --bench enrich -- --quick`
//!
//! The mix: every distinct person's agent of `corpora/devices.tsv` and every
//! crawler of `corpora/crawlers.tsv` (about 10k agents), drawn with Zipf
//! weights (s = 1) into 200k events, as real traffic repeats a few agents
//! a lot and has a long tail; the cache holds the sidecar's default 20k agents.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;

use analytics::enrich::{Enricher, agent, geo::GeoIp};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use snapshots::click::ClickEvent;

const CHROME: &[u8] = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const EVENTS: usize = 200_000;

fn geoip() -> GeoIp {
    GeoIp::open(&testkit::fixtures::geoip_city()).unwrap()
}

fn event(ip: IpAddr, user_agent: &[u8]) -> ClickEvent<'_> {
    ClickEvent {
        event_id: [1; 16],
        ts_ms: 1_763_700_000_000,
        status: 301,
        ip,
        code: b"abc123",
        user_agent,
        referrer: b"https://news.example.com/story?id=1",
        accept_language: b"en-GB,en;q=0.9",
        host: b"sho.rt",
        domain: b"sho.rt",
        org_id: 0,
        rule: 0,
    }
}

/// The corpora's distinct agents, in file order (people first).
fn agents() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora");
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (file, column) in [("devices.tsv", 4), ("crawlers.tsv", 1)] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for line in text.lines().skip(1) {
            if let Some(ua) = line.split('\t').nth(column)
                && seen.insert(ua.to_owned())
            {
                out.push(ua.as_bytes().to_vec());
            }
        }
    }
    out
}

/// Indexes into `n` agents, Zipf-distributed (s = 1), from a fixed xorshift seed.
fn zipf_mix(n: usize, events: usize) -> Vec<usize> {
    let cumulative: Vec<f64> = (1..=n)
        .scan(0.0, |sum, k| {
            *sum += 1.0 / k as f64;
            Some(*sum)
        })
        .collect();
    let total = cumulative[n - 1];
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    (0..events)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = (state >> 11) as f64 / (1u64 << 53) as f64 * total;
            cumulative.partition_point(|&c| c < x).min(n - 1)
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let london: IpAddr = "81.2.69.142".parse().unwrap();
    let agents = agents();
    // Shuffle ranks so the head of the mix is not all desktop browsers.
    let mut ranked: Vec<&[u8]> = agents.iter().map(Vec::as_slice).collect();
    ranked.sort_by_key(|ua| xxhash_rust::xxh3::xxh3_64(ua));
    let mix = zipf_mix(ranked.len(), EVENTS);
    let events: Vec<ClickEvent<'_>> = mix.iter().map(|&i| event(london, ranked[i])).collect();

    let mut group = c.benchmark_group("enrich");
    group.throughput(Throughput::Elements(events.len() as u64));
    let mut enricher = Enricher::new(Some(geoip()), 20_000);
    group.bench_function("realistic mix, per event (cache 20k, geoip)", |b| {
        b.iter(|| {
            for ev in &events {
                black_box(enricher.enrich("node-1", [2; 16], black_box(ev)));
            }
        })
    });
    // The same mix with a cache that holds every distinct agent: what a
    // larger `ua_cache_size` buys when the mix has about as many distinct
    // agents as the default cache (each generation holds half of it).
    let mut roomy = Enricher::new(Some(geoip()), 100_000);
    group.bench_function("realistic mix, per event (cache 100k, geoip)", |b| {
        b.iter(|| {
            for ev in &events {
                black_box(roomy.enrich("node-1", [2; 16], black_box(ev)));
            }
        })
    });
    group.throughput(Throughput::Elements(ranked.len() as u64));
    group.bench_function("cold parse, per distinct agent (no cache)", |b| {
        b.iter(|| {
            for ua in &ranked {
                black_box(agent::parse(black_box(ua)));
            }
        })
    });
    group.finish();

    let mut enricher = Enricher::new(Some(geoip()), 1000);
    let ev = event(london, CHROME);
    c.bench_function("enrich/event, cached agent, geoip hit", |b| {
        b.iter(|| black_box(enricher.enrich("node-1", [2; 16], black_box(&ev))))
    });
    c.bench_function("enrich/parse Chrome (cache miss)", |b| {
        b.iter(|| black_box(agent::parse(black_box(CHROME))))
    });
    let db = geoip();
    c.bench_function("enrich/geoip lookup", |b| {
        b.iter(|| black_box(db.lookup(black_box(london))))
    });
}

criterion_group!(enrich, benches);
criterion_main!(enrich);
