//! `GET /v1/orgs/{org}/members`, `PATCH` and `DELETE
//! /v1/orgs/{org}/members/{user_id}`: who belongs, with which role.
//!
//! Any member may list. Changing or removing someone needs a role that
//! manages theirs, before and after ([`Role::may_manage`]: owners touch
//! everyone, admins editors and viewers). Anyone may leave (remove
//! themselves). An organization keeps at least one owner: the last one can
//! be neither demoted nor removed (409 `last_owner`); the check runs with
//! the organization's membership rows locked, so two owners demoting each
//! other at once cannot both succeed.

use crate::audit::audit;
use crate::auth::{Auth, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;

/// A member as listed.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Member {
    pub user_id: i64,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    pub role: Role,
}

/// `GET /v1/orgs/{org}/members`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberList {
    pub members: Vec<Member>,
}

/// `PATCH /v1/orgs/{org}/members/{user_id}`: the member's new role.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoleChanged {
    pub user_id: i64,
    pub email: String,
    pub role: Role,
}

pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Path(_org): Path<String>,
) -> ApiResult<axum::Json<MemberList>> {
    let members = list_members(&state, &auth).await?;
    Ok(axum::Json(MemberList { members }))
}

/// The members of `auth`'s organization (any member may list).
pub async fn list_members(state: &AppState, auth: &Auth) -> ApiResult<Vec<Member>> {
    let (org_id, _) = auth.member(Role::Viewer)?;
    Ok(sqlx::query_as(
        "SELECT m.user_id, u.email, m.role, m.created_at AS joined_at
           FROM memberships m JOIN users u ON u.id = m.user_id
          WHERE m.org_id = $1 ORDER BY lower(u.email)",
    )
    .bind(org_id)
    .fetch_all(&state.db)
    .await?)
}

/// Locks the organization's memberships and returns the target's role and
/// e-mail, and how many owners there are.
async fn lock_target(
    conn: &mut PgConnection,
    org_id: i64,
    user_id: i64,
) -> ApiResult<(Role, String, i64)> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT user_id, role FROM memberships WHERE org_id = $1 ORDER BY user_id FOR UPDATE",
    )
    .bind(org_id)
    .fetch_all(&mut *conn)
    .await?;
    let owners = rows.iter().filter(|(_, r)| r == "owner").count() as i64;
    let role = rows
        .iter()
        .find(|(id, _)| *id == user_id)
        .and_then(|(_, r)| Role::parse(r))
        .ok_or(ApiError::NotFound { what: "member" })?;
    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok((role, email, owners))
}

/// "a viewer", "an admin".
pub fn with_article(role: Role) -> String {
    match role {
        Role::Viewer => format!("a {role}"),
        _ => format!("an {role}"),
    }
}

fn refuse(actor: Role, what: &str, target: Role) -> ApiError {
    ApiError::RoleNotAllowed(format!(
        "{} cannot {what} {}",
        with_article(actor),
        with_article(target)
    ))
}

pub async fn change_role(
    State(state): State<AppState>,
    auth: Auth,
    Path((_org, user_id)): Path<(String, i64)>,
    Json(req): Json<ChangeRole>,
) -> ApiResult<axum::Json<RoleChanged>> {
    let email = set_role(&state, &auth, user_id, req.role).await?;
    Ok(axum::Json(RoleChanged {
        user_id,
        email,
        role: req.role,
    }))
}

/// Gives the member `user_id` of `auth`'s organization the role `role`
/// (the module doc's rules); their e-mail. The one way, for the API and
/// the dashboard.
pub async fn set_role(
    state: &AppState,
    auth: &Auth,
    user_id: i64,
    role: Role,
) -> ApiResult<String> {
    let req = ChangeRole { role };
    let (org_id, actor_role) = auth.member(Role::Admin)?;
    let mut tx = state.db.begin().await?;
    let (current, email, owners) = lock_target(&mut tx, org_id, user_id).await?;
    if !actor_role.may_manage(current) {
        return Err(refuse(actor_role, "change the role of", current));
    }
    if !actor_role.may_manage(req.role) {
        return Err(refuse(actor_role, "make someone", req.role));
    }
    if current == Role::Owner && req.role != Role::Owner && owners <= 1 {
        return Err(ApiError::LastOwner);
    }
    if current != req.role {
        sqlx::query("UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .bind(req.role.as_str())
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            Some(org_id),
            auth.actor(),
            "member.role_change",
            &email,
            json!({ "user_id": user_id, "from": current, "to": req.role }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(email)
}

pub async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Path((_org, user_id)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    remove_member(&state, &auth, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the member `user_id` from `auth`'s organization, or lets the
/// caller leave (the module doc's rules). For the API and the dashboard.
pub async fn remove_member(state: &AppState, auth: &Auth, user_id: i64) -> ApiResult<()> {
    let (org_id, actor_role) = auth.member(Role::Viewer)?;
    let leaving = auth.user_id() == Some(user_id);
    let mut tx = state.db.begin().await?;
    let (current, email, owners) = lock_target(&mut tx, org_id, user_id).await?;
    if !leaving && !actor_role.may_manage(current) {
        return Err(refuse(actor_role, "remove", current));
    }
    if current == Role::Owner && owners <= 1 {
        return Err(ApiError::LastOwner);
    }
    sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        if leaving {
            "member.leave"
        } else {
            "member.remove"
        },
        &email,
        json!({ "user_id": user_id, "role": current }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
