//! API key material and the one parser of the headers that carry it; the
//! random tokens of sessions, invitations and password resets.

use crate::codes::random_base62;
use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};

/// A freshly generated key: show `secret` once, store `prefix` and `hash`.
#[derive(Debug)]
pub struct NewKey {
    pub secret: String,
    pub prefix: String,
    pub hash: Vec<u8>,
}

/// Generates a key.
pub fn generate_key() -> NewKey {
    let prefix = format!("sk_{}", random_base62(8));
    let secret = format!("{prefix}_{}", random_base62(32));
    let hash = hash_key(&secret);
    NewKey {
        secret,
        prefix,
        hash,
    }
}

/// SHA-256 of the whole key text.
pub fn hash_key(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Length of a session, invitation or reset token: 43 base62 characters
/// are 256 random bits (43 · log2 62 ≈ 256.03).
pub const TOKEN_LEN: usize = 43;

/// A fresh random token and its SHA-256, the only form stored. A fast hash
/// suffices for the same reason as for keys: 256 random bits cannot be
/// guessed, however fast each guess.
pub fn new_token() -> (String, Vec<u8>) {
    let token = random_base62(TOKEN_LEN);
    let hash = hash_key(&token);
    (token, hash)
}

/// Whether `token` has the shape of one [`new_token`] makes; anything else
/// is refused without a database round trip.
pub fn looks_like_token(token: &str) -> bool {
    token.len() == TOKEN_LEN && token.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// What a request presents as a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// No `Authorization: Bearer` and no `X-API-Key`.
    Nothing,
    /// A token to verify (possibly empty or malformed: it then fails
    /// verification like any wrong key).
    Token(&'a str),
}

/// The key from `Authorization: Bearer <key>` (the scheme in any case, RFC
/// 9110) or `X-API-Key: <key>`. An `Authorization` header of another scheme
/// (Basic, ...) presents nothing we accept; one that is not visible ASCII
/// presents an unusable token.
pub fn presented(headers: &HeaderMap) -> Presented<'_> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let Ok(v) = v.to_str() else {
            return Presented::Token("");
        };
        let v = v.trim();
        let (scheme, rest) = v.split_once([' ', '\t']).unwrap_or((v, ""));
        return if scheme.eq_ignore_ascii_case("bearer") {
            Presented::Token(rest.trim())
        } else {
            Presented::Nothing
        };
    }
    match headers.get("x-api-key") {
        Some(v) => Presented::Token(v.to_str().map_or("", str::trim)),
        None => Presented::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn key_shape() {
        let k = generate_key();
        assert_eq!(k.secret.len(), 3 + 8 + 1 + 32);
        assert!(k.secret.starts_with(&k.prefix));
        assert_eq!(k.hash, hash_key(&k.secret));
    }

    #[test]
    fn token_shape() {
        let (t, h) = new_token();
        assert!(looks_like_token(&t));
        assert_eq!(h, hash_key(&t));
        assert_ne!(new_token().0, t);
        assert!(!looks_like_token(&t[1..]));
        assert!(!looks_like_token(&format!("{}!", &t[1..])));
    }

    #[test]
    fn header_forms() {
        let with = |name: &'static str, value: &'static [u8]| {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_bytes(value).unwrap());
            h
        };
        for v in [
            &b"Bearer sk_1"[..],
            b"bearer sk_1",
            b"BEARER sk_1",
            b"BeArEr   sk_1 ",
            b"Bearer\tsk_1",
        ] {
            assert_eq!(
                presented(&with("authorization", v)),
                Presented::Token("sk_1")
            );
        }
        assert_eq!(
            presented(&with("authorization", b"Basic dTpw")),
            Presented::Nothing
        );
        assert_eq!(
            presented(&with("authorization", b"Bearer")),
            Presented::Token("")
        );
        assert_eq!(
            presented(&with("authorization", b"Bearer \xff")),
            Presented::Token("")
        );
        assert_eq!(
            presented(&with("x-api-key", b" sk_2 ")),
            Presented::Token("sk_2")
        );
        assert_eq!(presented(&HeaderMap::new()), Presented::Nothing);
    }
}
