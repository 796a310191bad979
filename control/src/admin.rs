//! Admin endpoints (scope `admin`): the host blocklist (service-wide), disabling
//! a link at once, building and pushing a snapshot now, listing generations.

use crate::app::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::links::store::audit;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

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
    auth.require("admin")?;
    let host = crate::target::normalize_host(&req.host)?;
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
        Some(auth.org_id),
        Some(auth.key_id),
        "blocklist.add",
        &host,
        json!({ "reason": req.reason }),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(row)))
}

pub async fn blocklist(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<axum::Json<serde_json::Value>> {
    auth.require("admin")?;
    let hosts: Vec<BlockedHost> =
        sqlx::query_as("SELECT host, reason, created_at FROM blocked_hosts ORDER BY host")
            .fetch_all(&state.db)
            .await?;
    Ok(axum::Json(json!({ "hosts": hosts })))
}

pub async fn unblock(
    State(state): State<AppState>,
    auth: Auth,
    Path(host): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require("admin")?;
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
        Some(auth.org_id),
        Some(auth.key_id),
        "blocklist.remove",
        &host,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn disable(
    State(state): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
) -> ApiResult<axum::Json<crate::links::model::LinkJson>> {
    auth.require("admin")?;
    let row = crate::links::api::disable(&state, &auth, &code).await?;
    Ok(axum::Json(row.to_json(state.short_base())))
}

pub async fn build_snapshot(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<(StatusCode, axum::Json<serde_json::Value>)> {
    auth.require("admin")?;
    let generation = state.snapshots.build().await?;
    let pushes = state.snapshots.push_all(&generation).await;
    sqlx::query("INSERT INTO audit_log (org_id, api_key_id, action, subject, details) VALUES ($1, $2, 'snapshot.build', $3, '{}')")
        .bind(auth.org_id)
        .bind(auth.key_id)
        .bind(generation.seq.to_string())
        .execute(&state.db)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "generation": generation, "pushes": pushes })),
    ))
}

pub async fn snapshots(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<axum::Json<serde_json::Value>> {
    auth.require("admin")?;
    let generations = state.snapshots.list().await?;
    Ok(axum::Json(json!({ "generations": generations })))
}
