//! Browser sessions as a credential: the cookie, looking a session up, and
//! which organization a session's request acts on.
//!
//! The cookie holds a random 256-bit token ([`super::credential::new_token`]);
//! the `sessions` table holds its SHA-256, the user, the CSRF token bound to
//! it, an absolute expiry and the last time it was seen. A session is live
//! while `expires_at` is ahead and `last_seen_at` is within the idle
//! lifetime; `last_seen_at` is written at most once a minute per session, off
//! the request path (as keys' `last_used_at`), so the idle lifetime is exact
//! to a minute. Making and ending sessions is [`crate::accounts::sessions`].
//!
//! The cookie is `HttpOnly; SameSite=Lax; Path=/`, and `Secure` with the
//! name `__Host-session` when `public_url` is https (the prefix makes
//! browsers refuse it without `Secure`, with a `Domain` or another path);
//! over plain http on loopback (local development) it is `session`, without
//! `Secure`, which browsers would not send back over http.

use super::credential::{hash_key, looks_like_token};
use super::role::Role;
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::http::{HeaderMap, header};
use serde::Serialize;
use time::OffsetDateTime;

/// The cookie's name for this deployment.
pub fn cookie_name(config: &Config) -> &'static str {
    if config.cookie_secure() {
        "__Host-session"
    } else {
        "session"
    }
}

/// The `Set-Cookie` value that stores `token` for `max_age_secs`.
pub fn set_cookie(config: &Config, token: &str, max_age_secs: u64) -> String {
    let secure = if config.cookie_secure() {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}={token}; Max-Age={max_age_secs}; Path=/; HttpOnly; SameSite=Lax{secure}",
        cookie_name(config)
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(config: &Config) -> String {
    set_cookie(config, "", 0)
}

/// The session token a request's `Cookie` headers carry, if any (the first
/// cookie of our name; a value of the wrong shape is presented all the same,
/// and fails like a wrong token).
pub fn presented_session<'a>(headers: &'a HeaderMap, config: &Config) -> Option<&'a str> {
    let name = cookie_name(config);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"'))
        })
}

/// A user's membership, as the session and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Membership {
    pub org_id: i64,
    /// The organization's name.
    pub org: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
}

/// A live session and its user.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub session_id: i64,
    pub user_id: i64,
    pub email: String,
    pub operator: bool,
    pub csrf_token: String,
    pub expires_at: OffsetDateTime,
    /// Every organization the user belongs to, by name.
    pub memberships: Vec<Membership>,
}

impl SessionUser {
    /// The membership a request acts in: the one `choice` names (an
    /// organization's id or name), else the only one. `Ok(None)` when no
    /// choice was made and there is not exactly one.
    pub fn choose(&self, choice: Option<&str>) -> ApiResult<Option<&Membership>> {
        match choice {
            Some(c) => {
                let id: Option<i64> = c.parse().ok();
                self.memberships
                    .iter()
                    .find(|m| Some(m.org_id) == id || m.org == c)
                    .map(Some)
                    .ok_or_else(|| ApiError::NotMember {
                        org: c.chars().take(100).collect(),
                    })
            }
            None if self.memberships.len() == 1 => Ok(self.memberships.first()),
            None => Ok(None),
        }
    }
}

type SessionRow = (i64, i64, String, OffsetDateTime, String, bool, bool);

/// Looks a session token up: `Ok(None)` when it is not a live session.
pub async fn verify_session(state: &AppState, token: &str) -> ApiResult<Option<SessionUser>> {
    if !looks_like_token(token) {
        return Ok(None);
    }
    let row: Option<SessionRow> = sqlx::query_as(
        "SELECT s.id, s.user_id, s.csrf_token, s.expires_at, u.email, u.operator,
                s.last_seen_at < now() - interval '1 minute'
           FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.token_hash = $1 AND s.expires_at > now()
            AND s.last_seen_at > now() - make_interval(secs => $2)",
    )
    .bind(hash_key(token))
    .bind(state.config.session_idle_secs as f64)
    .fetch_optional(&state.db)
    .await?;
    let Some((session_id, user_id, csrf_token, expires_at, email, operator, stale)) = row else {
        return Ok(None);
    };
    if stale {
        // At most one write a minute per session; off the request path.
        let db = state.db.clone();
        tokio::spawn(async move {
            let _ = sqlx::query("UPDATE sessions SET last_seen_at = now() WHERE id = $1")
                .bind(session_id)
                .execute(&db)
                .await;
        });
    }
    let memberships = memberships(&state.db, user_id).await?;
    Ok(Some(SessionUser {
        session_id,
        user_id,
        email,
        operator,
        csrf_token,
        expires_at,
        memberships,
    }))
}

/// A user's memberships, by organization name.
pub async fn memberships(
    db: impl sqlx::PgExecutor<'_>,
    user_id: i64,
) -> ApiResult<Vec<Membership>> {
    Ok(sqlx::query_as(
        "SELECT m.org_id, o.name AS org, m.role
           FROM memberships m JOIN organizations o ON o.id = m.org_id
          WHERE m.user_id = $1 ORDER BY o.name",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookie_attributes_follow_the_public_url() {
        let mut c = Config::default();
        assert_eq!(
            set_cookie(&c, "abc", 60),
            "session=abc; Max-Age=60; Path=/; HttpOnly; SameSite=Lax"
        );
        c.public_url = "https://links.example.com".into();
        assert_eq!(
            set_cookie(&c, "abc", 60),
            "__Host-session=abc; Max-Age=60; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(clear_cookie(&c).contains("Max-Age=0"));
    }

    #[test]
    fn the_session_cookie_among_others() {
        let c = Config::default();
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; session=tok"));
        assert_eq!(presented_session(&h, &c), Some("tok"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("theme=dark"));
        h.append(header::COOKIE, HeaderValue::from_static("session = t2 "));
        assert_eq!(presented_session(&h, &c), Some("t2"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("xsession=t"));
        assert_eq!(presented_session(&h, &c), None);
    }

    #[test]
    fn choosing_an_organization() {
        let m = |id, org: &str| Membership {
            org_id: id,
            org: org.into(),
            role: Role::Viewer,
        };
        let mut u = SessionUser {
            session_id: 1,
            user_id: 1,
            email: "a@b.example".into(),
            operator: false,
            csrf_token: String::new(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            memberships: vec![m(5, "acme")],
        };
        assert_eq!(u.choose(None).unwrap().unwrap().org_id, 5);
        assert_eq!(u.choose(Some("acme")).unwrap().unwrap().org_id, 5);
        assert_eq!(u.choose(Some("5")).unwrap().unwrap().org_id, 5);
        assert!(matches!(
            u.choose(Some("globex")),
            Err(ApiError::NotMember { .. })
        ));
        u.memberships.push(m(6, "globex"));
        assert_eq!(u.choose(None).unwrap(), None);
        assert_eq!(u.choose(Some("globex")).unwrap().unwrap().org_id, 6);
    }
}
