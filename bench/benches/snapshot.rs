//! Snapshot benchmarks: build, open + validate (complete, and by a trusted
//! signature), and lookups (hit and miss),
//! with two alternative lookup structures on the same keys as baselines:
//! a std `HashMap` (what a general-purpose server would hold) and a sorted
//! array with binary search.
//!
//! `cargo bench -p bench --bench snapshot` runs 1M links; set
//! `BENCH_SNAPSHOT_SIZES=1000000,10000000` for 10M too (builds a ~1 GB file).

use bench::{build_snapshot, build_snapshot_signed, codes, target};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use snapshots::Snapshot;
use snapshots::signing::{DeltaSigner, DeltaVerifier};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

fn sizes() -> Vec<usize> {
    std::env::var("BENCH_SNAPSHOT_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000_000])
}

/// Lookup keys: a fixed, shuffled sample so the access pattern is random.
fn probe_keys(codes: &[String], n: usize) -> Vec<String> {
    let mut rng = bench::Rng::new(99);
    (0..n)
        .map(|_| codes[(rng.next_u64() % codes.len() as u64) as usize].clone())
        .collect()
}

fn snapshot_benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    for n in sizes() {
        let label = format!("{}M", n / 1_000_000);
        let codes = codes(n, 7);
        let path = dir.path().join(format!("{label}.snap"));

        // Ten builds of 10M take many minutes: larger sizes are timed once, by
        // `snapshot build` under /usr/bin/time (README), which also gives peak memory.
        if n <= 1_000_000 {
            let mut build = c.benchmark_group("snapshot_build");
            build
                .sample_size(10)
                .measurement_time(Duration::from_secs(30));
            build.throughput(Throughput::Elements(n as u64));
            build.bench_function(BenchmarkId::from_parameter(&label), |b| {
                b.iter(|| build_snapshot(&path, &codes))
            });
            build.finish();
        }

        let summary = build_snapshot(&path, &codes);
        eprintln!("{label}: file {} bytes", summary.file_len);

        let mut open = c.benchmark_group("snapshot_open_validate");
        open.sample_size(10)
            .measurement_time(Duration::from_secs(20));
        open.throughput(Throughput::Bytes(summary.file_len));
        open.bench_function(BenchmarkId::from_parameter(&label), |b| {
            b.iter(|| Snapshot::open(&path).expect("valid"))
        });
        open.finish();

        // The same links, signed: what an engine trusting control's key does
        // instead of the complete check (`snapshots::signed`). Opened twice
        // per build: the file is in the page cache, as after a download.
        let (signer, _) = DeltaSigner::generate();
        let mut verifier = DeltaVerifier::default();
        verifier.trust(&signer);
        let signed_path = dir.path().join(format!("{label}-signed.snap"));
        let signed = build_snapshot_signed(&signed_path, &codes, Some(Arc::new(signer)));
        let mut open = c.benchmark_group("snapshot_open_signed");
        open.sample_size(10)
            .measurement_time(Duration::from_secs(20));
        open.throughput(Throughput::Bytes(signed.file_len));
        open.bench_function(BenchmarkId::from_parameter(&label), |b| {
            b.iter(|| Snapshot::open_trusting(&signed_path, Some(&verifier)).expect("valid"))
        });
        open.finish();
        std::fs::remove_file(&signed_path).expect("remove the signed copy");

        let snapshot = Snapshot::open(&path).expect("valid");
        snapshot.prefault();
        let hits = probe_keys(&codes, 4096);
        // Misses: same shape, a character no generated code has (`_`).
        let misses: Vec<String> = hits.iter().map(|c| format!("{}_", &c[..6])).collect();

        let mut lookup = c.benchmark_group("snapshot_lookup");
        lookup.throughput(Throughput::Elements(hits.len() as u64));
        lookup.bench_function(BenchmarkId::new("rkyv_hit", &label), |b| {
            b.iter(|| {
                for key in &hits {
                    black_box(snapshot.get_bytes(key.as_bytes()).map(|l| l.target().len()));
                }
            })
        });
        lookup.bench_function(BenchmarkId::new("rkyv_miss", &label), |b| {
            b.iter(|| {
                for key in &misses {
                    black_box(snapshot.get_bytes(key.as_bytes()).is_some());
                }
            })
        });

        // Baselines on the same keys.
        let map: HashMap<String, String> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), target(i)))
            .collect();
        lookup.bench_function(BenchmarkId::new("std_hashmap_hit", &label), |b| {
            b.iter(|| {
                for key in &hits {
                    black_box(map.get(key.as_str()).map(|t| t.len()));
                }
            })
        });
        drop(map);
        let mut sorted: Vec<(String, String)> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), target(i)))
            .collect();
        sorted.sort_unstable();
        lookup.bench_function(BenchmarkId::new("sorted_array_hit", &label), |b| {
            b.iter(|| {
                for key in &hits {
                    let found = sorted.binary_search_by(|(c, _)| c.as_str().cmp(key));
                    black_box(found.map(|i| sorted[i].1.len()).ok());
                }
            })
        });
        lookup.finish();

        // Latency of a single lookup whose key is not in cache: one key per
        // iteration from a large random sample.
        let cold = probe_keys(&codes, 1 << 16);
        let mut i = 0usize;
        c.bench_function(&format!("snapshot_lookup_single/rkyv_hit/{label}"), |b| {
            b.iter_batched(
                || {
                    i = (i + 1) & ((1 << 16) - 1);
                    &cold[i]
                },
                |key| black_box(snapshot.get_bytes(key.as_bytes()).map(|l| l.target().len())),
                BatchSize::SmallInput,
            )
        });
    }
}

criterion_group!(benches, snapshot_benches);
criterion_main!(benches);
