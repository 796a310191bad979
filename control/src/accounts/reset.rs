//! `POST /v1/password-reset` and `POST /v1/password-reset/confirm`.
//!
//! A request answers 202 whatever the address: the lookup, the token and
//! the mail all happen after the answer, in a task of their own, so neither
//! the answer nor its timing tells whether an account exists. Requests
//! spend the sign-in IP bucket and a per-address bucket of their own (kept
//! apart from sign-in's, so draining one leaves the other). The token (256
//! random bits, SHA-256 at rest) is valid for an hour and once. Confirming
//! sets the password, spends every open reset token of the user and ends
//! all of the user's sessions: whoever knew the old password is out.

use super::email;
use super::mailer::{Mail, spawn_send};
use super::password;
use super::sessions::end_all;
use crate::audit::{Actor, audit};
use crate::auth::credential::{hash_key, looks_like_token, new_token};
use crate::auth::csrf;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// How long a reset token stays valid, seconds (1 hour).
pub const RESET_TTL_SECS: i64 = 3600;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    #[schema(format = Email)]
    pub email: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    pub token: String,
    /// 12 characters at least, 1024 bytes at most (`password::check_new`).
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResetDone {
    /// Sessions of the user that the new password ended.
    pub sessions_ended: u64,
}

pub async fn request(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(req): Json<ResetRequest>,
) -> ApiResult<(StatusCode, axum::Json<serde_json::Value>)> {
    request_reset(&state, peer, &headers, &req).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({ "message": RESET_REQUESTED })),
    ))
}

/// What a reset request answers, whatever the address.
pub const RESET_REQUESTED: &str =
    "if an account has this address, a link to set a new password is on its way";

/// Starts a reset for `req.email` after the answer (the module doc says
/// why): the one way, for the API and the dashboard's form.
pub async fn request_reset(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    req: &ResetRequest,
) -> ApiResult<()> {
    let state = state.clone();
    csrf::check_origin(headers, &state.config)?;
    let email = email::normalize("email", &req.email)?;
    let limits = &state.limits.login;
    limits
        .check(&limits.reset_per_email, peer.ip(), &email, Instant::now())
        .map_err(|retry_after| {
            state.metrics.rate_limited.inc();
            ApiError::RateLimited { retry_after }
        })?;
    let ip = peer.ip();
    tokio::spawn(async move {
        if let Err(e) = send_reset(&state, &email, ip).await {
            tracing::error!(error = %e, "password reset not started");
        }
    });
    Ok(())
}

/// The part after the answer: a token and a mail, for an existing account.
async fn send_reset(state: &AppState, email: &str, ip: IpAddr) -> ApiResult<()> {
    let user: Option<(i64, String)> =
        sqlx::query_as("SELECT id, email FROM users WHERE lower(email) = lower($1)")
            .bind(email)
            .fetch_optional(&state.db)
            .await?;
    let Some((user_id, email)) = user else {
        return Ok(());
    };
    let (token, token_hash) = new_token();
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "INSERT INTO password_resets (user_id, token_hash, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(user_id)
    .bind(&token_hash)
    .bind(RESET_TTL_SECS as f64)
    .execute(&mut *tx)
    .await?;
    audit(
        &mut tx,
        None,
        Actor::anonymous(ip, Some(user_id)),
        "password.reset_request",
        &email,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    spawn_send(
        state.mailer.clone(),
        Mail {
            to: email,
            subject: "Set a new password".into(),
            body: format!(
                "Someone (we hope you) asked to set a new password for this address.\n\n\
                 Within an hour: {}/reset-password#token={token}\n\n\
                 If it was not you, ignore this mail: your password stays as it is.\n",
                state.config.public_url_trimmed()
            ),
        },
    );
    Ok(())
}

pub async fn confirm(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(req): Json<ResetConfirm>,
) -> ApiResult<axum::Json<ResetDone>> {
    Ok(axum::Json(
        confirm_reset(&state, peer, &headers, &req).await?,
    ))
}

/// Sets the password of the reset token's user and ends their sessions:
/// the one way, for the API and the dashboard's reset page.
pub async fn confirm_reset(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    req: &ResetConfirm,
) -> ApiResult<ResetDone> {
    csrf::check_origin(headers, &state.config)?;
    password::check_new("password", &req.password)?;
    if !looks_like_token(&req.token) {
        return Err(ApiError::TokenInvalid { what: "reset" });
    }
    let token_hash = hash_key(&req.token);
    // Checked before hashing (argon2 is not spent on a bad token) and again,
    // locked, in the transaction.
    let check = |row: Option<(i64, bool, bool)>| match row {
        None => Err(ApiError::TokenInvalid { what: "reset" }),
        Some((_, true, _)) => Err(ApiError::TokenUsed { what: "reset" }),
        Some((_, _, true)) => Err(ApiError::TokenExpired { what: "reset" }),
        Some((user_id, ..)) => Ok(user_id),
    };
    const FIND: &str = "SELECT user_id, used_at IS NOT NULL, expires_at <= now()
                          FROM password_resets WHERE token_hash = $1";
    check(
        sqlx::query_as(FIND)
            .bind(&token_hash)
            .fetch_optional(&state.db)
            .await?,
    )?;
    let hash = state.passwords.hash(&req.password).await?;
    let mut tx = state.db.begin().await?;
    let user_id = check(
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{FIND} FOR UPDATE")))
            .bind(&token_hash)
            .fetch_optional(&mut *tx)
            .await?,
    )?;
    let email: String = sqlx::query_scalar(
        "UPDATE users SET password_hash = $2, password_changed_at = now() WHERE id = $1 RETURNING email",
    )
    .bind(user_id)
    .bind(&hash)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    let sessions_ended = end_all(&mut tx, user_id).await?;
    audit(
        &mut tx,
        None,
        Actor::anonymous(peer.ip(), Some(user_id)),
        "password.reset",
        &email,
        json!({ "sessions_ended": sessions_ended }),
    )
    .await?;
    tx.commit().await?;
    Ok(ResetDone { sessions_ended })
}
