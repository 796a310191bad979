//! Signed snapshots: opened by their signature when the key is trusted,
//! checked completely otherwise, refused when the signature does not match.
mod common;

use snapshots::header::{HEADER_FLAG_SIGNED, HEADER_LEN, Header};
use snapshots::signed::{Checked, SIGNATURE_TRAILER_LEN};
use snapshots::signing::{DeltaSigner, DeltaVerifier};
use snapshots::{Snapshot, SnapshotBuilder, SnapshotError};
use std::path::Path;
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_64;

fn signed(path: &Path, signer: &Arc<DeltaSigner>) -> snapshots::BuildSummary {
    let mut builder = SnapshotBuilder::new(9)
        .built_at_ms(1_700_000_000_000)
        .signed_by(signer.clone());
    for link in common::sample_links() {
        builder.push(link).unwrap();
    }
    builder.write_to(path).unwrap()
}

fn keys() -> (Arc<DeltaSigner>, DeltaVerifier) {
    let (signer, _) = DeltaSigner::generate();
    let mut verifier = DeltaVerifier::default();
    verifier.trust(&signer);
    (Arc::new(signer), verifier)
}

/// The same links and answers whichever way the file was checked.
fn assert_serves_the_sample(snapshot: &Snapshot) {
    assert_eq!(snapshot.len(), common::sample_links().len());
    assert_eq!(snapshot.sequence(), 9);
    for link in common::sample_links() {
        let got = snapshot.get(&link.code).expect("every sample code");
        assert_eq!(got.target(), link.target);
    }
    assert!(snapshot.get("missing").is_none());
}

#[test]
fn a_trusted_signature_opens_the_file_and_anyone_else_checks_it_completely() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signed.snap");
    let (signer, verifier) = keys();
    let summary = signed(&path, &signer);
    assert_eq!(summary.header.flags, HEADER_FLAG_SIGNED);
    let unsigned_len = {
        let other = dir.path().join("unsigned.snap");
        common::build(&other, &common::sample_links(), 9).file_len
    };
    assert_eq!(
        summary.file_len,
        unsigned_len + SIGNATURE_TRAILER_LEN as u64
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), summary.file_len);

    let trusted = Snapshot::open_trusting(&path, Some(&verifier)).unwrap();
    assert_eq!(trusted.checked_by(), Checked::Signature(signer.key_id()));
    assert_serves_the_sample(&trusted);

    // No keys, or only another key: the complete check, which passes.
    let plain = Snapshot::open(&path).unwrap();
    assert_eq!(plain.checked_by(), Checked::Full);
    assert_serves_the_sample(&plain);
    let (_, strangers) = keys();
    let other = Snapshot::open_trusting(&path, Some(&strangers)).unwrap();
    assert_eq!(other.checked_by(), Checked::Full);

    // An unsigned file is checked completely even by an engine with keys.
    let unsigned = dir.path().join("unsigned.snap");
    let opened = Snapshot::open_trusting(&unsigned, Some(&verifier)).unwrap();
    assert_eq!(opened.checked_by(), Checked::Full);
}

#[test]
fn a_changed_byte_anywhere_is_refused_by_a_trusted_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signed.snap");
    let (signer, verifier) = keys();
    signed(&path, &signer);
    let good = std::fs::read(&path).unwrap();
    let header = Header::decode(&good).unwrap();
    let payload_end = HEADER_LEN + header.payload_len as usize;

    // A payload byte, with the xxh3 checksum fixed up to match (what someone
    // editing the file on purpose would do): the signature still catches it.
    for at in [HEADER_LEN, HEADER_LEN + 1000, payload_end - 1] {
        let mut bytes = good.clone();
        bytes[at] ^= 0x40;
        let mut h = header;
        h.payload_checksum = xxh3_64(&bytes[HEADER_LEN..payload_end]);
        bytes[..HEADER_LEN].copy_from_slice(&h.encode());
        let err = Snapshot::from_bytes_trusting(&bytes, Some(&verifier)).unwrap_err();
        assert!(
            matches!(err, SnapshotError::BadSignature { .. }),
            "flip at {at}: {err:?}"
        );
    }

    // A header field (the sequence), header checksum fixed up.
    let mut bytes = good.clone();
    let mut h = header;
    h.sequence += 1;
    bytes[..HEADER_LEN].copy_from_slice(&h.encode());
    let err = Snapshot::from_bytes_trusting(&bytes, Some(&verifier)).unwrap_err();
    assert!(matches!(err, SnapshotError::BadSignature { .. }), "{err:?}");

    // The signature itself, and its tag.
    for at in [payload_end, payload_end + 10, good.len() - 1] {
        let mut bytes = good.clone();
        bytes[at] ^= 1;
        let err = Snapshot::from_bytes_trusting(&bytes, Some(&verifier)).unwrap_err();
        assert!(
            matches!(err, SnapshotError::BadSignature { .. }),
            "flip at {at}: {err:?}"
        );
    }

    // Cut short, or grown: refused before any digest.
    let err = Snapshot::from_bytes_trusting(&good[..good.len() - 1], Some(&verifier)).unwrap_err();
    assert!(matches!(err, SnapshotError::Truncated { .. }), "{err:?}");
    let mut longer = good.clone();
    longer.push(0);
    let err = Snapshot::from_bytes_trusting(&longer, Some(&verifier)).unwrap_err();
    assert!(
        matches!(err, SnapshotError::TrailingBytes { extra: 1 }),
        "{err:?}"
    );
}

#[test]
fn a_file_claiming_a_signature_it_lacks_is_not_trusted() {
    // An unsigned file with the flag set (header checksum fixed up): its last
    // 72 payload bytes are taken for a trailer, which is no signature, so a
    // trusted key refuses it and the complete check finds the payload cut.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.snap");
    common::build(&path, &common::sample_links(), 9);
    let mut bytes = std::fs::read(&path).unwrap();
    let mut h = Header::decode(&bytes).unwrap();
    h.flags = HEADER_FLAG_SIGNED;
    h.payload_len -= SIGNATURE_TRAILER_LEN as u64;
    bytes[..HEADER_LEN].copy_from_slice(&h.encode());
    let (_, verifier) = keys();
    let err = Snapshot::from_bytes_trusting(&bytes, Some(&verifier)).unwrap_err();
    assert!(matches!(err, SnapshotError::BadSignature { .. }), "{err:?}");
    let err = Snapshot::from_bytes(&bytes).unwrap_err();
    assert!(
        matches!(err, SnapshotError::PayloadChecksum { .. }),
        "{err:?}"
    );
}

#[test]
fn version_5_files_may_not_carry_the_flag() {
    let mut bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v5.snap"))
            .unwrap();
    let mut h = Header::decode(&bytes).unwrap();
    h.flags = HEADER_FLAG_SIGNED;
    bytes[..HEADER_LEN].copy_from_slice(&h.encode());
    let err = Snapshot::from_bytes(&bytes).unwrap_err();
    assert!(
        matches!(err, SnapshotError::UnknownFlags { flags: 1 }),
        "{err:?}"
    );
}
