//! Building a snapshot now, and listing the generations kept.
//!
//! Generations are shown with their file name, never the server path:
//! where the control plane keeps its files is nobody's business over HTTP,
//! the operator's included (it is in the config they wrote).

use crate::audit::audit;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::snapshot::{Generation, PushResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

/// A generation as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GenerationInfo {
    pub id: i64,
    pub seq: i64,
    /// The file's name in the snapshot directory.
    pub file: String,
    pub links: i64,
    pub bytes: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&Generation> for GenerationInfo {
    fn from(g: &Generation) -> Self {
        GenerationInfo {
            id: g.id,
            seq: g.seq,
            file: std::path::Path::new(&g.path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            links: g.links,
            bytes: g.bytes,
            created_at: g.created_at,
        }
    }
}

/// `POST /v1/admin/snapshots`: 201 with a new generation and its pushes, or
/// 200 with the latest one when it already holds every change made before
/// the request (see [`crate::snapshot_builds`]).
pub async fn build(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<(StatusCode, axum::Json<serde_json::Value>)> {
    auth.operator()?;
    let outcome = state.builds.request().await?;
    let generation = GenerationInfo::from(&outcome.generation);
    let status = if outcome.built {
        let mut conn = state.db.acquire().await?;
        audit(
            &mut conn,
            None,
            auth.actor(),
            "snapshot.build",
            &generation.seq.to_string(),
            json!({ "file": generation.file }),
        )
        .await?;
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let pushes: &[PushResult] = &outcome.pushes;
    Ok((
        status,
        axum::Json(json!({ "generation": generation, "built": outcome.built, "pushes": pushes })),
    ))
}

/// `GET /v1/admin/snapshots`, newest first.
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<axum::Json<serde_json::Value>> {
    auth.operator()?;
    let generations: Vec<GenerationInfo> = state
        .snapshots
        .list()
        .await?
        .iter()
        .map(GenerationInfo::from)
        .collect();
    Ok(axum::Json(json!({ "generations": generations })))
}
