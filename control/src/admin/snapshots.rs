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

/// `POST /v1/admin/snapshots`: the generation, whether this request built
/// it, and how each engine took the push.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BuildResult {
    pub generation: GenerationInfo,
    pub built: bool,
    pub pushes: Vec<PushResult>,
}

/// `GET /v1/admin/snapshots`, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GenerationList {
    pub generations: Vec<GenerationInfo>,
}

/// `POST /v1/admin/snapshots`: 201 with a new generation and its pushes, or
/// 200 with the latest one when it already holds every change made before
/// the request (see [`crate::snapshot_builds`]).
pub async fn build(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<(StatusCode, axum::Json<BuildResult>)> {
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
    Ok((
        status,
        axum::Json(BuildResult {
            generation,
            built: outcome.built,
            pushes: outcome.pushes.clone(),
        }),
    ))
}

/// `GET /v1/admin/snapshots`, newest first.
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<axum::Json<GenerationList>> {
    auth.operator()?;
    let generations: Vec<GenerationInfo> = state
        .snapshots
        .list()
        .await?
        .iter()
        .map(GenerationInfo::from)
        .collect();
    Ok(axum::Json(GenerationList { generations }))
}
