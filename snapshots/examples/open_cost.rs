//! Where the time of opening a large snapshot goes.
//!
//! `cargo run --release -p snapshots --no-default-features --example open_cost [LINKS] [FILE]`
//! (default 10,000,000 links in `/tmp/open-cost-LINKS.snap`, built on the
//! first run and kept: building 10M links takes about a minute and 2.3 GiB).
//! Each row is the best of three runs, the file in the page cache:
//! - `open`: `Snapshot::open`, everything an engine does before serving;
//! - `map + touch`: mapping the file and reading one byte per page;
//! - `checksum`: xxh3 over the payload;
//! - `structure`: rkyv's check of the archive (bounds, UTF-8, hash tables);
//! - `links`: the per-link rules on every link.

use rkyv::rancor;
use snapshots::archive::ArchivedSnapshotRoot;
use snapshots::header::{HEADER_LEN, Header};
use snapshots::{Link, Snapshot, SnapshotBuilder, link};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// SplitMix64: the same codes on every run.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Link `i`'s code: 7 base62 characters like the generated ones (stored
/// inline in the record: up to 8 bytes), distinct for `i` below 62^7:
/// the base62 digits of `i` times an odd number modulo 62^7 (a bijection,
/// since the multiplier is coprime with 62^7 = 2^7 * 31^7).
fn code(i: u64) -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const SPACE: u64 = 62u64.pow(7);
    let mut n = (i as u128 * 2_654_435_761 % SPACE as u128) as u64;
    let mut out = String::with_capacity(7);
    for _ in 0..7 {
        out.push(BASE62[(n % 62) as usize] as char);
        n /= 62;
    }
    out
}

fn build(path: &Path, links: u64) {
    let start = Instant::now();
    let mut builder = SnapshotBuilder::with_capacity(1, links as usize);
    for i in 0..links {
        let pad = 20 + (mix(i) % 80) as usize;
        let target = format!("https://example.com/{i}/{}", "p".repeat(pad));
        builder
            .push(Link::new(code(i), target))
            .expect("a valid link");
    }
    builder.write_to(path).expect("write the snapshot");
    eprintln!("built {links} links in {:.1?}", start.elapsed());
}

fn best(mut run: impl FnMut()) -> Duration {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .min()
        .expect("three runs")
}

fn main() {
    let links: u64 = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("LINKS is a number"))
        .unwrap_or(10_000_000);
    let path = std::env::args()
        .nth(2)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/open-cost-{links}.snap")));
    if !path.exists() {
        build(&path, links);
    }
    let bytes = std::fs::read(&path).expect("read the snapshot");
    println!("{} links, {:.2} GB", links, bytes.len() as f64 / 1e9);

    let open = best(|| {
        black_box(Snapshot::open(&path).expect("open"));
    });
    let touch = best(|| {
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: read-only map of a file nothing writes while it runs.
        let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
        let sum: u64 = map.iter().step_by(4096).map(|&b| b as u64).sum();
        black_box(sum);
    });
    let header = Header::decode(&bytes).expect("header");
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(&bytes[HEADER_LEN..]);
    let payload: &[u8] = &aligned;
    let checksum = best(|| {
        assert_eq!(xxhash_rust::xxh3::xxh3_64(payload), header.payload_checksum);
    });
    let structure = best(|| {
        black_box(rkyv::access::<ArchivedSnapshotRoot, rancor::Error>(payload).expect("archive"));
    });
    // SAFETY: `structure` above checked these very bytes with rkyv.
    let root = unsafe { rkyv::access_unchecked::<ArchivedSnapshotRoot>(payload) };
    let rules = best(|| {
        for (key, value) in root.links.iter() {
            link::validate_code(key.code.as_bytes()).expect("code");
            link::validate_target(value.target.as_str()).expect("target");
        }
    });
    let iterate = best(|| {
        let mut sum = 0usize;
        for (key, value) in root.links.iter() {
            sum += key.code.len() + value.target.len();
        }
        black_box(sum);
    });
    let codes = best(|| {
        for (key, _) in root.links.iter() {
            link::validate_code(key.code.as_bytes()).expect("code");
        }
    });
    let targets = best(|| {
        for (_, value) in root.links.iter() {
            link::validate_target(value.target.as_str()).expect("target");
        }
    });
    for (name, took) in [
        ("iterate", iterate),
        ("codes", codes),
        ("targets", targets),
        ("open", open),
        ("map + touch", touch),
        ("checksum", checksum),
        ("structure", structure),
        ("links", rules),
    ] {
        println!("{name:<12} {:>8.1} ms", took.as_secs_f64() * 1e3);
    }
}
