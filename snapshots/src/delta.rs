//! A link delta: one change from the control plane's outbox, as published on
//! the `LINKS` stream and applied by every engine on top of its snapshot.
//!
//! Deltas are JSON (they are few, and an operator can read them with any NATS
//! client); the snapshot and click batches are binary because they are many.
//! Every delta carries its version (`"v": 7` now); a reader refuses versions
//! it does not know rather than guess. Version 2 added the domain of link
//! changes (absent: the default domain, as every version-1 change is) and
//! the domain and well-known changes; version 3 the link's `valid_since`
//! and `expired_url` (absent: none, as in every older change); version 4
//! the link's `org_id` (absent: 0, unknown); version 5 the link's `rules`
//! and `split` (absent: none); version 6 the link's `password_hash`
//! (absent: no password); version 7 the link's `max_visits` (absent:
//! unlimited).

use crate::domain::{DEFAULT_DOMAIN, Domain, DomainError, WellKnown, validate_name};
use crate::link::{Link, LinkError, validate_code};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The delta format version this crate writes.
pub const DELTA_VERSION: u16 = 7;
/// The oldest delta version this crate reads.
pub const OLDEST_DELTA_VERSION: u16 = 1;

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
    Delete {
        /// Absent in version 1: the default domain.
        #[serde(default, skip_serializing_if = "is_default_domain")]
        domain: u32,
        code: String,
    },
    /// The domain now reads exactly like this (since version 2).
    DomainUpsert { domain: Domain },
    /// The domain is no longer served (deleted); its links go with it.
    DomainDelete { id: u32 },
    /// `GET http://<host><path>` now answers this (since version 2).
    WellKnownUpsert { answer: WellKnown },
    /// The well-known answer is gone.
    WellKnownDelete { host: String, path: String },
}

fn is_default_domain(domain: &u32) -> bool {
    *domain == DEFAULT_DOMAIN
}

impl LinkChange {
    /// The code a link change is about; `None` for domain and well-known
    /// changes.
    pub fn code(&self) -> Option<&str> {
        match self {
            LinkChange::Upsert { link } => Some(&link.code),
            LinkChange::Delete { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The domain a link or domain change is about.
    pub fn domain(&self) -> Option<u32> {
        match self {
            LinkChange::Upsert { link } => Some(link.domain),
            LinkChange::Delete { domain, .. } => Some(*domain),
            LinkChange::DomainUpsert { domain } => Some(domain.id),
            LinkChange::DomainDelete { id } => Some(*id),
            _ => None,
        }
    }
}

/// Why a delta was refused.
#[derive(Debug, Error)]
pub enum DeltaError {
    #[error("delta is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("delta version {found} is not supported (this build reads versions 1 to {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("delta for {code:?} is invalid: {reason}")]
    InvalidLink { code: String, reason: LinkError },
    #[error("domain or well-known delta for {what:?} is invalid: {reason}")]
    InvalidDomain { what: String, reason: DomainError },
    #[error("version-1 deltas carry no domain and no domain changes")]
    NotInVersion1,
    #[error(
        "version-{version} deltas carry no {field} (since version 3; org_id since 4; rules and split since 5; password_hash since 6; max_visits since 7)"
    )]
    NotInVersion { version: u16, field: &'static str },
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

    /// A delete on the default domain at `seq`.
    pub fn delete(seq: u64, code: impl Into<String>) -> Self {
        Self::delete_in(seq, DEFAULT_DOMAIN, code)
    }

    /// A delete of `(domain, code)` at `seq`.
    pub fn delete_in(seq: u64, domain: u32, code: impl Into<String>) -> Self {
        Self::change(
            seq,
            LinkChange::Delete {
                domain,
                code: code.into(),
            },
        )
    }

    /// Any change at `seq`.
    pub fn change(seq: u64, change: LinkChange) -> Self {
        LinkDelta {
            v: DELTA_VERSION,
            seq,
            change,
        }
    }

    /// JSON bytes for the wire.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a delta always serializes")
    }

    /// Parses and checks a delta from the wire.
    pub fn decode(bytes: &[u8]) -> Result<LinkDelta, DeltaError> {
        let delta: LinkDelta = serde_json::from_slice(bytes)?;
        if !(OLDEST_DELTA_VERSION..=DELTA_VERSION).contains(&delta.v) {
            return Err(DeltaError::UnsupportedVersion {
                found: delta.v,
                supported: DELTA_VERSION,
            });
        }
        let version_1_change = matches!(
            &delta.change,
            LinkChange::Upsert { link } if link.domain == DEFAULT_DOMAIN
        ) || matches!(
            &delta.change,
            LinkChange::Delete { domain, .. } if *domain == DEFAULT_DOMAIN
        );
        if delta.v == 1 && !version_1_change {
            return Err(DeltaError::NotInVersion1);
        }
        if delta.v < 3
            && let LinkChange::Upsert { link } = &delta.change
        {
            let field = if link.valid_since.is_some() {
                Some("valid_since")
            } else if link.expired_url.is_some() {
                Some("expired_url")
            } else {
                None
            };
            if let Some(field) = field {
                return Err(DeltaError::NotInVersion {
                    version: delta.v,
                    field,
                });
            }
        }
        if delta.v < 4
            && let LinkChange::Upsert { link } = &delta.change
            && link.org_id != 0
        {
            return Err(DeltaError::NotInVersion {
                version: delta.v,
                field: "org_id",
            });
        }
        if delta.v < 5
            && let LinkChange::Upsert { link } = &delta.change
            && link.has_rules()
        {
            return Err(DeltaError::NotInVersion {
                version: delta.v,
                field: if link.rules.is_empty() {
                    "split"
                } else {
                    "rules"
                },
            });
        }
        if delta.v < 6
            && let LinkChange::Upsert { link } = &delta.change
            && link.has_password()
        {
            return Err(DeltaError::NotInVersion {
                version: delta.v,
                field: "password_hash",
            });
        }
        if delta.v < 7
            && let LinkChange::Upsert { link } = &delta.change
            && link.has_limit()
        {
            return Err(DeltaError::NotInVersion {
                version: delta.v,
                field: "max_visits",
            });
        }
        let link_error = |code: &str| {
            let code = code.to_owned();
            move |reason| DeltaError::InvalidLink { code, reason }
        };
        let domain_error = |what: &str| {
            let what = what.to_owned();
            move |reason| DeltaError::InvalidDomain { what, reason }
        };
        match &delta.change {
            LinkChange::Upsert { link } => link.validate().map_err(link_error(&link.code))?,
            LinkChange::Delete { code, .. } => {
                validate_code(code.as_bytes()).map_err(link_error(code))?
            }
            LinkChange::DomainUpsert { domain } => {
                domain.validate().map_err(domain_error(&domain.name))?
            }
            LinkChange::DomainDelete { .. } => {}
            LinkChange::WellKnownUpsert { answer } => {
                answer.validate().map_err(domain_error(&answer.host))?
            }
            LinkChange::WellKnownDelete { host, path } => {
                validate_name(host).map_err(domain_error(host))?;
                crate::domain::validate_well_known_path(path).map_err(domain_error(path))?
            }
        }
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
            text.contains(r#""v":7"#) && text.contains(r#""op":"upsert""#),
            "{text}"
        );
        assert_eq!(LinkDelta::decode(&bytes).unwrap(), delta);

        let delete = LinkDelta::delete(8, "abc");
        assert_eq!(
            std::str::from_utf8(&delete.encode()).unwrap(),
            r#"{"v":7,"seq":8,"op":"delete","code":"abc"}"#
        );
        assert_eq!(LinkDelta::decode(&delete.encode()).unwrap(), delete);

        let delete = LinkDelta::delete_in(9, 7, "abc");
        assert_eq!(
            std::str::from_utf8(&delete.encode()).unwrap(),
            r#"{"v":7,"seq":9,"op":"delete","domain":7,"code":"abc"}"#
        );
        let domain = LinkDelta::change(
            10,
            LinkChange::DomainUpsert {
                domain: Domain {
                    id: 7,
                    verified: true,
                    hsts_max_age: Some(300),
                    http_mode: crate::domain::HttpMode::RedirectHttps,
                    ..Domain::default_domain("go.example.com")
                },
            },
        );
        let text = String::from_utf8(domain.encode()).unwrap();
        assert!(text.contains(r#""op":"domain_upsert""#), "{text}");
        assert!(text.contains(r#""http_mode":"redirect-https""#), "{text}");
        assert_eq!(LinkDelta::decode(text.as_bytes()).unwrap(), domain);
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            LinkDelta::decode(br#"{"v":8,"seq":1,"op":"delete","code":"a"}"#),
            Err(DeltaError::UnsupportedVersion { found: 8, .. })
        ));
        let limited = br#"{"v":7,"seq":1,"op":"upsert","link":{"code":"a","target":"https://x.y","max_visits":10}}"#;
        let decoded = LinkDelta::decode(limited).unwrap();
        assert!(
            matches!(&decoded.change, LinkChange::Upsert { link } if link.max_visits == Some(10))
        );
        let text = String::from_utf8(limited.to_vec()).unwrap();
        assert!(matches!(
            LinkDelta::decode(text.replace(r#""v":7"#, r#""v":6"#).as_bytes()),
            Err(DeltaError::NotInVersion {
                version: 6,
                field: "max_visits"
            })
        ));
        for bad in ["0", "1000000001"] {
            match LinkDelta::decode(text.replace("10}", &format!("{bad}}}")).as_bytes()) {
                Err(DeltaError::InvalidLink { reason, .. }) => {
                    assert!(reason.to_string().contains("max_visits"), "{reason}")
                }
                other => panic!("{other:?}"),
            }
        }
        let gated = br#"{"v":6,"seq":1,"op":"upsert","link":{"code":"a","target":"https://x.y","password_hash":"$argon2id$v=19$m=1024,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Ck1HvCoR4YW0GMpwA4MYS8aWKX9o8D1rtBpNOs7FVd8"}}"#;
        let decoded = LinkDelta::decode(gated).unwrap();
        assert!(matches!(&decoded.change, LinkChange::Upsert { link } if link.has_password()));
        let text = String::from_utf8(gated.to_vec()).unwrap();
        assert!(matches!(
            LinkDelta::decode(text.replace(r#""v":6"#, r#""v":5"#).as_bytes()),
            Err(DeltaError::NotInVersion {
                version: 5,
                field: "password_hash"
            })
        ));
        match LinkDelta::decode(text.replace("m=1024", "m=1048576").as_bytes()) {
            Err(DeltaError::InvalidLink { reason, .. }) => {
                assert!(reason.to_string().contains("memory m=1048576"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            LinkDelta::decode(
                br#"{"v":3,"seq":1,"op":"upsert","link":{"code":"a","target":"https://x.y","org_id":5}}"#
            ),
            Err(DeltaError::NotInVersion {
                version: 3,
                field: "org_id"
            })
        ));
        let with_org = LinkDelta::decode(
            br#"{"v":4,"seq":1,"op":"upsert","link":{"code":"a","target":"https://x.y","org_id":5}}"#,
        )
        .unwrap();
        assert!(matches!(with_org.change, LinkChange::Upsert { link } if link.org_id == 5));
        assert!(matches!(
            LinkDelta::decode(
                br#"{"v":4,"seq":1,"op":"upsert","link":{"code":"a","target":"https://x.y","org_id":4294967296}}"#
            ),
            Err(DeltaError::InvalidLink { .. })
        ));
        let rules = br#"{"v":5,"seq":1,"op":"upsert","link":{"code":"a","target":"https://x.y","rules":[{"when":{"device":["mobile"]},"target":"https://m.x.y/"}],"split":[{"target":"https://a.x.y/","weight":60},{"target":"https://b.x.y/","weight":40}]}}"#;
        let with_rules = LinkDelta::decode(rules).unwrap();
        assert!(
            matches!(&with_rules.change, LinkChange::Upsert { link } if link.rules.len() == 1 && link.split.len() == 2)
        );
        let old = String::from_utf8(rules.to_vec())
            .unwrap()
            .replace(r#""v":5"#, r#""v":4"#);
        assert!(matches!(
            LinkDelta::decode(old.as_bytes()),
            Err(DeltaError::NotInVersion {
                version: 4,
                field: "rules"
            })
        ));
        let bad_weights = String::from_utf8(rules.to_vec())
            .unwrap()
            .replace("40", "30");
        match LinkDelta::decode(bad_weights.as_bytes()) {
            Err(DeltaError::InvalidLink { reason, .. }) => {
                assert!(reason.to_string().contains("sum to 90"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            LinkDelta::decode(
                br#"{"v":2,"seq":1,"op":"upsert","link":{"code":"a","target":"https://x.y","valid_since":5}}"#
            ),
            Err(DeltaError::NotInVersion {
                version: 2,
                field: "valid_since"
            })
        ));
        assert!(matches!(
            LinkDelta::decode(br#"{"v":1,"seq":1,"op":"delete","domain":4,"code":"a"}"#),
            Err(DeltaError::NotInVersion1)
        ));
        assert!(matches!(
            LinkDelta::decode(br#"{"v":1,"seq":1,"op":"domain_delete","id":4}"#),
            Err(DeltaError::NotInVersion1)
        ));
        assert!(matches!(
            LinkDelta::decode(
                br#"{"v":2,"seq":1,"op":"domain_upsert","domain":{"id":4,"name":"Bad..name"}}"#
            ),
            Err(DeltaError::InvalidDomain { .. })
        ));
        assert!(matches!(
            LinkDelta::decode(
                br#"{"v":2,"seq":1,"op":"well_known_upsert","answer":{"host":"a.example","path":"/x","body":"t"}}"#
            ),
            Err(DeltaError::InvalidDomain { .. })
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
