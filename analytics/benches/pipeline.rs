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

use analytics::enrich::{Enricher, geo::GeoIp};
use analytics::group::{Group, Origin};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use snapshots::click::ClickBatchWriter;

/// Batches of a group and events of a batch: the sidecar's default group
/// of 50,000 events, in the engines' batches of 1,000.
const BATCHES: u32 = 50;

#[path = "../examples/support/mix.rs"]
mod mix;

use mix::BATCH;

/// The throughput example's payloads.
fn payloads() -> Vec<(Bytes, Origin)> {
    let (agents, codes) = (mix::agents(), mix::codes());
    let mut writer = ClickBatchWriter::new("bench-node", 256 * 1024);
    (0..BATCHES)
        .map(|b| {
            mix::write_batch(&mut writer, b, BATCH, &codes, &agents);
            let origin = Origin {
                stream_seq: u64::from(b),
                subject: "clicks.bench-node".into(),
                msg_id: format!("{b:032x}"),
                node: Some("bench-node".into()),
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
