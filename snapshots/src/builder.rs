//! Building a snapshot file: links stream in, one compact copy is kept, the
//! archive streams out to a temporary file that is fsynced and renamed.

use crate::archive::{
    DOMAIN_HSTS, DOMAIN_REDIRECT_HTTPS, DOMAIN_VERIFIED, DomainValue, Entry, FLAG_DISABLED,
    FLAG_EXTRA, FLAG_FORWARD_QUERY, FLAG_LIMITED, FLAG_PASSWORD, FLAG_RULES, LinkExtra, LinkKey,
    LinkValue, RootOut, WellKnownValue,
};
use crate::domain::{DEFAULT_DOMAIN, Domain, HttpMode, WellKnown};
use crate::error::BuildError;
use crate::header::{FORMAT_VERSION, HEADER_LEN, Header};
use crate::link::Link;
use crate::password::PasswordValue;
use crate::rules::RulesValue;
use crate::signed::{self, HEADER_FLAG_SIGNED, SIGNATURE_TRAILER_LEN, StreamingDigest};
use crate::signing::DeltaSigner;
use rkyv::rancor;
use rkyv::ser::writer::IoWriter;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use xxhash_rust::xxh3::Xxh3;

/// The largest payload the format's 32-bit relative pointers can address.
pub const MAX_PAYLOAD_LEN: u64 = i32::MAX as u64;

/// Per-entry bytes in the archive beyond the code and target text: the table
/// slot (key 8 + value 32), a control byte, and slack for the 7/8 load factor
/// and alignment. Used only to refuse an oversized build before writing it.
const ENTRY_OVERHEAD: u64 = 56;

/// Collects links and writes them as one snapshot file.
///
/// Memory: one `Entry` per link (the code and target strings plus 48 bytes),
/// and while writing, rkyv's scratch space for the hash table (a slot index
/// and a control byte per bucket). The archive itself is streamed to disk.
#[derive(Debug)]
pub struct SnapshotBuilder {
    /// Signs the file when set ([`crate::signed`]).
    signer: Option<Arc<DeltaSigner>>,
    entries: Vec<Entry>,
    /// The extras of the links that have one (few), keyed like `entries`.
    extras: Vec<(LinkKey, LinkExtra)>,
    /// The rules and splits of the links that have them (few), keyed like
    /// `entries`.
    rules: Vec<(LinkKey, RulesValue)>,
    /// The password verifiers of the protected links (few), keyed like
    /// `entries`.
    passwords: Vec<(LinkKey, PasswordValue)>,
    /// The `max_visits` of the limited links (few), keyed like `entries`.
    limits: Vec<(LinkKey, u32)>,
    domains: Vec<DomainValue>,
    well_known: Vec<WellKnownValue>,
    sequence: u64,
    built_at_ms: Option<i64>,
    text_bytes: u64,
}

/// What a finished build wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildSummary {
    pub header: Header,
    /// Bytes of the whole file.
    pub file_len: u64,
}

impl SnapshotBuilder {
    /// A builder for a snapshot at change-log `sequence`.
    pub fn new(sequence: u64) -> Self {
        Self::with_capacity(sequence, 0)
    }

    /// Like [`SnapshotBuilder::new`], with room for `links` links.
    pub fn with_capacity(sequence: u64, links: usize) -> Self {
        SnapshotBuilder {
            signer: None,
            entries: Vec::with_capacity(links),
            extras: Vec::new(),
            rules: Vec::new(),
            passwords: Vec::new(),
            limits: Vec::new(),
            domains: Vec::new(),
            well_known: Vec::new(),
            sequence,
            built_at_ms: None,
            text_bytes: 0,
        }
    }

    /// Fixes the build time written to the header (default: now). Useful for
    /// byte-identical fixtures.
    pub fn built_at_ms(mut self, at: i64) -> Self {
        self.built_at_ms = Some(at);
        self
    }

    /// Signs the file with `signer`'s key, so engines that trust it open the
    /// file by its signature instead of checking every entry
    /// ([`crate::signed`]). Costs a BLAKE3 pass over the payload as it
    /// streams out.
    pub fn signed_by(mut self, signer: Arc<DeltaSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Links added so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no link was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a domain after checking it. The default domain
    /// ([`DEFAULT_DOMAIN`]) is added unnamed at write time if it was not
    /// added. Duplicate ids and two verified domains of one name are
    /// refused at write time.
    pub fn push_domain(&mut self, domain: Domain) -> Result<(), BuildError> {
        if let Err(reason) = domain.validate() {
            return Err(BuildError::InvalidDomain {
                id: domain.id,
                name: domain.name,
                reason: reason.to_string(),
            });
        }
        let flags = if domain.served() { DOMAIN_VERIFIED } else { 0 }
            | match domain.http_mode {
                HttpMode::Serve => 0,
                HttpMode::RedirectHttps => DOMAIN_REDIRECT_HTTPS,
            }
            | if domain.hsts_max_age.is_some() {
                DOMAIN_HSTS
            } else {
                0
            };
        self.domains.push(DomainValue {
            id: domain.id,
            hsts_max_age: domain.hsts_max_age.unwrap_or(0),
            flags,
            name: domain.name,
            root_redirect: domain.root_redirect.unwrap_or_default(),
            not_found_redirect: domain.not_found_redirect.unwrap_or_default(),
        });
        Ok(())
    }

    /// Adds a well-known answer after checking it.
    pub fn push_well_known(&mut self, answer: WellKnown) -> Result<(), BuildError> {
        if let Err(reason) = answer.validate() {
            return Err(BuildError::InvalidWellKnown {
                host: answer.host,
                path: answer.path,
                reason,
            });
        }
        self.well_known.push(WellKnownValue {
            host: answer.host,
            path: answer.path,
            body: answer.body,
        });
        Ok(())
    }

    /// Adds one link after checking it. Duplicates are found at write time.
    pub fn push(&mut self, link: Link) -> Result<(), BuildError> {
        let index = self.entries.len() as u64;
        if let Err(reason) = link.validate() {
            return Err(BuildError::InvalidLink {
                index,
                code: link.code,
                reason,
            });
        }
        let flags = if link.disabled { FLAG_DISABLED } else { 0 }
            | if link.forward_query {
                FLAG_FORWARD_QUERY
            } else {
                0
            }
            | if link.has_extra() { FLAG_EXTRA } else { 0 }
            | if link.has_rules() { FLAG_RULES } else { 0 }
            | if link.has_password() {
                FLAG_PASSWORD
            } else {
                0
            }
            | if link.has_limit() { FLAG_LIMITED } else { 0 };
        self.text_bytes += (link.code.len() + link.target.len()) as u64;
        if link.has_rules() {
            let value = RulesValue::new(&link.rules, &link.split, link.status);
            let rule_text: usize = value
                .rules
                .iter()
                .map(|r| {
                    r.target.len()
                        + r.query_name.len()
                        + r.query_value.len()
                        + 64
                        + 3 * r.languages.len()
                        + 2 * r.countries.len()
                })
                .chain(value.split.iter().map(|v| v.target.len() + 16))
                .sum();
            self.text_bytes += (link.code.len() + rule_text) as u64 + ENTRY_OVERHEAD;
            self.rules.push((
                LinkKey {
                    domain: link.domain,
                    code: link.code.clone(),
                },
                value,
            ));
        }
        if let Some(phc) = &link.password_hash {
            // Validated above.
            let value = PasswordValue::from_phc(phc).map_err(|e| BuildError::InvalidLink {
                index,
                code: link.code.clone(),
                reason: e.into(),
            })?;
            self.text_bytes +=
                (link.code.len() + value.salt.len() + value.hash.len()) as u64 + ENTRY_OVERHEAD;
            self.passwords.push((
                LinkKey {
                    domain: link.domain,
                    code: link.code.clone(),
                },
                value,
            ));
        }
        if let Some(max) = link.max_visits {
            self.text_bytes += link.code.len() as u64 + 4 + ENTRY_OVERHEAD;
            self.limits.push((
                LinkKey {
                    domain: link.domain,
                    code: link.code.clone(),
                },
                max,
            ));
        }
        if link.has_extra() {
            let expired_url = link.expired_url.unwrap_or_default();
            self.text_bytes += (link.code.len() + expired_url.len()) as u64 + ENTRY_OVERHEAD;
            self.extras.push((
                LinkKey {
                    domain: link.domain,
                    code: link.code.clone(),
                },
                LinkExtra {
                    valid_since: link.valid_since.unwrap_or(0),
                    expired_url,
                },
            ));
        }
        self.entries.push(Entry {
            key: LinkKey {
                domain: link.domain,
                code: link.code,
            },
            value: LinkValue {
                seq: link.seq,
                expires_at: link.expires_at.unwrap_or(0),
                target: link.target,
                status: link.status.code(),
                flags,
                // `validate` above refused an org id wider than 32 bits.
                org: link.org_id as u32,
            },
            index,
        });
        Ok(())
    }

    /// Writes the snapshot to `path` atomically: a temporary file beside it,
    /// fsynced, renamed over `path`, and the directory fsynced. On error the
    /// temporary file is removed and `path` is untouched.
    pub fn write_to(mut self, path: &Path) -> Result<BuildSummary, BuildError> {
        let estimated = self.text_bytes + ENTRY_OVERHEAD * self.entries.len() as u64;
        if estimated > MAX_PAYLOAD_LEN {
            return Err(BuildError::TooLarge {
                estimated,
                max: MAX_PAYLOAD_LEN,
            });
        }
        self.check_domains()?;
        // Sorting makes duplicates adjacent; the map does not need the order.
        self.entries.sort_unstable_by(|a, b| {
            (a.key.domain, &a.key.code, a.index).cmp(&(b.key.domain, &b.key.code, b.index))
        });
        if let Some(pair) = self.entries.windows(2).find(|w| w[0].key == w[1].key) {
            return Err(BuildError::DuplicateCode {
                domain: pair[0].key.domain,
                code: pair[0].key.code.clone(),
                first: pair[0].index,
                second: pair[1].index,
            });
        }
        // Entries are sorted by domain, so each domain's first entry is found
        // with one binary search in the (small) domain table.
        let mut known = self.domains.iter().map(|d| d.id).collect::<Vec<_>>();
        known.sort_unstable();
        if let Some(entry) = self
            .entries
            .iter()
            .find(|e| known.binary_search(&e.key.domain).is_err())
        {
            return Err(BuildError::UnknownDomain {
                index: entry.index,
                domain: entry.key.domain,
                code: entry.key.code.clone(),
            });
        }

        let io_err = |source| BuildError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".snapshot-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(io_err)?;

        let file = tmp.as_file_mut();
        file.write_all(&[0u8; HEADER_LEN]).map_err(io_err)?;
        let written = write_payload(file, &self).map_err(|e| match e {
            PayloadError::Io(source) => io_err(source),
            PayloadError::Archive(message) => BuildError::Serialize { message },
        })?;
        let (payload_len, payload_checksum) = (written.len, written.checksum);

        let header = Header {
            version: FORMAT_VERSION,
            flags: if self.signer.is_some() {
                HEADER_FLAG_SIGNED
            } else {
                0
            },
            link_count: self.entries.len() as u64,
            sequence: self.sequence,
            built_at_ms: self.built_at_ms.unwrap_or_else(now_ms),
            payload_len,
            payload_checksum,
        };
        let encoded = header.encode();
        let mut trailer_len = 0;
        if let (Some(signer), Some(digest)) = (&self.signer, written.digest) {
            // After the payload, which the writer left the file positioned at.
            file.write_all(&signed::trailer(signer, &encoded, &digest))
                .map_err(io_err)?;
            trailer_len = SIGNATURE_TRAILER_LEN as u64;
        }
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        file.write_all(&encoded).map_err(io_err)?;
        // Temporary files are created 0600; a snapshot is read by other
        // services (the engine may run as another user), and holds no secret.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(io_err)?;
        }
        file.sync_all().map_err(io_err)?;
        tmp.persist(path).map_err(|e| io_err(e.error))?;
        // The rename is durable only once the directory entry is.
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err)?;
        Ok(BuildSummary {
            header,
            file_len: HEADER_LEN as u64 + payload_len + trailer_len,
        })
    }
}

impl SnapshotBuilder {
    /// Adds the unnamed default domain when missing; refuses duplicate ids,
    /// two verified domains of one name, and duplicate well-known answers.
    fn check_domains(&mut self) -> Result<(), BuildError> {
        if !self.domains.iter().any(|d| d.id == DEFAULT_DOMAIN) {
            self.push_domain(Domain::default_domain(""))?;
        }
        self.domains.sort_unstable_by_key(|d| d.id);
        if let Some(pair) = self.domains.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(BuildError::InvalidDomain {
                id: pair[0].id,
                name: pair[1].name.clone(),
                reason: "the domain id appears twice".into(),
            });
        }
        let mut served = self
            .domains
            .iter()
            .filter(|d| d.flags & DOMAIN_VERIFIED != 0 && !d.name.is_empty())
            .map(|d| (&d.name, d.id))
            .collect::<Vec<_>>();
        served.sort_unstable();
        if let Some(pair) = served.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(BuildError::InvalidDomain {
                id: pair[1].1,
                name: pair[1].0.clone(),
                reason: format!("domain {} is verified under the same name", pair[0].1),
            });
        }
        let mut answers = self
            .well_known
            .iter()
            .map(|w| (&w.host, &w.path))
            .collect::<Vec<_>>();
        answers.sort_unstable();
        if let Some(pair) = answers.windows(2).find(|w| w[0] == w[1]) {
            return Err(BuildError::DuplicateWellKnown {
                host: pair[0].0.clone(),
                path: pair[0].1.clone(),
            });
        }
        Ok(())
    }
}

enum PayloadError {
    Io(io::Error),
    Archive(String),
}

/// What [`write_payload`] wrote.
struct Written {
    len: u64,
    /// xxh3-64, the header's checksum.
    checksum: u64,
    /// The signed-snapshot digest, when signing.
    digest: Option<[u8; 32]>,
}

/// Streams the archive through a checksumming writer; returns its length,
/// xxh3-64 and (when signing) digest. rkyv positions are relative to the
/// payload start, which sits at offset 64 in the file, so the archive's
/// alignment holds in the file too.
fn write_payload(file: &mut File, build: &SnapshotBuilder) -> Result<Written, PayloadError> {
    let sink = ChecksumWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: Xxh3::new(),
        digest: build.signer.as_ref().map(|_| StreamingDigest::new()),
        len: 0,
    };
    let root = RootOut {
        domains: &build.domains,
        well_known: &build.well_known,
        links: &build.entries,
        extras: &build.extras,
        rules: &build.rules,
        passwords: &build.passwords,
        limits: &build.limits,
    };
    let writer = rkyv::api::high::to_bytes_in::<_, rancor::Error>(&root, IoWriter::new(sink))
        .map_err(|e| PayloadError::Archive(e.to_string()))?;
    let mut sink = writer.into_inner();
    sink.inner.flush().map_err(PayloadError::Io)?;
    Ok(Written {
        len: sink.len,
        checksum: sink.hasher.digest(),
        digest: sink.digest.map(StreamingDigest::finish),
    })
}

struct ChecksumWriter<W> {
    inner: W,
    hasher: Xxh3,
    digest: Option<StreamingDigest>,
    len: u64,
}

impl<W: Write> Write for ChecksumWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        if let Some(digest) = &mut self.digest {
            digest.update(&buf[..n]);
        }
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
