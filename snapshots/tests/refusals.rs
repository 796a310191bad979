//! Every way a snapshot file can be wrong is refused with a precise error.
mod common;

use snapshots::header::{HEADER_LEN, Header};
use snapshots::{Snapshot, SnapshotError};
use xxhash_rust::xxh3::xxh3_64;

fn good_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.snap");
    common::build(&path, &common::sample_links(), 3);
    std::fs::read(path).unwrap()
}

/// Rewrites the payload checksum (and so the header checksum) so that a
/// deliberately corrupted payload reaches the deeper checks.
fn reseal(bytes: &mut [u8]) {
    let mut header = Header::decode(bytes).unwrap();
    header.payload_checksum = xxh3_64(&bytes[HEADER_LEN..]);
    header.payload_len = (bytes.len() - HEADER_LEN) as u64;
    bytes[..HEADER_LEN].copy_from_slice(&header.encode());
}

#[test]
fn missing_file() {
    let err = Snapshot::open(std::path::Path::new("/nonexistent/x.snap")).unwrap_err();
    assert!(matches!(err, SnapshotError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/x.snap"), "{err}");
}

#[test]
fn too_short() {
    let bytes = good_bytes();
    assert!(matches!(
        Snapshot::from_bytes(&bytes[..0]),
        Err(SnapshotError::TooShort { len: 0, min: 64 })
    ));
    assert!(matches!(
        Snapshot::from_bytes(&bytes[..63]),
        Err(SnapshotError::TooShort { len: 63, .. })
    ));
}

#[test]
fn wrong_magic_and_version() {
    let mut bytes = good_bytes();
    bytes[..8].copy_from_slice(b"PK\x03\x04zip!");
    assert!(matches!(
        Snapshot::from_bytes(&bytes),
        Err(SnapshotError::BadMagic { .. })
    ));

    let mut bytes = good_bytes();
    bytes[8..10].copy_from_slice(&8u16.to_le_bytes());
    let err = Snapshot::from_bytes(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            SnapshotError::UnsupportedVersion {
                found: 8,
                supported: 7
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("version 8"), "{err}");
    assert!(err.to_string().contains("versions 1 to 7"), "{err}");
}

#[test]
fn truncated_and_trailing() {
    let bytes = good_bytes();
    let err = Snapshot::from_bytes(&bytes[..bytes.len() - 10]).unwrap_err();
    match err {
        SnapshotError::Truncated {
            payload_len,
            available,
        } => {
            assert_eq!(payload_len - available, 10);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 5]);
    assert!(matches!(
        Snapshot::from_bytes(&longer),
        Err(SnapshotError::TrailingBytes { extra: 5 })
    ));
}

#[test]
fn header_and_payload_corruption() {
    let good = good_bytes();
    let mut bytes = good.clone();
    bytes[30] ^= 0x40; // inside the sequence field
    assert!(matches!(
        Snapshot::from_bytes(&bytes),
        Err(SnapshotError::HeaderChecksum { .. })
    ));

    // Every single-byte flip in the payload is caught (by the checksum).
    for at in (HEADER_LEN..good.len()).step_by(97) {
        let mut bytes = good.clone();
        bytes[at] ^= 0x01;
        assert!(
            matches!(
                Snapshot::from_bytes(&bytes),
                Err(SnapshotError::PayloadChecksum { .. })
            ),
            "flip at {at} not caught"
        );
    }
}

#[test]
fn structurally_bad_archive_behind_a_valid_checksum() {
    // Garbage that passes the checksum must still be refused by validation.
    let mut bytes = good_bytes();
    let len = bytes.len();
    for b in &mut bytes[len - 16..] {
        *b = 0xff;
    }
    reseal(&mut bytes);
    let err = Snapshot::from_bytes(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            SnapshotError::Archive { .. } | SnapshotError::CountMismatch { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn count_mismatch() {
    let mut bytes = good_bytes();
    let mut header = Header::decode(&bytes).unwrap();
    header.link_count += 1;
    bytes[..HEADER_LEN].copy_from_slice(&header.encode());
    assert!(matches!(
        Snapshot::from_bytes(&bytes),
        Err(SnapshotError::CountMismatch { .. })
    ));
}

#[test]
fn invalid_link_inside_a_valid_archive() {
    // Corrupt a target's text in place ("https" -> "ftp:/") and reseal: the
    // archive is structurally fine, the link rules are not.
    let mut bytes = good_bytes();
    let needle = b"https://lower.example/";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("target text is in the payload");
    bytes[at..at + 5].copy_from_slice(b"ftp:/");
    reseal(&mut bytes);
    match Snapshot::from_bytes(&bytes) {
        Err(SnapshotError::InvalidLink { code, .. }) => assert_eq!(code, "abc"),
        other => panic!("expected InvalidLink, got {other:?}"),
    }
}

#[test]
fn a_domain_with_an_invalid_name_inside_a_valid_archive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.snap");
    let mut builder = snapshots::SnapshotBuilder::new(1);
    builder
        .push_domain(snapshots::Domain {
            id: 3,
            verified: true,
            ..snapshots::Domain::default_domain("go.example.com")
        })
        .unwrap();
    builder.write_to(&path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let needle = b"go.example.com";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("domain name is in the payload");
    bytes[at] = b'G';
    reseal(&mut bytes);
    match Snapshot::from_bytes(&bytes) {
        Err(SnapshotError::InvalidDomain { id: 3, .. }) => {}
        other => panic!("expected InvalidDomain, got {other:?}"),
    }
}
