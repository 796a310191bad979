//! API key management: `POST/GET /v1/keys`, `DELETE /v1/keys/{id}` (admin
//! scope), and the bootstrap used by `control keys create`.

use crate::app::AppState;
use crate::auth::{self, Auth};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::links::store::audit;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[serde(default)]
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A key as listed (never the secret).
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct KeyInfo {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

const KEY_COLUMNS: &str =
    "id, name, prefix, scopes, expires_at, revoked_at, last_used_at, created_at";

/// Inserts a key for `org_id`; returns its info and the secret (shown once).
pub async fn insert_key(
    conn: &mut sqlx::PgConnection,
    org_id: i64,
    name: &str,
    scopes: &[String],
    expires_at: Option<OffsetDateTime>,
) -> ApiResult<(KeyInfo, String)> {
    auth::validate_scopes(scopes)?;
    let key = auth::generate_key();
    let info: KeyInfo = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO api_keys (org_id, name, prefix, secret_hash, scopes, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {KEY_COLUMNS}"
    )))
    .bind(org_id)
    .bind(name)
    .bind(&key.prefix)
    .bind(&key.hash)
    .bind(scopes)
    .bind(expires_at)
    .fetch_one(&mut *conn)
    .await?;
    Ok((info, key.secret))
}

/// Bootstrap: creates the organization if needed and a key in it.
pub async fn bootstrap_key(
    db: &PgPool,
    org: &str,
    scopes: &[String],
    name: &str,
) -> anyhow::Result<(i64, String)> {
    let mut tx = db.begin().await?;
    let org_id: i64 = sqlx::query_scalar(
        "INSERT INTO organizations (name) VALUES ($1)
         ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
    )
    .bind(org)
    .fetch_one(&mut *tx)
    .await?;
    let (info, secret) = insert_key(&mut tx, org_id, name, scopes, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    audit(
        &mut tx,
        Some(org_id),
        None,
        "key.create",
        &info.prefix,
        json!({ "via": "cli" }),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    tx.commit().await?;
    Ok((org_id, secret))
}

pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateKey>,
) -> ApiResult<(StatusCode, axum::Json<serde_json::Value>)> {
    auth.require("admin")?;
    let mut tx = state.db.begin().await?;
    let (info, secret) =
        insert_key(&mut tx, auth.org_id, &req.name, &req.scopes, req.expires_at).await?;
    audit(
        &mut tx,
        Some(auth.org_id),
        Some(auth.key_id),
        "key.create",
        &info.prefix,
        json!({ "scopes": info.scopes }),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "key": info, "secret": secret })),
    ))
}

pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<axum::Json<serde_json::Value>> {
    auth.require("admin")?;
    let keys: Vec<KeyInfo> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY id"
    )))
    .bind(auth.org_id)
    .fetch_all(&state.db)
    .await?;
    Ok(axum::Json(json!({ "keys": keys })))
}

pub async fn revoke(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    auth.require("admin")?;
    let mut tx = state.db.begin().await?;
    let prefix: Option<String> = sqlx::query_scalar(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
          WHERE id = $1 AND org_id = $2 RETURNING prefix",
    )
    .bind(id)
    .bind(auth.org_id)
    .fetch_optional(&mut *tx)
    .await?;
    let prefix = prefix.ok_or(ApiError::NotFound { what: "key" })?;
    audit(
        &mut tx,
        Some(auth.org_id),
        Some(auth.key_id),
        "key.revoke",
        &prefix,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
