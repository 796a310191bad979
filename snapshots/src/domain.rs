//! Domains: the host names links are served under, their per-domain
//! settings, and the one host-name normalisation every process agrees on.
//!
//! A link is identified by `(domain id, code)`. Domain id
//! [`DEFAULT_DOMAIN`] (0) is always the deployment's own default domain:
//! links written before domains existed (version-1 snapshots and deltas)
//! belong to it, and an engine answers for it when a request names no
//! configured domain (see the engine's `unknown_host` setting). Other ids are
//! the control plane's, and only *verified* domains are ever served.
//!
//! Names are stored normalised: ASCII lowercase, no port, no trailing dot,
//! internationalised names in their punycode (`xn--`) form. The control plane
//! converts what users type; this module only checks the result, and
//! [`normalize_host`] turns a request's `Host` header into the same form on
//! the stack (no allocation) so an engine can compare bytes.

use crate::link::{LinkError, validate_target};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The deployment's default domain.
pub const DEFAULT_DOMAIN: u32 = 0;
/// Longest domain name in bytes (RFC 1035).
pub const MAX_DOMAIN_LEN: usize = 253;
/// Longest label in bytes.
pub const MAX_LABEL_LEN: usize = 63;
/// Longest well-known path (after the host) and body.
pub const MAX_WELL_KNOWN_PATH_LEN: usize = 255;
pub const MAX_WELL_KNOWN_BODY_LEN: usize = 1024;
/// Every well-known answer's path starts with this.
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/";

/// What a plain-HTTP (not TLS) request to a domain gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HttpMode {
    /// Answered like a TLS request.
    #[default]
    Serve,
    /// `308` to the same path on `https://`.
    RedirectHttps,
}

/// A domain as it crosses process boundaries (snapshot input, deltas).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// [`DEFAULT_DOMAIN`] for the deployment's own; otherwise control's id.
    pub id: u32,
    /// Normalised name ([`validate_name`]); may be empty only for the
    /// default domain of a deployment that has not named it.
    pub name: String,
    /// Only verified domains are served. The default domain always is.
    #[serde(default)]
    pub verified: bool,
    /// Where `/` redirects (302); `None`: the engine's own answer.
    #[serde(default)]
    pub root_redirect: Option<String>,
    /// Where an unknown code redirects (302); `None`: 404.
    #[serde(default)]
    pub not_found_redirect: Option<String>,
    #[serde(default)]
    pub http_mode: HttpMode,
    /// `Strict-Transport-Security: max-age=…` on TLS answers; `None`: no header.
    #[serde(default)]
    pub hsts_max_age: Option<u32>,
}

impl Domain {
    /// The default domain under `name` (empty: unnamed), verified, no settings.
    pub fn default_domain(name: impl Into<String>) -> Domain {
        Domain {
            id: DEFAULT_DOMAIN,
            name: name.into(),
            verified: true,
            root_redirect: None,
            not_found_redirect: None,
            http_mode: HttpMode::Serve,
            hsts_max_age: None,
        }
    }

    /// Checks the name and both redirect targets.
    pub fn validate(&self) -> Result<(), DomainError> {
        if !(self.id == DEFAULT_DOMAIN && self.name.is_empty()) {
            validate_name(&self.name)?;
        }
        for url in [&self.root_redirect, &self.not_found_redirect]
            .into_iter()
            .flatten()
        {
            validate_target(url).map_err(DomainError::Redirect)?;
        }
        Ok(())
    }

    /// Whether requests for this domain are answered at all.
    pub fn served(&self) -> bool {
        self.verified || self.id == DEFAULT_DOMAIN
    }
}

/// A fixed answer an engine serves for `GET http://<host><path>`: the domain
/// verification token today, ACME HTTP-01 challenges later. Keyed by the
/// host *name* (not a domain id) because it is needed before a domain is
/// verified, when two organisations may both be claiming the same name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WellKnown {
    /// Normalised host name.
    pub host: String,
    /// Starts with [`WELL_KNOWN_PREFIX`], then `[A-Za-z0-9._~-/]`.
    pub path: String,
    /// Served as `text/plain`; printable ASCII.
    pub body: String,
}

impl WellKnown {
    pub fn validate(&self) -> Result<(), DomainError> {
        validate_name(&self.host)?;
        validate_well_known_path(&self.path)?;
        let body = self.body.as_bytes();
        if body.len() > MAX_WELL_KNOWN_BODY_LEN || body.iter().any(|&b| !(0x20..=0x7e).contains(&b))
        {
            return Err(DomainError::WellKnownBody);
        }
        Ok(())
    }
}

/// Why a domain or well-known record is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error("domain name is empty")]
    Empty,
    #[error("domain name is {len} bytes; the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error(
        "domain name has byte 0x{byte:02x} at position {position}; use lowercase a-z, 0-9, '-' and dots (internationalised names in punycode)"
    )]
    Character { byte: u8, position: usize },
    #[error(
        "domain name label {label:?} is invalid: labels are 1-63 bytes and do not start or end with '-'"
    )]
    Label { label: String },
    #[error("domain name needs at least two labels (like example.com)")]
    SingleLabel,
    #[error("domain name is an IP address; a domain must be a name")]
    IpAddress,
    #[error("redirect URL is invalid: {0}")]
    Redirect(LinkError),
    #[error(
        "well-known path must start with /.well-known/, be at most 255 bytes of [A-Za-z0-9._~/-] and contain no '..'"
    )]
    WellKnownPath,
    #[error("well-known body must be at most 1024 bytes of printable ASCII")]
    WellKnownBody,
}

/// Checks a normalised domain name: 2+ dot-separated labels of lowercase
/// `[a-z0-9-]`, each 1-63 bytes not starting or ending with `-`, at most
/// 253 bytes, not all-numeric in the last label (so not an IPv4 address).
pub fn validate_name(name: &str) -> Result<(), DomainError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err(DomainError::Empty);
    }
    if bytes.len() > MAX_DOMAIN_LEN {
        return Err(DomainError::TooLong {
            len: bytes.len(),
            max: MAX_DOMAIN_LEN,
        });
    }
    if let Some(position) = bytes
        .iter()
        .position(|&b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'))
    {
        return Err(DomainError::Character {
            byte: bytes[position],
            position,
        });
    }
    let mut labels = 0;
    let mut last = "";
    for label in name.split('.') {
        if label.is_empty()
            || label.len() > MAX_LABEL_LEN
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(DomainError::Label {
                label: label.to_owned(),
            });
        }
        labels += 1;
        last = label;
    }
    if labels < 2 {
        return Err(DomainError::SingleLabel);
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::IpAddress);
    }
    Ok(())
}

/// Checks a well-known path.
pub fn validate_well_known_path(path: &str) -> Result<(), DomainError> {
    let ok = path.len() <= MAX_WELL_KNOWN_PATH_LEN
        && path.len() > WELL_KNOWN_PREFIX.len()
        && path.starts_with(WELL_KNOWN_PREFIX)
        && !path.contains("..")
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(DomainError::WellKnownPath)
    }
}

/// What a request's `Host` header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostName<'a> {
    /// A name, normalised (lowercase, no port, no trailing dot), borrowed
    /// from the caller's buffer.
    Name(&'a [u8]),
    /// An IPv4 or bracketed IPv6 literal: the client named no domain.
    Address,
    /// No usable host (absent, empty, or not a host at all).
    Invalid,
}

/// Normalises a `Host` header into `buf` without allocating: strips the
/// port, then one trailing dot, lowercases ASCII; IP literals are reported
/// as such. Bytes outside `[A-Za-z0-9.-]` make it [`HostName::Invalid`]
/// (a name with them can never match a stored domain).
#[inline]
pub fn normalize_host<'b>(raw: &[u8], buf: &'b mut [u8; MAX_DOMAIN_LEN + 1]) -> HostName<'b> {
    if raw.first() == Some(&b'[') {
        return HostName::Address;
    }
    let name = match raw.iter().rposition(|&b| b == b':') {
        Some(colon) => {
            let port = &raw[colon + 1..];
            if !port.iter().all(u8::is_ascii_digit) {
                return HostName::Invalid;
            }
            &raw[..colon]
        }
        None => raw,
    };
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.is_empty() || name.len() > MAX_DOMAIN_LEN {
        return HostName::Invalid;
    }
    let mut digits_and_dots = true;
    for (slot, &b) in buf.iter_mut().zip(name) {
        if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
            return HostName::Invalid;
        }
        digits_and_dots &= b.is_ascii_digit() || b == b'.';
        *slot = b.to_ascii_lowercase();
    }
    if digits_and_dots {
        return HostName::Address;
    }
    HostName::Name(&buf[..name.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(raw: &str) -> Option<String> {
        let mut buf = [0u8; MAX_DOMAIN_LEN + 1];
        match normalize_host(raw.as_bytes(), &mut buf) {
            HostName::Name(n) => Some(String::from_utf8(n.to_vec()).unwrap()),
            HostName::Address => Some("<ip>".into()),
            HostName::Invalid => None,
        }
    }

    #[test]
    fn hosts_normalise() {
        assert_eq!(host("Go.Example.COM").as_deref(), Some("go.example.com"));
        assert_eq!(
            host("go.example.com:8080").as_deref(),
            Some("go.example.com")
        );
        assert_eq!(host("go.example.com.").as_deref(), Some("go.example.com"));
        assert_eq!(
            host("GO.example.com.:80").as_deref(),
            Some("go.example.com")
        );
        assert_eq!(host("127.0.0.1:8080").as_deref(), Some("<ip>"));
        assert_eq!(host("[::1]:8080").as_deref(), Some("<ip>"));
        assert_eq!(host("localhost").as_deref(), Some("localhost"));
        assert_eq!(host(""), None);
        assert_eq!(host("a.com:x"), None);
        assert_eq!(host("bad_host.com"), None);
        assert_eq!(host("ü.com"), None);
        assert_eq!(host(&"a".repeat(300)), None);
    }

    #[test]
    fn names() {
        assert_eq!(validate_name("go.example.com"), Ok(()));
        assert_eq!(validate_name("xn--bcher-kva.example"), Ok(()));
        assert_eq!(validate_name("example"), Err(DomainError::SingleLabel));
        assert_eq!(validate_name("10.0.0.1"), Err(DomainError::IpAddress));
        assert!(matches!(
            validate_name("Go.example.com"),
            Err(DomainError::Character { byte: b'G', .. })
        ));
        assert!(matches!(
            validate_name("-a.example.com"),
            Err(DomainError::Label { .. })
        ));
        assert!(matches!(
            validate_name("a..com"),
            Err(DomainError::Label { .. })
        ));
        assert_eq!(validate_name(""), Err(DomainError::Empty));
    }

    #[test]
    fn well_known_paths() {
        assert_eq!(
            validate_well_known_path("/.well-known/links-domain-verification/abc_1"),
            Ok(())
        );
        assert_eq!(
            validate_well_known_path("/.well-known/acme-challenge/x-Y_z"),
            Ok(())
        );
        for bad in [
            "/.well-known/",
            "/x",
            "/.well-known/../secret",
            "/.well-known/a b",
            "/.well-known/a?b",
        ] {
            assert_eq!(
                validate_well_known_path(bad),
                Err(DomainError::WellKnownPath),
                "{bad}"
            );
        }
    }
}
