//! The rkyv types inside a snapshot's payload.
//!
//! The payload's root is an rkyv SwissTable hash map from code to
//! [`LinkValue`], chosen by measurement (see `FORMAT.md`, "Lookup structure").
//! The builder serializes it straight from a slice of entries with
//! `ArchivedHashMap::serialize_from_iter`, so no `HashMap` of the whole table
//! is ever built in memory.

use rkyv::collections::swiss_table::{ArchivedHashMap, HashMapResolver};
use rkyv::rancor::{Fallible, Source};
use rkyv::ser::{Allocator, Writer};
use rkyv::string::ArchivedString;
use rkyv::{Archive, Place, Serialize};

/// The archived table: the root object of every version-1 payload.
pub type ArchivedLinkTable = ArchivedHashMap<ArchivedString, ArchivedLinkValue>;

/// rkyv's default load factor for its hash maps: 7/8 full.
pub(crate) const LOAD_FACTOR: (usize, usize) = (7, 8);

/// Bit of [`LinkValue::flags`]: the link is disabled.
pub const FLAG_DISABLED: u8 = 1;
/// Bit of [`LinkValue::flags`]: forward the request's query string.
pub const FLAG_FORWARD_QUERY: u8 = 2;
/// Every flag bit version 1 defines.
pub const KNOWN_FLAGS: u8 = FLAG_DISABLED | FLAG_FORWARD_QUERY;

/// A link's value in the archive; the code is the map's key.
///
/// Fields are ordered widest first so the archived struct has no inner
/// padding: 8 + 8 + 8 + 2 + 1 = 27 bytes, 32 with its tail.
#[derive(Archive, Serialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct LinkValue {
    /// Change-log sequence that last touched the link.
    pub seq: u64,
    /// Unix seconds after which the link stops redirecting; 0 means never.
    pub expires_at: i64,
    /// The redirect target, already validated.
    pub target: String,
    /// 301, 302, 307 or 308.
    pub status: u16,
    /// [`FLAG_DISABLED`] | [`FLAG_FORWARD_QUERY`].
    pub flags: u8,
}

/// One row for the builder: the key and its value.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) code: String,
    pub(crate) value: LinkValue,
    /// Position in the input, to name both rows of a duplicate.
    pub(crate) index: u64,
}

/// Serializes a slice of entries as an [`ArchivedLinkTable`] without
/// building an intermediate map. The entries must have distinct codes.
pub(crate) struct LinkTable<'a>(pub(crate) &'a [Entry]);

impl Archive for LinkTable<'_> {
    type Archived = ArchivedLinkTable;
    type Resolver = HashMapResolver;

    fn resolve(&self, resolver: Self::Resolver, out: Place<Self::Archived>) {
        ArchivedHashMap::resolve_from_len(self.0.len(), LOAD_FACTOR, resolver, out);
    }
}

impl<S> Serialize<S> for LinkTable<'_>
where
    S: Fallible + Writer + Allocator + ?Sized,
    S::Error: Source,
{
    fn serialize(&self, serializer: &mut S) -> Result<Self::Resolver, S::Error> {
        ArchivedLinkTable::serialize_from_iter::<_, &String, &LinkValue, String, LinkValue, _>(
            self.0.iter().map(|entry| (&entry.code, &entry.value)),
            LOAD_FACTOR,
            serializer,
        )
    }
}
