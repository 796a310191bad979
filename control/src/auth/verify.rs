//! Verifying a presented key, and the [`Auth`] extractor.
//!
//! The rate-limit middleware verifies the key first (it charges per-key
//! buckets only to verified keys) and leaves the outcome in the request's
//! extensions; the extractor takes it from there, so a request costs one
//! lookup. Without the middleware (or when the lookup failed) the extractor
//! verifies on its own.

use super::credential::{Presented, hash_key, presented};
use super::principal::{Auth, Credential, Principal, Scope};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

/// The outcome the middleware leaves for the extractor.
#[derive(Debug, Clone)]
pub enum Verified {
    /// The key is valid.
    Key(Auth),
    /// A token was presented and is not a valid key.
    Refused,
}

/// Whether a token has the shape of a key (`sk_` + 8 + `_` + 32 base62):
/// anything else is refused without a database round trip.
fn looks_like_key(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() == 44
        && token.starts_with("sk_")
        && b[11] == b'_'
        && b[3..11]
            .iter()
            .chain(&b[12..])
            .all(u8::is_ascii_alphanumeric)
}

/// An active key's row: id, org_id, operator, scopes, last use is stale.
type KeyRow = (i64, Option<i64>, bool, Vec<String>, bool);

/// Looks a token up: `Ok(None)` when it is not an active key.
pub async fn verify_token(state: &AppState, token: &str) -> Result<Option<Auth>, ApiError> {
    if !looks_like_key(token) {
        return Ok(None);
    }
    let row: Option<KeyRow> = sqlx::query_as(
        "SELECT id, org_id, operator, scopes,
                (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
           FROM api_keys
          WHERE secret_hash = $1 AND revoked_at IS NULL
            AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(hash_key(token))
    .fetch_optional(&state.db)
    .await?;
    let Some((key_id, org_id, operator, scopes, stale)) = row else {
        return Ok(None);
    };
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
    // The table's CHECK makes exactly one of these hold.
    let principal = match (operator, org_id) {
        (true, _) => Principal::Operator,
        (false, Some(org_id)) => Principal::Org {
            org_id,
            scopes: scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
        },
        (false, None) => return Ok(None),
    };
    Ok(Some(Auth {
        credential: Credential::ApiKey { id: key_id },
        principal,
    }))
}

/// Verifies what `headers` present: 401 for nothing or a wrong key.
pub async fn verify_headers(state: &AppState, headers: &HeaderMap) -> Result<Auth, ApiError> {
    match presented(headers) {
        Presented::Nothing => Err(ApiError::Unauthorized { presented: false }),
        Presented::Token(token) => verify_token(state, token)
            .await?
            .ok_or(ApiError::Unauthorized { presented: true }),
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match parts.extensions.get::<Verified>() {
            Some(Verified::Key(auth)) => Ok(auth.clone()),
            Some(Verified::Refused) => Err(ApiError::Unauthorized { presented: true }),
            None => verify_headers(state, &parts.headers).await,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_shape_check() {
        let k = super::super::generate_key();
        assert!(super::looks_like_key(&k.secret));
        assert!(!super::looks_like_key("sk_AAAAAAAA_nope"));
        assert!(!super::looks_like_key(&k.secret.replace('_', "-")));
        assert!(!super::looks_like_key(""));
    }
}
