//! Opening a snapshot: map, check once, then read in place.

use crate::archive::{
    ArchivedDomainValue, ArchivedExtraMap, ArchivedLimitMap, ArchivedLinkExtra, ArchivedLinkMap,
    ArchivedLinkTable, ArchivedLinkValue, ArchivedPasswordMap, ArchivedRulesMap,
    ArchivedSnapshotRoot, ArchivedSnapshotRootV2, ArchivedSnapshotRootV3, ArchivedSnapshotRootV5,
    ArchivedSnapshotRootV6, ArchivedWellKnownValue, DOMAIN_HSTS, DOMAIN_REDIRECT_HTTPS,
    DOMAIN_VERIFIED, FLAG_DISABLED, FLAG_EXTRA, FLAG_FORWARD_QUERY, FLAG_LIMITED, FLAG_PASSWORD,
    FLAG_RULES, KNOWN_DOMAIN_FLAGS, KNOWN_FLAGS, KNOWN_FLAGS_V2, KNOWN_FLAGS_V3, KNOWN_FLAGS_V5,
    KNOWN_FLAGS_V6, LinkKeyRef,
};
use crate::domain::{DEFAULT_DOMAIN, Domain, HttpMode, WellKnown};
use crate::error::SnapshotError;
use crate::header::{HEADER_LEN, Header};
use crate::link::{self, Link, LinkError, RedirectStatus};
use crate::password::ArchivedPasswordValue;
use crate::rules::ArchivedRulesValue;
use crate::signed::{self, Checked, HEADER_FLAG_SIGNED, SIGNATURE_TRAILER_LEN};
use crate::signing::DeltaVerifier;
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
///
/// Version-1 files (one unnamed domain) are read as version 3 with only the
/// default domain, unnamed: their links are the default domain's. Version-2
/// files are read as version 3 without extras, version 3 to 6 as version 7
/// without the side tables they did not have yet.
pub struct Snapshot {
    bytes: Backing,
    header: Header,
    /// Which root the payload has.
    layout: Layout,
    /// How the file was found good.
    checked: Checked,
}

/// The payload's root, by format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Version 1: the code → link map alone.
    V1,
    /// Version 2: domains, well-known answers, links.
    V2,
    /// Versions 3 and 4: version 2's and the link extras; version 4 fills
    /// the link record's `org`, version 3 left it zero.
    V3,
    /// Version 5: version 4's and the link rules.
    V5,
    /// Version 6: version 5's and the password verifiers.
    V6,
    /// Version 7 (written now): version 6's and the visit limits.
    V7,
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
    /// A signature, if the file has one, is not relied on.
    pub fn open(path: &Path) -> Result<Snapshot, SnapshotError> {
        Self::open_trusting(path, None)
    }

    /// Like [`open`](Self::open), but a file signed by a key `verifier`
    /// trusts is checked by its signature instead of completely: a digest at
    /// memory speed on every core rather than a walk of the archive
    /// ([`crate::signed`] says what that guarantees). A file signed by a
    /// trusted key whose signature does not match is refused; unsigned files
    /// and other keys' are checked completely.
    pub fn open_trusting(
        path: &Path,
        verifier: Option<&DeltaVerifier>,
    ) -> Result<Snapshot, SnapshotError> {
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
        if verifier.is_some() {
            // The digest reads the whole file once, in order.
            let _ = map.advise(Advice::Sequential);
        }
        Self::checked(Backing::Mapped(map), verifier)
    }

    /// Checks a snapshot held in memory (copied into an aligned buffer).
    pub fn from_bytes(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        Self::from_bytes_trusting(bytes, None)
    }

    /// [`from_bytes`](Self::from_bytes) with [`open_trusting`](Self::open_trusting)'s rules.
    pub fn from_bytes_trusting(
        bytes: &[u8],
        verifier: Option<&DeltaVerifier>,
    ) -> Result<Snapshot, SnapshotError> {
        let mut vec = AlignedVec::<16>::with_capacity(bytes.len());
        vec.extend_from_slice(bytes);
        Self::checked(Backing::Owned(vec), verifier)
    }

    fn checked(
        bytes: Backing,
        verifier: Option<&DeltaVerifier>,
    ) -> Result<Snapshot, SnapshotError> {
        let all = bytes.as_slice();
        let header = Header::decode(all)?;
        let signed = header.flags & HEADER_FLAG_SIGNED != 0;
        let trailer_len = if signed {
            SIGNATURE_TRAILER_LEN as u64
        } else {
            0
        };
        let available = (all.len() - HEADER_LEN) as u64;
        let needed = header.payload_len.saturating_add(trailer_len);
        if needed > available {
            return Err(SnapshotError::Truncated {
                payload_len: needed,
                available,
            });
        }
        if needed < available {
            return Err(SnapshotError::TrailingBytes {
                extra: available - needed,
            });
        }
        let layout = match header.version {
            1 => Layout::V1,
            2 => Layout::V2,
            3 | 4 => Layout::V3,
            5 => Layout::V5,
            6 => Layout::V6,
            _ => Layout::V7,
        };
        let payload_end = HEADER_LEN + header.payload_len as usize;
        let payload = &all[HEADER_LEN..payload_end];
        if signed && let Some(verifier) = verifier {
            let key = signed::verify(verifier, &all[..HEADER_LEN], payload, &all[payload_end..])?;
            if let Some(key) = key {
                return Ok(Snapshot {
                    bytes,
                    header,
                    layout,
                    checked: Checked::Signature(key),
                });
            }
        }
        let computed = xxh3_64(payload);
        if computed != header.payload_checksum {
            return Err(SnapshotError::PayloadChecksum {
                stored: header.payload_checksum,
                computed,
            });
        }
        let archive_error = |e: rancor::Error| SnapshotError::Archive {
            message: e.to_string(),
        };
        match layout {
            Layout::V1 => {
                let table = rkyv::access::<ArchivedLinkTable, rancor::Error>(payload)
                    .map_err(archive_error)?;
                check_count(&header, table.len())?;
                for (code, value) in table.iter() {
                    check_link(code.as_str(), value, KNOWN_FLAGS_V2, header.version).map_err(
                        |reason| SnapshotError::InvalidLink {
                            domain: DEFAULT_DOMAIN,
                            code: code.as_str().to_owned(),
                            reason,
                        },
                    )?;
                }
            }
            Layout::V2 => {
                let root = rkyv::access::<ArchivedSnapshotRootV2, rancor::Error>(payload)
                    .map_err(archive_error)?;
                let parts = RootParts {
                    domains: &root.domains,
                    well_known: &root.well_known,
                    links: &root.links,
                    extras: None,
                    rules: None,
                    passwords: None,
                    limits: None,
                };
                check_root(&header, parts)?;
            }
            Layout::V3 => {
                let root = rkyv::access::<ArchivedSnapshotRootV3, rancor::Error>(payload)
                    .map_err(archive_error)?;
                let parts = RootParts {
                    domains: &root.domains,
                    well_known: &root.well_known,
                    links: &root.links,
                    extras: Some(&root.extras),
                    rules: None,
                    passwords: None,
                    limits: None,
                };
                check_root(&header, parts)?;
            }
            Layout::V5 => {
                let root = rkyv::access::<ArchivedSnapshotRootV5, rancor::Error>(payload)
                    .map_err(archive_error)?;
                let parts = RootParts {
                    domains: &root.domains,
                    well_known: &root.well_known,
                    links: &root.links,
                    extras: Some(&root.extras),
                    rules: Some(&root.rules),
                    passwords: None,
                    limits: None,
                };
                check_root(&header, parts)?;
            }
            Layout::V6 => {
                let root = rkyv::access::<ArchivedSnapshotRootV6, rancor::Error>(payload)
                    .map_err(archive_error)?;
                let parts = RootParts {
                    domains: &root.domains,
                    well_known: &root.well_known,
                    links: &root.links,
                    extras: Some(&root.extras),
                    rules: Some(&root.rules),
                    passwords: Some(&root.passwords),
                    limits: None,
                };
                check_root(&header, parts)?;
            }
            Layout::V7 => {
                let root = rkyv::access::<ArchivedSnapshotRoot, rancor::Error>(payload)
                    .map_err(archive_error)?;
                let parts = RootParts {
                    domains: &root.domains,
                    well_known: &root.well_known,
                    links: &root.links,
                    extras: Some(&root.extras),
                    rules: Some(&root.rules),
                    passwords: Some(&root.passwords),
                    limits: Some(&root.limits),
                };
                check_root(&header, parts)?;
            }
        }
        Ok(Snapshot {
            bytes,
            header,
            layout,
            checked: Checked::Full,
        })
    }

    /// How the file was found good: completely, or by a trusted signature.
    pub fn checked_by(&self) -> Checked {
        self.checked
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
    fn payload(&self) -> &[u8] {
        // Without the signature trailer: rkyv finds the root at the end.
        &self.bytes.as_slice()[HEADER_LEN..HEADER_LEN + self.header.payload_len as usize]
    }

    /// The version-1 root. Only call when the layout is `V1`.
    #[inline]
    fn table_v1(&self) -> &ArchivedLinkTable {
        // SAFETY: `checked` validated this exact payload as a version-1 root
        // with rkyv's validator before the Snapshot was constructed (or, for
        // a signed file, a trusted key vouched that these are the bytes the
        // builder wrote: `crate::signed`), and the bytes are immutable.
        unsafe { rkyv::access_unchecked::<ArchivedLinkTable>(self.payload()) }
    }

    /// The version-2 root. Only call when the layout is `V2`.
    #[inline]
    fn root_v2(&self) -> &ArchivedSnapshotRootV2 {
        // SAFETY: as in `table_v1`, validated as a version-2 root.
        unsafe { rkyv::access_unchecked::<ArchivedSnapshotRootV2>(self.payload()) }
    }

    /// The version-3/4 root. Only call when the layout is `V3`.
    #[inline]
    fn root_v3(&self) -> &ArchivedSnapshotRootV3 {
        // SAFETY: as in `table_v1`, validated as a version-3 root.
        unsafe { rkyv::access_unchecked::<ArchivedSnapshotRootV3>(self.payload()) }
    }

    /// The version-5 root. Only call when the layout is `V5`.
    #[inline]
    fn root_v5(&self) -> &ArchivedSnapshotRootV5 {
        // SAFETY: as in `table_v1`, validated as a version-5 root.
        unsafe { rkyv::access_unchecked::<ArchivedSnapshotRootV5>(self.payload()) }
    }

    /// The version-6 root. Only call when the layout is `V6`.
    #[inline]
    fn root_v6(&self) -> &ArchivedSnapshotRootV6 {
        // SAFETY: as in `table_v1`, validated as a version-6 root.
        unsafe { rkyv::access_unchecked::<ArchivedSnapshotRootV6>(self.payload()) }
    }

    /// The version-7 root. Only call when the layout is `V7`.
    #[inline]
    fn root(&self) -> &ArchivedSnapshotRoot {
        // SAFETY: as in `table_v1`, validated as a version-7 root.
        unsafe { rkyv::access_unchecked::<ArchivedSnapshotRoot>(self.payload()) }
    }

    /// The link map of a version-2 or version-3 file (`None`: version 1).
    #[inline]
    fn links(&self) -> Option<&ArchivedLinkMap> {
        match self.layout {
            Layout::V1 => None,
            Layout::V2 => Some(&self.root_v2().links),
            Layout::V3 => Some(&self.root_v3().links),
            Layout::V5 => Some(&self.root_v5().links),
            Layout::V6 => Some(&self.root_v6().links),
            Layout::V7 => Some(&self.root().links),
        }
    }

    /// The domains and well-known answers of a version-2 or version-3 file.
    fn tables(&self) -> Option<(&[ArchivedDomainValue], &[ArchivedWellKnownValue])> {
        match self.layout {
            Layout::V1 => None,
            Layout::V2 => Some((&self.root_v2().domains, &self.root_v2().well_known)),
            Layout::V3 => Some((&self.root_v3().domains, &self.root_v3().well_known)),
            Layout::V5 => Some((&self.root_v5().domains, &self.root_v5().well_known)),
            Layout::V6 => Some((&self.root_v6().domains, &self.root_v6().well_known)),
            Layout::V7 => Some((&self.root().domains, &self.root().well_known)),
        }
    }

    /// Looks a code up on the default domain. Codes are case-sensitive.
    #[inline]
    pub fn get(&self, code: &str) -> Option<LinkView<'_>> {
        self.get_in(DEFAULT_DOMAIN, code.as_bytes())
    }

    /// Looks up a code given as request bytes on the default domain.
    #[inline]
    pub fn get_bytes(&self, code: &[u8]) -> Option<LinkView<'_>> {
        self.get_in(DEFAULT_DOMAIN, code)
    }

    /// Looks up `(domain, code)`; bytes that are not a valid code are simply
    /// not found. Whether the domain is served is the caller's business.
    #[inline]
    pub fn get_in(&self, domain: u32, code: &[u8]) -> Option<LinkView<'_>> {
        if code.is_empty()
            || code.len() > link::MAX_CODE_LEN
            || !code.iter().all(|&b| link::is_code_byte(b))
        {
            return None;
        }
        if self.layout != Layout::V7 {
            return self.get_older(domain, code);
        }
        let key = LinkKeyRef { domain, code };
        self.root()
            .links
            .get_with(&key, |q, k| q.matches(k))
            .map(|value| LinkView { domain, value })
    }

    /// [`Snapshot::get_in`] on a file older than version 7: kept off the
    /// version-7 path, which pays one comparison for them.
    #[cold]
    #[inline(never)]
    fn get_older(&self, domain: u32, code: &[u8]) -> Option<LinkView<'_>> {
        let Some(links) = self.links() else {
            if domain != DEFAULT_DOMAIN {
                return None;
            }
            // Code bytes are ASCII, so this never fails.
            let code = std::str::from_utf8(code).ok()?;
            return self
                .table_v1()
                .get(code)
                .map(|value| LinkView { domain, value });
        };
        let key = LinkKeyRef { domain, code };
        links
            .get_with(&key, |q, k| q.matches(k))
            .map(|value| LinkView { domain, value })
    }

    /// The lifecycle extras of `(domain, code)`: only links whose view says
    /// [`LinkView::has_extra`] have them (version 3). Not on the path of a
    /// link without them.
    pub fn extra_in(&self, domain: u32, code: &[u8]) -> Option<ExtraView<'_>> {
        let extras = match self.layout {
            Layout::V1 | Layout::V2 => return None,
            Layout::V3 => &self.root_v3().extras,
            Layout::V5 => &self.root_v5().extras,
            Layout::V6 => &self.root_v6().extras,
            Layout::V7 => &self.root().extras,
        };
        let key = LinkKeyRef { domain, code };
        extras
            .get_with(&key, |q, k| q.matches(k))
            .map(|value| ExtraView { value })
    }

    /// The rules and split of `(domain, code)`: only links whose view says
    /// [`LinkView::has_rules`] have them (version 5). Not on the path of a
    /// link without them.
    pub fn rules_in(&self, domain: u32, code: &[u8]) -> Option<&ArchivedRulesValue> {
        let rules = match self.layout {
            Layout::V1 | Layout::V2 | Layout::V3 => return None,
            Layout::V5 => &self.root_v5().rules,
            Layout::V6 => &self.root_v6().rules,
            Layout::V7 => &self.root().rules,
        };
        let key = LinkKeyRef { domain, code };
        rules.get_with(&key, |q, k| q.matches(k))
    }

    /// The password verifier of `(domain, code)`: only links whose view
    /// says [`LinkView::has_password`] have one (version 6). Not on the path
    /// of a link without one.
    pub fn password_in(&self, domain: u32, code: &[u8]) -> Option<&ArchivedPasswordValue> {
        let passwords = match self.layout {
            Layout::V1 | Layout::V2 | Layout::V3 | Layout::V5 => return None,
            Layout::V6 => &self.root_v6().passwords,
            Layout::V7 => &self.root().passwords,
        };
        let key = LinkKeyRef { domain, code };
        passwords.get_with(&key, |q, k| q.matches(k))
    }

    /// The `max_visits` of `(domain, code)`: only links whose view says
    /// [`LinkView::has_limit`] have one (version 7).
    pub fn limit_in(&self, domain: u32, code: &[u8]) -> Option<u32> {
        if self.layout != Layout::V7 {
            return None;
        }
        let key = LinkKeyRef { domain, code };
        self.root()
            .limits
            .get_with(&key, |q, k| q.matches(k))
            .map(|max| max.to_native())
    }

    /// Every limited link as `(domain, code, max_visits)`: what an engine
    /// asks control to lease visits of when it installs the snapshot (the
    /// limits map holds only the limited links, so this reads few entries).
    pub fn limits(&self) -> impl Iterator<Item = (u32, &str, u32)> + '_ {
        let limits = (self.layout == Layout::V7).then(|| &self.root().limits);
        limits.into_iter().flat_map(|map| {
            map.iter()
                .map(|(key, max)| (key.domain.to_native(), key.code.as_str(), max.to_native()))
        })
    }

    /// An owned copy of `(domain, code)` with everything it has: extras,
    /// rules, password (tools and tests; allocates).
    pub fn link_in(&self, domain: u32, code: &str) -> Option<Link> {
        let view = self.get_in(domain, code.as_bytes())?;
        let mut link = view.to_link_with(code, self.extra_in(domain, code.as_bytes()));
        if let Some(rules) = self.rules_in(domain, code.as_bytes()) {
            // Opening checked that they convert.
            (link.rules, link.split) = rules.to_owned_rules().unwrap_or_default();
        }
        link.password_hash = self
            .password_in(domain, code.as_bytes())
            .map(|p| p.to_owned_value().to_phc());
        link.max_visits = self.limit_in(domain, code.as_bytes());
        Some(link)
    }

    /// Every link, in table order (not sorted), with its code; the domain
    /// is [`LinkView::domain`].
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&str, LinkView<'_>)> + '_> {
        match self.links() {
            None => Box::new(self.table_v1().iter().map(|(code, value)| {
                (
                    code.as_str(),
                    LinkView {
                        domain: DEFAULT_DOMAIN,
                        value,
                    },
                )
            })),
            Some(links) => Box::new(links.iter().map(|(key, value)| {
                (
                    key.code.as_str(),
                    LinkView {
                        domain: key.domain.to_native(),
                        value,
                    },
                )
            })),
        }
    }

    /// The domain table (owned copies; for building lookup tables off the
    /// request path). A version-1 file has only the unnamed default domain.
    pub fn domains(&self) -> Vec<Domain> {
        match self.tables() {
            None => vec![Domain::default_domain("")],
            Some((domains, _)) => domains.iter().map(domain_of).collect(),
        }
    }

    /// The well-known answers (owned copies).
    pub fn well_known(&self) -> Vec<WellKnown> {
        let Some((_, well_known)) = self.tables() else {
            return Vec::new();
        };
        well_known
            .iter()
            .map(|w| WellKnown {
                host: w.host.as_str().to_owned(),
                path: w.path.as_str().to_owned(),
                body: w.body.as_str().to_owned(),
            })
            .collect()
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

fn check_count(header: &Header, links: usize) -> Result<(), SnapshotError> {
    if links as u64 != header.link_count {
        return Err(SnapshotError::CountMismatch {
            header: header.link_count,
            archive: links as u64,
        });
    }
    Ok(())
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

fn domain_of(value: &ArchivedDomainValue) -> Domain {
    let flags = value.flags;
    Domain {
        id: value.id.to_native(),
        name: value.name.as_str().to_owned(),
        verified: flags & DOMAIN_VERIFIED != 0,
        root_redirect: non_empty(value.root_redirect.as_str()),
        not_found_redirect: non_empty(value.not_found_redirect.as_str()),
        http_mode: if flags & DOMAIN_REDIRECT_HTTPS != 0 {
            HttpMode::RedirectHttps
        } else {
            HttpMode::Serve
        },
        hsts_max_age: (flags & DOMAIN_HSTS != 0).then(|| value.hsts_max_age.to_native()),
    }
}

/// The parts of a version-2 or version-3 root the checks read.
struct RootParts<'a> {
    domains: &'a [ArchivedDomainValue],
    well_known: &'a [ArchivedWellKnownValue],
    links: &'a ArchivedLinkMap,
    /// Version 3's extras; `None` for version 2.
    extras: Option<&'a ArchivedExtraMap>,
    /// Version 5's rules; `None` before.
    rules: Option<&'a ArchivedRulesMap>,
    /// Version 6's password verifiers; `None` before.
    passwords: Option<&'a ArchivedPasswordMap>,
    /// Version 7's visit limits; `None` before.
    limits: Option<&'a ArchivedLimitMap>,
}

/// The version-2 and version-3 rules beyond rkyv's: domains (known flags,
/// valid names and redirects, unique ids, the default domain present, one
/// verified domain per name), well-known answers (valid, unique), every link
/// valid and on a domain of the table; in version 3, an extra for exactly
/// the links flagged to have one, each valid with its link.
fn check_root(header: &Header, root: RootParts<'_>) -> Result<(), SnapshotError> {
    let mut ids = Vec::with_capacity(root.domains.len());
    let mut served_names = Vec::new();
    for value in root.domains.iter() {
        let domain = domain_of(value);
        let invalid = |reason: String| SnapshotError::InvalidDomain {
            id: domain.id,
            name: domain.name.clone(),
            reason,
        };
        if value.flags & !KNOWN_DOMAIN_FLAGS != 0 {
            return Err(invalid(format!(
                "flags 0x{:02x} have unknown bits",
                value.flags
            )));
        }
        domain.validate().map_err(|e| invalid(e.to_string()))?;
        ids.push(domain.id);
        if domain.verified && !domain.name.is_empty() {
            served_names.push(domain.name.clone());
        }
    }
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(SnapshotError::InvalidDomain {
            id: pair[0],
            name: String::new(),
            reason: "the domain id appears twice".into(),
        });
    }
    if ids.binary_search(&DEFAULT_DOMAIN).is_err() {
        return Err(SnapshotError::InvalidDomain {
            id: DEFAULT_DOMAIN,
            name: String::new(),
            reason: "the default domain is missing".into(),
        });
    }
    served_names.sort_unstable();
    if let Some(pair) = served_names.windows(2).find(|w| w[0] == w[1]) {
        return Err(SnapshotError::InvalidDomain {
            id: 0,
            name: pair[0].clone(),
            reason: "two verified domains have this name".into(),
        });
    }
    let mut answers = Vec::with_capacity(root.well_known.len());
    for w in root.well_known.iter() {
        let answer = WellKnown {
            host: w.host.as_str().to_owned(),
            path: w.path.as_str().to_owned(),
            body: w.body.as_str().to_owned(),
        };
        answer
            .validate()
            .map_err(|reason| SnapshotError::InvalidWellKnown {
                host: answer.host.clone(),
                path: answer.path.clone(),
                reason,
            })?;
        answers.push((answer.host, answer.path));
    }
    answers.sort_unstable();
    if let Some(pair) = answers.windows(2).find(|w| w[0] == w[1]) {
        return Err(SnapshotError::DuplicateWellKnown {
            host: pair[0].0.clone(),
            path: pair[0].1.clone(),
        });
    }
    check_count(header, root.links.len())?;
    let known_flags = match (root.extras, root.rules, root.passwords, root.limits) {
        (_, _, _, Some(_)) => KNOWN_FLAGS,
        (_, _, Some(_), None) => KNOWN_FLAGS_V6,
        (_, Some(_), None, None) => KNOWN_FLAGS_V5,
        (Some(_), None, None, None) => KNOWN_FLAGS_V3,
        (None, None, None, None) => KNOWN_FLAGS_V2,
    };
    let mut limited = 0usize;
    let mut flagged = 0usize;
    let mut with_rules = 0usize;
    let mut with_password = 0usize;
    for (key, value) in root.links.iter() {
        let domain = key.domain.to_native();
        let code = key.code.as_str();
        let invalid = |reason| SnapshotError::InvalidLink {
            domain,
            code: code.to_owned(),
            reason,
        };
        check_link(code, value, known_flags, header.version).map_err(invalid)?;
        // The link's entries in the side tables are keyed like the link.
        let key = LinkKeyRef {
            domain,
            code: code.as_bytes(),
        };
        if let Some(extras) = root.extras
            && value.flags & FLAG_EXTRA != 0
        {
            flagged += 1;
            let extra = extras
                .get_with(&key, |q, k| q.matches(k))
                .ok_or_else(|| invalid(LinkError::Flags { flags: value.flags }))?;
            check_extra(value, extra).map_err(invalid)?;
        }
        if let Some(rules) = root.rules
            && value.flags & FLAG_RULES != 0
        {
            with_rules += 1;
            let value = rules
                .get_with(&key, |q, k| q.matches(k))
                .ok_or_else(|| invalid(LinkError::Flags { flags: value.flags }))?;
            value
                .to_owned_rules()
                .map_err(|reason| invalid(LinkError::ArchivedRules(reason)))?;
        }
        if let Some(passwords) = root.passwords
            && value.flags & FLAG_PASSWORD != 0
        {
            with_password += 1;
            passwords
                .get_with(&key, |q, k| q.matches(k))
                .ok_or_else(|| invalid(LinkError::Flags { flags: value.flags }))?
                .check()
                .map_err(|reason| invalid(LinkError::Password(reason)))?;
        }
        if let Some(limits) = root.limits
            && value.flags & FLAG_LIMITED != 0
        {
            limited += 1;
            let max = limits
                .get_with(&key, |q, k| q.matches(k))
                .ok_or_else(|| invalid(LinkError::Flags { flags: value.flags }))?;
            link::validate_max_visits(max.to_native()).map_err(invalid)?;
        }
        if ids.binary_search(&domain).is_err() {
            return Err(SnapshotError::UnknownDomain {
                domain,
                code: code.to_owned(),
            });
        }
    }
    if let Some(extras) = root.extras
        && extras.len() != flagged
    {
        return Err(SnapshotError::ExtrasMismatch {
            flagged,
            extras: extras.len(),
        });
    }
    if let Some(rules) = root.rules
        && rules.len() != with_rules
    {
        return Err(SnapshotError::RulesMismatch {
            flagged: with_rules,
            rules: rules.len(),
        });
    }
    if let Some(passwords) = root.passwords
        && passwords.len() != with_password
    {
        return Err(SnapshotError::PasswordsMismatch {
            flagged: with_password,
            passwords: passwords.len(),
        });
    }
    if let Some(limits) = root.limits
        && limits.len() != limited
    {
        return Err(SnapshotError::LimitsMismatch {
            flagged: limited,
            limits: limits.len(),
        });
    }
    Ok(())
}

/// An extra's rules with its link's expiry (`Link::validate`'s).
fn check_extra(value: &ArchivedLinkValue, extra: &ArchivedLinkExtra) -> Result<(), LinkError> {
    let view = ExtraView { value: extra };
    let expires_at = match value.expires_at.to_native() {
        0 => None,
        at => Some(at),
    };
    if extra.valid_since.to_native() < 0 {
        return Err(LinkError::ValidSince {
            value: extra.valid_since.to_native(),
        });
    }
    link::validate_lifecycle(view.valid_since(), expires_at, view.expired_url())
}

fn check_link(
    code: &str,
    value: &ArchivedLinkValue,
    known_flags: u8,
    version: u16,
) -> Result<(), LinkError> {
    link::validate_code(code.as_bytes())?;
    // Before version 4 `org` was padding, which rkyv writes as zeros: a
    // non-zero value there is not an org, so refuse it rather than guess.
    let org = value.org.to_native();
    if version < 4 && org != 0 {
        return Err(LinkError::OrgNotInVersion { org, version });
    }
    link::validate_target(value.target.as_str())?;
    RedirectStatus::try_from(value.status.to_native())?;
    let expires_at = value.expires_at.to_native();
    if expires_at < 0 {
        return Err(LinkError::Expiry { value: expires_at });
    }
    if value.flags & !known_flags != 0 {
        return Err(LinkError::Flags { flags: value.flags });
    }
    Ok(())
}

/// A link read in place from a snapshot.
#[derive(Debug, Clone, Copy)]
pub struct LinkView<'a> {
    domain: u32,
    value: &'a ArchivedLinkValue,
}

impl<'a> LinkView<'a> {
    /// The domain the link lives on.
    #[inline]
    pub fn domain(&self) -> u32 {
        self.domain
    }

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

    /// Whether the link has lifecycle extras ([`Snapshot::extra_in`]).
    #[inline]
    pub fn has_extra(&self) -> bool {
        self.value.flags & FLAG_EXTRA != 0
    }

    /// Whether the link has rules or a split ([`Snapshot::rules_in`]).
    #[inline]
    pub fn has_rules(&self) -> bool {
        self.value.flags & FLAG_RULES != 0
    }

    /// Whether the link's visits are limited ([`Snapshot::limit_in`]):
    /// served only from visits control leased to this engine.
    #[inline]
    pub fn has_limit(&self) -> bool {
        self.value.flags & FLAG_LIMITED != 0
    }

    /// Whether the link is password-protected ([`Snapshot::password_in`]).
    #[inline]
    pub fn has_password(&self) -> bool {
        self.value.flags & FLAG_PASSWORD != 0
    }

    /// The raw flag bits: [`FLAG_DISABLED`], [`FLAG_FORWARD_QUERY`],
    /// [`FLAG_EXTRA`] (one load for callers that test several).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.value.flags
    }

    /// The change-log sequence that last touched the link.
    #[inline]
    pub fn seq(&self) -> u64 {
        self.value.seq.to_native()
    }

    /// The organisation that owns the link; 0 in files older than
    /// version 4.
    #[inline]
    pub fn org_id(&self) -> u64 {
        u64::from(self.value.org.to_native())
    }

    /// An owned copy, for tools and tests (allocates). `extra`: the link's
    /// extras, from [`Snapshot::extra_in`].
    pub fn to_link_with(&self, code: &str, extra: Option<ExtraView<'_>>) -> Link {
        Link {
            valid_since: extra.and_then(|e| e.valid_since()),
            expired_url: extra.and_then(|e| e.expired_url()).map(str::to_owned),
            ..self.to_link(code)
        }
    }

    /// An owned copy without the extras (allocates).
    pub fn to_link(&self, code: &str) -> Link {
        Link {
            domain: self.domain,
            code: code.to_owned(),
            target: self.target().to_owned(),
            status: self.status(),
            expires_at: self.expires_at(),
            disabled: self.disabled(),
            forward_query: self.forward_query(),
            seq: self.seq(),
            valid_since: None,
            expired_url: None,
            org_id: self.org_id(),
            rules: Vec::new(),
            split: Vec::new(),
            password_hash: None,
            max_visits: None,
        }
    }
}

/// A link's lifecycle extras read in place (version 3).
#[derive(Debug, Clone, Copy)]
pub struct ExtraView<'a> {
    value: &'a ArchivedLinkExtra,
}

impl<'a> ExtraView<'a> {
    /// Unix seconds before which the link answers as a missing one.
    #[inline]
    pub fn valid_since(&self) -> Option<i64> {
        match self.value.valid_since.to_native() {
            0 => None,
            at => Some(at),
        }
    }

    /// Where the link redirects once expired.
    #[inline]
    pub fn expired_url(&self) -> Option<&'a str> {
        match self.value.expired_url.as_str() {
            "" => None,
            url => Some(url),
        }
    }
}
