//! Errors of the snapshot reader and builder. Callers match on the variant;
//! each carries the numbers that explain it.

use crate::domain::DomainError;
use crate::link::LinkError;
use std::path::PathBuf;
use thiserror::Error;

/// Why a snapshot was refused. Opening never panics and never serves from a
/// file that failed any of these checks.
#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("cannot read snapshot {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("file is {len} bytes; a snapshot is at least {min}")]
    TooShort { len: u64, min: u64 },
    #[error("not a snapshot: magic is {found:02x?}, expected \"SHRTSNAP\"")]
    BadMagic { found: [u8; 8] },
    #[error(
        "snapshot format version {found} is not supported (this build reads versions 1 to {supported})"
    )]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("header checksum mismatch: stored {stored:016x}, computed {computed:016x}")]
    HeaderChecksum { stored: u64, computed: u64 },
    #[error("header length is {found}; headers are {expected} bytes")]
    HeaderLength { found: u32, expected: u32 },
    #[error("header has unknown flags 0x{flags:04x}")]
    UnknownFlags { flags: u16 },
    #[error(
        "truncated: header calls for {payload_len} bytes after it (payload, and signature if signed), file has {available}"
    )]
    Truncated { payload_len: u64, available: u64 },
    #[error("{extra} unexpected bytes after the payload")]
    TrailingBytes { extra: u64 },
    #[error("signed snapshot refused: {reason}")]
    BadSignature { reason: String },
    #[error("payload checksum mismatch: stored {stored:016x}, computed {computed:016x}")]
    PayloadChecksum { stored: u64, computed: u64 },
    #[error("archive is malformed: {message}")]
    Archive { message: String },
    #[error("header says {header} links, archive holds {archive}")]
    CountMismatch { header: u64, archive: u64 },
    #[error("{flagged} links are flagged to have extras but the extras table holds {extras}")]
    ExtrasMismatch { flagged: usize, extras: usize },
    #[error("{flagged} links are flagged to have rules but the rules table holds {rules}")]
    RulesMismatch { flagged: usize, rules: usize },
    #[error(
        "{flagged} links are flagged password-protected but the passwords map holds {passwords}"
    )]
    PasswordsMismatch { flagged: usize, passwords: usize },
    #[error("{flagged} links are flagged limited but the limits map holds {limits}")]
    LimitsMismatch { flagged: usize, limits: usize },
    #[error("link {code:?} (domain {domain}) is invalid: {reason}")]
    InvalidLink {
        domain: u32,
        code: String,
        reason: LinkError,
    },
    #[error("link {code:?} names domain {domain}, which the domain table does not hold")]
    UnknownDomain { domain: u32, code: String },
    #[error("domain {id} ({name:?}) is invalid: {reason}")]
    InvalidDomain {
        id: u32,
        name: String,
        reason: String,
    },
    #[error("well-known answer {host}{path} is invalid: {reason}")]
    InvalidWellKnown {
        host: String,
        path: String,
        reason: DomainError,
    },
    #[error("well-known answer {host}{path} appears twice")]
    DuplicateWellKnown { host: String, path: String },
}

/// Why a snapshot could not be built. Nothing is left at the output path when
/// building fails; a previous file there is untouched.
#[derive(Debug, Error)]
pub enum BuildError {
    #[error("cannot write snapshot {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("link #{index} ({code:?}) is invalid: {reason}")]
    InvalidLink {
        index: u64,
        code: String,
        reason: LinkError,
    },
    #[error("code {code:?} appears twice on domain {domain} (links #{first} and #{second})")]
    DuplicateCode {
        domain: u32,
        code: String,
        first: u64,
        second: u64,
    },
    #[error("link #{index} ({code:?}) names domain {domain}, which was not added")]
    UnknownDomain {
        index: u64,
        domain: u32,
        code: String,
    },
    #[error("domain {id} ({name:?}) is invalid: {reason}")]
    InvalidDomain {
        id: u32,
        name: String,
        reason: String,
    },
    #[error("well-known answer {host}{path} is invalid: {reason}")]
    InvalidWellKnown {
        host: String,
        path: String,
        reason: DomainError,
    },
    #[error("well-known answer {host}{path} appears twice")]
    DuplicateWellKnown { host: String, path: String },
    #[error("snapshot would be about {estimated} bytes; the format's 32-bit offsets allow {max}")]
    TooLarge { estimated: u64, max: u64 },
    #[error("cannot serialize archive: {message}")]
    Serialize { message: String },
}
