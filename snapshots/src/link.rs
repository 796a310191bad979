//! The link record every process agrees on, and the rules a valid one follows.
//!
//! These rules are enforced where links enter a snapshot (the builder), where a
//! snapshot is opened (the reader re-checks every record once), and where a
//! delta is decoded, so the engine can put a target straight into a `Location`
//! header without looking at it again.

use crate::password::{PasswordError, PasswordValue};
use crate::rules::{Rule, RulesError, Variant, validate_rules};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest code in bytes.
pub const MAX_CODE_LEN: usize = 64;
/// Longest target URL in bytes.
pub const MAX_TARGET_LEN: usize = 8 * 1024;
/// The largest `max_visits` a link may have.
pub const MAX_VISITS: u32 = 1_000_000_000;

/// A link as it crosses process boundaries (snapshot input, deltas, the API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// The domain the code lives on (`domain::DEFAULT_DOMAIN`, 0, when
    /// absent: version-1 records have no domain).
    #[serde(default, skip_serializing_if = "is_default_domain")]
    pub domain: u32,
    /// 1 to 64 bytes of `[A-Za-z0-9_-]`, case-sensitive.
    pub code: String,
    /// Absolute `http` or `https` URL, printable ASCII, at most 8 KiB.
    pub target: String,
    /// Redirect status served. Defaults to 301.
    #[serde(default)]
    pub status: RedirectStatus,
    /// Unix seconds after which the link no longer redirects. `None`: never.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// A disabled link does not redirect.
    #[serde(default)]
    pub disabled: bool,
    /// Whether the request's query string is merged into the target's.
    #[serde(default)]
    pub forward_query: bool,
    /// The change-log sequence that last touched this link (0: unknown).
    #[serde(default)]
    pub seq: u64,
    /// Unix seconds before which the link answers as if it did not exist.
    /// `None`: valid from its creation. Since snapshot format 3 and delta
    /// version 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_since: Option<i64>,
    /// Where the link redirects (302) once `expires_at` has passed, instead
    /// of answering 410. Same rules as `target`. Since snapshot format 3
    /// and delta version 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_url: Option<String>,
    /// The organisation that owns the link (PostgreSQL `links.org_id`),
    /// carried to the click record so analytics reads stats by org. 0:
    /// unknown (older records). At most `u32::MAX` (the snapshot keeps it
    /// in 32 bits). Since snapshot format 4 and delta version 4.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub org_id: u64,
    /// Redirect rules, first match wins (`rules` module). Since snapshot
    /// format 5 and delta version 5.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// An A/B split for visits no rule takes. Since snapshot format 5 and
    /// delta version 5.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub split: Vec<Variant>,
    /// The argon2id verifier (a PHC string, `password` module) of a
    /// password-protected link; `None`: no password. Since snapshot format
    /// 6 and delta version 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// How many visits the link redirects in all, 1 to [`MAX_VISITS`]; then
    /// it answers as an expired link. `None`: unlimited. Engines serve a
    /// limited link only from visits leased by control (`lease` module).
    /// Since snapshot format 7 and delta version 7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_visits: Option<u32>,
}

impl Link {
    /// A link with defaults for everything but code and target.
    pub fn new(code: impl Into<String>, target: impl Into<String>) -> Self {
        Link {
            domain: crate::domain::DEFAULT_DOMAIN,
            code: code.into(),
            target: target.into(),
            status: RedirectStatus::default(),
            expires_at: None,
            disabled: false,
            forward_query: false,
            seq: 0,
            valid_since: None,
            expired_url: None,
            org_id: 0,
            rules: Vec::new(),
            split: Vec::new(),
            password_hash: None,
            max_visits: None,
        }
    }

    /// Whether the link's visits are limited (kept in the snapshot's limits
    /// map, apart from the hot record).
    pub fn has_limit(&self) -> bool {
        self.max_visits.is_some()
    }

    /// Whether the link is password-protected (its verifier is kept in the
    /// snapshot's passwords map, apart from the hot record).
    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }

    /// Whether the link has rules or a split (kept in the snapshot's rules
    /// map, apart from the hot record).
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty() || !self.split.is_empty()
    }

    /// Whether the link has a lifecycle field beyond `expires_at` (kept
    /// apart from the hot link record: see `FORMAT.md`, "Link extras").
    pub fn has_extra(&self) -> bool {
        self.valid_since.is_some() || self.expired_url.is_some()
    }

    /// Checks every rule of this module.
    pub fn validate(&self) -> Result<(), LinkError> {
        validate_code(self.code.as_bytes())?;
        validate_target(&self.target)?;
        if self.org_id > u64::from(u32::MAX) {
            return Err(LinkError::Org {
                org_id: self.org_id,
            });
        }
        if let Some(at) = self.expires_at {
            validate_expiry(at)?;
        }
        validate_lifecycle(
            self.valid_since,
            self.expires_at,
            self.expired_url.as_deref(),
        )?;
        validate_rules(&self.rules, &self.split)?;
        if let Some(phc) = &self.password_hash {
            PasswordValue::from_phc(phc)?;
        }
        if let Some(max) = self.max_visits {
            validate_max_visits(max)?;
        }
        Ok(())
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn is_default_domain(domain: &u32) -> bool {
    *domain == crate::domain::DEFAULT_DOMAIN
}

/// The redirect statuses a link may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
#[repr(u16)]
pub enum RedirectStatus {
    /// Moved Permanently: browsers and proxies may cache it.
    #[default]
    MovedPermanently = 301,
    /// Found: temporary, method may change to GET.
    Found = 302,
    /// Temporary Redirect: temporary, method preserved.
    TemporaryRedirect = 307,
    /// Permanent Redirect: permanent, method preserved.
    PermanentRedirect = 308,
}

impl RedirectStatus {
    /// The numeric HTTP status.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// Whether clients may cache it (301 and 308).
    pub const fn is_permanent(self) -> bool {
        matches!(
            self,
            RedirectStatus::MovedPermanently | RedirectStatus::PermanentRedirect
        )
    }
}

impl TryFrom<u16> for RedirectStatus {
    type Error = LinkError;

    fn try_from(status: u16) -> Result<Self, LinkError> {
        match status {
            301 => Ok(RedirectStatus::MovedPermanently),
            302 => Ok(RedirectStatus::Found),
            307 => Ok(RedirectStatus::TemporaryRedirect),
            308 => Ok(RedirectStatus::PermanentRedirect),
            other => Err(LinkError::Status { status: other }),
        }
    }
}

impl From<RedirectStatus> for u16 {
    fn from(status: RedirectStatus) -> u16 {
        status.code()
    }
}

impl std::fmt::Display for RedirectStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// Why a link is invalid. Each variant carries the numbers that explain it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LinkError {
    #[error("code is empty")]
    CodeEmpty,
    #[error("code is {len} bytes long; the limit is {max}")]
    CodeTooLong { len: usize, max: usize },
    #[error(
        "code has byte 0x{byte:02x} at position {position}; only A-Z, a-z, 0-9, '_' and '-' are allowed"
    )]
    CodeCharacter { byte: u8, position: usize },
    #[error("target is empty")]
    TargetEmpty,
    #[error("target is {len} bytes long; the limit is {max}")]
    TargetTooLong { len: usize, max: usize },
    #[error("target must be an absolute http:// or https:// URL")]
    TargetScheme,
    #[error("target has no host")]
    TargetHost,
    #[error(
        "target has byte 0x{byte:02x} at position {position}; only printable ASCII is allowed (percent-encode the rest)"
    )]
    TargetCharacter { byte: u8, position: usize },
    #[error("status {status} is not a redirect status (301, 302, 307 or 308)")]
    Status { status: u16 },
    #[error("expiry {value} is not a positive unix time in seconds")]
    Expiry { value: i64 },
    #[error("flags 0x{flags:02x} have unknown bits")]
    Flags { flags: u8 },
    #[error("valid_since {value} is not a positive unix time in seconds")]
    ValidSince { value: i64 },
    #[error("valid_since {valid_since} is not before expires_at {expires_at}")]
    ValidSinceAfterExpiry { valid_since: i64, expires_at: i64 },
    #[error("expired_url: {0}")]
    ExpiredUrl(Box<LinkError>),
    #[error("org id {org_id} is wider than the snapshot's 32 bits")]
    Org { org_id: u64 },
    #[error("org {org} in a file of version {version}, which has no org (version 4)")]
    OrgNotInVersion { org: u32, version: u16 },
    #[error("{0}")]
    Rules(#[from] RulesError),
    #[error("rules: {0}")]
    ArchivedRules(#[from] crate::rules::ArchivedRulesError),
    #[error("{0}")]
    Password(#[from] PasswordError),
    #[error("max_visits {value} is not between 1 and {max}")]
    MaxVisits { value: u64, max: u32 },
}

/// Checks a visit limit: 1 to [`MAX_VISITS`].
pub fn validate_max_visits(max: u32) -> Result<(), LinkError> {
    if max == 0 || max > MAX_VISITS {
        return Err(LinkError::MaxVisits {
            value: u64::from(max),
            max: MAX_VISITS,
        });
    }
    Ok(())
}

/// Whether `byte` may appear in a code.
#[inline]
pub const fn is_code_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// Checks a code: 1 to [`MAX_CODE_LEN`] bytes of `[A-Za-z0-9_-]`.
pub fn validate_code(code: &[u8]) -> Result<(), LinkError> {
    if code.is_empty() {
        return Err(LinkError::CodeEmpty);
    }
    if code.len() > MAX_CODE_LEN {
        return Err(LinkError::CodeTooLong {
            len: code.len(),
            max: MAX_CODE_LEN,
        });
    }
    match code.iter().position(|&b| !is_code_byte(b)) {
        Some(position) => Err(LinkError::CodeCharacter {
            byte: code[position],
            position,
        }),
        None => Ok(()),
    }
}

/// Checks a target: absolute `http`/`https`, a host, printable ASCII only
/// (so it can go into a `Location` header as it is), at most [`MAX_TARGET_LEN`].
///
/// This is the floor every process relies on; the control plane applies
/// stricter policy (blocklists, loops, normalisation) on top.
pub fn validate_target(target: &str) -> Result<(), LinkError> {
    let bytes = target.as_bytes();
    if bytes.is_empty() {
        return Err(LinkError::TargetEmpty);
    }
    if bytes.len() > MAX_TARGET_LEN {
        return Err(LinkError::TargetTooLong {
            len: bytes.len(),
            max: MAX_TARGET_LEN,
        });
    }
    if let Some(position) = bytes.iter().position(|&b| !(0x21..=0x7e).contains(&b)) {
        return Err(LinkError::TargetCharacter {
            byte: bytes[position],
            position,
        });
    }
    let rest = strip_prefix_ignore_case(bytes, b"https://")
        .or_else(|| strip_prefix_ignore_case(bytes, b"http://"))
        .ok_or(LinkError::TargetScheme)?;
    let authority_end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // Drop any userinfo, then the port: what is left must be a non-empty host.
    let host_port = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    let host = if host_port.first() == Some(&b'[') {
        host_port
    } else {
        match host_port.iter().rposition(|&b| b == b':') {
            Some(colon) => &host_port[..colon],
            None => host_port,
        }
    };
    if host.is_empty() {
        return Err(LinkError::TargetHost);
    }
    Ok(())
}

/// Checks an expiry: a positive unix time in seconds.
pub fn validate_expiry(at: i64) -> Result<(), LinkError> {
    if at <= 0 {
        return Err(LinkError::Expiry { value: at });
    }
    Ok(())
}

/// Checks the lifecycle fields beyond the expiry: `valid_since` a positive
/// unix time before `expires_at` (when both are set), `expired_url` a valid
/// target.
pub fn validate_lifecycle(
    valid_since: Option<i64>,
    expires_at: Option<i64>,
    expired_url: Option<&str>,
) -> Result<(), LinkError> {
    if let Some(since) = valid_since {
        if since <= 0 {
            return Err(LinkError::ValidSince { value: since });
        }
        if let Some(expires_at) = expires_at
            && since >= expires_at
        {
            return Err(LinkError::ValidSinceAfterExpiry {
                valid_since: since,
                expires_at,
            });
        }
    }
    if let Some(url) = expired_url {
        validate_target(url).map_err(|e| LinkError::ExpiredUrl(Box::new(e)))?;
    }
    Ok(())
}

fn strip_prefix_ignore_case<'a>(bytes: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    if bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&bytes[prefix.len()..])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(validate_code(b"aZ09_-"), Ok(()));
        assert_eq!(validate_code(b""), Err(LinkError::CodeEmpty));
        assert_eq!(
            validate_code(&[b'a'; 65]),
            Err(LinkError::CodeTooLong { len: 65, max: 64 })
        );
        assert_eq!(validate_code(&[b'a'; 64]), Ok(()));
        assert_eq!(
            validate_code(b"ab/c"),
            Err(LinkError::CodeCharacter {
                byte: b'/',
                position: 2
            })
        );
    }

    #[test]
    fn targets() {
        assert_eq!(validate_target("https://example.com"), Ok(()));
        assert_eq!(validate_target("HTTP://example.com/a?b#c"), Ok(()));
        assert_eq!(validate_target("http://u:p@[::1]:8080/x"), Ok(()));
        assert_eq!(
            validate_target("javascript:alert(1)"),
            Err(LinkError::TargetScheme)
        );
        assert_eq!(validate_target("ftp://x"), Err(LinkError::TargetScheme));
        assert_eq!(validate_target("https:///path"), Err(LinkError::TargetHost));
        assert_eq!(validate_target("https://:80/"), Err(LinkError::TargetHost));
        assert_eq!(
            validate_target("https://a.com/\r\nSet-Cookie: x"),
            Err(LinkError::TargetCharacter {
                byte: b'\r',
                position: 14
            })
        );
        assert_eq!(
            validate_target("https://a.com/ü"),
            Err(LinkError::TargetCharacter {
                byte: 0xc3,
                position: 14
            })
        );
        let long = format!("https://a.com/{}", "x".repeat(MAX_TARGET_LEN));
        assert!(matches!(
            validate_target(&long),
            Err(LinkError::TargetTooLong { .. })
        ));
    }

    #[test]
    fn lifecycle() {
        let mut link = Link::new("a", "https://x.y/");
        link.valid_since = Some(100);
        link.expires_at = Some(200);
        link.expired_url = Some("https://x.y/over".into());
        assert_eq!(link.validate(), Ok(()));
        link.valid_since = Some(200);
        assert_eq!(
            link.validate(),
            Err(LinkError::ValidSinceAfterExpiry {
                valid_since: 200,
                expires_at: 200
            })
        );
        link.valid_since = Some(0);
        assert_eq!(link.validate(), Err(LinkError::ValidSince { value: 0 }));
        link.valid_since = None;
        link.expired_url = Some("ftp://x".into());
        assert_eq!(
            link.validate(),
            Err(LinkError::ExpiredUrl(Box::new(LinkError::TargetScheme)))
        );
        // Absent fields are not written: a link without them reads as before.
        let plain = serde_json::to_string(&Link::new("a", "https://x.y/")).unwrap();
        assert!(!plain.contains("valid_since") && !plain.contains("expired_url"));
    }

    #[test]
    fn status_round_trip() {
        for code in [301u16, 302, 307, 308] {
            assert_eq!(RedirectStatus::try_from(code).unwrap().code(), code);
        }
        assert_eq!(
            RedirectStatus::try_from(200),
            Err(LinkError::Status { status: 200 })
        );
        let link: Link =
            serde_json::from_str(r#"{"code":"a","target":"https://x.y","status":307}"#).unwrap();
        assert_eq!(link.status, RedirectStatus::TemporaryRedirect);
        assert!(
            serde_json::from_str::<Link>(r#"{"code":"a","target":"https://x.y","status":200}"#)
                .is_err()
        );
    }
}
