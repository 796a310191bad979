//! The host blocklist: a host blocks itself and its subdomains, for every
//! organization's new and updated links.

use crate::audit::audit;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

/// Longest reason, bytes.
pub const MAX_REASON_LEN: usize = 500;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockHost {
    pub host: String,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BlockedHost {
    pub host: String,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

pub async fn block(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<BlockHost>,
) -> ApiResult<(StatusCode, axum::Json<BlockedHost>)> {
    auth.operator()?;
    let host = crate::target::normalize_host(&req.host)?;
    crate::text::check("reason", &req.reason, MAX_REASON_LEN)?;
    let mut tx = state.db.begin().await?;
    let row: BlockedHost = sqlx::query_as(
        "INSERT INTO blocked_hosts (host, reason) VALUES ($1, $2)
         ON CONFLICT (host) DO UPDATE SET reason = EXCLUDED.reason
         RETURNING host, reason, created_at",
    )
    .bind(&host)
    .bind(&req.reason)
    .fetch_one(&mut *tx)
    .await?;
    audit(
        &mut tx,
        None,
        auth.actor(),
        "blocklist.add",
        &host,
        json!({ "reason": req.reason }),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(row)))
}

/// `GET /v1/admin/blocklist`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BlockedHostList {
    pub hosts: Vec<BlockedHost>,
}

pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<axum::Json<BlockedHostList>> {
    auth.operator()?;
    let hosts: Vec<BlockedHost> =
        sqlx::query_as("SELECT host, reason, created_at FROM blocked_hosts ORDER BY host")
            .fetch_all(&state.db)
            .await?;
    Ok(axum::Json(BlockedHostList { hosts }))
}

pub async fn unblock(
    State(state): State<AppState>,
    auth: Auth,
    Path(host): Path<String>,
) -> ApiResult<StatusCode> {
    auth.operator()?;
    let host = crate::target::normalize_host(&host)?;
    let mut tx = state.db.begin().await?;
    let n = sqlx::query("DELETE FROM blocked_hosts WHERE host = $1")
        .bind(&host)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::NotFound {
            what: "blocked host",
        });
    }
    audit(
        &mut tx,
        None,
        auth.actor(),
        "blocklist.remove",
        &host,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
