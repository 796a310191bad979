//! Lookups in snapshot format 2 (links keyed by domain and code) against
//! format 1 (code only), on the same links and probes, one thread.
//!
//! `cargo run --release -p snapshots --no-default-features --example lookup_versions [LINKS]`
//! (default 1,000,000). Version-1 files are written here, from the same
//! `LinkValue` records, since the crate writes only version 2 now; the two
//! files differ only in their key and root. Each row is the best of 25
//! passes over 4096 random probes (ns per lookup: throughput, keys mostly
//! not in cache). Rows:
//! - `v1 hit` / `v1 miss`: version 1, `get_bytes`;
//! - `v2 hit` / `v2 miss`: version 2, every link on the default domain (an
//!   upgraded deployment without custom domains);
//! - `v2 hit, 10 domains`: the same codes spread over ten domains, each
//!   looked up on its own.

use rkyv::rancor;
use snapshots::archive::{FLAG_FORWARD_QUERY, LinkValue};
use snapshots::header::{HEADER_LEN, Header};
use snapshots::{Domain, Link, Snapshot, SnapshotBuilder};
use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

const DOMAINS: u32 = 10;
const PROBES: usize = 4096;
const PASSES: usize = 25;

/// SplitMix64: the same keys on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `n` distinct 7-character base62 codes.
fn codes(n: usize) -> Vec<String> {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = Rng(7);
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let code: String = (0..7)
            .map(|_| BASE62[(rng.next() % 62) as usize] as char)
            .collect();
        if seen.insert(code.clone()) {
            out.push(code);
        }
    }
    out
}

/// 40 to 120 bytes.
fn target(i: usize) -> String {
    let pad = 20 + (i * 7919) % 80;
    format!("https://example.com/{i}/{}", "p".repeat(pad))
}

fn write_v1(path: &Path, codes: &[String]) {
    let map: HashMap<String, LinkValue> = codes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let value = LinkValue {
                seq: 1,
                expires_at: 0,
                target: target(i),
                status: 301,
                flags: if i % 2 == 0 { 0 } else { FLAG_FORWARD_QUERY },
                org: 0,
            };
            (c.clone(), value)
        })
        .collect();
    let payload = rkyv::to_bytes::<rancor::Error>(&map).expect("archive");
    let header = Header {
        version: 1,
        flags: 0,
        link_count: codes.len() as u64,
        sequence: 1,
        built_at_ms: 1,
        payload_len: payload.len() as u64,
        payload_checksum: xxhash_rust::xxh3::xxh3_64(&payload),
    };
    let mut file = Vec::with_capacity(HEADER_LEN + payload.len());
    file.extend_from_slice(&header.encode());
    file.extend_from_slice(&payload);
    std::fs::write(path, file).expect("write v1");
}

/// Version 2; link `i` on domain `i % domains` (0: the default domain).
fn write_v2(path: &Path, codes: &[String], domains: u32) {
    let mut builder = SnapshotBuilder::with_capacity(1, codes.len());
    for id in 1..domains {
        builder
            .push_domain(Domain {
                id,
                verified: true,
                ..Domain::default_domain(format!("d{id}.example"))
            })
            .expect("domain");
    }
    for (i, code) in codes.iter().enumerate() {
        builder
            .push(Link {
                domain: i as u32 % domains,
                forward_query: i % 2 == 1,
                ..Link::new(code.clone(), target(i))
            })
            .expect("link");
    }
    builder.write_to(path).expect("write v2");
}

/// Best of [`PASSES`] passes of `lookup` over `keys`, in ns per lookup.
fn time<K>(keys: &[K], mut lookup: impl FnMut(&K) -> usize) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..PASSES {
        let start = Instant::now();
        let mut sum = 0usize;
        for key in keys {
            sum = sum.wrapping_add(lookup(key));
        }
        black_box(sum);
        best = best.min(start.elapsed().as_nanos() as f64 / keys.len() as f64);
    }
    best
}

fn main() {
    let links: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("LINKS is a number"))
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let codes = codes(links);
    let paths = ["v1", "v2", "v2d"].map(|n| dir.path().join(format!("{n}.snap")));
    write_v1(&paths[0], &codes);
    write_v2(&paths[1], &codes, 1);
    write_v2(&paths[2], &codes, DOMAINS);
    let [v1, v2, v2d] = paths.map(|p| {
        let s = Snapshot::open(&p).expect("valid");
        s.prefault();
        s
    });
    assert_eq!(v1.header().version, 1);
    println!(
        "{links} links; files: v1 {} bytes, v2 {} bytes, v2 (10 domains) {} bytes",
        v1.file_len(),
        v2.file_len(),
        v2d.file_len()
    );

    let mut rng = Rng(99);
    let probes: Vec<usize> = (0..PROBES)
        .map(|_| (rng.next() % links as u64) as usize)
        .collect();
    let hits: Vec<&[u8]> = probes.iter().map(|&i| codes[i].as_bytes()).collect();
    let misses: Vec<String> = probes
        .iter()
        .map(|&i| format!("{}_", &codes[i][..6]))
        .collect();
    let spread: Vec<(u32, &[u8])> = probes
        .iter()
        .map(|&i| (i as u32 % DOMAINS, codes[i].as_bytes()))
        .collect();
    for (i, key) in hits.iter().enumerate() {
        assert_eq!(
            v1.get_bytes(key).map(|l| l.target()),
            v2.get_bytes(key).map(|l| l.target())
        );
        assert!(v2d.get_in(spread[i].0, spread[i].1).is_some());
    }
    let hit = |s: &Snapshot, key: &&[u8]| s.get_bytes(key).map_or(0, |l| l.target().len());
    let miss = |s: &Snapshot, key: &String| usize::from(s.get_bytes(key.as_bytes()).is_some());
    // Interleaved rounds, so a burst of load elsewhere hits both formats.
    let mut rows: [(&str, f64); 5] = [
        ("v1 hit", f64::MAX),
        ("v2 hit", f64::MAX),
        ("v2 hit, 10 domains", f64::MAX),
        ("v1 miss", f64::MAX),
        ("v2 miss", f64::MAX),
    ];
    for _ in 0..4 {
        let round = [
            time(&hits, |k| hit(&v1, k)),
            time(&hits, |k| hit(&v2, k)),
            time(&spread, |(d, k)| {
                v2d.get_in(*d, k).map_or(0, |l| l.target().len())
            }),
            time(&misses, |k| miss(&v1, k)),
            time(&misses, |k| miss(&v2, k)),
        ];
        for (row, ns) in rows.iter_mut().zip(round) {
            row.1 = row.1.min(ns);
        }
    }
    for (name, ns) in rows {
        println!("{name:>20}: {ns:6.1} ns per lookup");
    }
}
