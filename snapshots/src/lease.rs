//! Visit leases: how engines get the visits of links with `max_visits`.
//!
//! Control owns each limited link's budget in PostgreSQL and hands it out
//! in leases; an engine serves a limited link only from visits it was
//! leased, so the visits served by every engine together never pass
//! `max_visits` (docs/max-visits.md). These are the two records that cross
//! processes, both JSON on core NATS (request/reply, not JetStream):
//!
//! - [`LeaseRequest`]: an engine's control thread publishes one on
//!   [`lease_subject`]`(prefix, node)` with a reply inbox: the links it wants visits
//!   of, the leases it is done with (each with its unused visits, which
//!   no core of the engine can serve any more), and the visits it moved from
//!   an older lease of a link into its newer one ([`LeaseMove`]).
//! - [`LeaseGrant`]: control's reply: per asked link, a lease (an id, the
//!   visits, a lifetime in milliseconds), possibly of 0 visits (the budget
//!   is spent). Signed like a link change ([`crate::signing`], the
//!   [`crate::signing::SIGNATURE_HEADER`] over the exact body), and it
//!   repeats the request's `nonce`, so a grant cannot be forged by another
//!   NATS user nor replayed onto another request.
//!
//! Lifetimes are durations, never instants, so the two clocks never meet:
//! the engine stops using a lease `ttl_ms` after it *sent* the request
//! (before control granted it), control counts it expired `ttl_ms` after it
//! granted it; the engine always stops first.

use crate::link::{LinkError, MAX_VISITS, validate_code};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The lease record version this crate writes and reads.
pub const LEASE_VERSION: u16 = 1;
/// The default request subject prefix: requests go to `links.lease.<node
/// id>` (both services take another, `lease_subject`, which tests use to
/// keep to their own).
pub const DEFAULT_LEASE_SUBJECT: &str = "links.lease";
/// Most links one request may ask for or return (a larger set is split).
pub const MAX_LEASE_ITEMS: usize = 256;

/// The lease subject of one engine node under `prefix`.
pub fn lease_subject(prefix: &str, node_id: &str) -> String {
    format!("{prefix}.{node_id}")
}

/// What control subscribes to under `prefix`: every node's subject.
pub fn lease_subjects(prefix: &str) -> String {
    format!("{prefix}.*")
}

/// An engine's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRequest {
    /// [`LEASE_VERSION`].
    pub v: u16,
    /// The engine node asking; must match the subject's last token.
    pub node: String,
    /// Random, repeated in the grant.
    pub nonce: u64,
    /// Links to lease visits of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub want: Vec<LeaseWant>,
    /// Leases the engine is done with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub returns: Vec<LeaseReturn>,
    /// Visits moved between leases of one link; control applies them
    /// before the returns of the same request. Absent in requests of
    /// engines before moves were reported (same [`LEASE_VERSION`]: an
    /// older control ignores them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<LeaseMove>,
}

/// One link an engine wants visits of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseWant {
    #[serde(default)]
    pub domain: u32,
    pub code: String,
    /// How many visits it would like (control may grant fewer, or 0).
    pub visits: u32,
}

/// A lease the engine closes: no core serves from it any more, and
/// `unused` of its visits were not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseReturn {
    pub lease: u64,
    pub unused: u32,
}

/// Visits an engine moved from lease `from` of a link (which it had not
/// handed to any core when the newer lease `into` of the same link
/// arrived) into `into`: served at most once either way, and now counted
/// in `into`. Control moves them between the two leases' rows, so the rows
/// say what each lease holds: an engine that dies holding `into` is known
/// to take those visits with it, and `into`'s return may give them back.
/// A lease moves its visits at most once; a repeated move changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseMove {
    pub from: u64,
    pub into: u64,
    pub visits: u32,
}

/// Control's reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrant {
    /// [`LEASE_VERSION`].
    pub v: u16,
    /// The request's nonce.
    pub nonce: u64,
    /// One per asked link, in the request's order.
    pub leases: Vec<Lease>,
}

/// Visits of one link leased to one engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    #[serde(default)]
    pub domain: u32,
    pub code: String,
    /// Control's id of the lease, returned when the engine is done with it;
    /// 0 when nothing was granted.
    pub lease: u64,
    /// Visits granted, at most the link's `max_visits`; 0: none left (or
    /// the link is not limited, or unknown).
    pub visits: u32,
    /// How long the engine may serve them, from when it sent the request.
    pub ttl_ms: u64,
}

/// Why a lease record was refused.
#[derive(Debug, Error)]
pub enum LeaseError {
    #[error("lease record is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("lease record version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("lease record has {count} items; the limit is {max}")]
    TooMany { count: usize, max: usize },
    #[error("lease record names {code:?}: {reason}")]
    InvalidCode { code: String, reason: LinkError },
    #[error("lease record has {visits} visits for {code:?}; the limit is {max}")]
    TooManyVisits { code: String, visits: u32, max: u32 },
    #[error("lease request names node {node:?} on the subject of node {subject:?}")]
    WrongNode { node: String, subject: String },
    #[error("lease grant answers nonce {found}, not the request's {expected}")]
    WrongNonce { found: u64, expected: u64 },
}

fn check_version(v: u16) -> Result<(), LeaseError> {
    if v != LEASE_VERSION {
        return Err(LeaseError::UnsupportedVersion {
            found: v,
            supported: LEASE_VERSION,
        });
    }
    Ok(())
}

fn check_count(count: usize) -> Result<(), LeaseError> {
    if count > MAX_LEASE_ITEMS {
        return Err(LeaseError::TooMany {
            count,
            max: MAX_LEASE_ITEMS,
        });
    }
    Ok(())
}

fn check_link(code: &str, visits: u32) -> Result<(), LeaseError> {
    validate_code(code.as_bytes()).map_err(|reason| LeaseError::InvalidCode {
        code: code.to_owned(),
        reason,
    })?;
    if visits > MAX_VISITS {
        return Err(LeaseError::TooManyVisits {
            code: code.to_owned(),
            visits,
            max: MAX_VISITS,
        });
    }
    Ok(())
}

impl LeaseRequest {
    pub fn encode(&self) -> Vec<u8> {
        // Serializing these plain structs cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes and checks a request that arrived on `subject` under
    /// `prefix`: version, sizes, codes, and that the node it names is the
    /// subject's (with a NATS user per node, permissions then let each
    /// engine speak for itself only).
    pub fn decode(bytes: &[u8], subject: &str, prefix: &str) -> Result<LeaseRequest, LeaseError> {
        let request: LeaseRequest = serde_json::from_slice(bytes)?;
        check_version(request.v)?;
        if subject != lease_subject(prefix, &request.node) {
            return Err(LeaseError::WrongNode {
                node: request.node,
                subject: subject
                    .strip_prefix(prefix)
                    .unwrap_or(subject)
                    .trim_start_matches('.')
                    .to_owned(),
            });
        }
        check_count(request.want.len())?;
        check_count(request.returns.len())?;
        check_count(request.moves.len())?;
        for want in &request.want {
            check_link(&want.code, want.visits)?;
        }
        for returned in &request.returns {
            if returned.unused > MAX_VISITS {
                return Err(LeaseError::TooManyVisits {
                    code: String::new(),
                    visits: returned.unused,
                    max: MAX_VISITS,
                });
            }
        }
        for moved in &request.moves {
            if moved.visits > MAX_VISITS {
                return Err(LeaseError::TooManyVisits {
                    code: String::new(),
                    visits: moved.visits,
                    max: MAX_VISITS,
                });
            }
        }
        Ok(request)
    }
}

impl LeaseGrant {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes and checks a grant for the request with `nonce` (whose
    /// signature the caller has checked over the same bytes).
    pub fn decode(bytes: &[u8], nonce: u64) -> Result<LeaseGrant, LeaseError> {
        let grant: LeaseGrant = serde_json::from_slice(bytes)?;
        check_version(grant.v)?;
        if grant.nonce != nonce {
            return Err(LeaseError::WrongNonce {
                found: grant.nonce,
                expected: nonce,
            });
        }
        check_count(grant.leases.len())?;
        for lease in &grant.leases {
            check_link(&lease.code, lease.visits)?;
        }
        Ok(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> LeaseRequest {
        LeaseRequest {
            v: LEASE_VERSION,
            node: "edge-1".into(),
            nonce: 77,
            want: vec![LeaseWant {
                domain: 7,
                code: "limited".into(),
                visits: 16,
            }],
            returns: vec![LeaseReturn {
                lease: 3,
                unused: 2,
            }],
            moves: vec![LeaseMove {
                from: 2,
                into: 4,
                visits: 5,
            }],
        }
    }

    #[test]
    fn requests_round_trip_on_their_node_subject_only() {
        let bytes = request().encode();
        assert_eq!(
            LeaseRequest::decode(&bytes, "links.lease.edge-1", DEFAULT_LEASE_SUBJECT).unwrap(),
            request()
        );
        let err =
            LeaseRequest::decode(&bytes, "links.lease.edge-2", DEFAULT_LEASE_SUBJECT).unwrap_err();
        assert!(
            matches!(&err, LeaseError::WrongNode { node, subject } if node == "edge-1" && subject == "edge-2"),
            "{err:?}"
        );
        let newer = String::from_utf8(bytes)
            .unwrap()
            .replace(r#""v":1"#, r#""v":2"#);
        assert!(matches!(
            LeaseRequest::decode(
                newer.as_bytes(),
                "links.lease.edge-1",
                DEFAULT_LEASE_SUBJECT
            ),
            Err(LeaseError::UnsupportedVersion { found: 2, .. })
        ));
        let mut bad = request();
        bad.want[0].code = "a/b".into();
        assert!(matches!(
            LeaseRequest::decode(&bad.encode(), "links.lease.edge-1", DEFAULT_LEASE_SUBJECT),
            Err(LeaseError::InvalidCode { .. })
        ));
        // A request of an engine that reports no moves (older, or none to
        // report) reads as one without them.
        let mut older = request();
        older.moves.clear();
        assert!(!String::from_utf8(older.encode()).unwrap().contains("moves"));
        assert_eq!(
            LeaseRequest::decode(&older.encode(), "links.lease.edge-1", DEFAULT_LEASE_SUBJECT)
                .unwrap(),
            older
        );
        let mut many = request();
        many.want = vec![many.want[0].clone(); MAX_LEASE_ITEMS + 1];
        assert!(matches!(
            LeaseRequest::decode(&many.encode(), "links.lease.edge-1", DEFAULT_LEASE_SUBJECT),
            Err(LeaseError::TooMany { .. })
        ));
    }

    #[test]
    fn grants_answer_their_own_nonce() {
        let grant = LeaseGrant {
            v: LEASE_VERSION,
            nonce: 77,
            leases: vec![Lease {
                domain: 7,
                code: "limited".into(),
                lease: 9,
                visits: 16,
                ttl_ms: 30_000,
            }],
        };
        let bytes = grant.encode();
        assert_eq!(LeaseGrant::decode(&bytes, 77).unwrap(), grant);
        assert!(matches!(
            LeaseGrant::decode(&bytes, 78),
            Err(LeaseError::WrongNonce {
                found: 77,
                expected: 78
            })
        ));
        let mut huge = grant.clone();
        huge.leases[0].visits = MAX_VISITS + 1;
        assert!(matches!(
            LeaseGrant::decode(&huge.encode(), 77),
            Err(LeaseError::TooManyVisits { .. })
        ));
    }
}
