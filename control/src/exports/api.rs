//! `POST /v1/exports`, `GET /v1/jobs`, `GET /v1/jobs/{id}`, `GET /v1/jobs/{id}/download`.
//!
//! All three need `stats:read` (viewers, editors, admins and owners; keys
//! with that scope): an export holds what the stats show, nothing more. A
//! job belongs to its organization, not to whoever started it, and another
//! organization's job is a 404 like one that does not exist.

use super::request::{CreateExport, ExportSpec};
use super::store::{self, JobRow};
use super::worker::file_path;
use crate::auth::{Auth, Scope};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// Being written (`rows` and `bytes` grow).
    Running,
    /// The file is ready at `download_url` until `expires_at`.
    Done,
    /// See `error`; start the export again.
    Failed,
    /// Done, and the file deleted after `expires_at`.
    Expired,
}

impl JobState {
    fn parse(s: &str) -> JobState {
        match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "expired" => JobState::Expired,
            _ => JobState::Failed,
        }
    }
}

/// An export job.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobJson {
    pub id: i64,
    /// What the job does: `export`.
    pub kind: &'static str,
    pub state: JobState,
    /// The export, checked and complete (defaults filled in, ranges of
    /// rollup exports in whole minutes).
    pub request: ExportSpec,
    /// Rows written so far (all of them once done), header excluded.
    pub rows: i64,
    /// Bytes written so far (the file's size once done).
    pub bytes: i64,
    /// How many times a worker started it (an interrupted run starts again).
    pub attempts: i32,
    /// Why it failed.
    pub error: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// When the file is deleted.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// Where the file is, once done.
    pub download_url: Option<String>,
}

fn time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl JobJson {
    pub fn from_row(row: JobRow) -> JobJson {
        let state = JobState::parse(&row.state);
        JobJson {
            id: row.id,
            kind: "export",
            state,
            download_url: (state == JobState::Done)
                .then(|| format!("/v1/jobs/{}/download", row.id)),
            request: row.request.0,
            rows: row.rows_written,
            bytes: row.bytes,
            attempts: row.attempts,
            error: row.error,
            created_at: time(row.created_at),
            started_at: row.started_at.map(time),
            finished_at: row.finished_at.map(time),
            expires_at: row.expires_at.map(time),
        }
    }
}

/// `POST /v1/exports`: checks the export and queues it (202 with the job).
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<CreateExport>,
) -> ApiResult<Response> {
    let org_id = auth.org(Scope::StatsRead)?;
    let mut spec = body.check(state.config.export_max_range_days)?;
    if let Some(code) = spec.code.clone() {
        // A live link of the organization; the name of its domain (so the
        // job reads the clicks served under it) is the normalised one.
        let link = crate::links::api::fetch_in(&state, org_id, spec.domain.as_deref(), &code)
            .await
            .map_err(|e| match e {
                ApiError::NotFound { .. } => super::request::invalid(
                    "code",
                    "is not a live link of the organization (on that domain)",
                ),
                e => e,
            })?;
        spec.domain = Some(link.domain);
    }
    // Refused now rather than failed later: a job needs ClickHouse.
    if state.clickhouse.is_none() {
        return Err(ApiError::Unavailable("ClickHouse"));
    }
    let row = store::create(
        &state.db,
        org_id,
        &spec,
        state.config.export_max_active,
        auth.actor(),
    )
    .await?;
    state.export_wake.notify_one();
    let location = format!("/v1/jobs/{}", row.id);
    let mut response = (StatusCode::ACCEPTED, axum::Json(JobJson::from_row(row))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

async fn job(state: &AppState, auth: &Auth, id: i64) -> ApiResult<JobRow> {
    let org_id = auth.org(Scope::StatsRead)?;
    store::get(&state.db, org_id, id)
        .await?
        .ok_or(ApiError::NotFound { what: "job" })
}

/// `GET /v1/jobs`'s query.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// How many (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// The organization's jobs, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobJson>,
}

/// `GET /v1/jobs`: the organization's newest jobs (finished ones stay a
/// week).
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<JobsQuery>,
) -> ApiResult<axum::Json<JobList>> {
    let org_id = auth.org(Scope::StatsRead)?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "must be 1 to 100"));
    }
    let rows = store::list(&state.db, org_id, limit).await?;
    Ok(axum::Json(JobList {
        jobs: rows.into_iter().map(JobJson::from_row).collect(),
    }))
}

/// `GET /v1/jobs/{id}`.
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<JobJson>> {
    Ok(axum::Json(JobJson::from_row(job(&state, &auth, id).await?)))
}

/// `GET /v1/jobs/{id}/download`: the file, streamed from disk. 409 while
/// the job is not done (or failed), 410 once its file expired, 503 when the
/// file is on another instance's disk.
pub async fn download(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let row = job(&state, &auth, id).await?;
    match JobState::parse(&row.state) {
        JobState::Done => {}
        JobState::Expired => return Err(ApiError::ExportExpired),
        JobState::Failed => {
            return Err(ApiError::ExportFailed {
                error: row.error.unwrap_or_default(),
            });
        }
        JobState::Queued | JobState::Running => {
            return Err(ApiError::ExportNotReady { state: row.state });
        }
    }
    let format = row.request.0.format;
    let path = file_path(&state.config.export_dir, row.id, format.as_str());
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if row
                .expires_at
                .is_some_and(|t| t <= OffsetDateTime::now_utc())
            {
                return Err(ApiError::ExportExpired);
            }
            tracing::warn!(
                job = row.id,
                instance = row.instance.as_deref().unwrap_or(""),
                "exports: the file is not on this instance (export_dir is not shared storage?)"
            );
            return Err(ApiError::Unavailable(
                "this instance's copy of the export's file",
            ));
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("opening {}", path.display()))
                .into());
        }
    };
    let len = file
        .metadata()
        .await
        .map_err(|e| anyhow::anyhow!("an export's size: {e}"))?
        .len();
    let mut response = Response::new(Body::from_stream(crate::snapshot_pull::chunks(file, len)));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    let name = format!(
        "attachment; filename=\"export-{}.{}\"",
        row.id,
        format.as_str()
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
