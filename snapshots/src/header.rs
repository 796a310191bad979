//! The fixed 64-byte header in front of every snapshot file.
//!
//! All integers are little-endian, whatever the host. The layout is drawn in
//! `snapshots/FORMAT.md`; keep the two in step.

use crate::error::SnapshotError;
use xxhash_rust::xxh3::xxh3_64;

/// First eight bytes of every snapshot file.
pub const MAGIC: [u8; 8] = *b"SHRTSNAP";
/// The format version this crate writes.
pub const FORMAT_VERSION: u16 = 7;
/// The oldest format version this crate still reads (version 1: one unnamed
/// domain; its links are read as the default domain's).
pub const OLDEST_READ_VERSION: u16 = 1;
/// Header flag: a signature trailer follows the payload ([`crate::signed`]).
/// Defined from version 7 on; older versions must not carry it.
pub const HEADER_FLAG_SIGNED: u16 = 1;
/// Header size, and so the payload's offset in the file. A multiple of the
/// archive's alignment (16), so a page-aligned mapping keeps the payload aligned.
pub const HEADER_LEN: usize = 64;

/// What the header says about the snapshot that follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Format version of the file.
    pub version: u16,
    /// Feature flags: [`HEADER_FLAG_SIGNED`] from version 7 on, none before.
    pub flags: u16,
    /// Number of links in the archive (all domains).
    pub link_count: u64,
    /// Change-log sequence the snapshot was built at: every change with a
    /// sequence at or below it is included.
    pub sequence: u64,
    /// Build time, unix milliseconds.
    pub built_at_ms: i64,
    /// Length of the rkyv payload in bytes.
    pub payload_len: u64,
    /// xxh3-64 of the payload.
    pub payload_checksum: u64,
}

impl Header {
    /// The 64 bytes on disk, header checksum included.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&self.version.to_le_bytes());
        out[10..12].copy_from_slice(&self.flags.to_le_bytes());
        out[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.link_count.to_le_bytes());
        out[24..32].copy_from_slice(&self.sequence.to_le_bytes());
        out[32..40].copy_from_slice(&self.built_at_ms.to_le_bytes());
        out[40..48].copy_from_slice(&self.payload_len.to_le_bytes());
        out[48..56].copy_from_slice(&self.payload_checksum.to_le_bytes());
        let checksum = xxh3_64(&out[..56]);
        out[56..64].copy_from_slice(&checksum.to_le_bytes());
        out
    }

    /// Reads and checks a header: size, magic, version, header checksum and
    /// flags, in that order, so the first error names the real problem
    /// (a file of another kind is "bad magic", not "bad checksum").
    pub fn decode(bytes: &[u8]) -> Result<Header, SnapshotError> {
        if bytes.len() < HEADER_LEN {
            return Err(SnapshotError::TooShort {
                len: bytes.len() as u64,
                min: HEADER_LEN as u64,
            });
        }
        let magic: [u8; 8] = bytes[0..8].try_into().expect("8 bytes");
        if magic != MAGIC {
            return Err(SnapshotError::BadMagic { found: magic });
        }
        let version = u16_at(bytes, 8);
        if !(OLDEST_READ_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(SnapshotError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let stored = u64_at(bytes, 56);
        let computed = xxh3_64(&bytes[..56]);
        if stored != computed {
            return Err(SnapshotError::HeaderChecksum { stored, computed });
        }
        let header_len = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
        if header_len as usize != HEADER_LEN {
            return Err(SnapshotError::HeaderLength {
                found: header_len,
                expected: HEADER_LEN as u32,
            });
        }
        let flags = u16_at(bytes, 10);
        let known = if version >= 7 { HEADER_FLAG_SIGNED } else { 0 };
        if flags & !known != 0 {
            return Err(SnapshotError::UnknownFlags { flags });
        }
        Ok(Header {
            version,
            flags,
            link_count: u64_at(bytes, 16),
            sequence: u64_at(bytes, 24),
            built_at_ms: u64_at(bytes, 32) as i64,
            payload_len: u64_at(bytes, 40),
            payload_checksum: u64_at(bytes, 48),
        })
    }
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes[at..at + 2].try_into().expect("2 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            version: FORMAT_VERSION,
            flags: 0,
            link_count: 3,
            sequence: 42,
            built_at_ms: 1_700_000_000_000,
            payload_len: 128,
            payload_checksum: 0xdead_beef,
        }
    }

    #[test]
    fn round_trip() {
        let header = sample();
        assert_eq!(Header::decode(&header.encode()).unwrap(), header);
    }

    #[test]
    fn refusals_name_the_problem() {
        let good = sample().encode();
        assert!(matches!(
            Header::decode(&good[..10]),
            Err(SnapshotError::TooShort { len: 10, min: 64 })
        ));

        let mut bad = good;
        bad[0] = b'X';
        assert!(matches!(
            Header::decode(&bad),
            Err(SnapshotError::BadMagic { .. })
        ));

        let mut bad = good;
        bad[8] = 9;
        assert!(matches!(
            Header::decode(&bad),
            Err(SnapshotError::UnsupportedVersion {
                found: 9,
                supported: FORMAT_VERSION
            })
        ));

        let mut bad = good;
        bad[20] ^= 1;
        assert!(matches!(
            Header::decode(&bad),
            Err(SnapshotError::HeaderChecksum { .. })
        ));
    }
}
