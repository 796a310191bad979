//! Opening a snapshot: map, check once, then read in place.

use crate::archive::{
    ArchivedLinkTable, ArchivedLinkValue, FLAG_DISABLED, FLAG_FORWARD_QUERY, KNOWN_FLAGS,
};
use crate::error::SnapshotError;
use crate::header::{HEADER_LEN, Header};
use crate::link::{self, Link, LinkError, RedirectStatus};
use memmap2::{Advice, Mmap};
use rkyv::rancor;
use rkyv::util::AlignedVec;
use std::fs::File;
use std::path::Path;
use xxhash_rust::xxh3::xxh3_64;

/// An opened, fully checked snapshot. Lookups read the mapped file in place:
/// no copy, no allocation, no lock.
///
/// Dropping it unmaps the file. The file may be replaced (renamed over) while
/// mapped; the mapping keeps the old inode alive. Truncating or rewriting a
/// mapped file in place is not supported; the builder never does that.
pub struct Snapshot {
    bytes: Backing,
    header: Header,
}

enum Backing {
    Mapped(Mmap),
    /// For snapshots received in memory (tests, fuzzing): 16-aligned copy.
    Owned(AlignedVec<16>),
}

impl Backing {
    fn as_slice(&self) -> &[u8] {
        match self {
            Backing::Mapped(map) => map,
            Backing::Owned(vec) => vec,
        }
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// Maps `path` and checks it completely: header, length, payload checksum,
    /// archive structure and every link. Cost is linear in the file size
    /// (see `FORMAT.md` for measured times); lookups afterwards are unchecked.
    pub fn open(path: &Path) -> Result<Snapshot, SnapshotError> {
        let io = |source| SnapshotError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < HEADER_LEN as u64 {
            return Err(SnapshotError::TooShort {
                len,
                min: HEADER_LEN as u64,
            });
        }
        // SAFETY: the map is read-only; the project replaces snapshot files by
        // rename, never in place, so the mapped bytes do not change under us.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::checked(Backing::Mapped(map))
    }

    /// Checks a snapshot held in memory (copied into an aligned buffer).
    pub fn from_bytes(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        let mut vec = AlignedVec::<16>::with_capacity(bytes.len());
        vec.extend_from_slice(bytes);
        Self::checked(Backing::Owned(vec))
    }

    fn checked(bytes: Backing) -> Result<Snapshot, SnapshotError> {
        let all = bytes.as_slice();
        let header = Header::decode(all)?;
        let available = (all.len() - HEADER_LEN) as u64;
        if header.payload_len > available {
            return Err(SnapshotError::Truncated {
                payload_len: header.payload_len,
                available,
            });
        }
        if header.payload_len < available {
            return Err(SnapshotError::TrailingBytes {
                extra: available - header.payload_len,
            });
        }
        let payload = &all[HEADER_LEN..];
        let computed = xxh3_64(payload);
        if computed != header.payload_checksum {
            return Err(SnapshotError::PayloadChecksum {
                stored: header.payload_checksum,
                computed,
            });
        }
        let table = rkyv::access::<ArchivedLinkTable, rancor::Error>(payload).map_err(|e| {
            SnapshotError::Archive {
                message: e.to_string(),
            }
        })?;
        if table.len() as u64 != header.link_count {
            return Err(SnapshotError::CountMismatch {
                header: header.link_count,
                archive: table.len() as u64,
            });
        }
        for (code, value) in table.iter() {
            check_link(code.as_str(), value).map_err(|reason| SnapshotError::InvalidLink {
                code: code.as_str().to_owned(),
                reason,
            })?;
        }
        Ok(Snapshot { bytes, header })
    }

    /// The checked header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The change-log sequence this snapshot includes.
    pub fn sequence(&self) -> u64 {
        self.header.sequence
    }

    /// Number of links.
    pub fn len(&self) -> usize {
        self.header.link_count as usize
    }

    /// Whether the snapshot holds no link.
    pub fn is_empty(&self) -> bool {
        self.header.link_count == 0
    }

    /// Size of the whole file in bytes.
    pub fn file_len(&self) -> u64 {
        self.bytes.as_slice().len() as u64
    }

    #[inline]
    fn table(&self) -> &ArchivedLinkTable {
        // SAFETY: `checked` validated this exact payload with rkyv's validator
        // before the Snapshot was constructed, and the bytes are immutable.
        unsafe { rkyv::access_unchecked::<ArchivedLinkTable>(&self.bytes.as_slice()[HEADER_LEN..]) }
    }

    /// Looks a code up. Codes are case-sensitive.
    #[inline]
    pub fn get(&self, code: &str) -> Option<LinkView<'_>> {
        self.table().get(code).map(|value| LinkView { value })
    }

    /// Looks up a code given as request bytes; bytes that are not a valid
    /// code are simply not found.
    #[inline]
    pub fn get_bytes(&self, code: &[u8]) -> Option<LinkView<'_>> {
        if code.is_empty()
            || code.len() > link::MAX_CODE_LEN
            || !code.iter().all(|&b| link::is_code_byte(b))
        {
            return None;
        }
        // Code bytes are ASCII, so this never fails; it costs a short scan.
        let code = std::str::from_utf8(code).ok()?;
        self.get(code)
    }

    /// Every link, in table order (not sorted).
    pub fn iter(&self) -> impl Iterator<Item = (&str, LinkView<'_>)> {
        self.table()
            .iter()
            .map(|(code, value)| (code.as_str(), LinkView { value }))
    }

    /// Brings the whole file into the page cache and the process's page
    /// tables, so the first requests after a load do not fault. Call it off
    /// the request path, before swapping the snapshot in.
    pub fn prefault(&self) {
        if let Backing::Mapped(map) = &self.bytes {
            // Advice is a hint: failure only means no read-ahead.
            let _ = map.advise(Advice::WillNeed);
        }
        let bytes = self.bytes.as_slice();
        let mut sum = 0u8;
        for page in bytes.chunks(4096) {
            sum = sum.wrapping_add(page[0]);
        }
        std::hint::black_box(sum);
    }
}

fn check_link(code: &str, value: &ArchivedLinkValue) -> Result<(), LinkError> {
    link::validate_code(code.as_bytes())?;
    link::validate_target(value.target.as_str())?;
    RedirectStatus::try_from(value.status.to_native())?;
    let expires_at = value.expires_at.to_native();
    if expires_at < 0 {
        return Err(LinkError::Expiry { value: expires_at });
    }
    if value.flags & !KNOWN_FLAGS != 0 {
        return Err(LinkError::Flags { flags: value.flags });
    }
    Ok(())
}

/// A link read in place from a snapshot.
#[derive(Debug, Clone, Copy)]
pub struct LinkView<'a> {
    value: &'a ArchivedLinkValue,
}

impl<'a> LinkView<'a> {
    /// The redirect target.
    #[inline]
    pub fn target(&self) -> &'a str {
        self.value.target.as_str()
    }

    /// The redirect status.
    #[inline]
    pub fn status(&self) -> RedirectStatus {
        match self.value.status.to_native() {
            302 => RedirectStatus::Found,
            307 => RedirectStatus::TemporaryRedirect,
            308 => RedirectStatus::PermanentRedirect,
            // Opening checked the status is one of the four.
            _ => RedirectStatus::MovedPermanently,
        }
    }

    /// Unix seconds after which the link stops redirecting.
    #[inline]
    pub fn expires_at(&self) -> Option<i64> {
        match self.value.expires_at.to_native() {
            0 => None,
            at => Some(at),
        }
    }

    /// Whether the link has expired at `now` (unix seconds).
    #[inline]
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at().is_some_and(|at| now >= at)
    }

    /// Whether the link is disabled.
    #[inline]
    pub fn disabled(&self) -> bool {
        self.value.flags & FLAG_DISABLED != 0
    }

    /// Whether the request's query string is forwarded.
    #[inline]
    pub fn forward_query(&self) -> bool {
        self.value.flags & FLAG_FORWARD_QUERY != 0
    }

    /// The change-log sequence that last touched the link.
    #[inline]
    pub fn seq(&self) -> u64 {
        self.value.seq.to_native()
    }

    /// An owned copy, for tools and tests (allocates).
    pub fn to_link(&self, code: &str) -> Link {
        Link {
            code: code.to_owned(),
            target: self.target().to_owned(),
            status: self.status(),
            expires_at: self.expires_at(),
            disabled: self.disabled(),
            forward_query: self.forward_query(),
            seq: self.seq(),
        }
    }
}
