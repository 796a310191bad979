//! Every record that crosses a process boundary in the shortener, defined once.
//!
//! The redirect engine, the control plane and the analytics sidecar never share
//! memory; they share files and stream messages. This crate owns those formats
//! so that the writer and every reader compile against one definition:
//!
//! - **Link snapshots** ([`SnapshotBuilder`], [`Snapshot`]): the complete link
//!   table an engine serves, as one file that is memory-mapped and read in
//!   place. A fixed 64-byte little-endian header (magic, version, counts,
//!   change-log sequence, checksums) precedes an rkyv archive whose root holds
//!   the domain table, the well-known answers and a SwissTable hash map from
//!   (domain id, code) to link (format 2; format-1 files, code to link, are
//!   read as the default domain's). The file is checked once when
//!   opened (header, xxh3 checksum, rkyv validation, every link's rules),
//!   or, when control signed it with a key the reader trusts, by that
//!   signature over the header and a BLAKE3 digest of the payload
//!   ([`signed`]: memory speed instead of a walk of every entry);
//!   afterwards lookups use unchecked access: a hash, a probe and a string
//!   compare, with no copy and no allocation. Measured on this project's
//!   2-core machine: about 60 ns a hit and 30 ns a miss over a million links
//!   (numbers and commands in `FORMAT.md`).
//! - **Link deltas** ([`delta::LinkDelta`]): one change from the control
//!   plane's outbox (a link on its domain, a domain, a well-known answer),
//!   JSON, ordered by sequence, applied by engines on top of a snapshot until
//!   a newer snapshot covers it.
//! - **Domains** ([`domain`]): the domain record, its name rules, and the
//!   allocation-free `Host` normalisation engines compare names with.
//! - **Click batches** ([`click`]): what engines publish and the sidecar
//!   consumes; a compact, versioned, length-prefixed binary layout that an
//!   engine core appends to without allocating.
//! - **Enriched clicks** ([`enriched::EnrichedClick`]): what the sidecar
//!   publishes for every stored click (JSON on core NATS) and control reads
//!   back for `link.clicked` webhooks.
//! - **Visit leases** ([`lease`]): how control hands the visits of links
//!   with `max_visits` to engines (request and signed grant, core NATS).
//! - **Engine readiness** ([`readiness::EngineReadiness`]): the JSON an
//!   engine's `GET /readyz` answers and the control plane reads to decide
//!   whether an engine needs the latest snapshot.
//!
//! Why rkyv and one hash map rather than a sorted array or a perfect hash: the
//! measurements in `FORMAT.md` ("Lookup structure"). Why these format controls
//! (little-endian, aligned, 32-bit relative pointers): `FORMAT.md` ("Format
//! controls"); they are set once in the workspace `Cargo.toml`.
//!
//! Layout:
//! - [`link`]: the [`Link`] record and its validation rules.
//! - [`domain`]: the [`Domain`] and [`WellKnown`] records, name rules, `Host`
//!   normalisation.
//! - [`header`]: the snapshot file header.
//! - [`archive`]: the rkyv types of the snapshot payload.
//! - [`builder`]: streaming, atomic snapshot writes.
//! - [`reader`]: mapping, checking and reading snapshots.
//! - [`delta`], [`click`], [`enriched`], [`streams`]: the stream records and names.
//! - [`signing`]: Ed25519 signatures on link deltas (control signs, engines verify).
//! - [`signed`]: signed snapshot files, opened by their signature.
//! - [`readiness`]: the engine's `/readyz` record.
//! - [`rules`]: redirect rules and A/B splits, owned and archived.
//! - [`password`]: the argon2id verifier of a password-protected link.
//! - [`lease`]: visit lease requests and grants (`max_visits`).
//! - `input` (feature `cli`, on by default): CSV / JSON-lines input for the
//!   `snapshot` tool. The feature also builds the tool; the services depend
//!   on this crate without it, so they never compile csv, indicatif or clap
//!   on its behalf.
//! - [`error`]: the refusal and build error enums.
#![deny(clippy::host_endian_bytes)]

pub mod archive;
pub mod builder;
pub mod click;
pub mod delta;
pub mod domain;
pub mod enriched;
pub mod error;
pub mod header;
#[cfg(feature = "cli")]
pub mod input;
pub mod lease;
pub mod link;
pub mod password;
pub mod reader;
pub mod readiness;
pub mod rules;
pub mod signed;
pub mod signing;
pub mod streams;

pub use builder::{BuildSummary, SnapshotBuilder};
pub use domain::{DEFAULT_DOMAIN, Domain, HttpMode, WellKnown};
pub use error::{BuildError, SnapshotError};
pub use header::Header;
pub use link::{Link, LinkError, RedirectStatus};
pub use reader::{ExtraView, LinkView, Snapshot};
