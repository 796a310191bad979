//! Request bodies for domains, and their checks.

use crate::error::{ApiError, ApiResult};
use serde::{Deserialize, Deserializer};

/// Longest HSTS max-age accepted: two years, what browsers' preload lists ask.
pub const MAX_HSTS_MAX_AGE: i32 = 63_072_000;

/// `POST /v1/domains`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDomain {
    /// A host name; internationalised names are accepted and stored in
    /// punycode (`bücher.example` → `xn--bcher-kva.example`).
    pub name: String,
}

/// `PATCH /v1/domains/{name}`: absent fields stay; `null` clears.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchDomain {
    /// Where `/` redirects (302); checked like a link target.
    #[serde(default, deserialize_with = "nullable")]
    pub root_redirect: Option<Option<String>>,
    /// Where an unknown code redirects (302); checked like a link target.
    #[serde(default, deserialize_with = "nullable")]
    pub not_found_redirect: Option<Option<String>>,
    /// `serve` or `redirect-https` (plain HTTP gets a 308 to https).
    pub http_mode: Option<String>,
    /// `Strict-Transport-Security` max-age in seconds on TLS answers, 0 to
    /// 63072000; `null`: no header.
    #[serde(default, deserialize_with = "nullable")]
    pub hsts_max_age: Option<Option<i32>>,
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A user's host name in the form engines compare: IDNA (UTS 46) to
/// punycode, ASCII lowercase, without one trailing dot; then the record
/// rules (`snapshots::domain::validate_name`). A 400 naming `field`
/// otherwise.
pub fn normalize_name(field: &str, raw: &str) -> ApiResult<String> {
    let trimmed = raw.trim();
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if trimmed.is_empty() || trimmed.len() > 1024 {
        return Err(ApiError::invalid_field(field, "must be a host name"));
    }
    if trimmed.contains(|c: char| {
        matches!(c, ':' | '/' | '@' | '?' | '#' | '[' | ']' | '\\' | '%') || c.is_whitespace()
    }) {
        return Err(ApiError::invalid_field(
            field,
            "must be a host name only: no scheme, port, path or spaces",
        ));
    }
    let host = url::Host::parse(trimmed)
        .map_err(|e| ApiError::invalid_field(field, format!("is not a valid host name ({e})")))?;
    let url::Host::Domain(name) = host else {
        return Err(ApiError::invalid_field(
            field,
            "is an IP address; a domain must be a name",
        ));
    };
    snapshots::domain::validate_name(&name).map_err(|e| ApiError::invalid_field(field, e))?;
    Ok(name)
}

/// Whether `name` is `reserved` or one of its subdomains.
pub fn within(name: &str, reserved: &str) -> bool {
    !reserved.is_empty()
        && (name == reserved
            || name
                .strip_suffix(reserved)
                .is_some_and(|rest| rest.ends_with('.')))
}

pub fn check_http_mode(mode: &str) -> ApiResult<String> {
    match mode {
        "serve" | "redirect-https" => Ok(mode.to_owned()),
        _ => Err(ApiError::invalid_field(
            "http_mode",
            "must be \"serve\" or \"redirect-https\"",
        )),
    }
}

pub fn check_hsts(age: i32) -> ApiResult<i32> {
    if !(0..=MAX_HSTS_MAX_AGE).contains(&age) {
        return Err(ApiError::invalid_field(
            "hsts_max_age",
            format!("must be 0 to {MAX_HSTS_MAX_AGE} seconds, or null"),
        ));
    }
    Ok(age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise() {
        assert_eq!(
            normalize_name("name", " Go.Brand.Example. ").unwrap(),
            "go.brand.example"
        );
        assert_eq!(
            normalize_name("name", "bücher.example").unwrap(),
            "xn--bcher-kva.example"
        );
        for bad in [
            "",
            "https://a.example",
            "a.example:80",
            "a.example/x",
            "10.0.0.1",
            "[::1]",
            "localhost",
            "a b.example",
            "a_b.example",
            "-a.example",
        ] {
            assert!(normalize_name("name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reserved_names() {
        assert!(within("sho.rt", "sho.rt"));
        assert!(within("x.sho.rt", "sho.rt"));
        assert!(!within("xsho.rt", "sho.rt"));
        assert!(!within("a.example", ""));
    }
}
