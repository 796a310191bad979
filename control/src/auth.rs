//! API keys: their format, hashing, and the [`Auth`] extractor.
//!
//! A key reads `sk_<8 base62>_<32 base62>`. The first part (`sk_XXXXXXXX`) is
//! the visible prefix shown in listings; the whole key is hashed with SHA-256
//! and only the hash is stored. The 32 secret characters carry ~190 bits of
//! entropy, so a fast hash is safe: brute force is out of reach whatever the
//! hash speed, while a slow password hash (argon2) would cost milliseconds of
//! CPU on every request for no gain.

use crate::app::AppState;
use crate::codes::random_base62;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

/// What a key may do. `admin` implies all the others.
pub const SCOPES: &[&str] = &["links:read", "links:write", "stats:read", "admin"];

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

/// The visible prefix of a presented key, if it looks like one (used by the
/// rate limiter before the key is checked).
pub fn presented_prefix(secret: &str) -> Option<&str> {
    let prefix = secret.get(..11)?;
    (prefix.starts_with("sk_") && secret.as_bytes().get(11) == Some(&b'_')).then_some(prefix)
}

/// Checks a scope list against [`SCOPES`].
pub fn validate_scopes(scopes: &[String]) -> Result<(), ApiError> {
    if scopes.is_empty() {
        return Err(ApiError::invalid_field(
            "scopes",
            "at least one scope is required",
        ));
    }
    for s in scopes {
        if !SCOPES.contains(&s.as_str()) {
            return Err(ApiError::invalid_field(
                "scopes",
                format!("unknown scope {s:?}; known: {}", SCOPES.join(", ")),
            ));
        }
    }
    Ok(())
}

/// The authenticated caller: an unrevoked, unexpired key and its organization.
#[derive(Debug, Clone)]
pub struct Auth {
    pub key_id: i64,
    pub org_id: i64,
    pub scopes: Vec<String>,
}

impl Auth {
    /// Fails with 403 unless the key has `scope` (or `admin`).
    pub fn require(&self, scope: &'static str) -> Result<(), ApiError> {
        if self.scopes.iter().any(|s| s == scope || s == "admin") {
            Ok(())
        } else {
            Err(ApiError::Forbidden { required: scope })
        }
    }
}

/// The key from `Authorization: Bearer <key>` or `X-API-Key: <key>`.
pub fn bearer(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, rest) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim());
    }
    parts.headers.get("x-api-key")?.to_str().ok().map(str::trim)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let row: Option<(i64, i64, Vec<String>, bool)> = sqlx::query_as(
            "SELECT id, org_id, scopes,
                    (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
               FROM api_keys
              WHERE secret_hash = $1 AND revoked_at IS NULL
                AND (expires_at IS NULL OR expires_at > now())",
        )
        .bind(hash_key(secret))
        .fetch_optional(&state.db)
        .await?;
        let (key_id, org_id, scopes, stale) = row.ok_or(ApiError::Unauthorized)?;
        if stale {
            // At most one write a minute per key; off the request path.
            let db = state.db.clone();
            tokio::spawn(async move {
                let _ = sqlx::query("UPDATE api_keys SET last_used_at = now() WHERE id = $1")
                    .bind(key_id)
                    .execute(&db)
                    .await;
            });
        }
        Ok(Auth {
            key_id,
            org_id,
            scopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shape_and_prefix() {
        let k = generate_key();
        assert_eq!(k.secret.len(), 3 + 8 + 1 + 32);
        assert_eq!(presented_prefix(&k.secret), Some(k.prefix.as_str()));
        assert_eq!(k.hash, hash_key(&k.secret));
        assert_eq!(presented_prefix("nope"), None);
    }

    #[test]
    fn scopes() {
        assert!(validate_scopes(&["links:read".into()]).is_ok());
        assert!(validate_scopes(&[]).is_err());
        assert!(validate_scopes(&["root".into()]).is_err());
        let a = Auth {
            key_id: 1,
            org_id: 1,
            scopes: vec!["admin".into()],
        };
        assert!(a.require("links:write").is_ok());
        let r = Auth {
            key_id: 1,
            org_id: 1,
            scopes: vec!["links:read".into()],
        };
        assert!(r.require("links:write").is_err());
    }
}
