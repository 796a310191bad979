//! `POST /v1/session` (sign in), `GET /v1/session` (who is signed in),
//! `DELETE /v1/session` (sign out).
//!
//! Our own small module rather than `tower-sessions`: that crate keys its
//! store by the session id itself (we store only a hash), keeps a generic
//! JSON record loaded by a layer on every request (we need a handful of typed
//! columns: user, CSRF token, expiry, user agent, address, joined to the
//! user and memberships in the lookup the rate limiter already makes), and
//! answers its own errors outside our error shape. What is left to write is
//! an insert, a lookup ([`crate::auth::session`]) and a delete.
//!
//! Sign-in: the origin check (login CSRF), the sign-in buckets per IP and
//! per e-mail ([`crate::ratelimit::LoginLimits`]), then argon2 against the
//! user's hash or, with no such user, a dummy one: a wrong e-mail and a wrong
//! password cost the same and get the same 401 `invalid_credentials`. A
//! success always makes a new session (a new random id: a session id planted
//! before sign-in is worth nothing after it) and ends the one the request
//! carried, if any; a hash made with older argon2 settings is replaced.

use super::email;
use super::password;
use crate::audit::{Actor, audit};
use crate::auth::credential::{hash_key, new_token};
use crate::auth::session::{clear_cookie, memberships, presented_session, set_cookie};
use crate::auth::{Membership, SignedIn, csrf};
use crate::codes::random_base62;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use std::net::SocketAddr;
use std::time::Instant;
use time::OffsetDateTime;

/// Longest user agent kept with a session, bytes.
const MAX_USER_AGENT: usize = 512;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    #[schema(format = Email)]
    pub email: String,
    pub password: String,
}

/// A user as they see themselves.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserInfo {
    pub id: i64,
    pub email: String,
    /// Whether the user may act as the service's operator.
    pub operator: bool,
}

/// Who is signed in, where they belong, and what a write must carry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub user: UserInfo,
    pub memberships: Vec<Membership>,
    /// Send as `X-CSRF-Token` with every POST, PATCH, PUT and DELETE.
    pub csrf_token: String,
    /// The latest the session can last (it ends earlier when idle).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// The user agent, bounded and without control characters.
fn user_agent(headers: &HeaderMap) -> String {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    ua.chars()
        .filter(|c| !c.is_control())
        .scan(0usize, |len, c| {
            *len += c.len_utf8();
            (*len <= MAX_USER_AGENT).then_some(c)
        })
        .collect()
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(req): Json<Login>,
) -> ApiResult<Response> {
    let (body, cookie) = sign_in(&state, peer, &headers, &req).await?;
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.into()))?,
    );
    no_store(&mut response);
    Ok(response)
}

/// Signs a user in (the module doc says how): the new session and the
/// `Set-Cookie` value that carries it. The one way, for `POST /v1/session`
/// and the dashboard's sign-in form alike.
pub async fn sign_in(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    req: &Login,
) -> ApiResult<(SessionInfo, String)> {
    csrf::check_origin(headers, &state.config)?;
    let email = email::normalize("email", &req.email)?;
    password::check_presented("password", &req.password)?;
    let ip = peer.ip();
    let limits = &state.limits.login;
    limits
        .check(&limits.per_email, ip, &email, Instant::now())
        .map_err(|retry_after| {
            state.metrics.rate_limited.inc();
            ApiError::RateLimited { retry_after }
        })?;
    let user: Option<(i64, String, String, bool)> = sqlx::query_as(
        "SELECT id, email, password_hash, operator FROM users WHERE lower(email) = lower($1)",
    )
    .bind(&email)
    .fetch_optional(&state.db)
    .await?;
    let ok = state
        .passwords
        .verify(&req.password, user.as_ref().map(|u| u.2.as_str()))
        .await?;
    let Some((user_id, email, phc, operator)) = user.filter(|_| ok) else {
        state.metrics.logins_failed.inc();
        let mut conn = state.db.acquire().await?;
        audit(
            &mut conn,
            None,
            Actor::anonymous(ip, None),
            "session.login_failed",
            &email,
            json!({}),
        )
        .await?;
        return Err(ApiError::InvalidCredentials);
    };
    if state.passwords.needs_rehash(&phc) {
        rehash(state.clone(), user_id, phc, req.password.clone());
    }
    let old = presented_session(headers, &state.config).map(hash_key);
    let mut tx = state.db.begin().await?;
    if let Some(old) = old {
        // Rotation: the session the browser had (anyone's) ends here.
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(old)
            .execute(&mut *tx)
            .await?;
    }
    let (token, token_hash) = new_token();
    let csrf_token = random_base62(43);
    let (session_id, expires_at): (i64, OffsetDateTime) = sqlx::query_as(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at, user_agent, ip)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5, $6::text::inet)
         RETURNING id, expires_at",
    )
    .bind(&token_hash)
    .bind(user_id)
    .bind(&csrf_token)
    .bind(state.config.session_absolute_secs as f64)
    .bind(user_agent(headers))
    .bind(ip.to_string())
    .fetch_one(&mut *tx)
    .await?;
    audit(
        &mut tx,
        None,
        Actor::anonymous(ip, Some(user_id)),
        "session.login",
        &email,
        json!({ "session_id": session_id }),
    )
    .await?;
    let memberships = memberships(&mut *tx, user_id).await?;
    tx.commit().await?;
    let body = SessionInfo {
        user: UserInfo {
            id: user_id,
            email,
            operator,
        },
        memberships,
        csrf_token,
        expires_at,
    };
    let cookie = set_cookie(&state.config, &token, state.config.session_absolute_secs);
    Ok((body, cookie))
}

/// Replaces a hash made with older settings, off the request (the answer
/// does not wait for a second argon2 run). Only if the hash is still the one
/// verified: a password changed meanwhile wins.
fn rehash(state: AppState, user_id: i64, old: String, password: String) {
    tokio::spawn(async move {
        let result = async {
            let new = state.passwords.hash(&password).await?;
            sqlx::query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
                .bind(user_id)
                .bind(&old)
                .bind(&new)
                .execute(&state.db)
                .await?;
            Ok::<_, ApiError>(())
        };
        if let Err(e) = result.await {
            tracing::warn!(user_id, error = %e, "rehashing a password failed");
        }
    });
}

/// Responses that carry a CSRF token are not for caches.
fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

pub async fn current(signed_in: SignedIn) -> ApiResult<Response> {
    let u = &signed_in.user;
    let mut response = axum::Json(SessionInfo {
        user: UserInfo {
            id: u.user_id,
            email: u.email.clone(),
            operator: u.operator,
        },
        memberships: u.memberships.clone(),
        csrf_token: u.csrf_token.clone(),
        expires_at: u.expires_at,
    })
    .into_response();
    no_store(&mut response);
    Ok(response)
}

pub async fn logout(State(state): State<AppState>, signed_in: SignedIn) -> ApiResult<Response> {
    let cookie = sign_out(&state, &signed_in).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.into()))?,
    );
    Ok(response)
}

/// Ends the signed-in session (audited); the `Set-Cookie` value that
/// removes the cookie. For `DELETE /v1/session` and the dashboard alike.
pub async fn sign_out(state: &AppState, signed_in: &SignedIn) -> ApiResult<String> {
    let u = &signed_in.user;
    let mut tx = state.db.begin().await?;
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(u.session_id)
        .execute(&mut *tx)
        .await?;
    audit(
        &mut tx,
        None,
        Actor {
            user_id: Some(u.user_id),
            ip: signed_in.ip,
            ..Actor::CLI
        },
        "session.logout",
        &u.email,
        json!({ "session_id": u.session_id }),
    )
    .await?;
    tx.commit().await?;
    Ok(clear_cookie(&state.config))
}

/// Ends every session of a user (a new password); returns how many.
pub async fn end_all(conn: &mut PgConnection, user_id: i64) -> ApiResult<u64> {
    Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?
        .rows_affected())
}
