//! `POST /v1/orgs/{org}/invitations` (admin or owner) and
//! `POST /v1/invitations/accept`.
//!
//! An invitation is a one-time token (256 random bits, only its SHA-256
//! stored) mailed to the address, valid for 7 days, spent by the first
//! accept. Who may invite to which role follows [`Role::may_manage`]: admins
//! invite editors and viewers, owners anyone. Accepting with the token
//! proves the mailbox: for an address without an account it creates one
//! (the password is then required), for one with an account it adds the
//! membership (no password: the account's own is unchanged). A token that
//! is unknown is 400 `token_invalid`; spent, 410 `token_used`; past its
//! expiry, 410 `token_expired`.

use super::email;
use super::mailer::{Mail, spawn_send};
use super::members::with_article;
use super::password;
use crate::audit::{Actor, audit};
use crate::auth::credential::{hash_key, looks_like_token, new_token};
use crate::auth::{Auth, Role, csrf};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::SocketAddr;
use time::OffsetDateTime;

/// How long an invitation stays valid, seconds (7 days).
pub const INVITATION_TTL_SECS: i64 = 7 * 24 * 3600;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    #[schema(format = Email)]
    pub email: String,
    pub role: Role,
}

/// An invitation as its maker sees it (never the token).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationInfo {
    pub id: i64,
    pub email: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Accept {
    pub token: String,
    /// Required when no account has the invited address; refused otherwise.
    /// 12 characters at least, 1024 bytes at most (`password::check_new`).
    #[serde(default)]
    #[schema(min_length = 12, max_length = 1024)]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub org_id: i64,
    pub org: String,
    pub role: Role,
    pub email: String,
    /// Whether accepting made the account.
    pub user_created: bool,
}

pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    Path(_org): Path<String>,
    Json(req): Json<Invite>,
) -> ApiResult<(StatusCode, axum::Json<InvitationInfo>)> {
    let info = invite(&state, &auth, &req).await?;
    Ok((StatusCode::CREATED, axum::Json(info)))
}

/// Invites `req.email` into `auth`'s organization with `req.role` and
/// mails the link. The one way, for the API and the dashboard.
pub async fn invite(state: &AppState, auth: &Auth, req: &Invite) -> ApiResult<InvitationInfo> {
    let (org_id, actor_role) = auth.member(Role::Admin)?;
    if !actor_role.may_manage(req.role) {
        return Err(ApiError::RoleNotAllowed(format!(
            "{} cannot invite {}",
            with_article(actor_role),
            with_article(req.role)
        )));
    }
    let email = email::normalize("email", &req.email)?;
    let mut tx = state.db.begin().await?;
    let member: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id
                         WHERE m.org_id = $1 AND lower(u.email) = lower($2))",
    )
    .bind(org_id)
    .bind(&email)
    .fetch_one(&mut *tx)
    .await?;
    if member {
        return Err(ApiError::Conflict(format!(
            "{email} is a member of this organization already"
        )));
    }
    let (token, token_hash) = new_token();
    let (id, expires_at, org): (i64, OffsetDateTime, String) = sqlx::query_as(
        "INSERT INTO invitations (org_id, email, role, token_hash, invited_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
         RETURNING id, expires_at, (SELECT name FROM organizations WHERE id = $1)",
    )
    .bind(org_id)
    .bind(&email)
    .bind(req.role.as_str())
    .bind(&token_hash)
    .bind(auth.user_id())
    .bind(INVITATION_TTL_SECS as f64)
    .fetch_one(&mut *tx)
    .await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "invitation.create",
        &email,
        json!({ "invitation_id": id, "role": req.role }),
    )
    .await?;
    tx.commit().await?;
    spawn_send(
        state.mailer.clone(),
        Mail {
            to: email.clone(),
            subject: format!("You are invited to {org}"),
            body: format!(
                "You are invited to join {org} as {}.\n\nAccept within 7 days: {}/accept-invitation#token={token}\n",
                with_article(req.role),
                state.config.public_url_trimmed()
            ),
        },
    );
    Ok(InvitationInfo {
        id,
        email,
        role: req.role,
        expires_at,
    })
}

type InvitationRow = (i64, i64, String, String, bool, bool);

/// The invitation a token names, locked: id, org, e-mail, role; or why not.
async fn find(conn: &mut sqlx::PgConnection, token: &str) -> ApiResult<InvitationRow> {
    let invalid = ApiError::TokenInvalid { what: "invitation" };
    if !looks_like_token(token) {
        return Err(invalid);
    }
    let row: Option<InvitationRow> = sqlx::query_as(
        "SELECT id, org_id, email, role, accepted_at IS NOT NULL, expires_at <= now()
           FROM invitations WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(hash_key(token))
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        None => Err(invalid),
        Some((.., true, _)) => Err(ApiError::TokenUsed { what: "invitation" }),
        Some((.., true)) => Err(ApiError::TokenExpired { what: "invitation" }),
        Some(row) => Ok(row),
    }
}

pub async fn accept(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(req): Json<Accept>,
) -> ApiResult<axum::Json<Accepted>> {
    Ok(axum::Json(
        accept_invitation(&state, peer, &headers, &req).await?,
    ))
}

/// Accepts the invitation `req.token` names (making the account when no
/// user has the address): the one way, for the API and the dashboard's
/// invitation page.
pub async fn accept_invitation(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    req: &Accept,
) -> ApiResult<Accepted> {
    csrf::check_origin(headers, &state.config)?;
    // A first look without holding a lock through argon2: is there an
    // account, and so is a password needed?
    let (_, _, email, _, _, _) = find(&mut *state.db.acquire().await?, &req.token).await?;
    let existing: Option<i64> =
        sqlx::query_scalar("SELECT id FROM users WHERE lower(email) = lower($1)")
            .bind(&email)
            .fetch_optional(&state.db)
            .await?;
    let hash = match (existing, &req.password) {
        (None, None) => {
            return Err(ApiError::invalid_field(
                "password",
                "required: no account has the invited address yet, and accepting makes one",
            ));
        }
        (None, Some(pw)) => {
            password::check_new("password", pw)?;
            Some(state.passwords.hash(pw).await?)
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_field(
                "password",
                "leave it out: the invited address has an account, whose password stays as it is",
            ));
        }
        (Some(_), None) => None,
    };
    let mut tx = state.db.begin().await?;
    let (id, org_id, email, role, ..) = find(&mut tx, &req.token).await?;
    let role = Role::try_from(role).map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
    let (user_id, user_created) = match &hash {
        Some(hash) => {
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO users (email, password_hash) VALUES ($1, $2)
                 ON CONFLICT ((lower(email))) DO NOTHING RETURNING id",
            )
            .bind(&email)
            .bind(hash)
            .fetch_optional(&mut *tx)
            .await?;
            // Made meanwhile by another acceptance: ask again, without a password.
            (
                id.ok_or_else(|| {
                    ApiError::Conflict(format!(
                        "{email} has an account now; accept again without a password"
                    ))
                })?,
                true,
            )
        }
        None => (
            sqlx::query_scalar("SELECT id FROM users WHERE lower(email) = lower($1)")
                .bind(&email)
                .fetch_one(&mut *tx)
                .await?,
            false,
        ),
    };
    sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (org_id, user_id) DO NOTHING",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(role.as_str())
    .execute(&mut *tx)
    .await?;
    // An existing member keeps the role they had.
    let (kept_role, org): (String, String) = sqlx::query_as(
        "SELECT m.role, o.name FROM memberships m JOIN organizations o ON o.id = m.org_id
          WHERE m.org_id = $1 AND m.user_id = $2",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE invitations SET accepted_at = now(), accepted_by = $2 WHERE id = $1")
        .bind(id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    audit(
        &mut tx,
        Some(org_id),
        Actor::anonymous(peer.ip(), Some(user_id)),
        "invitation.accept",
        &email,
        json!({ "invitation_id": id, "role": kept_role, "user_created": user_created }),
    )
    .await?;
    tx.commit().await?;
    Ok(Accepted {
        org_id,
        org,
        role: Role::try_from(kept_role).map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?,
        email,
        user_created,
    })
}
