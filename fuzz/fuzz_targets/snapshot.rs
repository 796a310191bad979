//! Snapshot files: arbitrary bytes, resealed with valid checksums so the
//! input reaches rkyv's validator and the per-link checks. Whatever is
//! accepted must be fully readable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapshots::Snapshot;
use snapshots::header::{HEADER_LEN, Header};
use xxhash_rust::xxh3::xxh3_64;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if let Ok(mut header) = Header::decode(&bytes) {
        header.payload_checksum = xxh3_64(&bytes[HEADER_LEN..]);
        header.payload_len = (bytes.len() - HEADER_LEN) as u64;
        bytes[..HEADER_LEN].copy_from_slice(&header.encode());
    }
    if let Ok(snapshot) = Snapshot::from_bytes(&bytes) {
        for (code, link) in snapshot.iter() {
            let found = snapshot.get(code).expect("every listed code is found");
            assert_eq!(found.target(), link.target());
            let _ = (link.status(), link.expires_at(), link.disabled());
        }
    }
});
