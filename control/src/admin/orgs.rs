//! The organizations, with how many live links and active keys each has.

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use serde::Serialize;
use time::OffsetDateTime;

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OrgInfo {
    pub id: i64,
    pub name: String,
    pub live_links: i64,
    pub active_keys: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `GET /v1/admin/orgs`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrgList {
    pub orgs: Vec<OrgInfo>,
}

pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<axum::Json<OrgList>> {
    auth.operator()?;
    let orgs: Vec<OrgInfo> = sqlx::query_as(
        "SELECT o.id, o.name, o.created_at,
                (SELECT count(*) FROM links l WHERE l.org_id = o.id AND l.deleted_at IS NULL) AS live_links,
                (SELECT count(*) FROM api_keys k WHERE k.org_id = o.id AND k.revoked_at IS NULL
                    AND (k.expires_at IS NULL OR k.expires_at > now())) AS active_keys
           FROM organizations o ORDER BY o.id",
    )
    .fetch_all(&state.db)
    .await?;
    Ok(axum::Json(OrgList { orgs }))
}
