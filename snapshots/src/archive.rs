//! The rkyv types inside a snapshot's payload.
//!
//! Version 7's root ([`SnapshotRoot`]) is version 6's with a fifth map, the
//! visit limits of the links flagged [`FLAG_LIMITED`]; version 6's
//! ([`SnapshotRootV6`]) is version 5's with a fourth map,
//! the password verifiers of the links flagged [`FLAG_PASSWORD`]; version
//! 5's ([`SnapshotRootV5`]) is version 3's with the rules map. Version 3's
//! root ([`SnapshotRootV3`]) holds the domain table, the
//! well-known answers, an rkyv SwissTable hash map from [`LinkKey`]
//! `(domain id, code)` to [`LinkValue`], chosen by measurement (see
//! `FORMAT.md`, "Lookup structure"), and a second map from the same keys to
//! the [`LinkExtra`] of the few links that have one ([`FLAG_EXTRA`]), so the
//! record every lookup reads stays 32 bytes. Version 2's root was the same
//! without the extras ([`SnapshotRootV2`]); version 1's root was the map from
//! code to [`LinkValue`] alone ([`ArchivedLinkTable`]); both are still read.
//! The builder serializes the map straight from a slice of entries with
//! `ArchivedHashMap::serialize_from_iter`, so no `HashMap` of the whole table
//! is ever built in memory.

use crate::password::{ArchivedPasswordValue, PasswordValue};
use crate::rules::{ArchivedRulesValue, RulesValue};
use rkyv::collections::swiss_table::{ArchivedHashMap, HashMapResolver};
use rkyv::munge::munge;
use rkyv::rancor::{Fallible, Source};
use rkyv::ser::{Allocator, Writer};
use rkyv::string::ArchivedString;
use rkyv::vec::{ArchivedVec, VecResolver};
use rkyv::{Archive, Place, Serialize};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// The archived table: the root object of every version-1 payload.
pub type ArchivedLinkTable = ArchivedHashMap<ArchivedString, ArchivedLinkValue>;

/// The archived link map of a version-2 and version-3 payload.
pub type ArchivedLinkMap = ArchivedHashMap<ArchivedLinkKey, ArchivedLinkValue>;

/// The archived extras map of a version-3 payload.
pub type ArchivedExtraMap = ArchivedHashMap<ArchivedLinkKey, ArchivedLinkExtra>;

/// The archived rules map of a version-5 payload.
pub type ArchivedRulesMap = ArchivedHashMap<ArchivedLinkKey, ArchivedRulesValue>;

/// The archived passwords map of a version-6 payload.
pub type ArchivedPasswordMap = ArchivedHashMap<ArchivedLinkKey, ArchivedPasswordValue>;

/// The archived limits map of a version-7 payload: `max_visits` per link.
pub type ArchivedLimitMap = ArchivedHashMap<ArchivedLinkKey, rkyv::rend::u32_le>;

/// A version-2 link's key. Hashed as the domain's four little-endian bytes
/// then the code's bytes; [`LinkKeyRef`] hashes the same way, so a lookup
/// needs no owned key.
#[derive(Archive, Serialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug, Hash, PartialEq, Eq))]
pub struct LinkKey {
    pub domain: u32,
    pub code: String,
}

impl Hash for LinkKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        LinkKeyRef {
            domain: self.domain,
            code: self.code.as_bytes(),
        }
        .hash(state)
    }
}

/// A borrowed key for lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkKeyRef<'a> {
    pub domain: u32,
    pub code: &'a [u8],
}

impl Hash for LinkKeyRef<'_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u32(self.domain);
        state.write(self.code);
    }
}

impl LinkKeyRef<'_> {
    #[inline]
    pub(crate) fn matches(&self, key: &ArchivedLinkKey) -> bool {
        key.domain.to_native() == self.domain && key.code.as_str().as_bytes() == self.code
    }
}

/// Bit of [`DomainValue::flags`]: the domain is verified (served).
pub const DOMAIN_VERIFIED: u8 = 1;
/// Bit of [`DomainValue::flags`]: plain HTTP gets a 308 to https.
pub const DOMAIN_REDIRECT_HTTPS: u8 = 2;
/// Bit of [`DomainValue::flags`]: `hsts_max_age` is set.
pub const DOMAIN_HSTS: u8 = 4;
/// Every domain flag bit version 2 defines.
pub const KNOWN_DOMAIN_FLAGS: u8 = DOMAIN_VERIFIED | DOMAIN_REDIRECT_HTTPS | DOMAIN_HSTS;

/// One row of the domain table. Empty strings mean "not set".
#[derive(Archive, Serialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct DomainValue {
    pub id: u32,
    pub hsts_max_age: u32,
    pub flags: u8,
    pub name: String,
    pub root_redirect: String,
    pub not_found_redirect: String,
}

/// One well-known answer: `GET http://<host><path>` answers `body`.
#[derive(Archive, Serialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct WellKnownValue {
    pub host: String,
    pub path: String,
    pub body: String,
}

/// The root of a version-7 payload. Only its archived form is used: the
/// builder writes it through `RootOut` without building the maps.
#[derive(Archive, Debug)]
pub struct SnapshotRoot {
    pub domains: Vec<DomainValue>,
    pub well_known: Vec<WellKnownValue>,
    pub links: HashMap<LinkKey, LinkValue>,
    /// The extras of the links flagged [`FLAG_EXTRA`], and only theirs.
    pub extras: HashMap<LinkKey, LinkExtra>,
    /// The rules and splits of the links flagged [`FLAG_RULES`], and only
    /// theirs.
    pub rules: HashMap<LinkKey, RulesValue>,
    /// The password verifiers of the links flagged [`FLAG_PASSWORD`], and
    /// only theirs.
    pub passwords: HashMap<LinkKey, PasswordValue>,
    /// The `max_visits` of the links flagged [`FLAG_LIMITED`], and only
    /// theirs. Engines read it once per snapshot to ask control for leases
    /// (a few entries), never on a visit.
    pub limits: HashMap<LinkKey, u32>,
}

/// The root of a version-6 payload (read, no longer written).
#[derive(Archive, Debug)]
pub struct SnapshotRootV6 {
    pub domains: Vec<DomainValue>,
    pub well_known: Vec<WellKnownValue>,
    pub links: HashMap<LinkKey, LinkValue>,
    pub extras: HashMap<LinkKey, LinkExtra>,
    pub rules: HashMap<LinkKey, RulesValue>,
    pub passwords: HashMap<LinkKey, PasswordValue>,
}

/// The root of a version-5 payload (read, no longer written).
#[derive(Archive, Debug)]
pub struct SnapshotRootV5 {
    pub domains: Vec<DomainValue>,
    pub well_known: Vec<WellKnownValue>,
    pub links: HashMap<LinkKey, LinkValue>,
    pub extras: HashMap<LinkKey, LinkExtra>,
    pub rules: HashMap<LinkKey, RulesValue>,
}

/// The root of a version-3 and version-4 payload (read, no longer written).
#[derive(Archive, Debug)]
pub struct SnapshotRootV3 {
    pub domains: Vec<DomainValue>,
    pub well_known: Vec<WellKnownValue>,
    pub links: HashMap<LinkKey, LinkValue>,
    pub extras: HashMap<LinkKey, LinkExtra>,
}

/// The root of a version-2 payload (read, no longer written).
#[derive(Archive, Debug)]
pub struct SnapshotRootV2 {
    pub domains: Vec<DomainValue>,
    pub well_known: Vec<WellKnownValue>,
    pub links: HashMap<LinkKey, LinkValue>,
}

/// What a link has beyond its hot record, in the version-3 extras map;
/// looked up only for a link flagged [`FLAG_EXTRA`].
#[derive(Archive, Serialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct LinkExtra {
    /// Unix seconds before which the link answers as a missing one; 0: none.
    pub valid_since: i64,
    /// Where an expired link redirects (302); empty: none (it answers 410).
    pub expired_url: String,
}

/// rkyv's default load factor for its hash maps: 7/8 full.
pub(crate) const LOAD_FACTOR: (usize, usize) = (7, 8);

/// Bit of [`LinkValue::flags`]: the link is disabled.
pub const FLAG_DISABLED: u8 = 1;
/// Bit of [`LinkValue::flags`]: forward the request's query string.
pub const FLAG_FORWARD_QUERY: u8 = 2;
/// Bit of [`LinkValue::flags`] (version 3): the link has an entry in the
/// extras map.
pub const FLAG_EXTRA: u8 = 4;
/// Every flag bit versions 1 and 2 define.
pub const KNOWN_FLAGS_V2: u8 = FLAG_DISABLED | FLAG_FORWARD_QUERY;
/// Bit of [`LinkValue::flags`] (version 5): the link has an entry in the
/// rules map.
pub const FLAG_RULES: u8 = 8;
/// Bit of [`LinkValue::flags`] (version 6): the link is password-protected
/// and has an entry in the passwords map.
pub const FLAG_PASSWORD: u8 = 16;
/// Bit of [`LinkValue::flags`] (version 7): the link's visits are limited
/// (an entry in the limits map); engines serve it only from leased visits.
pub const FLAG_LIMITED: u8 = 32;
/// Every flag bit versions 3 and 4 define.
pub const KNOWN_FLAGS_V3: u8 = KNOWN_FLAGS_V2 | FLAG_EXTRA;
/// Every flag bit version 5 defines.
pub const KNOWN_FLAGS_V5: u8 = KNOWN_FLAGS_V3 | FLAG_RULES;
/// Every flag bit version 6 defines.
pub const KNOWN_FLAGS_V6: u8 = KNOWN_FLAGS_V5 | FLAG_PASSWORD;
/// Every flag bit version 7 defines.
pub const KNOWN_FLAGS: u8 = KNOWN_FLAGS_V6 | FLAG_LIMITED;

/// A link's value in the archive; the code is the map's key.
///
/// Fields are ordered widest first: 8 + 8 + 8 + 2 + 1 = 27 bytes, then one
/// byte of padding and `org` (version 4) in what versions 1 to 3 left as the
/// record's tail padding, so the record stays 32 bytes and one cache line
/// holds two of them. rkyv zeroes padding when it writes, so the files of
/// versions 1 to 3 hold 0 there; the reader checks they do.
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
    /// [`FLAG_DISABLED`] | [`FLAG_FORWARD_QUERY`] | [`FLAG_EXTRA`] |
    /// [`FLAG_RULES`] | [`FLAG_PASSWORD`] | [`FLAG_LIMITED`].
    pub flags: u8,
    /// The organisation that owns the link (version 4; 0 in older files):
    /// the click record carries it so analytics reads stats by org. 32 bits
    /// to fit the padding; `Link::validate` refuses a wider org id.
    pub org: u32,
}

// The hot record must not grow: every lookup reads it.
const _: () = assert!(std::mem::size_of::<ArchivedLinkValue>() == 32);

/// One row for the builder: the key and its value.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) key: LinkKey,
    pub(crate) value: LinkValue,
    /// Position in the input, to name both rows of a duplicate.
    pub(crate) index: u64,
}

/// Serializes a version-3 root from slices, without building an
/// intermediate map. The entries must have distinct keys.
pub(crate) struct RootOut<'a> {
    pub(crate) domains: &'a [DomainValue],
    pub(crate) well_known: &'a [WellKnownValue],
    pub(crate) links: &'a [Entry],
    /// The extras of the entries flagged [`FLAG_EXTRA`], distinct keys.
    pub(crate) extras: &'a [(LinkKey, LinkExtra)],
    /// The rules of the entries flagged [`FLAG_RULES`], distinct keys.
    pub(crate) rules: &'a [(LinkKey, RulesValue)],
    /// The verifiers of the entries flagged [`FLAG_PASSWORD`], distinct keys.
    pub(crate) passwords: &'a [(LinkKey, PasswordValue)],
    /// The limits of the entries flagged [`FLAG_LIMITED`], distinct keys.
    pub(crate) limits: &'a [(LinkKey, u32)],
}

pub(crate) struct RootResolver {
    domains: VecResolver,
    well_known: VecResolver,
    links: HashMapResolver,
    extras: HashMapResolver,
    rules: HashMapResolver,
    passwords: HashMapResolver,
    limits: HashMapResolver,
}

impl Archive for RootOut<'_> {
    type Archived = ArchivedSnapshotRoot;
    type Resolver = RootResolver;

    fn resolve(&self, resolver: Self::Resolver, out: Place<Self::Archived>) {
        munge!(let ArchivedSnapshotRoot { domains, well_known, links, extras, rules, passwords, limits } = out);
        ArchivedVec::resolve_from_slice(self.domains, resolver.domains, domains);
        ArchivedVec::resolve_from_slice(self.well_known, resolver.well_known, well_known);
        ArchivedHashMap::resolve_from_len(self.links.len(), LOAD_FACTOR, resolver.links, links);
        ArchivedHashMap::resolve_from_len(self.extras.len(), LOAD_FACTOR, resolver.extras, extras);
        ArchivedHashMap::resolve_from_len(self.rules.len(), LOAD_FACTOR, resolver.rules, rules);
        ArchivedHashMap::resolve_from_len(
            self.passwords.len(),
            LOAD_FACTOR,
            resolver.passwords,
            passwords,
        );
        ArchivedHashMap::resolve_from_len(self.limits.len(), LOAD_FACTOR, resolver.limits, limits);
    }
}

impl<S> Serialize<S> for RootOut<'_>
where
    S: Fallible + Writer + Allocator + ?Sized,
    S::Error: Source,
{
    fn serialize(&self, serializer: &mut S) -> Result<Self::Resolver, S::Error> {
        Ok(RootResolver {
            domains: ArchivedVec::serialize_from_slice(self.domains, serializer)?,
            well_known: ArchivedVec::serialize_from_slice(self.well_known, serializer)?,
            links: ArchivedLinkMap::serialize_from_iter::<
                _,
                &LinkKey,
                &LinkValue,
                LinkKey,
                LinkValue,
                _,
            >(
                self.links.iter().map(|entry| (&entry.key, &entry.value)),
                LOAD_FACTOR,
                serializer,
            )?,
            extras: ArchivedExtraMap::serialize_from_iter::<
                _,
                &LinkKey,
                &LinkExtra,
                LinkKey,
                LinkExtra,
                _,
            >(
                self.extras.iter().map(|(key, extra)| (key, extra)),
                LOAD_FACTOR,
                serializer,
            )?,
            rules: ArchivedRulesMap::serialize_from_iter::<
                _,
                &LinkKey,
                &RulesValue,
                LinkKey,
                RulesValue,
                _,
            >(
                self.rules.iter().map(|(key, rules)| (key, rules)),
                LOAD_FACTOR,
                serializer,
            )?,
            passwords: ArchivedPasswordMap::serialize_from_iter::<
                _,
                &LinkKey,
                &PasswordValue,
                LinkKey,
                PasswordValue,
                _,
            >(
                self.passwords.iter().map(|(key, value)| (key, value)),
                LOAD_FACTOR,
                serializer,
            )?,
            limits: ArchivedLimitMap::serialize_from_iter::<_, &LinkKey, &u32, LinkKey, u32, _>(
                self.limits.iter().map(|(key, value)| (key, value)),
                LOAD_FACTOR,
                serializer,
            )?,
        })
    }
}
