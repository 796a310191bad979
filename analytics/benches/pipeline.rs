//! The sidecar's CPU per event outside ClickHouse and NATS: a group of
//! click batches decoded from their payloads, enriched and turned into the
//! rows the insert sends (`Group::decode`), as the throughput example feeds
//! it (300 agents, 1,000 codes, distinct addresses, GeoIP test database).
//!
//! `cargo bench --profile release -p analytics --bench pipeline -- --quick`
//!
//! (`--profile release` reuses the release build of the dependencies; the
//! bench profile's full debug info would build them all again.)

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use analytics::enrich::{Enricher, geo::GeoIp};
use analytics::group::{Group, Origin};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use snapshots::click::{ClickBatchWriter, ClickEvent};

/// Batches of a group and events of a batch: the sidecar's default group
/// of 50,000 events, in the engines' batches of 1,000.
const BATCHES: u32 = 50;
const BATCH: u32 = 1_000;

/// The throughput example's payloads.
fn payloads() -> Vec<(Bytes, Origin)> {
    let agents: Vec<String> = (0..300)
        .map(|i| match i % 3 {
            0 => format!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{}.0.0.0 Safari/537.36", 90 + i),
            1 => format!("Mozilla/5.0 (iPhone; CPU iPhone OS 17_{i} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"),
            _ => format!("Mozilla/5.0 (X11; Linux x86_64; rv:{i}.0) Gecko/20100101 Firefox/{i}.0"),
        })
        .collect();
    let codes: Vec<String> = (0..1000).map(|i| format!("c{i:04}")).collect();
    let mut writer = ClickBatchWriter::new("bench-node", 256 * 1024);
    (0..BATCHES)
        .map(|b| {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&b.to_be_bytes());
            writer.begin(id);
            for i in 0..BATCH {
                let n = b * BATCH + i;
                let mut event_id = [0u8; 16];
                event_id[..4].copy_from_slice(&n.to_be_bytes());
                event_id[4..8].copy_from_slice(b"bnch");
                let ip = IpAddr::V4(Ipv4Addr::from(
                    0x5102_4500u32.wrapping_add(n.wrapping_mul(2_654_435_761) >> 8),
                ));
                writer.push(&ClickEvent {
                    event_id,
                    ts_ms: 1_763_700_000_000 + u64::from(n),
                    status: 301,
                    ip,
                    code: codes[(n % 1000) as usize].as_bytes(),
                    user_agent: agents[(n % 300) as usize].as_bytes(),
                    referrer: b"https://news.example.com/story",
                    accept_language: b"en-GB",
                    host: b"sho.rt",
                    domain: b"sho.rt",
                    org_id: 0,
                    rule: 0,
                });
            }
            let origin = Origin {
                stream_seq: u64::from(b),
                subject: "clicks.bench-node".into(),
                msg_id: format!("{b:032x}"),
            };
            (Bytes::copy_from_slice(writer.finish()), origin)
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let payloads = payloads();
    let geoip = GeoIp::open(&testkit::fixtures::geoip_city()).unwrap();
    let mut enricher = Enricher::new(Some(geoip), 20_000);
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(u64::from(BATCHES * BATCH)));
    group.bench_function("decode + enrich + rows, group of 50 x 1,000", |b| {
        b.iter(|| {
            black_box(Group::decode(
                &mut enricher,
                "CLICKS",
                0,
                black_box(payloads.iter().cloned()),
            ))
        })
    });
    group.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
