//! A link delta: one change from the control plane's outbox, as published on
//! the `LINKS` stream and applied by every engine on top of its snapshot.
//!
//! Deltas are JSON (they are few, and an operator can read them with any NATS
//! client); the snapshot and click batches are binary because they are many.
//! Every delta carries `"v": 1`; a reader refuses versions it does not know
//! rather than guess.

use crate::link::{Link, LinkError, validate_code};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The delta format version this crate writes and reads.
pub const DELTA_VERSION: u16 = 1;

/// One change, with the outbox sequence that orders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkDelta {
    /// Format version, [`DELTA_VERSION`].
    pub v: u16,
    /// Outbox sequence: strictly increasing across all changes. An engine
    /// ignores deltas at or below its snapshot's sequence.
    pub seq: u64,
    #[serde(flatten)]
    pub change: LinkChange,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LinkChange {
    /// The link now reads exactly like this (created or updated).
    Upsert { link: Link },
    /// The link no longer exists (deleted); a tombstone over the snapshot.
    Delete { code: String },
}

impl LinkChange {
    /// The code the change is about.
    pub fn code(&self) -> &str {
        match self {
            LinkChange::Upsert { link } => &link.code,
            LinkChange::Delete { code } => code,
        }
    }
}

/// Why a delta was refused.
#[derive(Debug, Error)]
pub enum DeltaError {
    #[error("delta is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("delta version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("delta for {code:?} is invalid: {reason}")]
    InvalidLink { code: String, reason: LinkError },
}

impl LinkDelta {
    /// An upsert at `seq`; the link's own `seq` is set to match.
    pub fn upsert(seq: u64, mut link: Link) -> Self {
        link.seq = seq;
        LinkDelta {
            v: DELTA_VERSION,
            seq,
            change: LinkChange::Upsert { link },
        }
    }

    /// A delete at `seq`.
    pub fn delete(seq: u64, code: impl Into<String>) -> Self {
        LinkDelta {
            v: DELTA_VERSION,
            seq,
            change: LinkChange::Delete { code: code.into() },
        }
    }

    /// JSON bytes for the wire.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a delta always serializes")
    }

    /// Parses and checks a delta from the wire.
    pub fn decode(bytes: &[u8]) -> Result<LinkDelta, DeltaError> {
        let delta: LinkDelta = serde_json::from_slice(bytes)?;
        if delta.v != DELTA_VERSION {
            return Err(DeltaError::UnsupportedVersion {
                found: delta.v,
                supported: DELTA_VERSION,
            });
        }
        let checked = match &delta.change {
            LinkChange::Upsert { link } => link.validate(),
            LinkChange::Delete { code } => validate_code(code.as_bytes()),
        };
        checked.map_err(|reason| DeltaError::InvalidLink {
            code: delta.change.code().to_owned(),
            reason,
        })?;
        Ok(delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wire_shape() {
        let delta = LinkDelta::upsert(7, Link::new("abc", "https://example.com/"));
        let bytes = delta.encode();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.contains(r#""v":1"#) && text.contains(r#""op":"upsert""#),
            "{text}"
        );
        assert_eq!(LinkDelta::decode(&bytes).unwrap(), delta);

        let delete = LinkDelta::delete(8, "abc");
        assert_eq!(
            std::str::from_utf8(&delete.encode()).unwrap(),
            r#"{"v":1,"seq":8,"op":"delete","code":"abc"}"#
        );
        assert_eq!(LinkDelta::decode(&delete.encode()).unwrap(), delete);
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            LinkDelta::decode(br#"{"v":2,"seq":1,"op":"delete","code":"a"}"#),
            Err(DeltaError::UnsupportedVersion { found: 2, .. })
        ));
        assert!(matches!(
            LinkDelta::decode(br#"{"v":1,"seq":1,"op":"delete","code":"a/b"}"#),
            Err(DeltaError::InvalidLink { .. })
        ));
        assert!(matches!(
            LinkDelta::decode(
                br#"{"v":1,"seq":1,"op":"upsert","link":{"code":"a","target":"javascript:x"}}"#
            ),
            Err(DeltaError::InvalidLink { .. })
        ));
        assert!(matches!(
            LinkDelta::decode(b"not json"),
            Err(DeltaError::Json(_))
        ));
    }
}
