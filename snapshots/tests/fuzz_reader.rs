//! Random and mutated bytes never make the reader panic or accept garbage.
mod common;

use proptest::prelude::*;
use snapshots::Snapshot;
use snapshots::click::ClickBatch;
use snapshots::delta::LinkDelta;
use snapshots::header::{HEADER_LEN, Header};
use std::sync::OnceLock;
use xxhash_rust::xxh3::xxh3_64;

fn good() -> &'static [u8] {
    static GOOD: OnceLock<Vec<u8>> = OnceLock::new();
    GOOD.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("good.snap");
        common::build(&path, &common::sample_links()[..20], 3);
        std::fs::read(path).unwrap()
    })
}

/// Fixes the checksums so mutations reach rkyv's validator and the link checks.
fn reseal(bytes: &mut [u8]) {
    if let Ok(mut header) = Header::decode(bytes) {
        header.payload_checksum = xxh3_64(&bytes[HEADER_LEN..]);
        header.payload_len = (bytes.len() - HEADER_LEN) as u64;
        bytes[..HEADER_LEN].copy_from_slice(&header.encode());
    }
}

/// Whatever opens must be usable: every entry readable, lookups consistent.
fn exercise(snapshot: &Snapshot) {
    for (code, link) in snapshot.iter() {
        let _ = (link.target().len(), link.status(), link.expires_at());
        let _ = snapshot.get(code);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        if let Ok(s) = Snapshot::from_bytes(&bytes) { exercise(&s) }
    }

    #[test]
    fn mutated_and_resealed(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = good().to_vec();
        for (at, value) in flips {
            let i = HEADER_LEN + at.index(bytes.len() - HEADER_LEN);
            bytes[i] = value;
        }
        if truncate {
            let keep = HEADER_LEN + cut.index(bytes.len() - HEADER_LEN);
            bytes.truncate(keep);
        }
        reseal(&mut bytes);
        if let Ok(s) = Snapshot::from_bytes(&bytes) { exercise(&s) }
    }

    #[test]
    fn click_batches_and_deltas(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(batch) = ClickBatch::parse(&bytes) {
            prop_assert_eq!(batch.events().count(), batch.len());
        }
        let _ = LinkDelta::decode(&bytes);
    }
}
