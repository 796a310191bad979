//! Verifying a presented key or session, and the [`Auth`] and [`SignedIn`]
//! extractors.
//!
//! A bearer key wins over a session cookie: a request that sends both is a
//! key's request (and needs no CSRF token). The rate-limit middleware
//! verifies the credential first (it charges per-caller buckets only to
//! verified callers) and leaves the outcome in the request's extensions; the
//! extractors take it from there, so a request costs one lookup. Without the
//! middleware (or when the lookup failed) they verify on their own.
//!
//! A session's request acts in one organization: the one the route's `{org}`
//! names, else the one `X-Org` names (id or name), else the user's only one.
//! Without any (several or no memberships) it acts as the operator if the
//! user is one, else as [`Principal::User`], which tenant routes refuse with
//! `org_required`. For a key, a named organization must be the key's own.

use super::credential::{Presented, hash_key, presented};
use super::csrf;
use super::principal::{Auth, Credential, Principal, Scope};
use super::session::{SessionUser, presented_session, verify_session};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::net::SocketAddr;
use std::sync::Arc;

/// The outcome the middleware leaves for the extractor.
#[derive(Debug, Clone)]
pub enum Verified {
    /// The key is valid.
    Key(Auth),
    /// A token was presented and is not a valid key.
    Refused,
    /// No key; the session cookie is a live session.
    Session(Arc<SessionUser>),
    /// No key; a session cookie was presented and is not a live session.
    SessionRefused,
}

/// The header naming the organization a session's request acts in.
pub const ORG_HEADER: &str = "x-org";

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
        ip: None,
    }))
}

/// Verifies what `headers` present, key first; 401 when they present neither.
pub async fn verify_headers(state: &AppState, headers: &HeaderMap) -> Result<Verified, ApiError> {
    if let Presented::Token(token) = presented(headers) {
        return Ok(match verify_token(state, token).await? {
            Some(auth) => Verified::Key(auth),
            None => Verified::Refused,
        });
    }
    match presented_session(headers, &state.config) {
        Some(token) => Ok(match verify_session(state, token).await? {
            Some(user) => Verified::Session(Arc::new(user)),
            None => Verified::SessionRefused,
        }),
        None => Err(ApiError::Unauthorized { presented: false }),
    }
}

/// What the middleware left, or a verification of our own.
async fn verified(parts: &Parts, state: &AppState) -> Result<Verified, ApiError> {
    match parts.extensions.get::<Verified>() {
        Some(v) => Ok(v.clone()),
        None => verify_headers(state, &parts.headers).await,
    }
}

/// The TCP peer's address.
fn client_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The organization the request names: the route's `{org}`, else `X-Org`.
async fn org_choice(parts: &mut Parts, state: &AppState) -> Option<String> {
    // Routes without parameters have none to give (a rejection).
    if let Ok(params) = RawPathParams::from_request_parts(parts, state).await
        && let Some((_, v)) = params.iter().find(|(k, _)| *k == "org")
    {
        return Some(v.to_owned());
    }
    let header = parts.headers.get(ORG_HEADER)?.to_str().ok()?.trim();
    (!header.is_empty()).then(|| header.to_owned())
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let choice = org_choice(parts, state).await;
        let ip = client_ip(parts);
        match verified(parts, state).await? {
            Verified::Key(mut auth) => {
                auth.ip = ip;
                if let (Some(choice), Principal::Org { org_id, .. }) = (&choice, &auth.principal) {
                    key_org_matches(state, *org_id, choice).await?;
                }
                Ok(auth)
            }
            Verified::Refused => Err(ApiError::Unauthorized { presented: true }),
            Verified::SessionRefused => Err(ApiError::SessionRequired { presented: true }),
            Verified::Session(user) => {
                csrf::check(
                    &parts.method,
                    &parts.headers,
                    &state.config,
                    &user.csrf_token,
                )?;
                session_auth(&user, choice.as_deref(), ip)
            }
        }
    }
}

/// What a session's request acts as, in the organization `choice` names
/// (or the user's only one): the one mapping of a user's role to a
/// [`Principal`], used by the [`Auth`] extractor and the dashboard alike.
pub fn session_auth(
    user: &SessionUser,
    choice: Option<&str>,
    ip: Option<std::net::IpAddr>,
) -> Result<Auth, ApiError> {
    let chosen = user.choose(choice)?;
    let (principal, role) = match chosen {
        Some(m) => (
            Principal::Org {
                org_id: m.org_id,
                scopes: m.role.scopes(),
            },
            Some(m.role),
        ),
        None if user.operator => (Principal::Operator, None),
        None => (Principal::User, None),
    };
    Ok(Auth {
        credential: Credential::Session {
            id: user.session_id,
            user_id: user.user_id,
            role,
        },
        principal,
        ip,
    })
}

/// A key acts in its own organization only: one named by id or name must
/// be it (403 `forbidden` otherwise, as for a user who is not a member).
async fn key_org_matches(state: &AppState, org_id: i64, choice: &str) -> Result<(), ApiError> {
    if choice.parse::<i64>().ok() == Some(org_id) {
        return Ok(());
    }
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_optional(&state.db)
        .await?;
    if name.as_deref() == Some(choice) {
        Ok(())
    } else {
        Err(ApiError::NotMember {
            org: choice.chars().take(100).collect(),
        })
    }
}

/// A signed-in user (routes about the session itself): 401 for a key or no
/// session; unsafe methods pass the CSRF checks.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: Arc<SessionUser>,
    pub ip: Option<std::net::IpAddr>,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = match verified(parts, state).await {
            Ok(Verified::Session(user)) => user,
            Ok(Verified::SessionRefused) => {
                return Err(ApiError::SessionRequired { presented: true });
            }
            Ok(_) | Err(ApiError::Unauthorized { .. }) => {
                return Err(ApiError::SessionRequired { presented: false });
            }
            Err(e) => return Err(e),
        };
        csrf::check(
            &parts.method,
            &parts.headers,
            &state.config,
            &user.csrf_token,
        )?;
        Ok(SignedIn {
            user,
            ip: client_ip(parts),
        })
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
