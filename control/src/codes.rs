//! Short codes: random base62 (not enumerable), and the rules for custom aliases.

use crate::error::ApiError;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Paths the service or its engines use, refused as aliases (case-insensitive).
pub const RESERVED: &[&str] = &[
    "v1",
    "v2",
    "api",
    "admin",
    "healthz",
    "readyz",
    "livez",
    "metrics",
    "openapi",
    "openapi.json",
    "docs",
    "static",
    "assets",
    "login",
    "logout",
    "favicon.ico",
    "robots.txt",
    "snapshot",
    "well-known",
    "status",
];

/// `len` random base62 characters from the OS generator. Rejection sampling
/// (bytes >= 248 are redrawn) keeps every character equally likely.
pub fn random_code(len: usize) -> String {
    random_base62(len)
}

/// Random base62 text, also used for API key material.
pub fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).expect("the OS random generator is available");
        for &b in &buf {
            if b < 248 && out.len() < len {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    out
}

/// Checks a custom alias: the snapshot's code rules, and not a reserved word.
pub fn validate_alias(alias: &str) -> Result<(), ApiError> {
    snapshots::link::validate_code(alias.as_bytes())
        .map_err(|e| ApiError::invalid_field("custom_alias", e))?;
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(alias)) {
        return Err(ApiError::invalid_field(
            "custom_alias",
            format!("{alias:?} is reserved"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_codes_are_base62_and_differ() {
        let a = random_code(7);
        let b = random_code(7);
        assert_eq!(a.len(), 7);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn aliases() {
        assert!(validate_alias("my-link_1").is_ok());
        assert!(validate_alias("V1").is_err());
        assert!(validate_alias("healthz").is_err());
        assert!(validate_alias("a/b").is_err());
        assert!(validate_alias("").is_err());
    }
}
